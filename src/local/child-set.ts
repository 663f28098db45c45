/**
 * The local backend: the pool's children. Starts them, hands each chunk to
 * the least loaded child with room, recycles children past their item or
 * memory limit, replaces the ones that die,
 * and breaks the pool — once, never in a respawn loop — when children
 * cannot start: the module does not load, the initializer is missing or
 * throws, or several starts in a row fail.
 */
import { PassThrough, type Readable } from 'node:stream';
import type { Attempt, Backend, ChunkJob } from '../engine/backend.js';
import { PoolBrokenError, PoolClosedError } from '../errors.js';
import type { ResolvedPoolOptions } from '../options.js';
import type { ChildStats } from '../stats.js';
import { Child, type ChildEvents, type ChildExit, type ChildInit } from './child.js';
import { Entry } from './ledger.js';
import { startingEmpty } from './placement.js';
import { Sizing } from './sizing.js';
import { Feeding } from './feeding.js';
import { Starts } from './starts.js';
import { spawnLazily } from './deferred-port.js';
import type { ChildPort, SpawnPort } from './spawn.js';
import { typeScriptHint } from '../node-flags.js';

/** Whether anyone reads `stream` (a pipe, a 'data' or 'readable' listener, an async iterator). */
function hasConsumer(stream: Readable): boolean {
  return stream.readableFlowing !== null || stream.listenerCount('readable') > 0;
}

/** Start failures in a row that break a pool which has had ready children (see #startFailed). */
const maxStartFailures = 5;

type State = 'running' | 'stopping' | 'broken' | 'terminated';

/** Children, as a backend. */
export class ChildSet implements Backend {
  readonly #options: ResolvedPoolOptions;
  readonly #init: Omit<ChildInit, 'workerId'>;
  readonly #spawn: SpawnPort;
  readonly #events: ChildEvents;
  readonly #live = new Set<Child>();
  readonly #ports = new Map<Child, ChildPort>();
  readonly #listeners: Array<() => void> = [];
  #state: State = 'running';
  /** Items' emit() reaches the call's onMessage. */
  readonly messages = true;
  #failure: PoolBrokenError | undefined;
  #restarts = 0;
  /** Finalizers that failed (threw, or passed finalTimeout). */
  #finalFailures = 0;
  readonly #slotRestarts: number[] = [];
  readonly #sizing: Sizing;
  /** Chunks waiting in the scheduler for room. */
  #waiting = 0;
  /** Children to be started again after a start failure's backoff. */
  #respawning = 0;
  #fitLater = false;
  #fitting = false;
  #startFailures = 0;
  /** How deep each child is kept fed, and recalls from pipes. */
  readonly #feeding: Feeding<Child>;
  #demand = false;
  readonly #starts: Starts;
  #whenGone: Array<() => void> = [];
  /** Piped output: kept for its reader, or dropped (the pool stopped with nobody reading it). */
  #output: 'kept' | 'dropped' = 'kept';
  /** Children's output, merged, when stdio is 'pipe'. */
  readonly stdout: PassThrough | undefined;
  readonly stderr: PassThrough | undefined;
  readonly #consumed = (): boolean => this.#output === 'kept' && this.stdout !== undefined && hasConsumer(this.stdout);
  /** `#usable` as a value, for placement.ts. */
  readonly #usableNow = (child: Child): boolean => this.#usable(child);

  constructor(options: ResolvedPoolOptions, moduleUrl: string, spawn: SpawnPort = spawnLazily) {
    this.#options = options;
    this.#init = { ...options, moduleUrl };
    this.#spawn = spawn;
    const piped = options.stdio === 'pipe';
    this.stdout = piped ? new PassThrough() : undefined;
    this.stderr = piped ? new PassThrough() : undefined;
    this.#events = {
      ready: (child, tasks) => this.#onReady(child, tasks),
      changed: () => this.#changed(),
      settled: (child, ran) => this.#onSettled(child, ran),
      exited: (child, exit) => this.#onExited(child, exit),
    };
    this.#feeding = new Feeding(this.#live, this.#usableNow, () => this.#waiting, () => this.#changed());
    this.#sizing = new Sizing(options.minProcesses, options.processes, options.idleTimeout);
    this.#starts = new Starts(options.minProcesses);
    this.#fit();
  }

  get failure(): PoolBrokenError | undefined {
    return this.#failure;
  }

  get capacity(): number {
    return this.#feeding.capacity;
  }

  get restarts(): number {
    return this.#restarts;
  }

  get finalizerFailures(): number {
    return this.#finalFailures;
  }

  onChange(listener: () => void): void {
    this.#listeners.push(listener);
  }

  setDemand(on: boolean): void {
    this.#demand = on;
    for (const child of this.#live) child.demand = on;
  }

  ready(): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#state !== 'running') return Promise.resolve();
    return this.#starts.ready();
  }

  tasks(start = true): Promise<string[]> {
    if (this.#failure) return Promise.reject(this.#failure);
    // An elastic pool with no child yet starts one to learn its exports, when asked.
    if (start && this.#starts.tasks === undefined && this.size === 0 && this.#state === 'running') this.#start(this.#freeSlot());
    return this.#starts.names();
  }

  /**
   * Chunks waiting for room: an elastic pool grows for them — judged a turn
   * later, so that a chunk that waits only until a finishing job lets go of
   * its lease (a call made in a result's callback) starts no child.
   */
  setWaiting(chunks: number): void {
    this.#waiting = chunks;
    if (!this.#sizing.elastic || this.#fitLater) return;
    this.#fitLater = true;
    setImmediate(() => {
      this.#fitLater = false;
      this.#fit();
    });
  }

  /**
   * Children that could still take a chunk of their own beyond `capacity`:
   * those the pool could add, and those starting with nothing yet while
   * another is ready (capacity leaves them out until they are ready).
   */
  get spare(): number {
    if (this.#state !== 'running') return 0;
    let ready = false;
    for (const child of this.#live) if (child.state === 'ready' && this.#usable(child)) ready = true;
    return Math.max(0, this.#sizing.max - this.size - this.#respawning) + (ready ? startingEmpty(this.#live, this.#usableNow) : 0);
  }

  /** Children now: starting or ready (not those leaving). */
  get size(): number {
    let size = 0;
    for (const child of this.#live) if (this.#usable(child)) size++;
    return size;
  }

  /** The most children. */
  get max(): number {
    return this.#sizing.max;
  }

  /** Raises `maxProcesses` (never lowers it). */
  growTo(max: number): void {
    this.#sizing.grow(max);
    this.#fit();
  }

  run(job: ChunkJob): Attempt {
    const child = this.#feeding.pick(job.task);
    if (child === undefined) {
      // No child can take it (capacity is kept exact, so this is a safety
      // net): it never started; ended after a turn, so it cannot spin.
      const entry = new Entry({ skipEntry: () => undefined, abortEntry: () => undefined, cancelEntry: () => undefined }, job);
      setImmediate(() => entry.finish({ kind: 'ran', report: { values: [], failures: [] }, ms: 0 }));
      return entry;
    }
    // Cut where the child reaches maxTasksPerChild: items are counted exactly.
    this.#sizing.busy(child);
    const room = this.#options.maxTasksPerChild - child.assigned;
    const entry = child.run(room < job.args.length ? { ...job, args: job.args.slice(0, room) } : job);
    this.#feeding.sent(child, job);
    if (child.assigned >= this.#options.maxTasksPerChild) this.#retire(child, false);
    return entry;
  }

  stop(): Promise<void> {
    if (this.#state === 'running') this.#state = 'stopping';
    this.#dropUnread();
    this.#starts.reject(new PoolClosedError('The pool was closed before its children were ready'));
    for (const child of this.#live) child.stop();
    return this.#gone();
  }

  terminating(): void {
    for (const child of this.#live) child.poolTerminating = true;
  }

  kill(): Promise<void> {
    if (this.#state !== 'broken') this.#state = 'terminated';
    this.#dropUnread();
    this.#starts.reject(new PoolClosedError('The pool was terminated before its children were ready'));
    for (const child of this.#live) child.terminate();
    this.#changed();
    return this.#gone();
  }

  /** Live children by slot, for `stats` (not those leaving: a replacement may share its predecessor's slot). */
  children(): Array<ChildStats & { slot: number; idle: boolean }> {
    const list = [...this.#live]
      .filter((child) => child.state !== 'draining' && child.state !== 'stopping')
      .map((child) => ({
        slot: child.slot,
        workerId: child.workerId,
        pid: child.pid,
        items: child.finished,
        restarts: this.#slotRestarts[child.slot] ?? 0,
        rss: child.rss,
        idle: child.load === 0 && child.state === 'ready',
      }));
    return list.sort((a, b) => a.slot - b.slot);
  }

  /** Busy children, counting those that finish their line before leaving. */
  get busy(): number {
    let busy = 0;
    for (const child of this.#live) if (child.load > 0) busy++;
    return busy;
  }

  /**
   * The pool stops and nobody reads its piped output: it is dropped from
   * now on, so that no child waits to flush output nobody will read.
   */
  #dropUnread(): void {
    if (this.#output === 'dropped' || this.stdout === undefined || hasConsumer(this.stdout)) return;
    this.#output = 'dropped';
    this.stdout.resume();
    if (this.stderr !== undefined && !hasConsumer(this.stderr)) this.stderr.resume();
  }

  async #gone(): Promise<void> {
    if (this.#live.size > 0) await new Promise<void>((resolve) => this.#whenGone.push(resolve));
    // Each child's piped output read to its end, however slow the reader; then the merged streams end.
    await Promise.all([...this.#ports.values()].map((port) => port.outputDone));
    this.#ports.clear();
    this.stdout?.end();
    this.stderr?.end();
  }

  #usable(child: Child): boolean {
    return (child.state === 'starting' || child.state === 'ready') && child.assigned < this.#options.maxTasksPerChild && this.#state === 'running';
  }

  #start(slot: number): Child {
    const init = { ...this.#init, workerId: this.#freeWorkerId() };
    const port = this.#spawn(init, { stdout: this.stdout, stderr: this.stderr ?? process.stderr, consumed: this.#consumed });
    const child = new Child(port, this.#events, slot, init);
    child.demand = this.#demand;
    this.#live.add(child);
    this.#ports.set(child, port);
    this.#changed();
    return child;
  }

  #replace(child: Child): Child {
    this.#restarts++;
    this.#slotRestarts[child.slot] = (this.#slotRestarts[child.slot] ?? 0) + 1;
    return this.#start(child.slot);
  }

  /** The lowest worker id from 1 that no live child holds (one that leaves holds it until it exits). */
  #freeWorkerId(): number {
    const taken = new Set<number>();
    for (const child of this.#live) taken.add(child.workerId);
    let id = 1;
    while (taken.has(id)) id++;
    return id;
  }

  /** The lowest slot no starting or ready child holds. */
  #freeSlot(): number {
    const taken = new Set<number>();
    for (const child of this.#live) if (this.#usable(child)) taken.add(child.slot);
    let slot = 0;
    while (taken.has(slot)) slot++;
    return slot;
  }

  /** Starts the children the size policy asks for: up to the minimum, and for waiting work. */
  #fit(): void {
    // Starting a child lets the scheduler start jobs at once, which may call
    // back here: one loop, each child judged on the counts as they are then.
    if (this.#state !== 'running' || this.#fitting) return;
    this.#fitting = true;
    try {
      while (this.#state === 'running' && this.#sizing.toStart(this.size + this.#respawning, this.#waiting - startingEmpty(this.#live, this.#usableNow)) > 0) this.#start(this.#freeSlot());
    } finally {
      this.#fitting = false;
    }
  }

  /** An idle child of an elastic pool leaves after `idleTimeout`, down to the minimum. */
  #idle(child: Child): void {
    if (child.state !== 'ready' || child.load > 0) return;
    this.#sizing.idle(child, () => {
      if (child.state === 'ready' && child.load === 0 && this.size > this.#sizing.min) child.stop();
    });
  }

  /** Takes `child` out of rotation; its replacement starts now. */
  #retire(child: Child, skipQueued: boolean): void {
    // Out of rotation first: starting the replacement lets the scheduler start
    // jobs at once, and none may pick this child.
    child.stop(skipQueued);
    if (this.#state === 'running') this.#replace(child);
    this.#changed();
  }

  #changed(): void {
    for (const listener of this.#listeners) listener();
  }

  #onReady(child: Child, tasks: string[]): void {
    this.#startFailures = 0;
    this.#starts.readied(child.slot, tasks);
    this.#idle(child);
    this.#changed();
    this.#feeding.readied(child);
  }

  #onSettled(child: Child, ran: { task: string; ms: number; rss: number } | undefined): void {
    this.#idle(child);
    this.#feeding.settled(child, ran);
    if (ran !== undefined) {
      // Past maxMemoryPerChild: no more work for it (its queued chunks go
      // elsewhere), it leaves, a replacement starts. The limit holds within
      // the item that crossed it; the slot waits for the replacement's start.
      if (ran.rss > this.#options.maxMemoryPerChild * 1024 * 1024 && child.state === 'ready') this.#retire(child, true);
    }
  }

  #onExited(child: Child, exit: ChildExit): void {
    this.#live.delete(child);
    this.#feeding.exited(child);
    if (child.finalFailed) this.#finalFailures++;
    // Forgotten once its output is read: a long life of recycled children keeps none of them.
    const port = this.#ports.get(child);
    void port?.outputDone.then(() => this.#ports.delete(child));
    this.#sizing.busy(child);
    if (this.#state === 'running' && (exit.startFailed || (exit.from === 'starting' && !exit.requested))) this.#startFailed(child, exit);
    else if (this.#state === 'running' && !exit.requested) {
      // Below the minimum, or work waits: a replacement in its slot; else the pool just shrank.
      if (this.size + this.#respawning < this.#sizing.min || this.#waiting > 0) this.#replace(child);
    }
    this.#fit();
    this.#changed();
    if (this.#live.size === 0) for (const resolve of this.#whenGone.splice(0)) resolve();
  }

  /**
   * The one rule for a start that failed (it could not be spawned, the
   * module or initializer failed, it exited or was killed while starting).
   * Before any child was ready, the module cannot run here: the pool breaks
   * at once — unless a signal killed a child that had not failed otherwise
   * (the OOM killer, kill -9). Once the
   * pool has had ready children, it is a passing failure (EAGAIN, EMFILE, a
   * module that failed to load once): started again with backoff. Either
   * way, `maxStartFailures` in a row break it.
   */
  #startFailed(child: Child, exit: ChildExit): void {
    if (!this.#starts.started && (exit.startFailed || exit.signal === null)) return this.#break(exit);
    if (++this.#startFailures >= maxStartFailures) return this.#break(exit);
    // A child retired while it started already has its replacement.
    if (exit.requested) return;
    const delay = Math.min(1000, 50 * 2 ** (this.#startFailures - 1));
    this.#respawning++;
    setTimeout(() => {
      this.#respawning--;
      if (this.#state === 'running') this.#replace(child);
      this.#fit();
    }, delay);
  }

  /** Children cannot start: report it once and start no more. */
  #break(exit: ChildExit): void {
    const why =
      (exit.cause as { code?: unknown } | undefined)?.code === 'ERR_UNKNOWN_FILE_EXTENSION' && /\.[cm]?ts$/.test(this.#init.moduleUrl)
        ? typeScriptHint(this.#init.moduleUrl)
        : exit.cause instanceof Error
          ? exit.cause.message
          : exit.signal
            ? `it was killed by ${exit.signal}`
            : `it exited with code ${String(exit.exitCode)}`;
    this.#failure = new PoolBrokenError(`Child processes cannot start: ${why}`, { ...(exit.cause === undefined ? {} : { cause: exit.cause }), stderr: exit.stderr });
    this.#state = 'broken';
    this.#starts.reject(this.#failure);
    for (const other of this.#live) other.terminate();
  }
}
