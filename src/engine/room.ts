/**
 * Room in the queue (`maxQueue`): the one predicate for "would this wait,
 * and may it". Admission, `waitForRoom()` and `stats.queued` all read
 * `#waiting`. A call admitted before an asynchronous step (its task name is
 * looked up) holds a reservation until it has queued its chunks, so calls
 * made in the same tick see each other. Waiters are judged again whenever
 * the queue or the capacity changes (the scheduler says so).
 */
import { QueueFullError } from '../errors.js';

/** What room is judged from: the scheduler's counts. */
export interface QueueCounts {
  /** Items and chunks queued, not yet handed to a runner. */
  readonly queuedItems: number;
  readonly queuedPieces: number;
  /** Chunks that would start at once: free capacity, and runners that could still start (an elastic pool's spare children). */
  readonly freeSlots: number;
}

/** A call admitted, not yet queued: release once its chunks are queued (or it failed first). */
export type Reservation = () => void;

const none: Reservation = () => undefined;

export class Room {
  readonly #queue: QueueCounts;
  readonly #limit: number;
  #reservedItems = 0;
  #reservedPieces = 0;
  #waiters: Array<{ items: number; resolve(): void }> = [];

  constructor(queue: QueueCounts, limit: number) {
    this.#queue = queue;
    this.#limit = limit;
  }

  /** Items that wait for a runner now (reserved ones included). */
  get waiting(): number {
    return this.#waiting(0, 0);
  }

  /**
   * Admits a call of `items` items in chunks of `chunksize`, or throws
   * QueueFullError. `reserve`: the call queues later (after an asynchronous
   * step), so its place is held until the returned release.
   */
  admit(items: number, chunksize: number, reserve: boolean): Reservation {
    const pieces = Math.ceil(items / Math.max(1, chunksize));
    if (this.#limit !== Number.POSITIVE_INFINITY && this.#waiting(items, pieces) > this.#limit) {
      throw new QueueFullError({ maxQueue: this.#limit, queued: this.waiting, items });
    }
    if (!reserve || items === 0) return none;
    this.#reservedItems += items;
    this.#reservedPieces += pieces;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.#reservedItems -= items;
      this.#reservedPieces -= pieces;
      this.changed();
    };
  }

  /** Resolves once a call of `items` more items (one chunk each) would be admitted; for more than the limit, once nothing waits. */
  whenRoom(items: number): Promise<void> {
    if (this.#fits(items)) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ items, resolve }));
  }

  /** The queue or the capacity changed: wake the waiters that now fit. */
  changed(): void {
    if (this.#waiters.length === 0) return;
    this.#waiters = this.#waiters.filter((waiter) => {
      if (!this.#fits(waiter.items)) return true;
      waiter.resolve();
      return false;
    });
  }

  /** For more items than the limit: once `limit` items could wait (with `maxQueue: 0`, once one item would not). */
  #fits(items: number): boolean {
    const n = items === 0 ? 0 : Math.max(1, Math.min(items, this.#limit));
    return this.#limit === Number.POSITIVE_INFINITY || this.#waiting(n, n) <= this.#limit;
  }

  /**
   * Items left waiting with `items` more in `pieces` more chunks: chunks run
   * first come, first served, so the first `freeSlots` chunks start and the
   * rest wait (their items counted by the average chunk size).
   */
  #waiting(items: number, pieces: number): number {
    const totalPieces = this.#queue.queuedPieces + this.#reservedPieces + pieces;
    if (totalPieces === 0) return 0;
    const slots = this.#queue.freeSlots;
    if (totalPieces <= slots) return 0;
    const totalItems = this.#queue.queuedItems + this.#reservedItems + items;
    return Math.ceil((totalItems * (totalPieces - slots)) / totalPieces);
  }
}
