/**
 * The job queue, on BullMQ (the only home of bullmq): the caller adds and
 * inspects jobs, workers take them. BullMQ owns delivery: a job is locked by
 * the worker running it, and a worker that stops renewing its lock (lost,
 * SIGKILLed) has its job moved back to the queue by another worker's stalled
 * check — the job runs again elsewhere (at least once, never exactly once).
 */
import { createRequire } from 'node:module';
import type { Job } from 'bullmq';
import { keyPrefix } from './identity.js';
import { loadPeer } from './peers.js';
import type { JobData } from './codec.js';
import type { Redis } from './redis.js';

const { Queue, WaitingError, Worker } = loadPeer('bullmq', () => createRequire(import.meta.url)('bullmq') as typeof import('bullmq'));

/** How long a failed job stays readable for its caller (seconds); completed ones go at once. */
const failedRetentionS = 300;

/** The caller's side of a queue. */
export interface JobQueue {
  /**
   * Adds one chunk; resolves with its job id. Adds made in one turn of the event loop go to Redis together (addBulk).
   * The caller passes its own `jobId` (never Redis' counter: it starts again when Redis loses its data).
   */
  add(task: string, data: JobData, options?: AddOptions): Promise<string>;
  /** Where each job is, in one round trip whatever the queue's length (same order as `ids`). */
  inspect(ids: readonly string[]): Promise<JobSighting[]>;
  /** Removes a job that no worker holds; false when one does (it runs on). */
  remove(id: string): Promise<boolean>;
  close(): Promise<void>;
}

/** BullMQ's options of one job that the caller chooses (its `jobId`). */
export interface AddOptions {
  jobId?: string;
}

/** Jobs per addBulk, and the payload (base64 characters) past which a batch goes at once: a big chunk never waits behind small ones. */
const bulkJobs = 500;
const bulkChars = 1 << 20;

interface PendingAdd {
  readonly name: string;
  readonly data: JobData;
  readonly opts: AddOptions;
  resolve(id: string): void;
  reject(error: unknown): void;
}

/** What the caller learns of a job: in the queue (waiting or running), finished, failed (and why), or gone. */
export type JobSighting = { state: 'queued' } | { state: 'completed' } | { state: 'failed'; reason: string } | { state: 'missing' };

/** A job hash's fields, read with HMGET: `timestamp` is set on every job, the others once it ended. */
function sighting([timestamp, finishedOn, failedReason]: Array<string | null>): JobSighting {
  if (timestamp === null) return { state: 'missing' };
  if (finishedOn === null) return { state: 'queued' };
  return failedReason === null ? { state: 'completed' } : { state: 'failed', reason: failedReason || 'unknown reason' };
}

/** `connection` carries the jobs (payloads); `control` the small reads, never waiting behind a payload. */
export function openQueue(connection: Redis, control: Redis, name: string): JobQueue {
  const queue = new Queue<JobData>(name, {
    connection,
    prefix: keyPrefix,
    // Nobody reads BullMQ's events stream (results have their own list): kept to Redis's smallest trim, not 10,000 entries.
    streams: { events: { maxLen: 0 } },
    defaultJobOptions: { attempts: 1, removeOnComplete: true, removeOnFail: { age: failedRetentionS, count: 1000 } },
  });
  queue.on('error', () => undefined);
  // One round trip for the chunks a call hands out at once, instead of one each.
  let pending: PendingAdd[] = [];
  let chars = 0;
  const flush = (): void => {
    const batch = pending;
    pending = [];
    chars = 0;
    if (batch.length === 0) return;
    queue.addBulk(batch.map(({ name, data, opts }) => ({ name, data, opts }))).then(
      (jobs) => batch.forEach((add, i) => add.resolve(jobs[i]!.id!)),
      (error: unknown) => batch.forEach((add) => add.reject(error)),
    );
  };
  return {
    add: (task, data, opts = {}) =>
      new Promise<string>((resolve, reject) => {
        if (pending.length === 0) setImmediate(flush);
        pending.push({ name: task, data, opts, resolve, reject });
        chars += data.args.length;
        if (pending.length >= bulkJobs || chars >= bulkChars) flush();
      }),
    inspect: async (ids) => {
      if (ids.length === 0) return [];
      // One pipelined HMGET per job: O(jobs asked), where getJobState scans the queue's lists.
      const pipeline = control.pipeline();
      for (const id of ids) pipeline.hmget(queue.toKey(id), 'timestamp', 'finishedOn', 'failedReason');
      const replies = (await pipeline.exec()) ?? [];
      return replies.map(([error, fields]) => {
        if (error) throw error;
        return sighting(fields as Array<string | null>);
      });
    },
    remove: async (id) => (await queue.remove(id)) === 1,
    close: () => queue.close(),
  };
}

/** A job as a worker sees it. */
export interface TakenJob {
  readonly id: string;
  readonly data: unknown;
  /** Runs, this one included: above 1, it ran before on a worker that was lost (found stalled). */
  readonly runs: number;
  /** The job's lock key and this run's token in it: while the key holds the token, no other copy runs. */
  readonly lock: { readonly key: string; readonly token: string };
}

/** Lock and stalled-check timing: how soon a lost worker's job runs elsewhere. */
export interface DeliveryTiming {
  /** A job's lock lasts this long unless renewed (every half of it). */
  lockDuration: number;
  /** How often workers look for jobs whose lock has gone. */
  stalledInterval: number;
  /** Times a job may be found stalled before it fails instead. */
  maxStalledCount: number;
}

/** Delivery timing by default: a lost worker's job runs elsewhere within about lock + stalled interval (≤ 10 s). */
export const defaultTiming: Readonly<DeliveryTiming> = Object.freeze({ lockDuration: 5000, stalledInterval: 1500, maxStalledCount: 1 });

/**
 * How a worker's run of a job ended: `done` (its outcome sent, or the job
 * dropped), `released` — stopped before its end (a forced stop) — or
 * `returned`, given back before it started (a stopping worker's job taken
 * ahead): either way the job goes back to the queue at once, to run on
 * another worker; a returned one is not counted as a run.
 */
export type RunEnd = 'done' | 'released' | 'returned';

/** The job hash's field (beside BullMQ's) counting the times it was taken but given back unstarted. */
const returnedField = 'procpoolReturned';

/** What the worker's side reports besides running jobs. */
export interface TakerEvents {
  onError(error: Error): void;
  /** The locks of these jobs could not be renewed: the queue may already hand them to another worker. */
  onLockLost(ids: string[]): void;
}

/** The worker's side: takes up to `concurrency` jobs at once; a job whose `run` throws fails with that message. */
export interface JobTaker {
  /** Jobs taken at once from now on. */
  setConcurrency(concurrency: number): void;
  close(force: boolean): Promise<void>;
}

/** How long a job given back waits for Redis to take it (ms). */
const releaseTimeoutMs = 2000;

/** `promise` settled, or `ms` passed; never rejects. */
async function bounded(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise.catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

export function takeJobs(connection: Redis, name: string, concurrency: number, timing: DeliveryTiming, run: (job: TakenJob) => Promise<RunEnd>, events: TakerEvents): JobTaker {
  const key = (id: string): string => `${keyPrefix}:${name}:${id}`;
  const processor = async (job: Job<JobData>, token?: string): Promise<void> => {
    // Taken before (attemptsStarted counts every take): the takes given back unstarted were no runs.
    const returned = job.attemptsStarted > 1 ? Number((await connection.hget(key(job.id!), returnedField)) ?? 0) : 0;
    const lock = { key: `${key(job.id!)}:lock`, token: token ?? '' };
    const end = await run({ id: job.id!, data: job.data, runs: Math.max(job.attemptsStarted - returned, 1 + (job.stalledCounter ?? 0)), lock });
    if (end === 'done') return;
    // Back to wait while this worker still holds the lock; WaitingError tells BullMQ the job is not finished.
    // Bounded: with Redis away the lock lapses instead, and the job runs again elsewhere all the same.
    if (end === 'returned') await bounded(connection.hincrby(key(job.id!), returnedField, 1), releaseTimeoutMs);
    await bounded(job.moveToWait(token), releaseTimeoutMs);
    throw new WaitingError();
  };
  const worker = new Worker<JobData>(name, processor, {
    connection,
    prefix: keyPrefix,
    concurrency,
    ...timing,
    removeOnComplete: { count: 0 },
    removeOnFail: { age: failedRetentionS, count: 1000 },
  });
  worker.on('error', events.onError);
  worker.on('lockRenewalFailed', events.onLockLost);
  return {
    setConcurrency: (concurrency) => {
      worker.concurrency = concurrency;
    },
    close: (force) => worker.close(force),
  };
}
