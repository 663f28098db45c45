/**
 * The seam between "run this chunk" and where it runs: local child
 * processes today, other machines through a job queue later. Calls and the
 * scheduler see only this interface.
 */
import type { Readable } from 'node:stream';
import type { PoolBrokenError } from '../errors.js';
import type { ResolvedPoolOptions } from '../options.js';
import type { WireFailure } from '../protocol.js';
import type { ChildStats } from '../stats.js';

/** How one item failed, parent side: as it came over the wire, or raised here (`local`). */
export type Failure = WireFailure | { local: unknown };

/** Outcomes of consecutive items: values by position, failed ones apart (their value slot is undefined). */
export interface Report {
  values: unknown[];
  failures: Array<[index: number, failure: Failure]>;
}

/** A contiguous run of one call's items, for one task. */
export interface ChunkJob {
  readonly task: string;
  /** Each item's arguments: a tuple when `spread`, else the one argument itself. */
  readonly args: unknown[];
  readonly spread: boolean;
  /** Per-item time limit in ms while running. */
  readonly timeout: number | undefined;
  /** End the chunk at its first failing item. */
  readonly stopAtError: boolean;
  /** Report every item as it ends (exact blame), not every few ms. */
  readonly exact: boolean;
  /**
   * The call the chunk belongs to (unique in its pool) and the call index of
   * its first item: a runner that saw the call fail at an item drops the
   * call's later chunks itself (`stopAtError`), without a round trip.
   */
  readonly call: number;
  readonly from: number;
  /** A running item's `emit(value)` (procpool/task): `index` in the chunk. */
  readonly onMessage?: ((index: number, value: unknown, workerId: number) => void) | undefined;
}

/**
 * How an attempt at a chunk ended.
 * - `ran`: the items of `report` ran; those after it never started (the
 *   chunk stopped at a failure or a memory limit, was skipped, or its
 *   runner went away before it started).
 * - `lost`: the runner went away while running item `report.values.length`:
 *   `error` is charged to it — unless `uncertain`, when the runner may have
 *   finished some items after the report without saying so (a kill by
 *   signal): then no item is charged and the rest is to be run again, exactly.
 * - `aborted`: stopped on request while running.
 */
export type AttemptEnd =
  | { kind: 'ran'; report: Report; ms: number }
  | { kind: 'lost'; report: Report; error: unknown; uncertain: boolean }
  | { kind: 'aborted' };

/** One chunk handed to a runner. */
export interface Attempt {
  /** Settles once, never rejects. */
  readonly end: Promise<AttemptEnd>;
  /** Skips the chunk if it has not started; a started chunk runs on. */
  skip(): void;
  /**
   * Nothing of the chunk is wanted any more (its call failed, or was left):
   * skipped if not started, else its running item's AbortSignal aborts and
   * no further item starts. Absent: `skip()` is all the runner can do.
   */
  cancel?(): void;
  /** Stops the chunk even while it runs (a local child is killed and replaced). */
  abort(reason: unknown): void;
  /**
   * Gives the chunk back if it has not started (it then ends as `ran` with
   * nothing reported, and is queued again): it waits in a runner's pipe
   * while work of a higher priority waits for room. Optional: a backend
   * whose chunks never wait beside a runner needs none.
   */
  recall?(): void;
  /** Whether the runner said the chunk started; undefined: not known here (counted as started). */
  readonly started?: boolean;
}

/** What runs chunks. */
export interface Backend {
  /** Chunks that may be in flight at once now; 0 while none can be taken. */
  readonly capacity: number;
  /** Runners that could still take a chunk of their own beyond `capacity` (an elastic pool below its maximum, a runner still starting). */
  readonly spare: number;
  /** Called whenever `capacity` or `failure` may have changed. */
  onChange(listener: () => void): void;
  /** Runs `job` (called only while fewer than `capacity` attempts are in flight). */
  run(job: ChunkJob): Attempt;
  /** Chunks waiting for room: an elastic backend may add runners for them. */
  setWaiting(chunks: number): void;
  /** Whether work waits: starting runners then keep the process alive. */
  setDemand(on: boolean): void;
  /** Why no chunk can ever run, once that is so. */
  readonly failure: PoolBrokenError | undefined;
  /** Resolves when every runner is ready; rejects with the failure. */
  ready(): Promise<void>;
  /** The task names the runners offer, once known. */
  tasks(): Promise<string[]>;
  /** Lets runners finish what they have, then stops them. */
  stop(): Promise<void>;
  /** Stops every runner now. */
  kill(): Promise<void>;
}

/** What a Pool reads of its backend besides running chunks: sizes for stats and chunking, output, names. */
export interface PoolBackend extends Backend {
  /** Runners at most (children; a cluster's worker children): default chunking divides by it. */
  readonly max: number;
  /** Resolves once `max` is known (a cluster before its workers announce themselves); undefined when it is. */
  sized?(): Promise<void> | undefined;
  /** Runners now. */
  readonly size: number;
  /** Runners with work. */
  readonly busy: number;
  /** Runners replaced (local), or chunks run again after their runner was lost (cluster). */
  readonly restarts: number;
  /** terminate() comes next: calls are about to fail for it (a running item's signal says so). */
  terminating?(): void;
  /** Whether items' `emit()` reaches the caller's `onMessage` (absent: not supported, and a call with it is refused). */
  readonly messages?: boolean;
  /** Finalizers that failed (local children; absent: none run). */
  readonly finalizerFailures?: number;
  readonly stdout: Readable | undefined;
  readonly stderr: Readable | undefined;
  /** Runners, by slot, for `stats`. */
  children(): Array<ChildStats & { workerId?: number; idle: boolean }>;
  /** Raises the most runners (a shared pool asked for more). */
  growTo(max: number): void;
  /** The task names, once known; `start`: a backend with no runner may start one to learn them. */
  tasks(start?: boolean): Promise<string[]>;
}

/** Makes a pool's backend: `new Pool(module, options, { backend })` (internal) runs chunks elsewhere. */
export type BackendFactory = (options: ResolvedPoolOptions, moduleUrl: string) => PoolBackend;
