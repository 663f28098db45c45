/**
 * One child: the chunks sent to it, in order (the first is the one running),
 * and how each ends — done, timed out, stopped, or lost with the child.
 * A streamed chunk reports each item as it finishes, so a death costs only
 * the item that was running; the items after it are sent elsewhere.
 */
import { DISCONNECTED_EXIT_CODE, isChildMessage, type ChildMessage, type Outcome, type RunMessage } from './protocol.js';
import { NotStartedError, expand, type Chunk, type ChildExit, type InFlight, type RunResult } from './chunk.js';
import { deserializeThrown } from './error-codec.js';
import { findUnsendable } from './transfer.js';
import { TaskTimeoutError, WorkerExitError, type WorkerExitReason } from './errors.js';
import type { ResolvedPoolOptions } from './options.js';
import { SpawnedChild, type ChildOutput } from './spawn.js';

/** What the owner of a child hears from it. */
export interface ChildHooks extends ChildOutput {
  ready(child: Child, tasks: string[]): void;
  /** A chunk left the child's line; `child.rss` is its resident memory after its last chunk. */
  settled(child: Child): void;
  /** A chunk of `task` ran for `ms` in the child. */
  timed(task: string, ms: number): void;
  exited(child: Child, exit: ChildExit): void;
}

let nextId = 1;

/** One spawned child and the chunks in flight on it. */
export class Child {
  readonly #process: SpawnedChild;
  readonly #hooks: ChildHooks;
  readonly #inFlight = new Map<number, InFlight>();
  #ready = false;
  #gone = false;
  #requested = false;
  #awaited = false;
  #fatal: unknown = undefined;
  #killedFor: unknown = undefined;
  #channelLost = false;
  #leaveWhenIdle: (() => void) | undefined;
  /** Slots promised to chunks about to be sent. */
  reserved = 0;
  /** Items handed to this child so far (for maxTasksPerChild). */
  assigned = 0;
  /** Items this child has finished. */
  finished = 0;
  /** Resident memory after its last chunk, in bytes. */
  rss = 0;
  /** Set when the child takes no more work and leaves once idle. */
  retiring = false;

  constructor(options: ResolvedPoolOptions, moduleUrl: string, hooks: ChildHooks, readonly slot: number) {
    this.#hooks = hooks;
    this.#process = new SpawnedChild(options, hooks);
    this.#process.onMessage((message) => {
      if (isChildMessage(message)) this.#receive(message);
    });
    this.#process.onDisconnect(() => {
      // A child that let go of its channel exits by itself (worker/entry);
      // one stuck in a synchronous loop is ended here.
      if (this.#requested) return;
      setTimeout(() => {
        if (this.#gone) return;
        this.#channelLost = true;
        this.kill();
      }, 1000).unref();
    });
    this.#process.onExit((exitCode, signal) => this.#onExit(exitCode, signal));
    this.#process.send({
      type: 'procpool:init',
      module: moduleUrl,
      initializer: options.initializer,
      initArgs: [...options.initArgs],
      memoryLimit: options.maxMemoryPerChild * 1024 * 1024,
    });
    this.#updateRef();
  }

  get pid(): number | undefined {
    return this.#process.pid;
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

  /** Chunks sent or about to be. */
  get load(): number {
    return this.#inFlight.size + this.reserved;
  }

  /** Keeps the parent alive while this child starts, because work or `ready()` waits for it. */
  set awaited(value: boolean) {
    this.#awaited = value;
    this.#updateRef();
  }

  /** Sends a chunk; `result` resolves with its outcomes, rejects if the child goes away first. */
  run(chunk: Chunk): { id: number; result: Promise<RunResult> } {
    const id = nextId++;
    if (this.#gone) return { id, result: Promise.reject(new NotStartedError()) };
    const message: RunMessage = {
      type: 'procpool:run',
      id,
      task: chunk.task,
      args: chunk.args,
      spread: chunk.spread,
      timed: chunk.timeout !== undefined,
      stream: chunk.stream,
    };
    const result = new Promise<RunResult>((resolve, reject) => {
      this.#inFlight.set(id, { id, chunk, streamed: chunk.stream ? [] : undefined, detached: false, resolve, reject });
    });
    // An idle child gets the chunk now (latency); a busy one gets it with
    // the others sent this turn, in one message (throughput).
    if (this.#inFlight.size === 1) this.#sendRun(message);
    else {
      this.#outbox.push(message);
      if (this.#outbox.length === 1) setImmediate(() => this.#flush());
    }
    this.#updateRef();
    return { id, result };
  }

  #outbox: RunMessage[] = [];

  #flush(): void {
    const messages = this.#outbox.splice(0).filter((message) => this.#inFlight.get(message.id)?.detached === false);
    if (messages.length === 0 || this.#gone) return;
    if (messages.length === 1 || !this.#process.send({ type: 'procpool:batch', messages })) for (const message of messages) this.#sendRun(message);
  }

  /** Sends one chunk; items whose arguments cannot be cloned are refused, the rest sent. */
  #sendRun(message: RunMessage): void {
    if (this.#process.send(message)) return;
    const entry = this.#inFlight.get(message.id)!;
    const outcomes: Outcome[] = new Array<Outcome>(message.args.length);
    const sendable: number[] = [];
    message.args.forEach((args, i) => {
      const unsendable = message.spread ? findUnsendable(args, 'args') : findUnsendable(args, 'args[0]');
      if (unsendable === undefined) sendable.push(i);
      else outcomes[i] = { ok: false, unsendable };
    });
    if (sendable.length === 0 || !this.#process.send({ ...message, args: sendable.map((i) => message.args[i]!), stream: false })) {
      for (const i of sendable) outcomes[i] ??= { ok: false, local: new Error('The chunk could not be sent to its child') };
      return this.#settle(entry, () => entry.resolve({ outcomes, ms: 0 }));
    }
    const resolve = entry.resolve;
    entry.chunk = { ...entry.chunk, stream: false };
    entry.resolve = (sent) => {
      sendable.forEach((original, i) => (outcomes[original] = sent.outcomes[i]!));
      resolve({ outcomes, ms: sent.ms });
    };
  }

  /**
   * Stops chunk `id` with `reason`: a chunk that has not started is skipped;
   * the running one is stopped by killing the child (the others on it are
   * then sent elsewhere).
   */
  abort(id: number, reason: unknown): void {
    const entry = this.#inFlight.get(id);
    if (entry === undefined) return;
    if (this.#inFlight.keys().next().value === id && !this.#unsent(id)) {
      this.#settle(entry, () => entry.reject(reason));
      this.kill(reason);
    } else this.#detach(entry, reason);
  }

  /** Skips chunk `id` if it has not started (it rejects with NotStartedError); a running chunk goes on. */
  cancel(id: number): void {
    const entry = this.#inFlight.get(id);
    if (entry === undefined || (this.#inFlight.keys().next().value === id && !this.#unsent(id))) return;
    this.#detach(entry, new NotStartedError());
  }

  /** Whether chunk `id` still waits in the outbox (never sent, so never started). */
  #unsent(id: number): boolean {
    return this.#outbox.some((message) => message.id === id);
  }

  #detach(entry: InFlight, reason: unknown): void {
    if (entry.detached) return;
    const unsent = this.#outbox.findIndex((message) => message.id === entry.id);
    if (unsent >= 0) {
      // Never sent: simply never send it.
      this.#outbox.splice(unsent, 1);
      this.assigned -= entry.chunk.args.length;
      return this.#settle(entry, () => entry.reject(reason));
    }
    entry.detached = true;
    entry.reject(reason);
    this.#process.send({ type: 'procpool:cancel', id: entry.id });
  }

  /** Kills the child at once; its running chunk fails with `reason` (or WorkerExitError). */
  kill(reason?: unknown): void {
    if (this.#gone) return;
    this.#killedFor ??= reason ?? null;
    this.#process.kill('SIGKILL');
  }

  /** Asks the child to leave once its work is done: a stop message, then SIGTERM, then SIGKILL. */
  stop(graceMs = 2000): void {
    if (this.#requested || this.#gone) return;
    this.#requested = true;
    this.retiring = true;
    this.#updateRef();
    // One still starting has done nothing yet: no need to wait for its start.
    if (!this.#ready && this.#inFlight.size === 0) return this.#process.kill('SIGTERM');
    this.#leaveWhenIdle = () => {
      if (this.#gone) return;
      this.#process.send({ type: 'procpool:stop' });
      setTimeout(() => this.#gone || this.#process.kill('SIGTERM'), graceMs).unref();
    };
    if (this.#inFlight.size === 0) this.#afterSettle();
  }

  /** Ends the child now (terminate()). */
  terminate(): void {
    this.#requested = true;
    this.#updateRef();
    this.kill();
  }

  #refed: boolean | undefined;

  #updateRef(): void {
    // Idle children must not keep the parent alive; busy ones, leaving ones
    // and starting ones that work waits for must.
    const on = !this.#gone && (this.#inFlight.size > 0 || this.#requested || (this.#awaited && !this.#ready));
    if (on === this.#refed) return;
    this.#refed = on;
    this.#process.setRef(on);
  }

  /** Takes `entry` out of line and settles it; the freed slot may serve a waiting chunk. */
  #settle(entry: InFlight, how: () => void): void {
    this.#inFlight.delete(entry.id);
    clearTimeout(entry.timer);
    entry.armed = -1;
    how();
    this.#afterSettle();
    if (!this.#gone) this.#hooks.settled(this);
  }

  #armTimer(entry: InFlight): void {
    const timeout = entry.chunk.timeout;
    if (timeout === undefined) return;
    clearTimeout(entry.timer);
    const armed = (entry.armed = (entry.armed ?? 0) + 1);
    entry.timer = setTimeout(() => {
      // Timers run before pending IPC is read: an item that just finished may
      // be waiting in the pipe. Read it first (poll phase), then judge.
      setImmediate(() => {
        if (entry.armed !== armed || !this.#inFlight.has(entry.id)) return;
        const error = new TaskTimeoutError(timeout);
        // A detached chunk's caller has gone: only the child is to be stopped.
        if (entry.detached) this.#settle(entry, () => undefined);
        else if (entry.chunk.stream) this.#settle(entry, () => entry.resolve({ outcomes: [...(entry.streamed ?? []), { ok: false, local: error }], ms: 0 }));
        else this.#settle(entry, () => entry.reject(error));
        this.kill(error);
      });
    }, timeout);
  }

  #receive(message: ChildMessage): void {
    switch (message.type) {
      case 'procpool:item': {
        const entry = this.#inFlight.get(message.id);
        if (entry === undefined) return;
        if (!entry.detached) (entry.streamed ??= []).push(message.outcome);
        if (message.index + 1 < entry.chunk.args.length) this.#armTimer(entry);
        else {
          clearTimeout(entry.timer);
          entry.armed = -1;
        }
        return;
      }
      case 'procpool:done': {
        const entry = this.#inFlight.get(message.id);
        if (entry === undefined) return;
        if (!message.cancelled) this.rss = message.rss;
        if (entry.detached) return this.#settle(entry, () => undefined);
        if (message.cancelled) return this.#settle(entry, () => entry.reject(new NotStartedError()));
        this.#hooks.timed(entry.chunk.task, message.ms);
        const outcomes = entry.chunk.stream ? (entry.streamed ?? []) : expand(message);
        this.finished += outcomes.length;
        this.#settle(entry, () => entry.resolve({ outcomes, ms: message.ms }));
        return;
      }
      case 'procpool:start': {
        const entry = this.#inFlight.get(message.id);
        if (entry !== undefined) this.#armTimer(entry);
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

  #onExit(exitCode: number | null, signal: NodeJS.Signals | null): void {
    this.#gone = true;
    const stderr = this.#process.stderrTail;
    const reason: WorkerExitReason = /heap out of memory|Reached heap limit/i.test(stderr)
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
      cause: this.#fatal ?? this.#process.spawnError,
      requested: this.#requested,
      killed: this.#killedFor !== undefined && this.#killedFor !== null,
      wasReady: this.#ready,
      stderr,
    };
    // The chunk that was running dies with the child (unless it was the one
    // stopped on purpose, already settled); the others never started.
    let running = this.#killedFor === undefined || this.#killedFor === null;
    for (const entry of [...this.#inFlight.values()]) {
      if (this.#unsent(entry.id)) {
        this.#settle(entry, () => entry.reject(new NotStartedError()));
        continue;
      }
      if (entry.detached) {
        // Its caller has settled; if it was running, nothing after it had started.
        this.#settle(entry, () => undefined);
        running = false;
        continue;
      }
      const streamed = entry.streamed?.length ?? 0;
      // Every item of a streamed chunk came back: it finished, only its done message was lost.
      if (entry.chunk.stream && streamed === entry.chunk.args.length) {
        this.#settle(entry, () => entry.resolve({ outcomes: entry.streamed!, ms: 0 }));
        continue;
      }
      if (!running) this.#settle(entry, () => entry.reject(new NotStartedError()));
      else {
        const error = new WorkerExitError(exit, exit.cause === undefined ? undefined : { cause: exit.cause });
        if (entry.chunk.stream) this.#settle(entry, () => entry.resolve({ outcomes: [...(entry.streamed ?? []), { ok: false, local: error }], ms: 0 }));
        else this.#settle(entry, () => entry.reject(error));
      }
      running = false;
    }
    this.#updateRef();
    this.#hooks.exited(this, exit);
  }
}
