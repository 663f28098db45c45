/**
 * The queue of pending chunks, on p-queue: its concurrency follows the
 * backend's capacity, so a job that starts always finds room — the job is
 * the lease, and its end (on every path) lets p-queue start the next one.
 * There is no other queue. Chunks run FIFO across calls, highest priority
 * first; a chunk's rest that must run again (its runner went away, or it was
 * recalled) goes ahead of new work. A chunk that waits recalls those of
 * lower priorities still waiting beside a runner (`Attempt.recall`), so a
 * priority waits at most for the chunks running.
 *
 * What happens after an attempt is decided here, for every backend:
 * reported outcomes go to the call; a death charged to an item fails it
 * (or re-runs it while `retries` allow); items that never started, or whose
 * fate is uncertain, are queued again. The only home of p-queue.
 */
import PQueue from 'p-queue';
import type { Attempt, AttemptEnd, Backend, Report } from './backend.js';
import { TaskTimeoutError } from '../errors.js';
import type { Counters } from '../stats.js';

/** What a call offers the scheduler. */
export interface ChunkOwner {
  readonly task: string;
  readonly spread: boolean;
  readonly timeout: number | undefined;
  readonly stopAtError: boolean;
  readonly retries: number;
  /** Higher runs first; equal priorities run first come, first served. */
  readonly priority: number;
  /** A running item's `emit()` (procpool/task), `index` in the call; undefined: nobody listens. */
  readonly onMessage: ((index: number, value: unknown, workerId: number) => void) | undefined;
  /** Whether the item at `index` is still to run (false once the call ended, or failed before it). */
  wants(index: number): boolean;
  /** Outcomes of the items from `start` on (`tag` as given to `submit`). */
  accept(tag: unknown, start: number, report: Report, ms: number): void;
  /** An attempt is in flight for this call / has ended: what the call may skip or abort. */
  attach(attempt: Attempt): void;
  detach(attempt: Attempt): void;
}

/** Consecutive items of one call, waiting to run. */
interface Piece {
  owner: ChunkOwner;
  tag: unknown;
  /** Index of the first item in the call. */
  start: number;
  args: unknown[];
  exact: boolean;
  /** Runs of an item (by call index) that ended in a death charged to it. */
  tries: Map<number, number> | undefined;
  queuedAt: number;
  /** p-queue started it. */
  started: boolean;
}

/** A chunk's messages, placed by the item's index in the call. */
function messagesFrom(onMessage: (index: number, value: unknown, workerId: number) => void, start: number): (index: number, value: unknown, workerId: number) => void {
  return (index, value, workerId) => onMessage(start + index, value, workerId);
}

/** A chunk's rest that runs again goes ahead of new work of the same priority, and of no higher one. */
function ahead(priority: number): number {
  return priority + Math.max(Number.MIN_VALUE, Math.abs(priority) * Number.EPSILON);
}

/** The pending chunks and the leases on the backend's capacity. */
export class Scheduler {
  readonly #queue: PQueue;
  readonly #backend: Backend;
  readonly #counters: Counters;
  readonly #onBusy: (busy: boolean) => void;
  /** Pieces queued or running. */
  #pieces = 0;
  /** Items and pieces queued (not yet handed to a runner), by call: a call that ended takes its own out at once. */
  readonly #queuedBy = new Map<ChunkOwner, { items: number; pieces: number }>();
  #queuedItems = 0;
  #queuedPieces = 0;
  #drained = false;
  /** Pieces handed to a runner and not yet ended. */
  #running = 0;
  /** Hears when the queue or the capacity changed (room for maxQueue, engine/room.ts). */
  #onRoom: () => void = () => undefined;
  /** Attempts in flight, and the number in flight by their call's priority: what a higher priority may recall. */
  readonly #inFlight = new Map<Attempt, number>();
  readonly #inFlightByPriority = new Map<number, number>();
  /** Each call's id on the wire (held weakly: an ended call is forgotten). */
  readonly #callIds = new WeakMap<ChunkOwner, number>();
  #nextCallId = 1;

  /** `onBusy` hears when the first piece arrives and the last one leaves. */
  constructor(backend: Backend, counters: Counters, onBusy: (busy: boolean) => void) {
    this.#backend = backend;
    this.#counters = counters;
    this.#onBusy = onBusy;
    this.#queue = new PQueue({ concurrency: Math.max(1, backend.capacity), autoStart: backend.capacity > 0 });
    backend.onChange(() => this.#fit());
  }

  /** Items queued, not yet handed to a runner. */
  get queuedItems(): number {
    return this.#queuedItems;
  }

  /** Whether `owner` has items queued, not yet handed to a runner. */
  hasQueued(owner: ChunkOwner): boolean {
    return this.#queuedBy.has(owner);
  }

  /** Pieces queued, not yet handed to a runner. */
  get queuedPieces(): number {
    return this.#queuedPieces;
  }

  /** Pieces that would start at once: free capacity, and runners the backend could still start (each takes one of its own). */
  get freeSlots(): number {
    return Math.max(0, this.#backend.capacity - this.#running) + this.#backend.spare;
  }

  /** `listener` hears whenever the queue or the capacity changed. */
  onRoom(listener: () => void): void {
    this.#onRoom = listener;
  }

  /** Whether any piece is queued or running. */
  get busy(): boolean {
    return this.#pieces > 0;
  }

  /** Queues `args` (items `start`… of `owner`'s call, unless it ended); `again`: the rest of a chunk that runs again. */
  submit(owner: ChunkOwner, tag: unknown, start: number, args: unknown[], again?: { exact: boolean; tries: Map<number, number> | undefined }): void {
    if (args.length === 0) return;
    const exact = again?.exact ?? false;
    const tries = again?.tries;
    const priority = again === undefined ? owner.priority : ahead(owner.priority);
    if (this.#pieces++ === 0) this.#onBusy(true);
    const queued = this.#queuedBy.get(owner);
    if (queued === undefined) this.#queuedBy.set(owner, { items: args.length, pieces: 1 });
    else {
      queued.items += args.length;
      queued.pieces++;
    }
    this.#queuedItems += args.length;
    this.#queuedPieces++;
    const piece: Piece = { owner, tag, start, args, exact, tries, queuedAt: performance.now(), started: false };
    // No signal for p-queue: it would add a listener per queued chunk to one
    // signal (quadratic). A piece its call no longer wants ends when it comes up.
    void this.#queue.add(() => this.#run(piece), { priority });
    this.#backend.setWaiting(this.#queuedPieces);
    this.#onRoom();
    if (!piece.started) this.#recallBelow(owner.priority);
  }

  /**
   * A piece of `priority` waits for room: chunks of lower priorities that
   * wait beside a runner (in a child's pipe) come back to the queue, so it
   * waits at most for the chunks already running.
   */
  #recallBelow(priority: number): void {
    let below = false;
    for (const running of this.#inFlightByPriority.keys()) below ||= running < priority;
    if (!below) return;
    for (const [attempt, running] of this.#inFlight) if (running < priority) attempt.recall?.();
  }

  #track(attempt: Attempt, priority: number, on: boolean): void {
    const count = (this.#inFlightByPriority.get(priority) ?? 0) + (on ? 1 : -1);
    if (count === 0) this.#inFlightByPriority.delete(priority);
    else this.#inFlightByPriority.set(priority, count);
    if (on) this.#inFlight.set(attempt, priority);
    else this.#inFlight.delete(attempt);
  }

  /**
   * `owner`'s call ended: its queued pieces no longer count as waiting
   * (maxQueue, growth); they end when p-queue reaches them.
   */
  forget(owner: ChunkOwner): void {
    const queued = this.#queuedBy.get(owner);
    if (queued === undefined) return;
    this.#queuedBy.delete(owner);
    this.#unqueue(queued.items, queued.pieces);
  }

  #unqueue(items: number, pieces: number): void {
    this.#queuedItems -= items;
    this.#queuedPieces -= pieces;
    this.#backend.setWaiting(this.#queuedPieces);
    this.#onRoom();
    // Only pieces of ended calls wait, maybe for capacity that will not come
    // (an elastic pool with no child): let them end now, each at once.
    if (this.#queuedPieces === 0 && this.#queue.size > 0 && this.#backend.capacity === 0 && !this.#drained) {
      this.#queue.concurrency = Number.POSITIVE_INFINITY;
      this.#queue.start();
      this.#fit();
    }
  }

  /**
   * Runs every queued piece at once, so that each sees its call has ended
   * (terminate(), a broken pool): nothing waits for capacity that will not come.
   */
  drain(): void {
    this.#drained = true;
    this.#queue.concurrency = Number.POSITIVE_INFINITY;
    this.#queue.start();
  }

  #callId(owner: ChunkOwner): number {
    let id = this.#callIds.get(owner);
    if (id === undefined) this.#callIds.set(owner, (id = this.#nextCallId++));
    return id;
  }

  #fit(): void {
    if (this.#drained) return;
    if (this.#backend.failure !== undefined) return this.drain();
    const capacity = this.#backend.capacity;
    this.#onRoom();
    if (capacity === 0) return void this.#queue.pause();
    this.#queue.concurrency = capacity;
    if (this.#queue.isPaused) this.#queue.start();
  }

  async #run(piece: Piece): Promise<void> {
    piece.started = true;
    const { owner, args } = piece;
    const queued = this.#queuedBy.get(owner);
    if (queued !== undefined) {
      queued.items -= args.length;
      if (--queued.pieces === 0) this.#queuedBy.delete(owner);
      this.#unqueue(args.length, 1);
    }
    try {
      if (!owner.wants(piece.start) || this.#drained) return;
      this.#counters.queueWait.record(performance.now() - piece.queuedAt);
      const attempt = this.#backend.run({
        task: owner.task,
        args,
        spread: owner.spread,
        timeout: owner.timeout,
        stopAtError: owner.stopAtError,
        exact: piece.exact,
        call: this.#callId(owner),
        from: piece.start,
        onMessage: owner.onMessage === undefined ? undefined : messagesFrom(owner.onMessage, piece.start),
      });
      owner.attach(attempt);
      this.#running++;
      this.#track(attempt, owner.priority, true);
      let end: AttemptEnd;
      try {
        end = await attempt.end;
      } finally {
        this.#running--;
        owner.detach(attempt);
        this.#track(attempt, owner.priority, false);
      }
      // A runner's room is free again (p-queue counts it free a turn later).
      this.#onRoom();
      this.#follow(piece, end);
    } finally {
      if (--this.#pieces === 0) this.#onBusy(false);
    }
  }

  /** What follows an attempt: outcomes to the call, a charge or a retry, the rest queued again. */
  #follow(piece: Piece, end: AttemptEnd): void {
    if (end.kind === 'aborted') return;
    const { owner, tag, start, args } = piece;
    const ran = end.report.values.length;
    if (ran > 0) {
      if (end.kind === 'ran' && end.ms > 0) this.#counters.runTime.record(end.ms / ran);
      owner.accept(tag, start, end.report, end.kind === 'ran' ? end.ms : 0);
    }
    let next = start + ran;
    let exact = piece.exact;
    let tries = piece.tries;
    if (end.kind === 'lost') {
      // Uncertain: run the rest item by item, so that a second death is charged exactly.
      exact = end.uncertain;
      if (!end.uncertain) {
        const tried = tries?.get(next) ?? 0;
        // Retries are for deaths: an item that ran past its timeout is not run again.
        if (tried < owner.retries && !(end.error instanceof TaskTimeoutError)) (tries ??= new Map()).set(next, tried + 1);
        else {
          owner.accept(tag, next, { values: [undefined], failures: [[0, { local: end.error }]] }, 0);
          next++;
        }
      }
    }
    const rest = next - start;
    if (rest < args.length && owner.wants(next)) this.submit(owner, tag, next, rest === 0 ? args : args.slice(rest), { exact, tries });
  }
}
