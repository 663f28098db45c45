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
import { serializeThrown } from '../error-codec.js';
import { TaskTimeoutError, WorkerExitError } from '../errors.js';
import { settleEach, taskNames } from '../internal.js';
import { Pool } from '../pool.js';
import { moduleUrl } from '../task-ref.js';
import { announce, withdraw, type Announcement } from './announce.js';
import { encodeValue, readArgs, readJobData, remoteFailure, type ChunkResult, type JobData, type RemoteReport } from './codec.js';
import { JobRefusedError } from './errors.js';
import { checkQueueName, moduleIdentity, QueueKeys, type ModuleIdentity } from './identity.js';
import { defaultTiming, takeJobs, type DeliveryTiming, type JobTaker, type RunEnd, type TakenJob } from './queue.js';
import { checkRedisUrl, closeRedis, connectRedis, showRedisUrl, type Redis } from './redis.js';

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

/** Chunks taken at once per child: the next one is at hand when one ends. */
const depth = 2;
/** The announcement's TTL; renewed every third of it. */
const announceTtlMs = 3000;

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
  readonly #running = new Map<string, Running>();
  /** Jobs being taken or run, until their processor returns. */
  readonly #taking = new Set<Promise<unknown>>();
  readonly #beat: NodeJS.Timeout;
  readonly #log: (line: string) => void;
  readonly #processes: number;
  #state: State = 'serving';
  #stopped: Promise<void> | undefined;

  constructor(identity: ModuleIdentity, pool: Pool, tasks: string[], redisUrl: string, timing: DeliveryTiming, log: (line: string) => void) {
    this.#identity = identity;
    this.queue = identity.queue;
    this.tasks = tasks;
    this.#keys = new QueueKeys(identity.queue);
    this.#pool = pool;
    this.#processes = pool.stats.processes;
    this.#log = log;
    this.#redis = connectRedis(redisUrl, 'procpool-worker');
    this.#results = connectRedis(redisUrl, 'procpool-worker-results');
    this.#subscriber = connectRedis(redisUrl, 'procpool-worker-cancel');
    void this.#subscriber.subscribe(this.#keys.cancelChannel).catch(() => undefined);
    this.#subscriber.on('message', (_channel: string, jobId: string) => this.#end(jobId, 'stopped'));
    this.#taker = takeJobs(this.#redis, identity.queue, this.#processes * depth, timing, (job) => this.#run(job), {
      onError: (error) => log(`procpool worker: queue error: ${error.message}`),
      onLockLost: (ids) => {
        // The queue may hand these to another worker already: this run's outcome would be a duplicate.
        log(`procpool worker: lost the lock of job(s) ${ids.join(', ')}; stopping them here (they run again elsewhere)`);
        for (const id of ids) this.#end(id, 'stopped');
      },
    });
    this.#beat = setInterval(() => void this.#heartbeat(), announceTtlMs / 3);
    void this.#heartbeat();
  }

  stop(): Promise<void> {
    if (this.#state === 'serving') this.#state = 'draining';
    return (this.#stopped ??= this.#leave());
  }

  kill(): Promise<void> {
    if (this.#state === 'serving' || this.#state === 'draining') {
      this.#state = 'releasing';
      // Each running job's processor moves it back to the queue while this worker still holds its lock.
      for (const id of [...this.#running.keys()]) this.#end(id, 'released');
    }
    return (this.#stopped ??= this.#leave());
  }

  /** Stops one running job: `stopped` drops it, `released` gives it back to the queue. */
  #end(jobId: string, state: Exclude<RunState, 'running'>): void {
    const running = this.#running.get(jobId);
    if (running === undefined || running.state !== 'running') return;
    running.state = state;
    running.controller.abort();
  }

  /** Takes no more jobs; running ones finish (draining) or go back to the queue (releasing); then the children stop. */
  async #leave(): Promise<void> {
    // Not forced: BullMQ would record the released jobs as completed. Their processors return quickly once released.
    await this.#taker.close(false);
    await Promise.allSettled([...this.#taking]);
    const releasing = this.#state === 'releasing';
    this.#state = 'stopped';
    clearInterval(this.#beat);
    if (this.#redis.status === 'ready') await withdraw(this.#redis, this.#keys, this.id).catch(() => undefined);
    if (releasing) await this.#pool.terminate();
    else {
      this.#pool.close();
      await this.#pool.join();
    }
    await Promise.all([closeRedis(this.#subscriber), closeRedis(this.#results), closeRedis(this.#redis)]);
  }

  async #heartbeat(): Promise<void> {
    // Callers are checked while running chunks finish (stopping), announcements only while serving.
    if (this.#state === 'stopped' || this.#redis.status !== 'ready') return;
    const me: Announcement = {
      id: this.id,
      host: hostname(),
      pid: process.pid,
      processes: this.#processes,
      capacity: this.#processes * depth,
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
      for (const [i, [id, running]] of jobs.entries()) {
        if (values[i] !== null || values[jobs.length + callers.indexOf(running.caller)] === null) this.#end(id, 'stopped');
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
      if (error instanceof JobRefusedError) this.#log(`procpool worker: refused job ${job.id}: ${error.message}`);
      throw error;
    } finally {
      this.#taking.delete(taking);
    }
  }

  async #take(job: TakenJob): Promise<RunEnd> {
    // Taken while the worker was being stopped at once: straight back to the queue.
    if (this.#state === 'releasing') return 'released';
    const data = readJobData(job.data);
    if (data.module !== this.#identity.hash) {
      throw new JobRefusedError(`This worker serves another version of the module: the job is for module hash ${data.module}, ${this.#identity.url} here has hash ${this.#identity.hash}`);
    }
    const args = readArgs(data);
    // Registered before the marks are read: a stop message from then on reaches it, one before left its mark.
    const running: Running = { controller: new AbortController(), caller: data.caller, state: 'running' };
    this.#running.set(job.id, running);
    try {
      const [alive, cancelled] = await this.#redis.mget(this.#keys.caller(data.caller), this.#keys.cancelled(job.id));
      // Its caller is gone or stopped it: dropped (the job completes and is removed).
      if (alive === null || cancelled !== null) return 'done';
      const started = performance.now();
      const report = await this.#runChunk(data, args, running.controller.signal);
      if (running.state === 'released') return 'released';
      if (report === undefined) return 'done';
      this.served.chunks++;
      this.served.items += report.values.length;
      if (job.runs > 1) this.served.reruns++;
      const result: ChunkResult = { job: job.id, runs: job.runs, report: encodeValue(report), ms: performance.now() - started };
      // Only for a caller still there; the list lives as long as its heartbeat (the caller extends both).
      // A copy whose lock is no longer its own was superseded: the push also stops the other copy.
      const keys = [this.#keys.caller(data.caller), this.#keys.results(data.caller), this.#keys.resultToken(data.caller), job.lock.key, this.#keys.cancelled(job.id)];
      await this.#results.eval(pushResult, keys.length, ...keys, JSON.stringify(result), job.lock.token, this.#keys.cancelChannel, job.id, cancelTtlMs);
      return 'done';
    } finally {
      this.#running.delete(job.id);
    }
  }

  /** The chunk on the local pool; undefined when it was stopped. A child's death ends it there, charged to that item (the caller's retries decide). */
  async #runChunk(data: JobData, args: unknown[], signal: AbortSignal): Promise<RemoteReport | undefined> {
    const report: RemoteReport = { values: [], failures: [] };
    try {
      const options = { signal, retries: 0, ...(data.timeout === null ? {} : { timeout: data.timeout }) };
      for await (const record of this.#pool[settleEach](data.task, args, options, { ordered: true, spread: data.spread })) {
        if (record.ok) {
          report.values.push(record.value);
          continue;
        }
        if (record.error instanceof WorkerExitError || record.error instanceof TaskTimeoutError) {
          report.lost = serializeThrown(record.error);
          break;
        }
        report.failures.push([report.values.length, remoteFailure(record.error)]);
        report.values.push(undefined);
        if (data.stopAtError) break;
      }
    } catch (error) {
      if (signal.aborted) return undefined;
      // The pool's own refusal (an unknown task): the next item fails with it.
      report.failures.push([report.values.length, remoteFailure(error)]);
      report.values.push(undefined);
    }
    return signal.aborted ? undefined : report;
  }
}

/** How long a superseded job's stop mark stays for other copies to see (ms). */
const cancelTtlMs = 60_000;

/**
 * Pushes a result (ARGV[1]) to a caller's list (KEYS[2]) and its wake-up
 * token (KEYS[3]) while its heartbeat (KEYS[1]) lives, for as long as it
 * lives. When the job's lock (KEYS[4]) no longer holds this run's token
 * (ARGV[2]), another copy may run: its stop mark (KEYS[5], ARGV[5] ms) is
 * set and job id ARGV[4] published on the stop channel ARGV[3].
 */
const pushResult = `
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ttl)
if redis.call('LLEN', KEYS[3]) == 0 then redis.call('RPUSH', KEYS[3], '1') end
redis.call('PEXPIRE', KEYS[3], ttl)
if redis.call('GET', KEYS[4]) ~= ARGV[2] then
  redis.call('SET', KEYS[5], '1', 'PX', ARGV[5])
  redis.call('PUBLISH', ARGV[3], ARGV[4])
end
return 1`;

/** Starts a worker: its children load the module; resolves once it serves the queue. */
export async function serve(options: ServeOptions): Promise<Server> {
  const url = moduleUrl(options.module);
  const redis = checkRedisUrl(options.redis);
  const identity = moduleIdentity(url, checkQueueName(options.queue));
  const log = options.log ?? (() => undefined);
  const timing: DeliveryTiming = { ...defaultTiming, ...options.timing };
  const pool = new Pool(url, { ...(options.processes === undefined ? {} : { processes: options.processes }), ...(options.nodeOptions === undefined ? {} : { nodeOptions: options.nodeOptions }) });
  let tasks: string[];
  try {
    await pool.ready();
    tasks = await pool[taskNames]();
  } catch (error) {
    await pool.terminate();
    throw error;
  }
  const worker = new Worker(identity, pool, tasks, redis, timing, log);
  log(`procpool worker: serving ${url} (exports: ${tasks.join(', ') || 'none'}) with ${pool.stats.processes} children on queue "${identity.queue}" at ${showRedisUrl(redis)}`);
  return worker;
}
