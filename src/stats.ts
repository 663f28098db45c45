/**
 * Counters of the pool's work, read as a snapshot through `pool.stats`.
 */

/** A snapshot of the pool's state and counters. */
export interface PoolStats {
  /** Children configured. */
  readonly processes: number;
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
}

/** Item counters, shared by every call of one pool. */
export class Counters {
  completed = 0;
  failed = 0;
}
