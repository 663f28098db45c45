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
  return Math.max(2, Math.min(16, Math.ceil(workAheadMs / Math.max(chunkMs, 0.01))));
}
/** How much work (ms) a child's taken chunks should hold. */
const workAheadMs = 20;

/**
 * A worker's children as slots: a job taken from the queue waits here for a
 * free child before its chunk goes to the local pool. A job still waiting
 * has not started, so a stopping worker gives it back (`release`) instead
 * of running it. How many jobs to take at once follows the chunks' times.
 */
export class Slots {
  readonly #count: number;
  #free: number;
  readonly #waiting: Array<(granted: boolean) => void> = [];
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
    if (depth === this.#depth) return false;
    this.#depth = depth;
    const excess = this.#waiting.length - (this.taken - this.#count);
    if (excess > 0) for (const resolve of this.#waiting.splice(-excess)) resolve(false);
    return true;
  }

  /** Jobs waiting for a free child. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** True with a slot (give it back with `free()`); false once released or past the depth: the job goes back to the queue. */
  take(): Promise<boolean> {
    if (this.#released) return Promise.resolve(false);
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  free(): void {
    const next = this.#released ? undefined : this.#waiting.shift();
    if (next === undefined) this.#free++;
    else next(true);
  }

  /** Every job waiting, and every one after, is refused a slot. */
  release(): void {
    this.#released = true;
    for (const resolve of this.#waiting.splice(0)) resolve(false);
  }
}
