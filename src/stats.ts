/**
 * Counters and timing samples of the pool's work, read as a snapshot
 * through `pool.stats`.
 */

/** Percentiles of a timing, in milliseconds. */
export interface Percentiles {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
}

/** One child slot (a replacement takes its predecessor's slot). */
export interface ChildStats {
  readonly pid: number | undefined;
  /** Items this child has finished. */
  readonly items: number;
  /** Children replaced in this slot so far. */
  readonly restarts: number;
  /** Resident memory after its last chunk, in bytes (0 before its first). */
  readonly rss: number;
}

/** One child in `stats.children`. */
export interface ChildSnapshot extends ChildStats {
  /** procpool/task's `workerId` of the child (0 for a cluster's workers). */
  readonly workerId: number;
}

/** A snapshot of the pool's state and counters. */
export interface PoolStats {
  /** Children at most: a fixed pool's size, or `maxProcesses`. */
  readonly processes: number;
  /** Children now (starting or ready; not those leaving): between `minProcesses` and `maxProcesses`. */
  readonly size: number;
  /** Children running at least one chunk. */
  readonly busy: number;
  /** Ready children with nothing to run. */
  readonly idle: number;
  /** Items not yet sent to any child. */
  readonly queued: number;
  /** Items that finished with a result. */
  readonly completed: number;
  /** Items that finished with an error. */
  readonly failed: number;
  /** Children replaced for any reason (death, recycling). */
  readonly restarts: number;
  /** Finalizers that failed (threw, or passed `finalTimeout`). */
  readonly finalizerFailures: number;
  /** Live children, by slot. */
  readonly children: readonly ChildSnapshot[];
  /** Time a chunk waited for a child, over the last 1,024 chunks. */
  readonly queueWait: Percentiles;
  /** Time a chunk ran in its child, per item, over the last 1,024 chunks. */
  readonly runTime: Percentiles;
}

/** The last `size` samples of a timing. */
export class Samples {
  readonly #values: Float64Array;
  #count = 0;
  /** Percentiles as of `#count` samples: a read costs a sort only when samples came in since. */
  #cached: Percentiles | undefined;
  #cachedAt = -1;

  constructor(size = 1024) {
    this.#values = new Float64Array(size);
  }

  record(ms: number): void {
    this.#values[this.#count % this.#values.length] = ms;
    // Wraps rather than grows past 2^53 in a long life; only the position matters.
    this.#count = this.#count >= Number.MAX_SAFE_INTEGER ? this.#values.length : this.#count + 1;
  }

  percentiles(): Percentiles {
    if (this.#cachedAt === this.#count) return this.#cached!;
    this.#cachedAt = this.#count;
    return (this.#cached = this.#compute());
  }

  #compute(): Percentiles {
    const n = Math.min(this.#count, this.#values.length);
    if (n === 0) return { p50: 0, p90: 0, p99: 0 };
    const sorted = this.#values.slice(0, n).sort();
    const at = (q: number): number => sorted[Math.min(n - 1, Math.floor(q * n))]!;
    return { p50: at(0.5), p90: at(0.9), p99: at(0.99) };
  }
}

/** Item counters and timings, shared by every call of one pool. */
export class Counters {
  completed = 0;
  failed = 0;
  readonly queueWait = new Samples();
  readonly runTime = new Samples();
}
