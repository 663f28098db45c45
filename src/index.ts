/** procpool: Python's multiprocessing.Pool for Node.js. */
export { Pool } from './pool.js';
export { sharedPool } from './shared.js';
export { AsyncResult } from './async-result.js';
export {
  PoolError,
  WorkerExitError,
  TaskTimeoutError,
  PoolClosedError,
  PoolBrokenError,
  SerializationError,
  ResultTimeoutError,
  PoolStateError,
  QueueFullError,
  type PoolErrorCode,
  type WorkerExitReason,
  type SerializationDirection,
} from './errors.js';
export type { PoolOptions, CallOptions, ChunkOptions, AsyncCallbacks, MessageInfo } from './options.js';
export type { CloseOptions } from './close-options.js';
export type { PoolStats } from './stats.js';
export type { TaskName, TaskRef, TaskArgs, TaskResult, TaskItem, UntypedModule } from './types.js';
