/**
 * One chunk on the cluster, caller side: added as a job, then ended once —
 * by its result, by the queue's word that it failed or vanished, by Redis
 * staying away too long, or on request (skip, abort).
 */
import type { Attempt, AttemptEnd } from '../engine/backend.js';
import type { JobData } from './codec.js';

/** What an attempt asks of its backend. */
export interface AttemptOwner {
  skipAttempt(attempt: RemoteAttempt): void;
  abortAttempt(attempt: RemoteAttempt, reason: unknown): void;
}

/** adding: the job is being added; queued: it has an id (waiting or running on a worker); ended. */
export type AttemptPhase = 'adding' | 'queued' | 'ended';

/** What was asked of an attempt while its job was still being added. */
export type Wish = 'run' | 'skip' | 'abort';

/**
 * What the last looks at the queue found of the job: `seen` there, or
 * `missing` once (its result may still be on its way: judged again at the
 * next look, then re-added if still missing); `readding`: being added again.
 */
export type Sighting = 'seen' | 'missing' | 'readding';

export class RemoteAttempt implements Attempt {
  readonly end: Promise<AttemptEnd>;
  readonly exact: boolean;
  readonly items: number;
  readonly #owner: AttemptOwner;
  #phase: AttemptPhase = 'adding';
  #resolve!: (end: AttemptEnd) => void;
  /** The job's data (added again if Redis loses the job). */
  readonly data: JobData;
  /** The job's id (the caller's choice), once added; the id of its last re-add after that. */
  jobId: string | undefined;
  /** Every id this attempt's job was added under: a result made for any of them is this chunk's. */
  readonly ids: string[] = [];
  wish: Wish = 'run';
  sighting: Sighting = 'seen';
  /** Times the job was added again after Redis lost it. */
  readds = 0;
  /** When the job was added (performance.now()). */
  addedAt = 0;

  constructor(owner: AttemptOwner, exact: boolean, items: number, data: JobData) {
    this.#owner = owner;
    this.exact = exact;
    this.items = items;
    this.data = data;
    this.end = new Promise((resolve) => (this.#resolve = resolve));
  }

  get phase(): AttemptPhase {
    return this.#phase;
  }

  queued(jobId: string): void {
    if (this.#phase !== 'adding') return;
    this.sighting = 'seen';
    this.#phase = 'queued';
    this.jobId = jobId;
    this.addedAt = performance.now();
  }

  /** The job was lost by Redis and added again under `jobId`. */
  readded(jobId: string): void {
    if (this.#phase !== 'queued') return;
    this.jobId = jobId;
    this.readds++;
    this.sighting = 'seen';
    this.addedAt = performance.now();
  }

  skip(): void {
    if (this.#phase !== 'ended') this.#owner.skipAttempt(this);
  }

  abort(reason: unknown): void {
    if (this.#phase !== 'ended') this.#owner.abortAttempt(this, reason);
  }

  /** Ends the attempt; later calls are ignored (a result after a stop, a second delivery). */
  finish(end: AttemptEnd): boolean {
    if (this.#phase === 'ended') return false;
    this.#phase = 'ended';
    this.#resolve(end);
    return true;
  }
}

/** An attempt whose items never started: the scheduler queues them again (or drops them, for an ended call). */
export function notStarted(): AttemptEnd {
  return { kind: 'ran', report: { values: [], failures: [] }, ms: 0 };
}

/** An attempt lost with the error charged to its first item. */
export function lostWith(error: unknown): AttemptEnd {
  return { kind: 'lost', report: { values: [], failures: [] }, error, uncertain: false };
}
