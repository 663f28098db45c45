/**
 * The cluster backend: chunks become BullMQ jobs that `procpool worker`
 * processes take; their outcomes come back on this caller's results list.
 *
 *   Scheduler ──run(chunk)──► job (args: V8 → base64) ──► queue ──► worker's local Pool
 *       ▲                                                                │
 *       └── Attempt.end ◄── results list (BLPOP) ◄── RPUSH outcome ◄─────┘
 *
 * Capacity is what the workers announce. A tick (every `pollInterval`)
 * keeps this caller's heartbeat, reads the workers, and reconciles the jobs
 * in flight with the queue: a job that failed (refused, stalled too often)
 * or vanished (Redis restarted empty) ends its attempt; Redis away longer
 * than `unavailableTimeout` ends them all with ClusterUnavailableError.
 */
import { randomUUID } from 'node:crypto';
import type { Attempt, ChunkJob, PoolBackend } from '../engine/backend.js';
import { PoolClosedError } from '../errors.js';
import { checkSendable } from '../sendable.js';
import type { ChildStats } from '../stats.js';
import { readWorkers, type Announcement } from './announce.js';
import { decodeValue, encodeValue, localReport, revivePoolError, type ChunkResult, type JobData, type RemoteReport } from './codec.js';
import { ChunkLostError, ClusterUnavailableError, JobRefusedError } from './errors.js';
import { QueueKeys, type ModuleIdentity } from './identity.js';
import { openQueue, type JobQueue } from './queue.js';
import { closeRedis, connectRedis, type Redis } from './redis.js';
import { lostWith, notStarted, RemoteAttempt, type AttemptOwner } from './remote-attempt.js';
import { ResultReader } from './results.js';
import { Waiters } from './waiters.js';

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

export class ClusterBackend implements PoolBackend, AttemptOwner {
  readonly #settings: ClusterSettings;
  readonly #keys: QueueKeys;
  readonly #caller = randomUUID();
  readonly #redis: Redis;
  readonly #blocking: Redis;
  readonly #queue: JobQueue;
  readonly #reader: ResultReader;
  readonly #listeners: Array<() => void> = [];
  readonly #attempts = new Set<RemoteAttempt>();
  readonly #byJob = new Map<string, RemoteAttempt>();
  readonly #ready = new Waiters();
  readonly #tick: NodeJS.Timeout;
  #state: State = 'running';
  #workers: Announcement[] = [];
  #waiting = 0;
  #refreshing = false;
  /** Since when Redis is down / work waits with no worker (performance.now()). */
  #downSince: number | undefined;
  #idleSince: number | undefined;
  /** Redis or the workers stayed away too long: what a chunk now fails with. */
  #unavailable: ClusterUnavailableError | undefined;
  #reruns = 0;
  #closed: Promise<void> | undefined;
  readonly stdout = undefined;
  readonly stderr = undefined;
  readonly failure = undefined;

  constructor(settings: ClusterSettings) {
    this.#settings = settings;
    this.#keys = new QueueKeys(settings.identity.queue);
    this.#redis = connectRedis(settings.redis, 'procpool-caller');
    this.#blocking = connectRedis(settings.redis, 'procpool-caller-results');
    this.#queue = openQueue(this.#redis, settings.identity.queue);
    this.#reader = new ResultReader(this.#blocking, this.#keys.results(this.#caller), (result) => this.#onResult(result));
    this.#tick = setInterval(() => this.#onTick(), settings.pollInterval);
    this.#tick.unref();
    this.#onTick();
  }

  get capacity(): number {
    if (this.#state !== 'running') return 0;
    const capacity = this.#workers.reduce((sum, worker) => sum + worker.capacity, 0);
    // Unavailable: one at a time runs, and fails at once, so nothing waits for ever.
    return this.#unavailable !== undefined ? Math.max(1, capacity) : capacity;
  }

  get spare(): number {
    return 0;
  }

  get max(): number {
    return Math.max(1, this.#workers.reduce((sum, worker) => sum + worker.processes, 0));
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
    if (this.#workers.length > 0) return Promise.resolve();
    return this.#ready.wait(this.#settings.workerTimeout, () => this.#noWorker(this.#settings.workerTimeout)).then(() => undefined);
  }

  async tasks(): Promise<string[]> {
    await this.ready();
    return this.#workers[0]?.tasks ?? [];
  }

  run(job: ChunkJob): Attempt {
    const attempt = new RemoteAttempt(this, job.exact, job.args.length);
    if (this.#unavailable !== undefined || this.#state !== 'running') {
      attempt.finish(lostWith(this.#unavailable ?? new PoolClosedError()));
      return attempt;
    }
    let args = job.args;
    let payload: string;
    try {
      payload = encodeValue(args);
    } catch {
      // As locally: cut before the first item that cannot cross; that item alone fails with its path.
      const root = job.spread ? 'args' : 'args[0]';
      const bad = args.findIndex((item) => checkSendable(item, root) !== undefined);
      const found = checkSendable(args[Math.max(bad, 0)], root) ?? { path: 'args', detail: 'not cloneable' };
      if (bad <= 0) {
        attempt.finish({ kind: 'ran', report: { values: [undefined], failures: [[0, { unsendable: found }]] }, ms: 0 });
        return attempt;
      }
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
    this.#attempts.add(attempt);
    void attempt.end.then(() => {
      this.#attempts.delete(attempt);
      if (attempt.jobId !== undefined) this.#byJob.delete(attempt.jobId);
    });
    this.#queue.add(job.task, data).then(
      (id) => {
        attempt.queued(id);
        if (attempt.phase === 'ended') return this.#cancel(id, attempt.wish === 'abort');
        this.#byJob.set(id, attempt);
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
    const attempt = this.#byJob.get(result.job);
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

  #changed(): void {
    for (const listener of this.#listeners) listener();
  }

  #onTick(): void {
    if (this.#state !== 'running') return;
    const now = performance.now();
    if (this.#redis.status === 'ready') this.#downSince = undefined;
    else this.#downSince ??= now;
    const down = this.#downSince === undefined ? 0 : now - this.#downSince;
    if (down > this.#settings.unavailableTimeout) {
      this.#setUnavailable(new ClusterUnavailableError({ reason: 'redis', waited: Math.round(down), queue: this.#settings.identity.queue }));
      for (const attempt of this.#attempts) attempt.finish(lostWith(this.#unavailable));
    }
    const idle = this.#waiting > 0 && this.#workers.length === 0;
    this.#idleSince = idle ? (this.#idleSince ?? now) : undefined;
    if (this.#idleSince !== undefined && now - this.#idleSince > this.#settings.workerTimeout) this.#setUnavailable(this.#noWorker(Math.round(now - this.#idleSince)));
    if (this.#downSince === undefined && !this.#refreshing) {
      this.#refreshing = true;
      void this.#refresh().finally(() => (this.#refreshing = false));
    }
  }

  #noWorker(waited: number): ClusterUnavailableError {
    return new ClusterUnavailableError({ reason: 'no-worker', waited, queue: this.#settings.identity.queue });
  }

  #setUnavailable(error: ClusterUnavailableError | undefined): void {
    if ((error === undefined) === (this.#unavailable === undefined)) return;
    this.#unavailable = error;
    this.#changed();
  }

  /** Heartbeat, workers, and the jobs in flight. */
  async #refresh(): Promise<void> {
    try {
      // The heartbeat, and the results list's life with it: left by a caller that died, it expires.
      await this.#redis.multi().set(this.#keys.caller(this.#caller), '1', 'PX', this.#settings.callerTtl).pexpire(this.#keys.results(this.#caller), this.#settings.callerTtl).exec();
      const workers = await readWorkers(this.#redis, this.#keys);
      const before = this.capacity;
      this.#workers = workers;
      if (this.#redis.status === 'ready' && (workers.length > 0 || this.#unavailable?.reason === 'redis')) this.#setUnavailable(undefined);
      if (workers.length > 0) this.#ready.resolve();
      if (this.capacity !== before) this.#changed();
      await this.#reconcile();
    } catch {
      // Redis went away meanwhile: the next tick sees it.
    }
  }

  /** Jobs in flight for more than a tick: failed ones and vanished ones end their attempts. */
  async #reconcile(): Promise<void> {
    const due = performance.now() - this.#settings.pollInterval;
    const attempts = [...this.#byJob.values()].filter((attempt) => attempt.addedAt < due);
    if (attempts.length === 0) return;
    const states = await Promise.all(attempts.map((attempt) => this.#queue.state(attempt.jobId!)));
    for (const [i, attempt] of attempts.entries()) {
      const state = states[i];
      if (state === 'failed') {
        const reason = (await this.#queue.failedReason(attempt.jobId!)) ?? 'unknown reason';
        void this.#queue.remove(attempt.jobId!).catch(() => undefined);
        const error = /stalled more than/.test(reason) ? new ChunkLostError(`Chunk lost: its worker went away too many times (${reason})`) : new JobRefusedError(`A worker refused the chunk: ${reason}`);
        attempt.finish(lostWith(error));
      } else if (state === 'unknown') {
        // Gone without a result: its result may be on its way (pushed before the job was removed); judged again next tick.
        if (++attempt.missing < 2 || (await this.#redis.llen(this.#keys.results(this.#caller))) > 0) continue;
        attempt.finish(attempt.exact ? lostWith(new ChunkLostError(`Chunk lost: job ${attempt.jobId!} vanished from Redis twice`)) : { kind: 'lost', report: { values: [], failures: [] }, error: new ChunkLostError('Chunk lost: its job vanished from Redis'), uncertain: true });
      } else attempt.missing = 0;
    }
  }

  async #shutdown(): Promise<void> {
    this.#state = 'stopped';
    clearInterval(this.#tick);
    this.#ready.resolve();
    // The reader's pending BLPOP ends with its connection (it holds no handle after that).
    this.#reader.stop();
    this.#blocking.disconnect();
    if (this.#redis.status === 'ready') await within(this.#redis.del(this.#keys.caller(this.#caller), this.#keys.results(this.#caller)), 1000);
    await within(this.#queue.close(), 1000);
    await closeRedis(this.#redis);
    this.#changed();
  }
}

/** `promise`, or nothing after `ms` (Redis may be away while the pool closes); never rejects. */
function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise.then(() => undefined, () => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]).finally(() => clearTimeout(timer));
}
