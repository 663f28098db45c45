/**
 * A worker's children as slots, and how many jobs it takes from the queue
 * at once.
 */

/**
 * Chunks taken from the queue at once per child: the next one is at hand
 * when one ends. Short chunks are taken deeper (the Redis round trips of
 * one overlap the others' runs); long ones two at a time, so that another
 * worker is not left idle while this one holds work it cannot start.
 */
function depthFor(chunkMs: number): number {
  return Math.max(2, Math.min(maxDepth, Math.ceil(workAheadMs / Math.max(chunkMs, 0.01))));
}
/** How much work (ms) a child's taken chunks should hold. */
const workAheadMs = 20;
/** Jobs taken per child at most: the one-item jobs among them run merged, many to a message (`adopt`). */
const maxDepth = 64;

/** What a job waiting for a child gets: a slot of its own, refused (it goes back to the queue), or joined to another job's chunk. */
export type Grant = 'slot' | 'refused' | 'joined';

interface Waiting<T> {
  readonly member: T;
  resolve(grant: Grant): void;
}

/**
 * A worker's children as slots: a job taken from the queue waits here for a
 * free child before its chunk goes to the local pool. A job still waiting
 * has not started, so a stopping worker gives it back (`release`) instead
 * of running it; a job given a slot may take waiting ones along into its
 * chunk (`adopt`). How many jobs to take at once follows the chunks' times.
 */
export class Slots<T = undefined> {
  readonly #count: number;
  #free: number;
  readonly #waiting: Array<Waiting<T>> = [];
  #released = false;
  /** Chunks taken per child (depthFor), from a running mean of chunk times (ms). */
  #depth = 2;
  #chunkMs: number | undefined;

  constructor(count: number) {
    this.#count = count;
    this.#free = count;
  }

  /** Jobs to take from the queue at once (what the worker announces as its capacity). */
  get taken(): number {
    return this.#count * this.#depth;
  }

  /**
   * A chunk took `ms`; true when `taken` changed. Shallower: the jobs
   * waiting past the new depth go back to the queue (the newest first), for
   * a worker with a free child, instead of waiting here behind long chunks.
   */
  timed(ms: number): boolean {
    this.#chunkMs = this.#chunkMs === undefined ? ms : 0.8 * this.#chunkMs + 0.2 * ms;
    const depth = depthFor(this.#chunkMs);
    // Shallower only by a quarter or more: a depth wavering by one would give a job back each time.
    if (depth === this.#depth || (depth < this.#depth && depth > 0.75 * this.#depth)) return false;
    this.#depth = depth;
    const excess = this.#waiting.length - (this.taken - this.#count);
    if (excess > 0) for (const { resolve } of this.#waiting.splice(-excess)) resolve('refused');
    return true;
  }

  /** Jobs one child's chunk may carry (`adopt`): while chunks are short, a child's share of the jobs taken; else one. */
  get merged(): number {
    return this.#depth > 2 ? this.#depth : 1;
  }

  /** Jobs waiting for a free child. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * `slot` (give it back with `free()`); `refused` once released or past the
   * depth: the job goes back to the queue; `joined` when a job with a slot
   * adopted `member` into its chunk.
   */
  take(member: T): Promise<Grant> {
    if (this.#released) return Promise.resolve('refused');
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve('slot');
    }
    return new Promise((resolve) => this.#waiting.push({ member, resolve }));
  }

  /** Takes up to `max` waiting members that `fits` (oldest first) out of the wait: their take() resolves `joined`. */
  adopt<U extends T>(fits: (member: T) => member is U, max: number): U[] {
    const adopted: U[] = [];
    for (let i = 0; i < this.#waiting.length && adopted.length < max; ) {
      const waiting = this.#waiting[i]!;
      const { member } = waiting;
      if (!fits(member)) {
        i++;
        continue;
      }
      this.#waiting.splice(i, 1);
      adopted.push(member);
      waiting.resolve('joined');
    }
    return adopted;
  }

  free(): void {
    const next = this.#released ? undefined : this.#waiting.shift();
    if (next === undefined) this.#free++;
    else next.resolve('slot');
  }

  /** Every job waiting, and every one after, is refused a slot. */
  release(): void {
    this.#released = true;
    for (const { resolve } of this.#waiting.splice(0)) resolve('refused');
  }
}
