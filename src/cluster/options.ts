/**
 * Options of a ClusterPool: where the Redis is, which queue, and how long
 * the pool waits for Redis and for workers. Validated with the local
 * options' message shape, into a fresh object.
 */
import { checkCount, checkPositive } from '../options.js';
import type { ClusterSettings } from './backend.js';
import { checkQueueName, moduleIdentity } from './identity.js';
import { checkRedisUrl } from './redis.js';

/** Options of `new ClusterPool(module, options)`. */
export interface ClusterPoolOptions {
  /** `redis://[user:password@]host:port[/db]`, or `rediss://…` for TLS: the Redis the workers use. */
  redis: string;
  /**
   * The queue's name. Workers and callers of one module meet on it.
   * @default `<module file name>-<hash of its content>`: a worker with another version never takes the job
   */
  queue?: string;
  /**
   * Re-runs an item whose child died on a worker up to this many times (idempotent tasks only).
   * @default 0
   */
  retries?: number;
  /**
   * Items allowed to wait; a call that would pass it rejects with QueueFullError.
   * @default Infinity
   */
  maxQueue?: number;
  /**
   * Milliseconds calls wait while Redis is unreachable before their items reject with ClusterUnavailableError.
   * @default 10000
   */
  unavailableTimeout?: number;
  /**
   * Milliseconds work (and `ready()`) waits for a worker serving the queue before rejecting with ClusterUnavailableError.
   * @default 60000
   */
  workerTimeout?: number;
  /**
   * Workers drop the work of a caller whose heartbeat they have not seen for this many milliseconds (a caller that died).
   * @default 10000
   */
  callerTtl?: number;
  /**
   * Milliseconds between looks at the workers and at the jobs in flight.
   * @default 1000
   */
  pollInterval?: number;
}

const known = new Set(['redis', 'queue', 'retries', 'maxQueue', 'unavailableTimeout', 'workerTimeout', 'callerTtl', 'pollInterval']);

/** The local pool options a ClusterPool passes on, and the cluster's settings. */
export function resolveClusterOptions(moduleUrl: string, options: unknown): { pool: { retries?: number; maxQueue?: number }; cluster: ClusterSettings } {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`Expected \`options\` to be an object with a \`redis\` URL, got ${String(options)}`);
  }
  const given = options as ClusterPoolOptions;
  for (const key of Object.keys(given)) {
    if (!known.has(key)) throw new TypeError(`Unknown option \`${key}\`; known options: ${[...known].join(', ')}`);
  }
  const redis = checkRedisUrl(given.redis);
  const queue = checkQueueName(given.queue);
  const pool = {
    ...(given.retries === undefined ? {} : { retries: checkCount('retries', given.retries, 0) }),
    ...(given.maxQueue === undefined ? {} : { maxQueue: checkCount('maxQueue', given.maxQueue, 0, true) }),
  };
  const cluster: ClusterSettings = Object.freeze({
    redis,
    identity: moduleIdentity(moduleUrl, queue),
    unavailableTimeout: checkPositive('unavailableTimeout', given.unavailableTimeout ?? 10_000),
    workerTimeout: checkPositive('workerTimeout', given.workerTimeout ?? 60_000),
    callerTtl: checkPositive('callerTtl', given.callerTtl ?? 10_000),
    pollInterval: checkPositive('pollInterval', given.pollInterval ?? 1000),
  });
  if (cluster.callerTtl < 2 * cluster.pollInterval) throw new RangeError(`Expected \`callerTtl\` to be at least twice \`pollInterval\` (${cluster.pollInterval}), got ${cluster.callerTtl}`);
  return { pool, cluster };
}
