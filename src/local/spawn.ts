/**
 * Starting one child process with execa and the plumbing around it: its
 * stderr kept as a tail (for PoolBrokenError and out-of-memory detection)
 * and forwarded, refs so idle children never keep the parent alive, and
 * sending on the raw IPC channel (execa's own messaging is slower and
 * disconnects for good on a failed send). The only home of execa.
 */
import { execa } from 'execa';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Readable, Writable } from 'node:stream';
import type { ResolvedPoolOptions } from '../options.js';
import type { ParentMessage } from '../protocol.js';

// Resolved from the bundle's dist/src/ (see scripts/build.mjs).
const entry = fileURLToPath(new URL('../worker/entry.js', import.meta.url));

/**
 * Linux's parent-death signal, through util-linux's setpriv: a child is
 * SIGKILLed by the kernel when its parent dies, even stuck in a synchronous
 * loop, with no watchdog thread (~9.5 MiB and a thread start per child).
 * Set from orphan-guard.ts's probe before the first child starts; without it
 * the child starts its watchdog thread instead.
 */
let setpriv: string | undefined;

/** Starts children through `path` (setpriv), or directly when undefined. */
export function useSetpriv(path: string | undefined): void {
  setpriv = path;
}

/** How the child learns what to do before any message: argv[2] the module to load at once, argv[3] its orphan guard, argv[4] the parent's pid. */
function workerArgs(moduleUrl: string): string[] {
  return [entry, moduleUrl, setpriv === undefined ? 'watchdog' : 'pdeathsig', String(process.pid)];
}
const stderrTailBytes = 8192;
/** After a child's exit, how long its piped stdout may stay silent (not back-pressured) before it counts as done. */
const outputIdleMs = 2000;

/** Where a child's output goes. */
export interface ChildOutput {
  stdout: Writable | undefined;
  stderr: Writable;
  /** Whether anyone reads `stdout` (false once the pool stopped with nobody reading: its output is dropped). */
  consumed(): boolean;
}

/**
 * A child process as the pool sees it: the seam where tests put a scripted
 * fake child to replay any ordering of messages, exits and kills.
 */
export interface ChildPort {
  readonly pid: number | undefined;
  /** Why the child could not be started, if it could not. */
  readonly spawnError: Error | undefined;
  /** The last bytes the child wrote to stderr. */
  readonly stderrTail: string;
  /** Sends a message; false when a value in it cannot be cloned (the channel stays usable). */
  send(message: ParentMessage): boolean;
  onMessage(listener: (message: unknown) => void): void;
  /** The IPC channel closed. */
  onDisconnect(listener: () => void): void;
  /** The child exited and everything it sent has been read. */
  onExit(listener: (exitCode: number | null, signal: NodeJS.Signals | null) => void): void;
  kill(signal: NodeJS.Signals): void;
  /** Whether the child keeps the parent's event loop alive. */
  setRef(on: boolean): void;
  /** Resolves when the child's piped stdout has been read to its end (at once when not piped). */
  readonly outputDone: Promise<void>;
}


/** Starts a child process. */
export type SpawnPort = (options: ResolvedPoolOptions & { moduleUrl: string; workerId?: number }, output: ChildOutput) => ChildPort;

/** Starts the worker entry with execa. */
export const spawnChild: SpawnPort = (options, output) => new SpawnedChild(options, output);

/** A started child process, reduced to what the pool uses. */
class SpawnedChild implements ChildPort {
  readonly outputDone: Promise<void>;
  readonly #process: ChildProcess;
  #stderrTail = '';
  #spawnError: Error | undefined;

  constructor(options: ResolvedPoolOptions & { moduleUrl: string; workerId?: number }, output: ChildOutput) {
    const node = [...options.nodeOptions, ...workerArgs(options.moduleUrl)];
    const [file, args] = setpriv === undefined ? [process.execPath, node] : [setpriv, ['--pdeathsig', 'KILL', '--', process.execPath, ...node]];
    const subprocess = execa(file, args, {
      // The IPC channel is Node's own ('ipc' in stdio), not execa's `ipc: true`:
      // that one also reads every message into a queue it drains one per
      // event-loop turn (execa lib/ipc/incoming.js), so a busy channel costs
      // CPU and grows the heap without bound.
      ipc: false,
      stdio: ['ignore', options.stdio === 'pipe' ? 'pipe' : 'inherit', 'pipe', 'ipc'],
      serialization: 'advanced',
      buffer: false,
      // Not execa's `cleanup`: it patches process.emit and process.reallyExit
      // for the whole program (signal-exit), which hid Node's exit code 13 for
      // an unsettled top-level await. The orphan guards end the children.
      cleanup: false,
      reject: false,
      forceKillAfterDelay: 1000,
      // procpool/task's workerId, also for the task's own child processes.
      env: { ...options.env, PROCPOOL_WORKER_ID: String(options.workerId ?? '') },
      extendEnv: options.env === undefined,
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    });
    // The subprocess is a promise too: an unhandled one would crash the parent.
    subprocess.catch(() => undefined);
    // From here on only Node's own ChildProcess surface is used: raw IPC, kill, events.
    this.#process = subprocess as unknown as ChildProcess;
    this.#process.on('error', (error) => {
      // Not started at all (no such cwd, no node binary): no 'exit' will follow.
      if (this.#process.pid === undefined && this.#spawnError === undefined) {
        this.#spawnError = error;
        this.#process.emit('exit', null, null);
      }
    });
    const stdout = this.#process.stdout;
    if (output.stdout && stdout) {
      stdout.pipe(output.stdout, { end: false });
      // Read to its end: a slow consumer of pool.stdout still gets the tail.
      // Output nobody reads is done when the child has exited. A grandchild
      // may hold the pipe open after the child exits: then it counts as done
      // once nothing came for a while and the consumer is not the one holding
      // things up (the pipe is not back-pressured). The parent stays alive
      // meanwhile because join() is pending (engine/registry.ts), not because
      // of this timer.
      this.outputDone = new Promise((resolve) => {
        let exited = false;
        let finished = false;
        let idle: NodeJS.Timeout | undefined;
        const watch = (): void => {
          clearTimeout(idle);
          if (!exited || finished) return;
          if (!output.consumed()) return done();
          // Held up by a consumer that reads slowly: wait for it.
          idle = setTimeout(() => (output.stdout!.writableNeedDrain && output.consumed() ? watch() : done()), outputIdleMs);
          idle.unref();
        };
        const done = (): void => {
          finished = true;
          clearTimeout(idle);
          resolve();
        };
        stdout.on('data', watch);
        this.#process.once('exit', () => {
          exited = true;
          watch();
        });
        stdout.once('close', done);
        stdout.once('error', done);
      });
    } else this.outputDone = Promise.resolve();
    this.#process.stderr?.on('data', (data: Buffer) => {
      output.stderr.write(data);
      this.#stderrTail = (this.#stderrTail + data.toString()).slice(-stderrTailBytes);
    });
  }

  get pid(): number | undefined {
    return this.#process.pid;
  }

  /** Why the child could not be started, if it could not. */
  get spawnError(): Error | undefined {
    return this.#spawnError;
  }

  /** The last bytes the child wrote to stderr. */
  get stderrTail(): string {
    return this.#stderrTail;
  }

  /** Sends a message; false when a value in it cannot be cloned (the channel stays usable). */
  send(message: ParentMessage): boolean {
    try {
      // A closed channel does not throw: send returns false and the callback
      // gets the error; the exit handler then settles what was in flight.
      this.#process.send(message, undefined, undefined, () => undefined);
      return true;
    } catch {
      // It could not be serialized (DataCloneError) or framed: not sent, the channel is intact.
      return false;
    }
  }

  onMessage(listener: (message: unknown) => void): void {
    this.#process.on('message', listener);
  }

  onDisconnect(listener: () => void): void {
    this.#process.once('disconnect', listener);
  }

  /**
   * Calls `listener` once the child has exited and everything it sent has
   * arrived: its stderr closed (for the tail) and its IPC channel closed —
   * messages still in the pipe at 'exit' are delivered before 'disconnect'.
   * Waits at most 500 ms for both (a grandchild may hold a pipe open).
   */
  onExit(listener: (exitCode: number | null, signal: NodeJS.Signals | null) => void): void {
    const stderr = this.#process.stderr as Readable | null;
    let streams = 0;
    let exited: [number | null, NodeJS.Signals | null] | undefined;
    let timer: NodeJS.Timeout | undefined;
    const settle = (): void => {
      if (exited === undefined || streams > 0) return;
      clearTimeout(timer);
      const [code, signal] = exited;
      exited = undefined;
      listener(code, signal);
    };
    const closed = (): void => {
      streams--;
      settle();
    };
    if (stderr !== null && !stderr.destroyed) {
      streams++;
      stderr.once('close', closed);
    }
    if (this.#process.connected) {
      streams++;
      this.#process.once('disconnect', closed);
    }
    this.#process.once('exit', (exitCode, signal) => {
      exited = [exitCode, signal];
      timer = setTimeout(() => {
        streams = 0;
        settle();
      }, 500);
      settle();
    });
  }

  kill(signal: NodeJS.Signals): void {
    this.#process.kill(signal);
  }

  /** Whether the child keeps the parent's event loop alive. */
  setRef(on: boolean): void {
    const method = on ? 'ref' : 'unref';
    this.#process[method]();
    const channel = (this.#process as unknown as { channel?: { ref(): void; unref(): void } }).channel;
    channel?.[method]();
    for (const stream of [this.#process.stdout, this.#process.stderr]) {
      (stream as unknown as { ref?(): void; unref?(): void } | null)?.[method]?.();
    }
  }
}
