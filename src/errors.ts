/**
 * Everything the pool itself raises: one class per failure, each with a
 * stable `code` that callers branch on (messages may change, codes do not).
 */

/** Codes of every error the pool raises. */
export type PoolErrorCode =
  | 'PROCPOOL_WORKER_EXIT'
  | 'PROCPOOL_TASK_TIMEOUT'
  | 'PROCPOOL_CLOSED'
  | 'PROCPOOL_BROKEN'
  | 'PROCPOOL_SERIALIZATION'
  | 'PROCPOOL_RESULT_TIMEOUT'
  | 'PROCPOOL_STATE'
  | 'PROCPOOL_UNKNOWN_TASK'
  | 'PROCPOOL_QUEUE_FULL'
  // procpool/cluster (src/cluster/errors.ts):
  | 'PROCPOOL_CLUSTER_UNAVAILABLE'
  | 'PROCPOOL_CHUNK_LOST'
  | 'PROCPOOL_JOB_REFUSED';

/** Base class of every error raised by the pool (not by a task). */
export class PoolError extends Error {
  readonly code: PoolErrorCode;

  constructor(message: string, code: PoolErrorCode, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Why a child died. */
export type WorkerExitReason = 'exit' | 'signal' | 'oom' | 'disconnect';

/** The child running the item died. */
export class WorkerExitError extends PoolError {
  override readonly code = 'PROCPOOL_WORKER_EXIT' as const;
  readonly pid: number | undefined;
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly reason: WorkerExitReason;

  constructor(
    fields: { pid: number | undefined; exitCode: number | null; signal: NodeJS.Signals | null; reason: WorkerExitReason },
    options?: ErrorOptions,
  ) {
    const how =
      fields.reason === 'oom'
        ? 'ran out of memory'
        : fields.signal !== null
          ? `was killed by ${fields.signal}`
          : fields.reason === 'disconnect'
            ? `lost its IPC channel (exit code ${String(fields.exitCode)})`
            : `exited with code ${String(fields.exitCode)}`;
    super(`Child process ${String(fields.pid)} ${how} while running the item`, 'PROCPOOL_WORKER_EXIT', options);
    this.pid = fields.pid;
    this.exitCode = fields.exitCode;
    this.signal = fields.signal;
    this.reason = fields.reason;
  }
}

/** An item ran past its `timeout`; its child was killed and replaced. */
export class TaskTimeoutError extends PoolError {
  override readonly code = 'PROCPOOL_TASK_TIMEOUT' as const;
  readonly timeout: number;

  constructor(timeout: number) {
    super(`Item ran past its timeout of ${timeout} ms; its child was killed and replaced`, 'PROCPOOL_TASK_TIMEOUT');
    this.timeout = timeout;
  }
}

/** A call after `close()`/`terminate()`, or work left unfinished at `terminate()`. */
export class PoolClosedError extends PoolError {
  override readonly code = 'PROCPOOL_CLOSED' as const;

  constructor(message = 'The pool is closed') {
    super(message, 'PROCPOOL_CLOSED');
  }
}

/** Children cannot start: the module does not load or the initializer fails. */
export class PoolBrokenError extends PoolError {
  override readonly code = 'PROCPOOL_BROKEN' as const;
  /** The last lines the failing child wrote to stderr. */
  readonly stderr: string;

  constructor(message: string, fields: { cause?: unknown; stderr: string }) {
    super(message, 'PROCPOOL_BROKEN', 'cause' in fields ? { cause: fields.cause } : undefined);
    this.stderr = fields.stderr;
  }
}

/** Where a value could not cross the process boundary. */
export type SerializationDirection = 'args' | 'result';

/** An argument or a result cannot cross the process boundary. */
export class SerializationError extends PoolError {
  override readonly code = 'PROCPOOL_SERIALIZATION' as const;
  readonly direction: SerializationDirection;
  /** Property-access path from `args` or `result`, e.g. `args[0].callback`. */
  readonly path: string;

  constructor(fields: { direction: SerializationDirection; path: string; detail: string }) {
    const what = fields.direction === 'args' ? 'An argument' : 'A result';
    super(`${what} cannot be sent between processes: ${fields.path} is ${fields.detail}`, 'PROCPOOL_SERIALIZATION');
    this.direction = fields.direction;
    this.path = fields.path;
  }
}

/** `AsyncResult.get(timeout)` ran out; the work goes on. */
export class ResultTimeoutError extends PoolError {
  override readonly code = 'PROCPOOL_RESULT_TIMEOUT' as const;

  constructor(timeout: number) {
    super(`Result was not ready within ${timeout} ms`, 'PROCPOOL_RESULT_TIMEOUT');
  }
}

/** A call would pass `maxQueue` items waiting for a child: refused at once, nothing queued. */
export class QueueFullError extends PoolError {
  override readonly code = 'PROCPOOL_QUEUE_FULL' as const;
  /** The pool's `maxQueue`. */
  readonly maxQueue: number;
  /** Items waiting when the call was made. */
  readonly queued: number;
  /** Items the call brought. */
  readonly items: number;

  constructor(fields: { maxQueue: number; queued: number; items: number }) {
    super(`The queue is full: ${fields.queued} items wait and this call brings ${fields.items}, past maxQueue (${fields.maxQueue})`, 'PROCPOOL_QUEUE_FULL');
    this.maxQueue = fields.maxQueue;
    this.queued = fields.queued;
    this.items = fields.items;
  }
}

/** A method was used in the wrong state (e.g. `join()` before `close()`). */
export class PoolStateError extends PoolError {
  override readonly code = 'PROCPOOL_STATE' as const;

  constructor(message: string) {
    super(message, 'PROCPOOL_STATE');
  }
}
