/**
 * procpool/cluster: the Pool across machines, on BullMQ and Redis. Its own
 * entry point, so that `import 'procpool'` never loads bullmq or ioredis
 * (optional peer dependencies: install them to use this).
 */
export { ClusterPool } from './pool.js';
export type { ClusterPoolOptions } from './options.js';
export { ClusterUnavailableError, ChunkLostError, JobRefusedError, type UnavailableReason } from './errors.js';
export { serve, type ServeOptions, type Server } from './serve.js';
