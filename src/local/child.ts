/**
 * One child process and the chunks on it, in the order sent.
 *
 *   starting ──ready──► ready ──stop()──► draining ──line empty──► stopping ──► exited
 *       └──────────── stop() with an empty line ─────────────────────┘    (or any state ──death──► exited)
 *
 * A chunk is charged for a death only if the child announced its start;
 * every other chunk on a child that goes away ends as never started, and is
 * run elsewhere. The exit is handled only after every message the child
 * sent has been read, so a chunk that finished just before a kill counts as
 * finished. Why the pool killed the child is an explicit value.
 */
import type { AttemptEnd, ChunkJob } from '../engine/backend.js';
import { deserializeThrown } from '../error-codec.js';
import type { ResolvedPoolOptions } from '../options.js';
import { isChildMessage, type ChildMessage, type RunMessage } from '../protocol.js';
import { Grace } from './grace.js';
import { checkSendable } from '../sendable.js';
import { endAtExit, exitReason, type ChannelState, type ChildExit, type ChildState, type KillReason } from './exit.js';
import { Entry, type EntryOwner } from './ledger.js';
import type { ChildPort } from './spawn.js';

export type { ChildExit, ChildState, KillReason };

/** What the owner of a child hears from it. */
export interface ChildEvents {
  ready(child: Child, tasks: string[]): void;
  /** The child's state changed (it may take work, or no longer). */
  changed(child: Child): void;
  /** A chunk left the child's line (`ran`: it ran and reported its task, run time and resident memory). */
  settled(child: Child, ran: { task: string; ms: number; rss: number } | undefined): void;
  exited(child: Child, exit: ChildExit): void;
}

/** How long a leaving child may take to flush its output (after its finalizer) before SIGTERM. */
const leaveGraceMs = 10_000;
/** How long a child that lost its channel has to exit by itself. */
const channelGraceMs = 1000;

/** One child process and its line of chunks. */
export class Child implements EntryOwner {
  readonly slot: number;
  /** procpool/task's workerId: from 1, unique among live children. */
  readonly workerId: number;
  readonly #port: ChildPort;
  readonly #grace: Grace;
  readonly #finalTimeout: number;
  readonly #events: ChildEvents;
  readonly #line: Entry[] = [];
  #outbox: RunMessage[] = [];
  #state: ChildState = 'starting';
  #kill: KillReason = { kind: 'none' };
  #channel: ChannelState = 'open';
  #requested = false;
  #startFailed = false;
  #fatal: unknown = undefined;
  #demand = false;
  #refed: boolean | undefined;
  /** terminate() waits for the running item to end on its aborted signal (within killGrace), then kills. */
  #killWhenItemEnds = false;
  /** The finalizer said it failed. */
  finalFailed = false;
  /** The pool is being terminated: a call that fails now fails for that (its items' signals say so). */
  poolTerminating = false;
  /** Items handed to this child so far (maxTasksPerChild). */
  assigned = 0;
  /** Items this child has finished. */
  finished = 0;
  /** Resident memory after its last chunk, in bytes. */
  rss = 0;

  constructor(port: ChildPort, events: ChildEvents, slot: number, init: ChildInit) {
    this.#port = port;
    this.#events = events;
    this.slot = slot;
    this.workerId = init.workerId;
    this.#grace = new Grace(init.killGrace, {
      send: (message) => void this.#port.send(message),
      kill: (reason) => this.#killFor(reason),
      holds: (entry) => this.#line.includes(entry),
    });
    this.#finalTimeout = init.finalizer === undefined ? 0 : init.finalTimeout;
    port.onMessage((message) => {
      if (isChildMessage(message)) this.#receive(message);
    });
    port.onDisconnect(() => this.#onDisconnect());
    port.onExit((exitCode, signal) => this.#onExit(exitCode, signal));
    // initArgs were checked with the channel's serializer when the pool was made.
    if (port.spawnError === undefined && !port.send({
        type: 'procpool:init',
        module: init.moduleUrl,
        initializer: init.initializer,
        initArgs: [...init.initArgs],
        finalizer: init.finalizer,
        finalArgs: [...init.finalArgs],
        finalTimeout: init.finalTimeout,
        sources: { ...init.sources },
        memoryLimit: init.maxMemoryPerChild * 1024 * 1024,
      })) {
      this.#startFailed = true;
      this.#fatal = new TypeError('The initializer or finalizer arguments cannot be sent to a child');
      port.kill('SIGKILL');
    }
    this.#updateRef();
  }

  get state(): ChildState {
    return this.#state;
  }

  get pid(): number | undefined {
    return this.#port.pid;
  }

  /** Chunks sent (or about to be) and not yet ended. */
  get load(): number {
    return this.#line.length;
  }

  /** Those chunks, in the order sent (the first is running or about to). */
  get line(): readonly Entry[] {
    return this.#line;
  }

  /** Whether work waits on the pool: a starting child then keeps the parent alive. */
  set demand(on: boolean) {
    this.#demand = on;
    this.#updateRef();
  }

  /** Sends `job`; an idle child gets it at once, a busy one with the others of this turn. */
  run(job: ChunkJob): Entry {
    const entry = new Entry(this, job);
    if (this.#state === 'exited') {
      entry.finish({ kind: 'ran', report: { values: [], failures: [] }, ms: 0 });
      return entry;
    }
    this.assigned += job.args.length;
    this.#line.push(entry);
    const message: RunMessage = { type: 'procpool:run', id: entry.id, task: job.task, args: job.args, spread: job.spread, stopAtError: job.stopAtError, exact: job.exact, timed: job.timeout !== undefined, call: job.call, from: job.from };
    if (this.#line.length === 1) this.#send(entry, message);
    else {
      this.#outbox.push(message);
      if (this.#outbox.length === 1) setImmediate(() => this.#flush());
    }
    this.#updateRef();
    return entry;
  }

  /** Takes no more work; leaves once its line is empty (a starting child with nothing to do leaves now). */
  stop(skipQueued = false): void {
    if (this.#state === 'stopping' || this.#state === 'exited') return;
    this.#requested = true;
    if (skipQueued) for (const entry of [...this.#line]) if (entry.phase !== 'started') this.skipEntry(entry);
    if (this.#state === 'starting' && this.#line.length === 0) {
      this.#enter('stopping');
      return this.#port.kill('SIGTERM');
    }
    this.#enter('draining');
    this.#leaveIfIdle();
  }

  /**
   * Ends the child (terminate(), a broken pool): now when nothing runs on it;
   * else its running item's signal aborts and it is killed when that item
   * ends, or `killGrace` ms later.
   */
  terminate(): void {
    if (this.#state === 'exited') return;
    this.#requested = true;
    const running = this.#line.filter((entry) => entry.phase === 'started');
    if (!running.some((entry) => this.#grace.applies(entry)) || this.#killWhenItemEnds) return this.#killFor({ kind: 'terminate' });
    this.#killWhenItemEnds = true;
    this.#enter('stopping');
    for (const entry of running) this.#grace.signal(entry, 'terminate');
    setTimeout(() => this.#killFor({ kind: 'terminate' }), this.#grace.ms).unref();
  }

  /** Nothing of `entry` is wanted: a started chunk's running item is told, and no further item of it starts. */
  cancelEntry(entry: Entry): void {
    if (entry.phase === 'started') this.#grace.signal(entry, this.poolTerminating ? 'terminate' : 'failed');
    else this.skipEntry(entry);
  }

  skipEntry(entry: Entry): void {
    if (entry.phase === 'started') return;
    if (entry.phase === 'outbox') {
      // Never sent: never send it.
      this.#outbox = this.#outbox.filter((message) => message.id !== entry.id);
      return this.#finish(entry, { kind: 'ran', report: { values: [], failures: [] }, ms: 0 }, undefined);
    }
    if (entry.skipAsked) return;
    entry.skipAsked = true;
    // Only numbers: it cannot fail to clone (a closed channel is the exit's to handle).
    this.#port.send({ type: 'procpool:skip', id: entry.id });
  }

  abortEntry(entry: Entry, reason: unknown): void {
    entry.abortAsked ??= { reason };
    if (entry.phase === 'started') this.#grace.stop({ kind: 'abort', entry });
    else this.skipEntry(entry);
  }

  #killFor(reason: KillReason): void {
    if (this.#state === 'exited') return;
    if (this.#kill.kind === 'none') this.#kill = reason;
    // Leaving: no new work, and kept referenced until its exit is seen.
    this.#enter('stopping');
    this.#port.kill('SIGKILL');
  }

  #enter(state: ChildState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.#updateRef();
    this.#events.changed(this);
  }

  #flush(): void {
    const messages = this.#outbox;
    this.#outbox = [];
    if (messages.length === 0 || this.#state === 'exited') return;
    for (const message of messages) this.#line.find((entry) => entry.id === message.id)!.phase = 'sent';
    if (messages.length > 1 && this.#port.send({ type: 'procpool:batch', messages })) return;
    for (const message of messages) this.#send(this.#line.find((entry) => entry.id === message.id)!, message);
  }

  /**
   * Sends one chunk. One that cannot be cloned is cut before its first
   * unsendable item (the rest runs again later, from there); that item alone
   * ends as a SerializationError found with the channel's own serializer.
   */
  #send(entry: Entry, message: RunMessage): void {
    entry.phase = 'sent';
    if (this.#port.send(message)) return;
    const bad = message.args.findIndex((args) => checkSendable(args, message.spread ? 'args' : 'args[0]') !== undefined);
    if (bad > 0 && this.#port.send({ ...message, args: message.args.slice(0, bad) })) return;
    const found = checkSendable(message.args[Math.max(bad, 0)], message.spread ? 'args' : 'args[0]') ?? { path: 'args', detail: 'not cloneable' };
    this.#finish(entry, { kind: 'ran', report: { values: [undefined], failures: [[0, { unsendable: found }]] }, ms: 0 }, undefined);
  }

  #entry(id: number): Entry | undefined {
    for (const entry of this.#line) if (entry.id === id) return entry;
    return undefined;
  }

  #receive(message: ChildMessage): void {
    switch (message.type) {
      case 'procpool:message': {
        // Dropped once the chunk's attempt ended: its caller no longer listens.
        const entry = this.#entry(message.id);
        if (entry !== undefined && !entry.ended) entry.job.onMessage?.(message.index, message.value, this.workerId);
        return;
      }
      case 'procpool:listening': {
        const entry = this.#entry(message.id);
        if (entry !== undefined) entry.listening = message.index;
        return;
      }
      case 'procpool:final-error':
        this.finalFailed = true;
        return;
      case 'procpool:start':
        return this.#started(this.#entry(message.id));
      case 'procpool:ended': {
        // The items ended in the child; their outcomes are on their way: no item runs until they are read.
        const entry = this.#entry(message.id);
        if (entry !== undefined) this.#pauseTimer(entry);
        return;
      }
      case 'procpool:items': {
        const entry = this.#entry(message.id);
        if (entry === undefined) return;
        entry.append(message.from, message.values, message.failures);
        return this.#arm(entry);
      }
      case 'procpool:done': {
        const entry = this.#entry(message.id);
        if (entry !== undefined) {
          if (message.skipped) this.#finish(entry, { kind: 'ran', report: { values: [], failures: [] }, ms: 0 }, undefined);
          else {
            entry.append(message.from, message.values, message.failures);
            this.finished += entry.values.length;
            this.rss = message.rss;
            // A chunk aborted while it ran, that finished before the kill landed: its caller has gone.
            this.#finish(entry, { kind: 'ran', report: entry.report, ms: message.ms }, { task: entry.job.task, ms: message.ms, rss: message.rss });
          }
        }
        if (message.next !== undefined) this.#started(this.#entry(message.next));
        return;
      }
      case 'procpool:ready':
        // A child retired while it started (it was handed its last items) still reports its start.
        if (this.#state === 'starting') this.#enter('ready');
        else if (this.#state !== 'draining') return;
        return this.#events.ready(this, message.tasks);
      case 'procpool:init-error':
        this.#startFailed = true;
        this.#fatal = deserializeThrown(message.error);
        return;
      case 'procpool:fatal':
        this.#fatal = deserializeThrown(message.error);
        return;
      case 'procpool:disconnecting':
        this.#channel = 'let go';
        return;
    }
  }

  #started(entry: Entry | undefined): void {
    if (entry === undefined || entry.phase === 'started') return;
    entry.phase = 'started';
    entry.startedAt = performance.now();
    if (entry.abortAsked !== undefined) return this.#grace.stop({ kind: 'abort', entry });
    this.#arm(entry);
  }

  /** Arms the per-item timer from the latest report: the item after it runs from now. */
  #arm(entry: Entry): void {
    const timeout = entry.job.timeout;
    if (timeout === undefined || entry.ended) return;
    clearTimeout(entry.timer);
    const armed = ++entry.armed;
    entry.timer = setTimeout(() => {
      // Timers run before pending IPC is read: a report may be waiting in the
      // pipe. Read it first (poll phase), then judge.
      setImmediate(() => {
        if (entry.armed === armed && !entry.ended) this.#grace.stop({ kind: 'timeout', entry, timeout });
      });
    }, timeout);
  }

  /** Stops the per-item timer until the next report re-arms it. */
  #pauseTimer(entry: Entry): void {
    clearTimeout(entry.timer);
    entry.armed++;
  }

  #finish(entry: Entry, end: AttemptEnd, ran: { task: string; ms: number; rss: number } | undefined): void {
    const at = this.#line.indexOf(entry);
    if (at >= 0) this.#line.splice(at, 1);
    if (end.kind === 'ran') this.assigned -= entry.job.args.length - end.report.values.length;
    entry.finish(end);
    if (this.#state === 'exited') return;
    if (this.#killWhenItemEnds && !this.#line.some((other) => other.phase === 'started')) return this.#killFor({ kind: 'terminate' });
    this.#updateRef();
    this.#leaveIfIdle();
    this.#events.settled(this, ran);
  }

  #leaveIfIdle(): void {
    if (this.#state !== 'draining' || this.#line.length > 0) return;
    this.#enter('stopping');
    // Cannot fail to clone; a closed channel means the child is leaving anyway.
    this.#port.send({ type: 'procpool:stop' });
    setTimeout(() => this.#state === 'exited' || this.#port.kill('SIGTERM'), leaveGraceMs + this.#finalTimeout).unref();
  }

  #onDisconnect(): void {
    // A child that let go of its channel exits by itself (worker/entry); one
    // stuck in a synchronous loop is ended here.
    if (this.#state === 'stopping' || this.#state === 'exited') return;
    setTimeout(() => {
      if (this.#state !== 'exited') this.#killFor({ kind: 'channel-lost' });
    }, channelGraceMs).unref();
  }

  #updateRef(): void {
    // Idle children must not keep the parent alive; busy ones, leaving ones,
    // and starting ones that work waits for must.
    const state = this.#state;
    const on = state !== 'exited' && (this.#line.length > 0 || state === 'stopping' || state === 'draining' || (state === 'starting' && this.#demand));
    if (on === this.#refed) return;
    this.#refed = on;
    this.#port.setRef(on);
  }

  #onExit(exitCode: number | null, signal: NodeJS.Signals | null): void {
    const from = this.#state;
    this.#state = 'exited';
    const stderr = this.#port.stderrTail;
    const cause = this.#fatal ?? this.#port.spawnError;
    const exit: ChildExit = {
      pid: this.pid,
      exitCode,
      signal,
      reason: exitReason(signal, stderr, this.#kill, this.#channel),
      cause,
      startFailed: this.#startFailed || this.#port.spawnError !== undefined,
      requested: this.#requested,
      from,
      stderr,
    };
    for (const entry of this.#line.splice(0)) entry.finish(endAtExit(entry, exit, this.#kill));
    this.#outbox = [];
    this.#updateRef();
    this.#events.exited(this, exit);
  }

}

/** The options a child is started with. */
export type ChildInit = ResolvedPoolOptions & { moduleUrl: string; workerId: number };
