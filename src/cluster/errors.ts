/**
 * What only the cluster raises: Redis or the workers cannot be reached, a
 * chunk was lost with its workers too often, a worker refused a job.
 */
import { PoolError } from '../errors.js';

/** Why the cluster could not take or finish work. */
export type UnavailableReason = 'redis' | 'no-worker';

/** Redis was unreachable, or no worker served the queue, for longer than the pool waits. */
export class ClusterUnavailableError extends PoolError {
  override readonly code = 'PROCPOOL_CLUSTER_UNAVAILABLE' as const;
  readonly reason: UnavailableReason;
  /** Milliseconds the pool waited. */
  readonly waited: number;

  /** `hint`: what else was seen (Redis's own complaint, other versions' workers), appended to the message. */
  constructor(fields: { reason: UnavailableReason; waited: number; queue: string; hint?: string }, options?: ErrorOptions) {
    const hint = fields.hint === undefined ? '' : `: ${fields.hint}`;
    // Refused at once (credentials, TLS, an unsupported server) is not "unreachable for 0 ms".
    const what = fields.reason === 'no-worker' ? `no worker served queue "${fields.queue}" for ${fields.waited} ms${hint}` : fields.waited === 0 && hint !== '' ? `Redis refused this client${hint}` : `Redis was unreachable for ${fields.waited} ms${hint}`;
    super(`The cluster is unavailable: ${what}`, 'PROCPOOL_CLUSTER_UNAVAILABLE', options);
    this.reason = fields.reason;
    this.waited = fields.waited;
  }
}

/** A chunk's worker went away more often than the queue allows (or Redis lost the job): its item is charged. */
export class ChunkLostError extends PoolError {
  override readonly code = 'PROCPOOL_CHUNK_LOST' as const;

  constructor(message: string) {
    super(message, 'PROCPOOL_CHUNK_LOST');
  }
}

/** A worker refused the job: another version of the module, or data it cannot read. */
export class JobRefusedError extends PoolError {
  override readonly code = 'PROCPOOL_JOB_REFUSED' as const;

  constructor(message: string) {
    super(message, 'PROCPOOL_JOB_REFUSED');
  }
}
