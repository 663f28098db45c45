/**
 * Pool and per-call options: their types (documented once, here), their
 * validation (one message shape for all) and their defaults.
 */
import { availableParallelism } from 'node:os';
import type { Progress } from './progress.js';
import type { TaskName, UntypedModule } from './types.js';
import { entryFlag, inheritedFlags } from './node-flags.js';
import { checkArgs, checkGrace, exportName } from './task-options.js';
import { expected, maxTimerMs } from './expected.js';

export { expected, maxTimerMs };

/** An export name of `M`; a conditional type, so that `new Pool(url, options)` never infers `M` from it. */
export type InitializerName<M> = M extends unknown ? TaskName<M> : never;
/** An exported function of `M`, for `initializer` and `finalizer`. */
export type InitializerFunction<M> = M extends unknown ? M[TaskName<M>] : never;

/** Where a message of `procpool/task`'s `emit()` comes from. */
export interface MessageInfo {
  /** The item's position in its call (`apply`: 0). */
  readonly index: number;
  /** The `workerId` of the child that ran it. */
  readonly workerId: number;
}

/** Options of `new Pool<M>(module, options)`; `M` types the initializer's name. */
export interface PoolOptions<M = UntypedModule> {
  /**
   * Number of child processes (integer ≥ 1).
   * @default os.availableParallelism()
   */
  processes?: number;
  /**
   * Fewest children of an elastic pool (integer ≥ 0): it starts with these, and
   * children idle for `idleTimeout` leave down to it. 0: nothing runs while idle.
   * Not with `processes`.
   * @default 1 when `maxProcesses` is given
   */
  minProcesses?: number;
  /**
   * Most children of an elastic pool (integer ≥ 1): it grows toward this while
   * work waits, never by more children than there is waiting work. Not with `processes`.
   * @default os.availableParallelism() when `minProcesses` is given
   */
  maxProcesses?: number;
  /**
   * Milliseconds a child above `minProcesses` may stay idle before it leaves.
   * @default 30000
   */
  idleTimeout?: number;
  /**
   * Items allowed to wait for a child; a call that would pass it rejects at
   * once with QueueFullError (`pool.waitForRoom()` waits for room).
   * `imap*` calls are bounded by their read-ahead instead.
   * @default Infinity
   */
  maxQueue?: number;
  /** An export run once in each child (replacements too) before its first task: its name, or the exported function itself. */
  initializer?: InitializerName<M> | InitializerFunction<M>;
  /**
   * Arguments of the initializer.
   * @default []
   */
  initArgs?: readonly unknown[];
  /**
   * An export run once in each child that leaves gracefully (`close()` then
   * `join()`, `maxTasksPerChild`, an idle child leaving), never in one that is
   * killed: its name, or the exported function itself. Bounded by `finalTimeout`;
   * its failure is written to stderr and counted in `stats.finalizerFailures`.
   */
  finalizer?: InitializerName<M> | InitializerFunction<M>;
  /**
   * Arguments of the finalizer.
   * @default []
   */
  finalArgs?: readonly unknown[];
  /**
   * Milliseconds the finalizer may take; then the child leaves anyway.
   * @default 5000
   */
  finalTimeout?: number;
  /**
   * Milliseconds a running item has, once its AbortSignal (procpool/task's
   * `abortSignal()`) is aborted — its timeout, its call's signal, terminate() —
   * to end before its child is killed. An item that ends within it keeps its
   * child. 0: killed at once. The call itself rejects at once either way.
   * @default 1000
   */
  killGrace?: number;
  /**
   * A child exits after this many items (not chunks) and is replaced.
   * @default Infinity
   */
  maxTasksPerChild?: number;
  /**
   * A child whose resident memory passes this many MiB after an item is replaced.
   * @default Infinity
   */
  maxMemoryPerChild?: number;
  /**
   * Re-runs an item whose child died up to this many times. Only safe for idempotent tasks.
   * A task that throws is never retried.
   * @default 0
   */
  retries?: number;
  /**
   * Node flags of the children (loaders, `--max-old-space-size=…`).
   * @default the parent's `process.execArgv`, less the flags of its own invocation (`-e`, `--inspect`, `--test`, `--watch`…)
   */
  nodeOptions?: readonly string[];
  /**
   * Environment of the children.
   * @default process.env
   */
  env?: Readonly<Record<string, string | undefined>>;
  /**
   * Working directory of the children.
   * @default process.cwd()
   */
  cwd?: string | URL;
  /**
   * `'inherit'`: children's output goes to the parent's stdout/stderr;
   * `'pipe'`: exposed as `pool.stdout` / `pool.stderr`.
   * @default 'inherit'
   */
  stdio?: 'inherit' | 'pipe';
}

/** Options of one call (`apply`, `map`, `imap`, …). */
export interface CallOptions {
  /** Stops the call: queued items are dropped, running ones stopped (their child is replaced). */
  signal?: AbortSignal;
  /**
   * Milliseconds per item while running; past it the item rejects with
   * `TaskTimeoutError`, its AbortSignal aborts and its child is killed unless
   * the item ends within the pool's `killGrace`.
   */
  timeout?: number;
  /**
   * Receives what the running items `emit()` (procpool/task), each item's
   * messages in order and before its result. Annotate `value` to type it.
   */
  onMessage?(value: unknown, info: MessageInfo): void;
  /**
   * Re-runs an item whose child died up to this many times (idempotent tasks only).
   * @default the pool's `retries`
   */
  retries?: number;
  /**
   * Higher runs first: idle children take the chunks of the highest priority
   * waiting; equal priorities stay first come, first served. A running chunk
   * is never pre-empted.
   * @default 0
   */
  priority?: number;
}

/** Options of `map`, `starmap`, `imap` and `imapUnordered`. */
export interface ChunkOptions extends CallOptions {
  /**
   * Items sent to a child in one message.
   * @default map/starmap: ceil(n / (4 × processes)); imap*: adapted to item run time
   */
  chunksize?: number;
  /** Called with `{ done, total, failed }` at most every 100 ms while the call runs, and once at its end. */
  onProgress?: (progress: Progress) => void;
}

/** Callbacks of the `*Async` methods, called once, as in Python. */
export interface AsyncCallbacks<T> {
  callback?: (value: T) => void;
  errorCallback?: (error: unknown) => void;
}

/** Pool options after validation and defaults. */
export interface ResolvedPoolOptions {
  /** The most children (`maxProcesses`; a fixed pool's size). */
  readonly processes: number;
  readonly minProcesses: number;
  readonly idleTimeout: number;
  readonly maxQueue: number;
  readonly initializer: string | undefined;
  readonly initArgs: readonly unknown[];
  readonly finalizer: string | undefined;
  readonly finalArgs: readonly unknown[];
  readonly finalTimeout: number;
  /** Source texts of an initializer/finalizer given as a function: the child checks the export is that function. */
  readonly sources: Readonly<{ initializer?: string; finalizer?: string }>;
  readonly killGrace: number;
  readonly maxTasksPerChild: number;
  readonly maxMemoryPerChild: number;
  readonly retries: number;
  readonly nodeOptions: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>> | undefined;
  readonly cwd: string | URL | undefined;
  readonly stdio: 'inherit' | 'pipe';
}

/** An integer from `min` up, or Infinity when `infinite` allows it. */
export function checkCount(name: string, value: unknown, min: number, infinite = false): number {
  const what = `an integer from ${min} and up${infinite ? ' (or Infinity)' : ''}`;
  if (typeof value !== 'number') throw new TypeError(expected(name, what, value));
  if (infinite && value === Number.POSITIVE_INFINITY) return value;
  if (!Number.isInteger(value) || value < min) throw new RangeError(expected(name, what, value));
  return value;
}


export function checkPositive(name: string, value: unknown): number {
  const what = `a positive number of milliseconds up to ${maxTimerMs}`;
  if (typeof value !== 'number') throw new TypeError(expected(name, what, value));
  if (!(value > 0) || value > maxTimerMs) throw new RangeError(expected(name, what, value));
  return value;
}

function checkPriority(value: unknown): number {
  const what = 'a finite number (higher runs first)';
  if (typeof value !== 'number') throw new TypeError(expected('priority', what, value));
  if (!Number.isFinite(value)) throw new RangeError(expected('priority', what, value));
  return value;
}

function checkMemory(name: string, value: unknown): number {
  const what = 'a positive number of MiB (or Infinity)';
  if (typeof value !== 'number') throw new TypeError(expected(name, what, value));
  if (!(value > 0)) throw new RangeError(expected(name, what, value));
  return value;
}

function checkObject(name: string, value: unknown): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TypeError(expected(name, 'an object', value));
}

const poolKeys = new Set(['processes', 'minProcesses', 'maxProcesses', 'idleTimeout', 'maxQueue', 'initializer', 'initArgs', 'finalizer', 'finalArgs', 'finalTimeout', 'killGrace', 'maxTasksPerChild', 'maxMemoryPerChild', 'retries', 'nodeOptions', 'env', 'cwd', 'stdio']);

/** Validates pool options into a fresh frozen object; never writes into the caller's. */
export function resolvePoolOptions(options: unknown): ResolvedPoolOptions {
  if (options === undefined) options = {};
  checkObject('options', options);
  const given = options as PoolOptions;
  for (const key of Object.keys(given)) {
    if (!poolKeys.has(key)) throw new TypeError(`Unknown option \`${key}\`; known options: ${[...poolKeys].join(', ')}`);
  }
  const { initArgs = [], finalArgs = [], nodeOptions = inheritedFlags(process.execArgv), env, cwd, stdio = 'inherit' } = given;
  const sources: { initializer?: string; finalizer?: string } = {};
  const initializer = exportName('initializer', given.initializer, sources);
  const finalizer = exportName('finalizer', given.finalizer, sources);
  checkArgs('initArgs', initArgs);
  checkArgs('finalArgs', finalArgs);
  if (!Array.isArray(nodeOptions) || nodeOptions.some((flag) => typeof flag !== 'string')) {
    throw new TypeError(expected('nodeOptions', 'an array of strings', nodeOptions));
  }
  const entry = entryFlag(nodeOptions as string[]);
  if (entry !== undefined) throw new RangeError(`Expected \`nodeOptions\` to be flags a child can run the worker with, got \`${entry}\`, which makes Node run something else`);
  if (env !== undefined) {
    checkObject('env', env);
    for (const [key, value] of Object.entries(env)) {
      if (value !== undefined && typeof value !== 'string') throw new TypeError(expected(`env.${key}`, 'a string', value));
    }
  }
  if (cwd !== undefined && typeof cwd !== 'string' && !(cwd instanceof URL)) throw new TypeError(expected('cwd', 'a path or a file: URL', cwd));
  if (typeof stdio !== 'string') throw new TypeError(expected('stdio', "'inherit' or 'pipe'", stdio));
  if (stdio !== 'inherit' && stdio !== 'pipe') throw new RangeError(expected('stdio', "'inherit' or 'pipe'", stdio));
  const size = resolveSize(given);
  return Object.freeze({
    processes: size.max,
    minProcesses: size.min,
    idleTimeout: given.idleTimeout === undefined ? 30_000 : checkPositive('idleTimeout', given.idleTimeout),
    maxQueue: checkCount('maxQueue', given.maxQueue ?? Number.POSITIVE_INFINITY, 0, true),
    initializer,
    initArgs: Object.freeze([...(initArgs as unknown[])]),
    finalizer,
    finalArgs: Object.freeze([...(finalArgs as unknown[])]),
    finalTimeout: given.finalTimeout === undefined ? 5000 : checkPositive('finalTimeout', given.finalTimeout),
    sources: Object.freeze(sources),
    killGrace: given.killGrace === undefined ? 1000 : checkGrace(given.killGrace),
    maxTasksPerChild: checkCount('maxTasksPerChild', given.maxTasksPerChild ?? Number.POSITIVE_INFINITY, 1, true),
    maxMemoryPerChild: checkMemory('maxMemoryPerChild', given.maxMemoryPerChild ?? Number.POSITIVE_INFINITY),
    retries: checkCount('retries', given.retries ?? 0, 0),
    nodeOptions: Object.freeze([...(nodeOptions as string[])]),
    env: env === undefined ? undefined : Object.freeze({ ...env }),
    cwd,
    stdio,
  });
}

/** A fixed size (`processes`) or an elastic one (`minProcesses` … `maxProcesses`). */
function resolveSize(given: PoolOptions): { min: number; max: number } {
  const { processes, minProcesses, maxProcesses } = given;
  if (processes !== undefined && (minProcesses !== undefined || maxProcesses !== undefined)) {
    throw new RangeError(`Expected either \`processes\` (a fixed size) or \`minProcesses\`/\`maxProcesses\` (an elastic one), got both`);
  }
  if (minProcesses === undefined && maxProcesses === undefined) {
    const fixed = checkCount('processes', processes ?? availableParallelism(), 1);
    return { min: fixed, max: fixed };
  }
  const min = minProcesses === undefined ? undefined : checkCount('minProcesses', minProcesses, 0);
  const max = checkCount('maxProcesses', maxProcesses ?? Math.max(availableParallelism(), min ?? 1), 1);
  if (min === undefined) return { min: Math.min(1, max), max };
  if (min > max) throw new RangeError(`Expected \`minProcesses\` (${min}) to be at most \`maxProcesses\` (${max})`);
  return { min, max };
}

/** Per-call options after validation. */
export interface ResolvedCallOptions {
  readonly chunksize: number | undefined;
  readonly signal: AbortSignal | undefined;
  readonly timeout: number | undefined;
  readonly retries: number;
  readonly priority: number;
  readonly callback: ((value: never) => void) | undefined;
  readonly errorCallback: ((error: unknown) => void) | undefined;
  readonly onProgress: ((progress: Progress) => void) | undefined;
  readonly onMessage: ((value: unknown, info: MessageInfo) => void) | undefined;
}

/** Which per-call options a method takes. */
export interface CallShape {
  chunked: boolean;
  async: boolean;
}

/** Validates per-call options when the call is made. */
export function resolveCallOptions(options: unknown, poolRetries: number, shape: CallShape): ResolvedCallOptions {
  if (options === undefined) options = {};
  checkObject('options', options);
  const given = options as ChunkOptions & AsyncCallbacks<never>;
  const known = ['signal', 'timeout', 'retries', 'priority', 'onMessage', ...(shape.chunked ? ['chunksize', 'onProgress'] : []), ...(shape.async ? ['callback', 'errorCallback'] : [])];
  for (const key of Object.keys(given)) {
    if (!known.includes(key)) throw new TypeError(`Unknown call option \`${key}\`; this method takes: ${known.join(', ')}`);
  }
  const { signal, callback, errorCallback, onProgress } = given;
  const onMessage = given.onMessage as ((value: unknown, info: MessageInfo) => void) | undefined;
  if (onProgress !== undefined && typeof onProgress !== 'function') throw new TypeError(expected('onProgress', 'a function', onProgress));
  if (onMessage !== undefined && typeof onMessage !== 'function') throw new TypeError(expected('onMessage', 'a function', onMessage));
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError(expected('signal', 'an AbortSignal', signal));
  if (callback !== undefined && typeof callback !== 'function') throw new TypeError(expected('callback', 'a function', callback));
  if (errorCallback !== undefined && typeof errorCallback !== 'function') {
    throw new TypeError(expected('errorCallback', 'a function', errorCallback));
  }
  return {
    chunksize: given.chunksize === undefined ? undefined : checkCount('chunksize', given.chunksize, 1),
    signal,
    timeout: given.timeout === undefined ? undefined : checkPositive('timeout', given.timeout),
    retries: given.retries === undefined ? poolRetries : checkCount('retries', given.retries, 0),
    priority: given.priority === undefined ? 0 : checkPriority(given.priority),
    callback,
    errorCallback,
    onProgress,
    onMessage,
  };
}

/** Python's default chunksize for `map`: ceil(n / (4 × processes)). */
export function defaultChunksize(items: number, processes: number): number {
  return Math.max(1, Math.ceil(items / (4 * processes)));
}
