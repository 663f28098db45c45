/**
 * One child process: spawned with execa, spoken to over the raw IPC channel
 * (execa's own messaging is slower and disconnects on a failed send). Keeps
 * the chunks it has been sent in order; the first one is the one running.
 * The only home of execa.
 */
import { execaNode } from 'execa';
import type { ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { DISCONNECTED_EXIT_CODE, isChildMessage, type ChildMessage, type Outcome, type RunMessage } from './protocol.js';
import { deserializeThrown, findUnsendable } from './transfer.js';
import { TaskTimeoutError, WorkerExitError, type WorkerExitReason } from './errors.js';
import type { ResolvedPoolOptions } from './options.js';

const entry = new URL('../worker/entry.js', import.meta.url);
const stderrTailBytes = 8192;

/** A chunk of items for one task, as handed to a child. */
export interface Chunk {
  task: string;
  args: unknown[][];
  /** Per-item timeout in ms, armed when each item starts. */
  timeout: number | undefined;
}

/** What a chunk came back with. */
export interface RunResult {
  outcomes: Outcome[];
  /** Milliseconds the chunk ran in the child. */
  ms: number;
}

/** Raised for a chunk that was sent but never started before its child went away: safe to send elsewhere. */
export class NotStartedError extends Error {
  constructor() {
    super('The chunk did not start before its child went away');
  }
}

/** How a child ended. */
export interface ChildExit {
  pid: number | undefined;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  reason: WorkerExitReason;
  /** The child's own fatal error (uncaught exception, failed start-up), re-created. */
  cause: unknown;
  /** Whether the pool asked it to go. */
  requested: boolean;
  /** Whether the pool killed it to stop a chunk (timeout, abort). */
  killed: boolean;
  /** Whether it had become ready. */
  wasReady: boolean;
  stderr: string;
}

/** What the owner of a child hears from it. */
export interface ChildHooks {
  ready(child: Child, tasks: string[]): void;
  /** A chunk finished; `rss` is the child's resident memory after it. */
  settled(child: Child, rss: number): void;
  exited(child: Child, exit: ChildExit): void;
  /** The child's stdout when stdio is 'pipe', and its stderr always. */
  stdout: Writable | undefined;
  stderr: Writable;
}

interface InFlight {
  id: number;
  chunk: Chunk;
  resolve(result: RunResult): void;
  reject(error: unknown): void;
  timer?: NodeJS.Timeout;
}

let nextId = 1;

/** One spawned child and the chunks in flight on it. */
export class Child {
  readonly #subprocess: ChildProcess;
  readonly #hooks: ChildHooks;
  readonly #inFlight = new Map<number, InFlight>();
  #ready = false;
  #gone = false;
  #requested = false;
  #fatal: unknown = undefined;
  #killedFor: unknown = undefined;
  #channelLost = false;
  /** Smoothed ms per chunk: decides how many chunks to keep in flight. */
  chunkMs = Number.NaN;
  #stderrTail = '';
  /** Items handed to this child so far (for maxTasksPerChild). */
  assigned = 0;
  /** Set when the child takes no more work and leaves once idle. */
  retiring = false;

  constructor(options: ResolvedPoolOptions, moduleUrl: string, hooks: ChildHooks) {
    this.#hooks = hooks;
    const subprocess = execaNode(entry, [], {
      ipc: true,
      serialization: 'advanced',
      buffer: false,
      cleanup: true,
      reject: false,
      nodeOptions: [...options.nodeOptions],
      stdin: 'ignore',
      stdout: options.stdio === 'pipe' ? 'pipe' : 'inherit',
      stderr: 'pipe',
      forceKillAfterDelay: 1000,
      ...(options.env === undefined ? {} : { env: options.env, extendEnv: false }),
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    });
    // The subprocess is a promise too: an unhandled one would crash the parent.
    subprocess.catch(() => undefined);
    // Only Node's own ChildProcess surface is used from here on: raw IPC, kill, events.
    this.#subprocess = subprocess as unknown as ChildProcess;
    this.#subprocess.on('error', () => undefined);
    this.#subprocess.on('message', (message: unknown) => {
      if (isChildMessage(message)) this.#receive(message);
    });
    this.#subprocess.once('disconnect', () => {
      // A child that let go of its channel exits by itself (worker/entry);
      // one stuck in a synchronous loop is ended here.
      if (this.#requested) return;
      setTimeout(() => {
        if (this.#gone) return;
        this.#channelLost = true;
        this.kill();
      }, 1000).unref();
    });
    this.#subprocess.once('exit', (exitCode, signal) => void this.#onExit(exitCode, signal));
    this.#subprocess.stdout?.pipe(hooks.stdout!, { end: false });
    this.#subprocess.stderr!.on('data', (data: Buffer) => {
      hooks.stderr.write(data);
      this.#stderrTail = (this.#stderrTail + data.toString()).slice(-stderrTailBytes);
    });
    this.#trySend({ type: 'procpool:init', module: moduleUrl, initializer: options.initializer, initArgs: [...options.initArgs] });
    this.#updateRef();
  }

  get pid(): number | undefined {
    return this.#subprocess.pid;
  }

  get isReady(): boolean {
    return this.#ready;
  }

  get isGone(): boolean {
    return this.#gone;
  }

  /** Chunks sent and not yet settled. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Sends a chunk; `result` resolves with one outcome per item, rejects if the child goes away. */
  run(chunk: Chunk): { id: number; result: Promise<RunResult> } {
    const id = nextId++;
    if (this.#gone) return { id, result: Promise.reject(new NotStartedError()) };
    const outcomes: Outcome[] = new Array<Outcome>(chunk.args.length);
    const sendable: number[] = [];
    let message: RunMessage = { type: 'procpool:run', id, task: chunk.task, args: chunk.args, timed: chunk.timeout !== undefined };
    if (!this.#trySend(message)) {
      // Some argument cannot be cloned: refuse those items, send the rest.
      chunk.args.forEach((args, i) => {
        const unsendable = findUnsendable(args, 'args');
        if (unsendable === undefined) sendable.push(i);
        else outcomes[i] = { ok: false, unsendable };
      });
      if (sendable.length === 0) return { id, result: Promise.resolve({ outcomes, ms: 0 }) };
      message = { ...message, args: sendable.map((i) => chunk.args[i]!) };
      if (!this.#trySend(message)) return { id, result: Promise.reject(new Error('A chunk could not be sent to its child')) };
    }
    this.#updateRef();
    const result = new Promise<RunResult>((resolve, reject) => {
      const finish = (sent: RunResult): void => {
        if (sendable.length === 0) return resolve(sent);
        sendable.forEach((original, i) => (outcomes[original] = sent.outcomes[i]!));
        resolve({ outcomes, ms: sent.ms });
      };
      this.#inFlight.set(id, { id, chunk, resolve: finish, reject });
    });
    return { id, result };
  }

  /**
   * Stops chunk `id` and rejects it with `reason`: a chunk that has not
   * started is skipped; the running one is stopped by killing the child
   * (the others on it are then sent elsewhere).
   */
  abort(id: number, reason: unknown): void {
    const entry = this.#inFlight.get(id);
    if (entry === undefined) return;
    const running = this.#inFlight.keys().next().value === id;
    this.#inFlight.delete(id);
    clearTimeout(entry.timer);
    entry.reject(reason);
    if (running) this.kill(reason);
    else this.#trySend({ type: 'procpool:cancel', id });
    this.#afterSettle();
  }

  /** Skips chunk `id` if it has not started (it rejects with NotStartedError); a running chunk goes on. */
  cancel(id: number): void {
    const entry = this.#inFlight.get(id);
    if (entry === undefined || this.#inFlight.keys().next().value === id) return;
    this.#inFlight.delete(id);
    entry.reject(new NotStartedError());
    this.#trySend({ type: 'procpool:cancel', id });
    this.#afterSettle();
  }

  /** Kills the child at once; its running chunk fails with `reason` (or WorkerExitError). */
  kill(reason?: unknown): void {
    if (this.#gone) return;
    this.#killedFor ??= reason;
    this.#subprocess.kill('SIGKILL');
  }

  /** Asks the child to leave once its work is done: a stop message, then SIGTERM, then SIGKILL. */
  stop(graceMs = 2000): void {
    if (this.#requested || this.#gone) return;
    this.#requested = true;
    this.retiring = true;
    this.#updateRef();
    this.#leaveWhenIdle = () => {
      if (this.#gone) return;
      this.#trySend({ type: 'procpool:stop' });
      setTimeout(() => this.#gone || this.#subprocess.kill('SIGTERM'), graceMs).unref();
    };
    if (this.#inFlight.size === 0) this.#afterSettle();
  }

  /** Ends the child now (terminate()). */
  terminate(): void {
    this.#requested = true;
    this.#updateRef();
    this.kill();
  }

  #leaveWhenIdle: (() => void) | undefined;

  #trySend(message: Parameters<NonNullable<typeof process.send>>[0]): boolean {
    try {
      this.#subprocess.send(message, undefined, undefined, () => undefined);
      return true;
    } catch (error) {
      if (error instanceof Error && /could not be cloned|DataCloneError/i.test(`${error.name} ${error.message}`)) return false;
      // The channel is closed: the exit handler settles everything in flight.
      return true;
    }
  }

  /** Keeps the parent alive while this child starts, because work or `ready()` waits for it. */
  set awaited(value: boolean) {
    this.#awaited = value;
    this.#updateRef();
  }

  #awaited = false;

  #updateRef(): void {
    // Idle children must not keep the parent alive; busy ones must, and so
    // must starting ones that work waits for.
    const busy = !this.#gone && (this.#inFlight.size > 0 || this.#requested || (this.#awaited && !this.#ready));
    const method = busy ? 'ref' : 'unref';
    this.#subprocess[method]();
    const channel = (this.#subprocess as unknown as { channel?: { ref(): void; unref(): void } }).channel;
    channel?.[method]();
    for (const stream of [this.#subprocess.stdout, this.#subprocess.stderr]) {
      (stream as unknown as { ref?(): void; unref?(): void } | null)?.[method]?.();
    }
  }

  #receive(message: ChildMessage): void {
    switch (message.type) {
      case 'procpool:done': {
        const entry = this.#inFlight.get(message.id);
        if (entry === undefined) return;
        this.#inFlight.delete(message.id);
        clearTimeout(entry.timer);
        if (message.cancelled) entry.reject(new NotStartedError());
        else {
          this.chunkMs = Number.isNaN(this.chunkMs) ? message.ms : this.chunkMs * 0.7 + message.ms * 0.3;
          entry.resolve({ outcomes: message.outcomes, ms: message.ms });
        }
        this.#hooks.settled(this, message.rss);
        this.#afterSettle();
        return;
      }
      case 'procpool:start': {
        const entry = this.#inFlight.get(message.id);
        const timeout = entry?.chunk.timeout;
        if (entry === undefined || timeout === undefined) return;
        clearTimeout(entry.timer);
        entry.timer = setTimeout(() => {
          this.#inFlight.delete(entry.id);
          entry.reject(new TaskTimeoutError(timeout));
          this.kill(new TaskTimeoutError(timeout));
        }, timeout);
        return;
      }
      case 'procpool:ready':
        this.#ready = true;
        this.#updateRef();
        this.#hooks.ready(this, message.tasks);
        return;
      case 'procpool:init-error':
      case 'procpool:fatal':
        this.#fatal = deserializeThrown(message.error);
        return;
    }
  }

  #afterSettle(): void {
    if (this.#inFlight.size > 0) return;
    this.#updateRef();
    const leave = this.#leaveWhenIdle;
    this.#leaveWhenIdle = undefined;
    leave?.();
  }

  async #onExit(exitCode: number | null, signal: NodeJS.Signals | null): Promise<void> {
    // Let stderr drain so the tail (and an out-of-memory report) is complete.
    const stderr = this.#subprocess.stderr as Readable;
    if (!stderr.readableEnded) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 200);
        stderr.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    this.#gone = true;
    const reason: WorkerExitReason = /heap out of memory|Reached heap limit/i.test(this.#stderrTail)
      ? 'oom'
      : exitCode === DISCONNECTED_EXIT_CODE || this.#channelLost
        ? 'disconnect'
        : signal !== null
          ? 'signal'
          : 'exit';
    const exit: ChildExit = {
      pid: this.pid,
      exitCode,
      signal,
      reason,
      cause: this.#fatal,
      requested: this.#requested,
      killed: this.#killedFor !== undefined,
      wasReady: this.#ready,
      stderr: this.#stderrTail,
    };
    // The chunk that was running dies with the child (unless it was the one
    // killed on purpose, already rejected); the others never started.
    let head = this.#killedFor === undefined;
    for (const entry of this.#inFlight.values()) {
      clearTimeout(entry.timer);
      if (!head) entry.reject(new NotStartedError());
      else entry.reject(new WorkerExitError(exit, exit.cause === undefined ? undefined : { cause: exit.cause }));
      head = false;
    }
    this.#inFlight.clear();
    this.#updateRef();
    this.#hooks.exited(this, exit);
  }
}
