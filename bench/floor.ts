/**
 * The floor: the least a process pool can be. Children forked with
 * `serialization: 'advanced'`, one item per message, one item in flight per
 * child, a FIFO of waiting items. No chunking, no failure handling beyond
 * rejecting on exit. Whatever procpool costs beyond this is its overhead.
 */
import { fork, type ChildProcess } from 'node:child_process';

interface Job {
  task: string;
  args: unknown[];
  /** Items of one chunk, sent in one message (`mapChunked`). */
  chunk?: unknown[];
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

interface Reply {
  id?: number;
  ready?: boolean;
  ok?: boolean;
  value?: unknown;
  error?: unknown;
}

interface Worker {
  process: ChildProcess;
  busy: Job | undefined;
  ready: boolean;
  whenReady: Promise<void>;
  exited: Promise<void>;
}

const script = new URL('./floor-child.mjs', import.meta.url);

export class FloorPool {
  readonly #workers: Worker[] = [];
  readonly #queue: Job[] = [];
  #head = 0;
  #nextId = 0;

  /** Forks `processes` children at once; calls made before they are ready wait in the queue. */
  constructor(processes: number, env: NodeJS.ProcessEnv = process.env) {
    for (let i = 0; i < processes; i++) {
      const child = fork(script, [], { serialization: 'advanced', execArgv: [], env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      let isReady = (): void => undefined;
      const worker: Worker = {
        process: child,
        busy: undefined,
        ready: false,
        whenReady: new Promise((resolve) => (isReady = resolve)),
        exited: new Promise((resolve) => child.once('exit', () => resolve())),
      };
      child.on('message', (reply: Reply) => {
        if (reply.ready) {
          worker.ready = true;
          isReady();
        } else {
          const job = worker.busy!;
          worker.busy = undefined;
          if (reply.ok) job.resolve(reply.value);
          else job.reject(reply.error);
        }
        this.#feed(worker);
      });
      child.once('exit', (code, signal) => {
        worker.ready = false;
        worker.busy?.reject(new Error(`floor child exited (${code ?? signal})`));
        worker.busy = undefined;
      });
      this.#workers.push(worker);
    }
  }

  /** Child process ids. */
  get pids(): number[] {
    return this.#workers.map((worker) => worker.process.pid!);
  }

  /** Resolves once every child has said it is ready. */
  async ready(): Promise<void> {
    await Promise.all(this.#workers.map((worker) => worker.whenReady));
  }

  /** `task(...args)` in some child. */
  call(task: string, args: unknown[]): Promise<unknown> {
    return new Promise((resolve, reject) => this.#enqueue({ task, args, resolve, reject }));
  }

  /** `task(item)` for each item, `chunksize` items a message: chunking at its simplest, for the same-chunksize figure. */
  async mapChunked(task: string, items: unknown[], chunksize: number): Promise<unknown[]> {
    const chunks: Array<Promise<unknown>> = [];
    for (let i = 0; i < items.length; i += chunksize) {
      const chunk = items.slice(i, i + chunksize);
      chunks.push(new Promise((resolve, reject) => this.#enqueue({ task, args: [], chunk, resolve, reject })));
    }
    return (await Promise.all(chunks)).flat() as unknown[];
  }

  #enqueue(job: Job): void {
    this.#queue.push(job);
    for (const worker of this.#workers) if (worker.ready && worker.busy === undefined) this.#feed(worker);
  }

  /** Disconnects every child and waits until they have exited. */
  async close(): Promise<void> {
    for (const worker of this.#workers) if (worker.process.connected) worker.process.disconnect();
    await Promise.all(this.#workers.map((worker) => worker.exited));
  }

  #feed(worker: Worker): void {
    if (!worker.ready || worker.busy !== undefined || this.#head >= this.#queue.length) return;
    const job = this.#queue[this.#head++]!;
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue.splice(0, this.#head);
      this.#head = 0;
    }
    worker.busy = job;
    worker.process.send({ id: this.#nextId++, task: job.task, args: job.args, chunk: job.chunk });
  }
}
