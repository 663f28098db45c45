/**
 * ClusterPool: the Pool, with its chunks run by `procpool worker` processes
 * on any number of machines instead of local children. Same methods, same
 * types, same errors; a program changes its constructor only.
 */
import { Pool } from '../pool.js';
import { moduleUrl } from '../task-ref.js';
import type { UntypedModule } from '../types.js';
import { ClusterBackend } from './backend.js';
import { resolveClusterOptions, type ClusterPoolOptions } from './options.js';

/** A Pool whose work runs on the workers that serve its module's queue on a Redis. */
export class ClusterPool<M = UntypedModule> extends Pool<M> {
  /** The BullMQ queue this pool's work goes to (workers of the same module version serve it). */
  readonly queue: string;

  /** Connects to `options.redis`; the work waits for workers (`workerTimeout`). `module` must be the workers' module (its content names the queue). */
  constructor(module: string | URL, options: ClusterPoolOptions) {
    const { pool, cluster } = resolveClusterOptions(moduleUrl(module), options);
    super(module, pool, { backend: () => new ClusterBackend(cluster) });
    this.queue = cluster.identity.queue;
  }

  /** `new ClusterPool(module, options)`, resolved once a worker serves the queue. */
  static override async create<M = UntypedModule>(module: string | URL, options?: ClusterPoolOptions): Promise<ClusterPool<M>> {
    const pool = new ClusterPool<M>(module, options!);
    try {
      await pool.ready();
    } catch (error) {
      await pool.terminate();
      throw error;
    }
    return pool;
  }
}
