/**
 * The cluster backend: chunks become BullMQ jobs that `procpool worker`
 * processes take; their outcomes come back on this caller's results list.
 *
 *   Scheduler ──run(chunk)──► job (args: V8 → base64) ──► queue ──► worker's local Pool
 *       ▲                                                                │
 *       └── Attempt.end ◄── results list (BLPOP) ◄── RPUSH outcome ◄─────┘
 *
 * Capacity is what the workers announce. The watch (watch.ts) keeps this
 * caller's heartbeat, reads the workers, and ends or re-adds the jobs in
 * flight that the queue failed or lost; Redis or the workers away longer
 * than their timeouts end them with ClusterUnavailableError.
 *
 * Job ids are this caller's (caller-jobs.ts), registered before the add: a
 * result is taken only by the attempt whose job it was made for, whatever
 * Redis forgets. Three connections, so that nothing small waits
 * behind a payload: control (heartbeat, watch, stop marks), jobs (adds,
 * bounded by their size) and results (blocking reads).
 */
import { randomUUID } from 'node:crypto';
import type { Attempt, AttemptEnd, ChunkJob, PoolBackend } from '../engine/backend.js';
import { PoolClosedError } from '../errors.js';
import { checkSendable } from '../sendable.js';
import type { ChildStats } from '../stats.js';
import type { Announcement } from './announce.js';
import { decodeValue, encodeValue, localReport, revivePoolError, type ChunkResult, type JobData, type RemoteReport } from './codec.js';
import { ClusterUnavailableError, JobRefusedError } from './errors.js';
import { QueueKeys, type ModuleIdentity } from './identity.js';
import { openQueue, type JobQueue } from './queue.js';
import { AwakeClock } from './awake.js';
import { CallerJobs } from './caller-jobs.js';
import { closeRedis, commandBoundMs, connectRedis, reconnectRedis, type Redis } from './redis.js';
import { lostWith, notStarted, RemoteAttempt, type AttemptOwner } from './remote-attempt.js';
import { ResultReader } from './results.js';
import { ClusterWatch, type Watched } from './watch.js';

/** The cluster's settings, validated (see ClusterPoolOptions). */
export interface ClusterSettings {
  readonly redis: string;
  readonly identity: ModuleIdentity;
  readonly unavailableTimeout: number;
  readonly workerTimeout: number;
  readonly callerTtl: number;
  readonly pollInterval: number;
}

/** How long a stopped job's mark stays for a worker to see (ms). */
const cancelTtlMs = 60_000;

type State = 'running' | 'stopped';

export class ClusterBackend implements PoolBackend, AttemptOwner, Watched {
  readonly #settings: ClusterSettings;
  readonly #keys: QueueKeys;
  readonly #caller = randomUUID();
  readonly #clock = new AwakeClock();
  readonly #redis: Redis;
  readonly #jobs: Redis;
  readonly #blocking: Redis;
  readonly #queue: JobQueue;
  readonly #reader: ResultReader;
  readonly #watch: ClusterWatch;
  readonly #listeners: Array<() => void> = [];
  readonly #attempts = new Set<RemoteAttempt>();
  readonly #jobIds: CallerJobs;
  #state: State = 'running';
  #waiting = 0;
  #reruns = 0;
  #closed: Promise<void> | undefined;
  readonly stdout = undefined;
  readonly stderr = undefined;
  readonly failure = undefined;

  constructor(settings: ClusterSettings) {
    this.#settings = settings;
    this.#keys = new QueueKeys(settings.identity);
    this.#redis = connectRedis(settings.redis, 'procpool-caller');
    this.#jobs = connectRedis(settings.redis, 'procpool-caller-jobs');
    this.#blocking = connectRedis(settings.redis, 'procpool-caller-results', { atMostOnce: true });
    this.#queue = openQueue(this.#jobs, this.#redis, settings.identity.queue);
    this.#jobIds = new CallerJobs(this.#caller, this.#queue, this.#jobs, this.#clock);
    this.#reader = new ResultReader(this.#blocking, this.#keys.results(this.#caller), this.#keys.resultToken(this.#caller), (result) => this.#onResult(result));
    this.#watch = new ClusterWatch(this.#redis, this.#queue, this.#keys, this.#caller, this.#clock, { ...settings, queue: settings.identity.queue, module: settings.identity.hash }, this);
  }

  get #workers(): readonly Announcement[] {
    return this.#watch.workers;
  }

  get capacity(): number {
    if (this.#state !== 'running') return 0;
    const capacity = this.#workers.reduce((sum, worker) => sum + worker.capacity, 0);
    // Unavailable: one at a time runs, and fails at once, so nothing waits for ever.
    return this.#watch.unavailable !== undefined ? Math.max(1, capacity) : capacity;
  }

  get spare(): number {
    return 0;
  }

  get max(): number {
    return Math.max(1, this.size);
  }

  get size(): number {
    return this.#workers.reduce((sum, worker) => sum + worker.processes, 0);
  }

  get busy(): number {
    return this.#workers.filter((worker) => worker.running > 0).length;
  }

  /** Chunks that ran again after the worker running them was lost. */
  get restarts(): number {
    return this.#reruns;
  }

  get waiting(): number {
    return this.#waiting;
  }

  /** One entry per worker (not per child): pid and rss of the worker process, items it has run for anyone. */
  children(): Array<ChildStats & { idle: boolean }> {
    return this.#workers.map((worker) => ({ pid: worker.pid, items: worker.items, restarts: 0, rss: worker.rss, idle: worker.running === 0 }));
  }

  onChange(listener: () => void): void {
    this.#listeners.push(listener);
  }

  setWaiting(chunks: number): void {
    this.#waiting = chunks;
  }

  setDemand(): void {
    // Connections keep the process alive until the pool is closed, busy or not.
  }

  growTo(): void {
    // The workers decide the size.
  }

  ready(): Promise<void> {
    if (this.#state !== 'running') return Promise.resolve();
    return this.#watch.workersKnown();
  }

  /** Before any worker has announced itself, default chunking would divide by 1: calls wait for the first look. */
  sized(): Promise<void> | undefined {
    if (this.#state !== 'running' || this.#workers.length > 0) return undefined;
    // No worker at all: the call goes on and meets the pool's usual no-worker handling.
    return this.#watch.workersKnown().catch(() => undefined);
  }

  async tasks(): Promise<string[]> {
    await this.ready();
    return this.#workers[0]?.tasks ?? [];
  }

  run(job: ChunkJob): Attempt {
    const unavailable = this.#watch.unavailable;
    if (unavailable !== undefined || this.#state !== 'running') return ended(lostWith(unavailable ?? new PoolClosedError()));
    let args = job.args;
    let payload: string;
    try {
      payload = encodeValue(args);
    } catch {
      // As locally: cut before the first item that cannot cross; that item alone fails with its path.
      const root = job.spread ? 'args' : 'args[0]';
      const bad = args.findIndex((item) => checkSendable(item, root) !== undefined);
      const found = checkSendable(args[Math.max(bad, 0)], root) ?? { path: 'args', detail: 'not cloneable' };
      if (bad <= 0) return ended({ kind: 'ran', report: { values: [undefined], failures: [[0, { unsendable: found }]] }, ms: 0 });
      args = args.slice(0, bad);
      payload = encodeValue(args);
    }
    const data: JobData = {
      v: 1,
      module: this.#settings.identity.hash,
      caller: this.#caller,
      task: job.task,
      spread: job.spread,
      stopAtError: job.stopAtError,
      timeout: job.timeout ?? null,
      args: payload,
    };
    const attempt = new RemoteAttempt(this, job.exact, args.length, data);
    this.#attempts.add(attempt);
    void attempt.end.then(() => this.#attempts.delete(attempt));
    const id = this.#jobIds.register(attempt);
    this.#jobIds.add(attempt, id).then(
      () => {
        attempt.queued(id);
        if (attempt.phase === 'ended') return this.#cancel(id, attempt.wish === 'abort');
        if (attempt.wish === 'skip') this.skipAttempt(attempt);
      },
      (error: unknown) => attempt.finish(lostWith(new ClusterUnavailableError({ reason: 'redis', waited: 0, queue: this.#settings.identity.queue }, { cause: error }))),
    );
    return attempt;
  }

  skipAttempt(attempt: RemoteAttempt): void {
    if (attempt.jobId === undefined) {
      attempt.wish = 'skip';
      return;
    }
    // Removed only if no worker holds it; a started chunk runs on.
    this.#queue.remove(attempt.jobId).then(
      (removed) => removed && attempt.finish(notStarted()),
      () => undefined,
    );
  }

  abortAttempt(attempt: RemoteAttempt, _reason: unknown): void {
    attempt.wish = 'abort';
    attempt.finish({ kind: 'aborted' });
    if (attempt.jobId !== undefined) this.#cancel(attempt.jobId, true);
  }

  inFlight(): Iterable<RemoteAttempt> {
    return this.#attempts;
  }

  async resultsPending(): Promise<boolean> {
    return (await this.#clock.bound(this.#redis.llen(this.#keys.results(this.#caller)), commandBoundMs, () => new Error('LLEN unanswered'))) > 0;
  }

  readd(attempt: RemoteAttempt): void {
    // A new id: a late result of the lost one is still this chunk's (it stays registered), and no mark left for it applies.
    const id = this.#jobIds.register(attempt);
    attempt.sighting = 'readding';
    this.#jobIds.add(attempt, id).then(
      () => {
        attempt.readded(id);
        if (attempt.phase === 'ended') this.#cancel(id, attempt.wish === 'abort');
      },
      () => (attempt.sighting = 'missing'), // Redis away: the next look tries again, or the watch ends it.
    );
  }

  drop(attempt: RemoteAttempt, error: unknown): void {
    attempt.wish = 'abort';
    attempt.finish(lostWith(error));
    if (attempt.jobId !== undefined) this.#cancel(attempt.jobId, true);
  }

  changed(): void {
    for (const listener of this.#listeners) listener();
  }

  renewConnections(): void {
    // All three: a host gone without a word leaves each socket waiting for ever (a cut read is read again).
    for (const connection of [this.#redis, this.#jobs, this.#blocking]) reconnectRedis(connection);
  }

  stop(): Promise<void> {
    return (this.#closed ??= this.#shutdown());
  }

  kill(): Promise<void> {
    for (const attempt of [...this.#attempts]) attempt.abort(new PoolClosedError());
    return this.stop();
  }

  /** Takes the job off the queue if no worker holds it; else (`running`) tells its worker to stop it. */
  #cancel(jobId: string, running: boolean): void {
    if (running) {
      // The mark is what counts (workers read it); the message makes it quick.
      void this.#redis
        .multi()
        .set(this.#keys.cancelled(jobId), '1', 'PX', cancelTtlMs)
        .publish(this.#keys.cancelChannel, jobId)
        .exec()
        .catch(() => undefined);
    }
    this.#queue.remove(jobId).catch(() => undefined);
  }

  #onResult(result: ChunkResult): void {
    const attempt = this.#jobIds.attemptOf(result.job);
    if (attempt === undefined) return;
    let remote: RemoteReport;
    try {
      remote = decodeValue(result.report) as RemoteReport;
    } catch (error) {
      attempt.finish(lostWith(new JobRefusedError(`The result of job ${result.job} cannot be read: ${error instanceof Error ? error.message : String(error)}`)));
      return;
    }
    const report = localReport(remote);
    const end = remote.lost === undefined ? { kind: 'ran' as const, report, ms: result.ms } : { kind: 'lost' as const, report, error: revivePoolError(remote.lost), uncertain: false };
    if (attempt.finish(end) && result.runs > 1) this.#reruns += result.runs - 1;
  }

  async #shutdown(): Promise<void> {
    this.#state = 'stopped';
    this.#watch.stop();
    // The reader's pending BLPOP ends with its connection (it holds no handle after that).
    this.#reader.stop();
    this.#blocking.disconnect();
    if (this.#redis.status === 'ready') await within(this.#redis.del(this.#keys.caller(this.#caller), this.#keys.results(this.#caller), this.#keys.resultToken(this.#caller)), 1000);
    await within(this.#queue.close(), 1000);
    await Promise.all([closeRedis(this.#redis), closeRedis(this.#jobs)]);
    this.#clock.stop();
    this.changed();
  }
}

/** An attempt that ended before its job was added. */
function ended(end: AttemptEnd): Attempt {
  return { end: Promise.resolve(end), skip: () => undefined, abort: () => undefined };
}

/** `promise`, or nothing after `ms` (Redis may be away while the pool closes); never rejects. */
function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise.then(() => undefined, () => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]).finally(() => clearTimeout(timer));
}
