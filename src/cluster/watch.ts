/**
 * The caller's watch over the cluster, every `pollInterval`: it keeps the
 * caller's heartbeat, reads the workers, judges whether the cluster can be
 * reached, and reconciles the jobs in flight with the queue.
 *
 *   tick ─► health: Redis answered a refresh within `unavailableTimeout`?
 *       │           a worker seen within `workerTimeout` while work waits?
 *       └─► refresh (one at a time): heartbeat ─► workers ─► look at the jobs in flight
 *                                                              │
 *          failed: ends the attempt (refused, or lost too often) ◄─┤
 *          missing twice (Redis lost it): added again, or lost  ◄──┘
 *
 * Redis is judged from the last refresh that succeeded, not from the
 * connection's state: a host that vanished without closing the socket
 * looks connected for ever. A refresh that stays unanswered forces a
 * reconnection. Every time here is awake time (awake.ts): a caller whose
 * loop was blocked or that was stopped judges Redis by a fresh try after
 * the pause, never by the pause itself.
 */
import { describeVersions, readWorkers, type Announcement } from './announce.js';
import type { AwakeClock } from './awake.js';
import { ChunkLostError, ClusterUnavailableError, JobRefusedError } from './errors.js';
import type { QueueKeys } from './identity.js';
import type { JobQueue } from './queue.js';
import { checkServer, watchLink, type ConnectionProblem, type Redis } from './redis.js';
import type { RemoteAttempt } from './remote-attempt.js';
import { Waiters } from './waiters.js';

/** What the watch needs of the backend. */
export interface Watched {
  /** Attempts not yet ended (their jobs being added, waiting or running). */
  inFlight(): Iterable<RemoteAttempt>;
  /** Chunks waiting for room. */
  readonly waiting: number;
  /** Whether results wait in this caller's list, unread. */
  resultsPending(): Promise<boolean>;
  /** Adds a job Redis lost again, under the same attempt. */
  readd(attempt: RemoteAttempt): void;
  /** Ends an attempt with `error`; its job, if any, is taken off the queue or stopped. */
  drop(attempt: RemoteAttempt, error: unknown): void;
  /** Capacity or availability may have changed. */
  changed(): void;
  /** Redis has stopped answering on a connection that looks up: every connection is opened again. */
  renewConnections(): void;
}

export interface WatchSettings {
  readonly queue: string;
  /** The module's hash: only its workers count. */
  readonly module: string;
  readonly unavailableTimeout: number;
  readonly workerTimeout: number;
  readonly callerTtl: number;
  readonly pollInterval: number;
}

/** Times a job lost by Redis is added again before its chunk fails with ChunkLostError. */
const maxReadds = 2;

/** idle: no refresh under way; refreshing: one is (ticks do not start another). */
type RefreshState = 'idle' | 'refreshing';
type State = 'watching' | 'stopped';

export class ClusterWatch {
  readonly #redis: Redis;
  readonly #queue: JobQueue;
  readonly #keys: QueueKeys;
  readonly #caller: string;
  readonly #settings: WatchSettings;
  readonly #owner: Watched;
  readonly #clock: AwakeClock;
  readonly #timer: NodeJS.Timeout;
  readonly #workersSeen = new Waiters();
  /** Why the connection is down, as Redis or the system said it. */
  readonly #link: { readonly problem: ConnectionProblem | undefined };
  #state: State = 'watching';
  #refresh: RefreshState = 'idle';
  #workers: Announcement[] = [];
  /** Workers of other versions of the module (same family): named when none of this version serves. */
  #others: Announcement[] = [];
  #warned = false;
  /** The server is one procpool cannot use (Redis Cluster): refused for good. */
  #unsupported = false;
  /** When a refresh last succeeded, and when the one under way began (awake time). */
  #answeredAt: number;
  #refreshSince = 0;
  /** Since when work waits with no worker. */
  #idleSince: number | undefined;
  /** Redis or the workers stayed away too long: what a chunk now fails with. */
  #unavailable: ClusterUnavailableError | undefined;

  constructor(redis: Redis, queue: JobQueue, keys: QueueKeys, caller: string, clock: AwakeClock, settings: WatchSettings, owner: Watched) {
    this.#clock = clock;
    this.#answeredAt = clock.now();
    this.#redis = redis;
    this.#queue = queue;
    this.#keys = keys;
    this.#caller = caller;
    this.#settings = settings;
    this.#owner = owner;
    // Credentials or TLS refused: waiting would not help, so calls and ready() hear it at once.
    this.#link = watchLink(redis, {
      up: (first) => first && this.#checkServer(),
      down: (problem) => problem !== undefined && (problem.kind === 'auth' || problem.kind === 'tls') && this.#refused(problem),
    });
    this.#timer = setInterval(() => this.#tick(), settings.pollInterval);
    this.#timer.unref();
    this.#tick();
  }

  get workers(): readonly Announcement[] {
    return this.#workers;
  }

  get unavailable(): ClusterUnavailableError | undefined {
    return this.#unavailable;
  }

  /** Resolves once a worker serves the queue; rejects after `workerTimeout`, or once Redis is judged unavailable. */
  workersKnown(): Promise<void> {
    if (this.#state !== 'watching' || this.#workers.length > 0) return Promise.resolve();
    if (this.#unavailable?.reason === 'redis') return Promise.reject(this.#unavailable);
    return this.#workersSeen.wait(this.#settings.workerTimeout, () => this.#noWorker(this.#settings.workerTimeout));
  }

  stop(): void {
    this.#state = 'stopped';
    clearInterval(this.#timer);
    this.#workersSeen.resolve();
  }

  #tick(): void {
    if (this.#state !== 'watching') return;
    const now = this.#clock.now();
    const silent = now - this.#answeredAt;
    if (silent > this.#settings.unavailableTimeout) {
      this.#setUnavailable(this.#redisAway(Math.round(silent)));
      this.#workersSeen.reject(this.#unavailable);
      // Their jobs are stopped too once Redis answers (the marks wait in the connection's queue): nobody waits for them.
      for (const attempt of [...this.#owner.inFlight()]) this.#owner.drop(attempt, this.#unavailable);
    }
    this.#judgeWorkers(now);
    if (this.#refresh === 'refreshing') {
      // Unanswered for long: the socket may be open to a host that is gone. A new connection finds out.
      if (now - this.#refreshSince > this.#staleAfter && this.#redis.status === 'ready') {
        this.#refreshSince = now;
        this.#owner.renewConnections();
      }
      return;
    }
    this.#refresh = 'refreshing';
    this.#refreshSince = now;
    void this.#refreshOnce().finally(() => (this.#refresh = 'idle'));
  }

  /** How long a refresh may stay unanswered before the connection is renewed. */
  get #staleAfter(): number {
    return Math.max(2 * this.#settings.pollInterval, Math.min(this.#settings.unavailableTimeout / 2, 5000));
  }

  /** Work (waiting or in flight) with no worker for longer than `workerTimeout`: it all fails. */
  #judgeWorkers(now: number): void {
    const inFlight = [...this.#owner.inFlight()];
    const idle = this.#workers.length === 0 && (this.#owner.waiting > 0 || inFlight.length > 0);
    this.#idleSince = idle ? (this.#idleSince ?? now) : undefined;
    if (this.#idleSince === undefined || now - this.#idleSince <= this.#settings.workerTimeout) return;
    const error = this.#noWorker(Math.round(now - this.#idleSince));
    this.#setUnavailable(error);
    // Jobs already sent too: with no worker, nothing would ever end them (BullMQ's stalled check runs in workers).
    for (const attempt of inFlight) this.#owner.drop(attempt, error);
  }

  /** Redis away for `waited` ms, with what the connection last said. */
  #redisAway(waited: number): ClusterUnavailableError {
    const problem = this.#link.problem;
    return new ClusterUnavailableError({ reason: 'redis', waited, queue: this.#settings.queue, ...(problem ? { hint: problem.message } : {}) }, problem ? { cause: problem.cause } : undefined);
  }

  /** A Redis this caller cannot use (Redis Cluster) is refused; one that evicts keys is warned of. */
  #checkServer(): void {
    checkServer(this.#redis).then(
      ({ refuse, warn }) => {
        if (refuse === undefined) {
          if (warn !== undefined) process.emitWarning(`procpool: ${warn}`, { code: 'PROCPOOL_REDIS_EVICTS' });
          return;
        }
        this.#refused({ kind: 'unsupported', message: refuse, cause: new Error(refuse) });
        this.#unsupported = true;
      },
      () => undefined,
    );
  }

  /** Redis refused this caller (credentials, TLS, Redis Cluster): everything waiting ends now with why. */
  #refused(problem: ConnectionProblem): void {
    if (this.#state !== 'watching') return;
    const error = new ClusterUnavailableError({ reason: 'redis', waited: 0, queue: this.#settings.queue, hint: problem.message }, { cause: problem.cause });
    this.#setUnavailable(error);
    this.#workersSeen.reject(error);
    for (const attempt of [...this.#owner.inFlight()]) this.#owner.drop(attempt, error);
  }

  #noWorker(waited: number): ClusterUnavailableError {
    return new ClusterUnavailableError({ reason: 'no-worker', waited, queue: this.#settings.queue, ...this.#versions() });
  }

  /** What other versions serve the module's file, when some do. */
  #versions(): { hint?: string } {
    if (this.#others.length === 0) return {};
    return { hint: `workers of other versions of this module serve it: module hash ${describeVersions(this.#others)}; this caller's module has hash ${this.#settings.module} (start workers with the same file content)` };
  }

  /** Said once, while work waits: only other versions serve (a rolling deploy, or a caller with a stale file). */
  #warnOthers(): void {
    if (this.#warned || this.#workers.length > 0 || this.#others.length === 0 || (this.#owner.waiting === 0 && [...this.#owner.inFlight()].length === 0)) return;
    this.#warned = true;
    process.emitWarning(`procpool: no worker serves queue "${this.#settings.queue}" yet; ${this.#versions().hint!}`, { code: 'PROCPOOL_OTHER_VERSIONS' });
  }

  #setUnavailable(error: ClusterUnavailableError | undefined): void {
    // A server this caller cannot use stays refused, whatever it answers.
    if (this.#unsupported) return;
    if ((error === undefined) === (this.#unavailable === undefined)) return;
    this.#unavailable = error;
    this.#owner.changed();
  }

  /** Heartbeat, workers, and the jobs in flight. */
  async #refreshOnce(): Promise<void> {
    try {
      // The heartbeat, and the results list's life with it: left by a caller that died, it expires.
      const ttl = this.#settings.callerTtl;
      await this.#redis.multi().set(this.#keys.caller(this.#caller), '1', 'PX', ttl).pexpire(this.#keys.results(this.#caller), ttl).pexpire(this.#keys.resultToken(this.#caller), ttl).exec();
      const { serving: workers, others } = await readWorkers(this.#redis, this.#keys, this.#settings.module);
      if (this.#state !== 'watching') return;
      this.#answeredAt = this.#clock.now();
      const before = this.#workers.reduce((sum, worker) => sum + worker.capacity, 0);
      this.#workers = workers;
      this.#others = others;
      this.#warnOthers();
      if (workers.length > 0 || this.#unavailable?.reason === 'redis') this.#setUnavailable(undefined);
      if (workers.length > 0) this.#workersSeen.resolve();
      if (workers.reduce((sum, worker) => sum + worker.capacity, 0) !== before) this.#owner.changed();
      await this.#reconcile();
    } catch {
      // Redis away or silent (a command timed out): judged from the last answer.
    }
  }

  /** Jobs in flight for more than a tick: failed ones end their attempts, lost ones are added again. */
  async #reconcile(): Promise<void> {
    const due = performance.now() - this.#settings.pollInterval;
    const attempts = [...this.#owner.inFlight()].filter((attempt) => attempt.phase === 'queued' && attempt.sighting !== 'readding' && attempt.addedAt < due);
    if (attempts.length === 0) return;
    const sightings = await this.#queue.inspect(attempts.map((attempt) => attempt.jobId!));
    let pending: boolean | undefined;
    for (const [i, attempt] of attempts.entries()) {
      const sighting = sightings[i]!;
      if (sighting.state === 'failed') {
        const error = /stalled more than/.test(sighting.reason) ? new ChunkLostError(`Chunk lost: its worker went away too many times (${sighting.reason})`) : new JobRefusedError(`A worker refused the chunk: ${sighting.reason}`);
        this.#owner.drop(attempt, error);
      } else if (sighting.state === 'queued') attempt.sighting = 'seen';
      else if (attempt.sighting === 'seen') attempt.sighting = 'missing';
      else {
        // Gone twice without a result (completed with its result lost, or Redis lost the job): it runs again.
        pending ??= await this.#owner.resultsPending();
        if (pending) continue;
        if (attempt.readds < maxReadds) this.#owner.readd(attempt);
        else this.#owner.drop(attempt, new ChunkLostError(`Chunk lost: job ${attempt.jobId!} vanished from Redis ${maxReadds + 1} times (${sighting.state === 'completed' ? 'finished, its result lost' : 'the job itself lost'})`));
      }
    }
  }
}
