/**
 * The job queue, on BullMQ (the only home of bullmq): the caller adds and
 * inspects jobs, workers take them. BullMQ owns delivery: a job is locked by
 * the worker running it, and a worker that stops renewing its lock (lost,
 * SIGKILLed) has its job moved back to the queue by another worker's stalled
 * check — the job runs again elsewhere (at least once, never exactly once).
 */
import { Queue, Worker, type Job } from 'bullmq';
import { keyPrefix } from './identity.js';
import type { JobData } from './codec.js';
import type { Redis } from './redis.js';

/** How long a failed job stays readable for its caller (seconds); completed ones go at once. */
const failedRetentionS = 300;

/** The caller's side of a queue. */
export interface JobQueue {
  /** Adds one chunk; resolves with its job id. */
  add(task: string, data: JobData): Promise<string>;
  /** 'waiting', 'active', 'failed', …, or 'unknown' once the job is gone. */
  state(id: string): Promise<string>;
  /** Why a failed job failed. */
  failedReason(id: string): Promise<string | undefined>;
  /** Removes a job that no worker holds; false when one does (it runs on). */
  remove(id: string): Promise<boolean>;
  close(): Promise<void>;
}

export function openQueue(connection: Redis, name: string): JobQueue {
  const queue = new Queue<JobData>(name, {
    connection,
    prefix: keyPrefix,
    defaultJobOptions: { attempts: 1, removeOnComplete: true, removeOnFail: { age: failedRetentionS, count: 1000 } },
  });
  queue.on('error', () => undefined);
  return {
    add: async (task, data) => (await queue.add(task, data)).id!,
    state: (id) => queue.getJobState(id),
    failedReason: async (id) => (await queue.getJob(id))?.failedReason,
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

/** The worker's side: takes up to `concurrency` jobs at once; a job whose `run` throws fails with that message. */
export interface JobTaker {
  close(force: boolean): Promise<void>;
}

export function takeJobs(connection: Redis, name: string, concurrency: number, timing: DeliveryTiming, run: (job: TakenJob) => Promise<void>, onError: (error: Error) => void): JobTaker {
  const worker = new Worker<JobData>(name, (job: Job<JobData>) => run({ id: job.id!, data: job.data, runs: Math.max(job.attemptsStarted, 1 + (job.stalledCounter ?? 0)) }), {
    connection,
    prefix: keyPrefix,
    concurrency,
    ...timing,
    removeOnComplete: { count: 0 },
    removeOnFail: { age: failedRetentionS, count: 1000 },
  });
  worker.on('error', onError);
  return { close: (force) => worker.close(force) };
}
