/**
 * A worker: a local Pool of children for one module, fed from the module's
 * queue. It announces itself (capacity, task names) with a short TTL, runs
 * each job's chunk on its pool, and pushes the outcome to the caller's
 * results list. It drops jobs whose caller is gone or asked to stop them,
 * and refuses (fails) jobs made for another version of the module or that
 * it cannot read — and serves on.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { taskNames } from '../internal.js';
import { Pool } from '../pool.js';
import { moduleUrl } from '../task-ref.js';
import { announce, withdraw, type Announcement } from './announce.js';
import { encodeValue, readArgs, readJobData, type ChunkResult, type RemoteReport } from './codec.js';
import { JobRefusedError } from './errors.js';
import { checkQueueName, moduleIdentity, QueueKeys, type ModuleIdentity } from './identity.js';
import { defaultTiming, takeJobs, type DeliveryTiming, type JobTaker, type RunEnd, type TakenJob } from './queue.js';
import { checkRedisUrl, checkServer, closeRedis, connectRedis, showRedisUrl, watchLink, withoutRedisSecret, type Redis } from './redis.js';
import { ResultPush } from './push.js';
import { mergeable, runChunk, runMerged, type Member } from './run-chunk.js';
import { Slots } from './slots.js';
import { aborted, deferred, within } from './waiters.js';
import { workerLogs, type Logs } from './worker-log.js';

/** Options of `serve()` (and of `procpool worker`). */
export interface ServeOptions {
  module: string | URL;
  /** redis:// or rediss:// URL. */
  redis: string;
  /** Children of the local pool. @default os.availableParallelism() */
  processes?: number;
  /** Serve this queue instead of `<file name>-<hash>`; jobs for another module hash are still refused. */
  queue?: string;
  /** Node flags of the children (tsx's loader for a .ts module). */
  nodeOptions?: readonly string[];
  /** How soon a lost worker's chunk runs elsewhere: lock 5 s, stalled check every 1.5 s, 1 stall allowed. */
  timing?: Partial<DeliveryTiming>;
  /** Where the worker says what it does. @default none */
  log?: (line: string) => void;
  /** Also log BullMQ's own messages (locks it could not renew, jobs gone when it came to finish them). @default false */
  verbose?: boolean;
  /** Aborted while the worker waits for Redis at start: serve() stops it and rejects with the signal's reason. */
  signal?: AbortSignal;
  /** The children's environment, less PROCPOOL_REDIS and any variable holding the Redis URL or password. @default process.env */
  env?: Readonly<Record<string, string | undefined>>;
}

/** A running worker. */
export interface Server {
  readonly id: string;
  readonly queue: string;
  readonly tasks: readonly string[];
  /** Chunks and items run so far; `reruns`: chunks that had run before on a worker that was lost. */
  readonly served: { readonly chunks: number; readonly items: number; readonly reruns: number };
  /** Takes no more jobs, finishes the running ones, then stops its children. */
  stop(): Promise<void>;
  /** Stops now; its running jobs go back to the queue at once, to run on another worker. */
  kill(): Promise<void>;
}

/** The announcement's TTL; renewed every third of it. */
const announceTtlMs = 3000;
/** A stopping worker's last words to Redis (results, jobs' ends, leaving): this long while it answers, less while it is away. */
const lastWordsMs = { up: 10_000, down: 2000 };

/**
 * serving; draining: takes no more jobs, running ones finish; releasing:
 * running jobs stop and go back to the queue (a forced stop); stopped.
 */
type State = 'serving' | 'draining' | 'releasing' | 'stopped';

/** A running job: running, stopped (its caller asked, or is gone; its lock was lost), or released back to the queue. */
type RunState = 'running' | 'stopped' | 'released';

interface Running {
  readonly controller: AbortController;
  readonly caller: string;
  state: RunState;
}

class Worker implements Server {
  readonly id = randomUUID();
  readonly queue: string;
  readonly tasks: readonly string[];
  readonly served = { chunks: 0, items: 0, reruns: 0 };
  readonly #identity: ModuleIdentity;
  readonly #keys: QueueKeys;
  readonly #pool: Pool;
  readonly #redis: Redis;
  /** Results go out on their own connection: lock renewals (on #redis) never wait behind a payload. */
  readonly #results: Redis;
  readonly #subscriber: Redis;
  readonly #taker: JobTaker;
  /** Jobs waiting for a child; a one-item job waits as a member another one-item job may take into its chunk. */
  readonly #slots: Slots<Member | undefined>;
  readonly #push: ResultPush;
  readonly #running = new Map<string, Running>();
  /** Jobs being taken or run, until their processor returns. */
  readonly #taking = new Set<Promise<unknown>>();
  /** When each caller's heartbeat was last seen (performance.now()): read once a beat, not once a job. */
  readonly #callersSeen = new Map<string, number>();
  /** Chunks on the local pool, until they end there. */
  readonly #local = new Set<Promise<unknown>>();
  readonly #beat: NodeJS.Timeout;
  readonly #log: Logs;
  readonly #processes: number;
  /** Resolves once Redis answered and is fit to serve; rejects when it is not (Redis Cluster). */
  readonly started: Promise<void>;
  /** Resolved by a forced stop: nothing more is waited for. */
  readonly #forced: { promise: Promise<void>; resolve(): void };
  #state: State = 'serving';
  #stopped: Promise<void> | undefined;

  constructor(identity: ModuleIdentity, pool: Pool, tasks: string[], redisUrl: string, timing: DeliveryTiming, log: Logs) {
    this.#identity = identity;
    this.queue = identity.queue;
    this.tasks = tasks;
    this.#keys = new QueueKeys(identity);
    this.#pool = pool;
    this.#processes = pool.stats.processes;
    this.#slots = new Slots<Member | undefined>(this.#processes);
    this.#log = log;
    this.#forced = deferred();
    this.#redis = connectRedis(redisUrl, 'procpool-worker');
    this.#results = connectRedis(redisUrl, 'procpool-worker-results');
    const shown = showRedisUrl(redisUrl);
    const started = deferred();
    this.started = started.promise;
    watchLink(this.#redis, {
      up: (first) => {
        if (!first) log.info(`procpool worker: connected to Redis again; serving`);
        else {
          const serving = (): void => {
            log.info(`procpool worker: serving ${identity.url} (exports: ${tasks.join(', ') || 'none'}) with ${this.#processes} children on queue "${identity.queue}" at ${shown}`);
            started.resolve();
          };
          checkServer(this.#redis).then(
            ({ refuse, warn }) => {
              if (refuse !== undefined) return started.reject(new Error(`procpool worker: ${refuse}`));
              if (warn !== undefined) log.info(`procpool worker: warning: ${warn}`);
              serving();
            },
            // Gone again before it answered (or INFO not allowed): served all the same; a refusal needs an answer.
            serving,
          );
        }
        void this.#heartbeat();
      },
      down: (problem, wasUp) =>
        log.info(wasUp ? `procpool worker: lost its connection to Redis at ${shown}${problem ? `: ${problem.message}` : ''}; retrying every second` : `procpool worker: cannot reach Redis at ${shown}: ${problem?.message ?? 'no answer'}; retrying every second`),
    });
    this.#push = new ResultPush(this.#results, this.#keys);
    this.#subscriber = connectRedis(redisUrl, 'procpool-worker-cancel');
    void this.#subscriber.subscribe(this.#keys.cancelChannel).catch(() => undefined);
    this.#subscriber.on('message', (_channel: string, jobId: string) => this.#end(jobId, 'stopped'));
    this.#taker = takeJobs(this.#redis, identity.queue, this.#slots.taken, timing, (job) => this.#run(job), {
      onError: (error) => log.internal(error),
      onLockLost: (ids) => {
        // The queue may hand these to another worker already: this run's outcome would be a duplicate.
        log.info(`procpool worker: lost the lock of job(s) ${ids.join(', ')} (Redis was slow or away); stopping them here: they run again elsewhere`);
        for (const id of ids) this.#end(id, 'stopped');
      },
    });
    this.#beat = setInterval(() => void this.#heartbeat(), announceTtlMs / 3);
  }

  stop(): Promise<void> {
    if (this.#state === 'serving') {
      this.#state = 'draining';
      // Taken but not started: back to the queue, for another worker.
      this.#slots.release();
    }
    return (this.#stopped ??= this.#leave());
  }

  kill(): Promise<void> {
    if (this.#state === 'serving' || this.#state === 'draining') {
      this.#state = 'releasing';
      this.#slots.release();
      this.#forced.resolve();
      // Each running job's processor moves it back to the queue while this worker still holds its lock.
      for (const id of [...this.#running.keys()]) this.#end(id, 'released');
    }
    return (this.#stopped ??= this.#leave());
  }

  #callerFresh(caller: string): boolean {
    const seen = this.#callersSeen.get(caller);
    return seen !== undefined && performance.now() - seen < announceTtlMs / 3;
  }

  /** Stops one running job: `stopped` drops it, `released` gives it back to the queue. */
  #end(jobId: string, state: Exclude<RunState, 'running'>): void {
    const running = this.#running.get(jobId);
    if (running === undefined || running.state !== 'running') return;
    running.state = state;
    running.controller.abort();
  }

  /**
   * Takes no more jobs; running chunks finish (draining) or stop (releasing);
   * then Redis gets a bounded time for the results and the jobs' ends — the
   * jobs it never hears about run again elsewhere once their locks lapse.
   */
  async #leave(): Promise<void> {
    // Not forced: BullMQ would record the released jobs as completed. Their processors return quickly once released.
    const closing = this.#taker.close(false).catch(() => undefined);
    await Promise.race([Promise.allSettled([...this.#local]), this.#forced.promise]);
    const grace = this.#redis.status === 'ready' ? lastWordsMs.up : lastWordsMs.down;
    await within(Promise.allSettled([closing, ...this.#taking]), grace, this.#forced.promise);
    const releasing = this.#state === 'releasing';
    this.#state = 'stopped';
    clearInterval(this.#beat);
    if (this.#redis.status === 'ready') await within(withdraw(this.#redis, this.#keys, this.id), 1000);
    if (releasing) await this.#pool.terminate();
    else {
      this.#pool.close();
      await this.#pool.join();
    }
    // Whatever still waits for Redis ends with the connections.
    await Promise.all([closeRedis(this.#subscriber), closeRedis(this.#results), closeRedis(this.#redis)]);
    await within(closing, 1000);
  }

  /** A chunk took `ms` (per job): BullMQ takes as many as the new depth asks. */
  #timed(ms: number): void {
    if (this.#slots.timed(ms)) this.#taker.setConcurrency(this.#slots.taken);
  }

  /**
   * A one-item job given a child takes the waiting one-item jobs of its kind
   * along (while chunks are short): one local chunk, one message to the
   * child, each job settled with its own item.
   */
  #runMembers(first: Member): void {
    const members = [first, ...this.#slots.adopt((member): member is Member => member !== undefined && mergeable(first.data, member.data), this.#slots.merged - 1)];
    const started = performance.now();
    const run = runMerged(this.#pool, members)
      .catch(() => undefined)
      .finally(() => {
        // Any member still unsettled (an unexpected end) is dropped, not left waiting.
        for (const member of members) member.settle(undefined);
        this.#local.delete(run);
        this.#slots.free();
        this.#timed((performance.now() - started) / members.length);
      });
    this.#local.add(run);
  }

  async #heartbeat(): Promise<void> {
    // Callers are checked while running chunks finish (stopping), announcements only while serving.
    if (this.#state === 'stopped' || this.#redis.status !== 'ready') return;
    const me: Announcement = {
      id: this.id,
      host: hostname(),
      pid: process.pid,
      processes: this.#processes,
      capacity: this.#slots.taken,
      module: this.#identity.hash,
      tasks: [...this.tasks],
      items: this.served.items,
      running: this.#running.size,
      rss: process.memoryUsage.rss(),
    };
    try {
      if (this.#state === 'serving') await announce(this.#redis, this.#keys, me, announceTtlMs);
      // One MGET: stop marks of the running jobs (a stop message can be missed: pub/sub keeps nothing), and
      // their callers' heartbeats (a caller that died: its chunks stop, their outcome would have no reader).
      const jobs = [...this.#running.entries()];
      if (jobs.length === 0) return;
      const callers = [...new Set(jobs.map(([, running]) => running.caller))];
      const values = await this.#redis.mget([...jobs.map(([id]) => this.#keys.cancelled(id)), ...callers.map((caller) => this.#keys.caller(caller))]);
      const now = performance.now();
      this.#callersSeen.clear();
      callers.forEach((caller, i) => values[jobs.length + i] !== null && this.#callersSeen.set(caller, now));
      for (const [i, [id, running]] of jobs.entries()) {
        if (values[i] !== null || !this.#callersSeen.has(running.caller)) this.#end(id, 'stopped');
      }
    } catch {
      // Redis is away: ioredis reconnects, the next beat announces again.
    }
  }

  /** One job: refused, dropped, released, or run and its outcome pushed. Throwing fails the job with that message. */
  async #run(job: TakenJob): Promise<RunEnd> {
    const taking = this.#take(job);
    this.#taking.add(taking);
    try {
      return await taking;
    } catch (error) {
      if (error instanceof JobRefusedError) this.#log.info(`procpool worker: refused job ${job.id}: ${error.message}`);
      throw error;
    } finally {
      this.#taking.delete(taking);
    }
  }

  async #take(job: TakenJob): Promise<RunEnd> {
    const data = readJobData(job.data);
    if (data.module !== this.#identity.hash) {
      throw new JobRefusedError(`This worker serves another version of the module: the job is for module hash ${data.module}, ${this.#identity.url} here has hash ${this.#identity.hash}`);
    }
    const args = readArgs(data);
    // Registered before the marks are read: a stop message from then on reaches it, one before left its mark.
    const running: Running = { controller: new AbortController(), caller: data.caller, state: 'running' };
    this.#running.set(job.id, running);
    let slot = false;
    try {
      // Its caller is gone or stopped it: dropped (the job completes and is removed). A caller seen within a
      // beat is taken as there (its jobs' stop marks are read with the next beat, and stop messages reach them).
      if (!this.#callerFresh(data.caller)) {
        const [alive, cancelled] = await this.#redis.mget(this.#keys.caller(data.caller), this.#keys.cancelled(job.id));
        if (alive === null || cancelled !== null) return 'done';
        this.#callersSeen.set(data.caller, performance.now());
      }
      // Taken ahead: it waits for a free child here (or joins another one-item job's chunk); a stopping worker gives it back unstarted.
      let settled!: (outcome: Outcome | undefined) => void;
      const outcome = new Promise<Outcome | undefined>((resolve) => (settled = resolve));
      const signal = running.controller.signal;
      const member: Member | undefined = args.length === 1 ? { data, args, signal, state: () => running.state, settle: settled } : undefined;
      const grant = await this.#slots.take(member);
      if (grant === 'refused') return 'returned';
      if (grant === 'slot' && member !== undefined) this.#runMembers(member);
      else if (grant === 'slot') {
        slot = true;
        const started = performance.now();
        const chunk = runChunk(this.#pool, data, args, signal);
        this.#local.add(chunk);
        const report = await chunk.finally(() => this.#local.delete(chunk));
        this.#slots.free();
        slot = false;
        this.#timed(performance.now() - started);
        settled(report === undefined ? undefined : { report, ms: performance.now() - started });
      }
      const ran = await outcome;
      if (running.state === 'released') return 'released';
      if (ran === undefined) return 'done';
      this.served.chunks++;
      this.served.items += ran.report.values.length;
      if (job.runs > 1) this.served.reruns++;
      const result: ChunkResult = { job: job.id, runs: job.runs, report: encodeValue(ran.report), ms: ran.ms };
      // Only for a caller still there; the list lives as long as its heartbeat (the caller extends both).
      // A copy whose lock is no longer its own was superseded: the push also stops the other copy.
      await this.#push.push(data.caller, { jobId: job.id, text: JSON.stringify(result), lock: job.lock });
      return 'done';
    } finally {
      if (slot) this.#slots.free();
      this.#running.delete(job.id);
    }
  }
}

/** A chunk's report and run time on this worker. */
interface Outcome {
  readonly report: RemoteReport;
  readonly ms: number;
}

/** Starts a worker: its children load the module; resolves (and says "serving") once Redis answers; rejects on a Redis it cannot use (Redis Cluster). */
export async function serve(options: ServeOptions): Promise<Server> {
  const url = moduleUrl(options.module);
  const redis = checkRedisUrl(options.redis);
  const identity = moduleIdentity(url, checkQueueName(options.queue));
  const log = options.log ?? (() => undefined);
  const timing: DeliveryTiming = { ...defaultTiming, ...options.timing };
  const pool = new Pool(url, {
    ...(options.processes === undefined ? {} : { processes: options.processes }),
    ...(options.nodeOptions === undefined ? {} : { nodeOptions: options.nodeOptions }),
    // The task processes never see where Redis is, nor its password.
    env: withoutRedisSecret(options.env ?? process.env, redis),
  });
  let tasks: string[];
  try {
    await pool.ready();
    tasks = await pool[taskNames]();
  } catch (error) {
    await pool.terminate();
    throw error;
  }
  const worker = new Worker(identity, pool, tasks, redis, timing, workerLogs(log, options.verbose === true));
  const signal = options.signal;
  try {
    await (signal === undefined ? worker.started : Promise.race([worker.started, aborted(signal)]));
  } catch (error) {
    await worker.kill();
    throw error;
  }
  return worker;
}
