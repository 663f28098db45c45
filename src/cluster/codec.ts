/**
 * Chunks and their outcomes as BullMQ stores them. BullMQ keeps job data as
 * JSON, which would flatten Map, Set, Date, BigInt, typed arrays and errors:
 * the payloads are V8's serializer (the local channel's own) in base64, so
 * values cross with the local rules. Errors cross through error-codec, as
 * locally; the pool's own errors raised on a worker (an unknown task, a
 * result that cannot cross) come back as their classes.
 */
import { deserialize, serialize } from 'node:v8';
import { deserializeThrown, serializeThrown, type SerializedThrown } from '../error-codec.js';
import { PoolError, SerializationError, TaskTimeoutError, WorkerExitError } from '../errors.js';
import type { Failure, Report } from '../engine/backend.js';
import type { WireFailure } from '../protocol.js';
import { ChunkLostError, ClusterUnavailableError, JobRefusedError } from './errors.js';

/** Format of job data and results; a worker refuses any other. */
export const formatVersion = 1;

/** A job's data: one chunk. */
export interface JobData {
  v: typeof formatVersion;
  /** Hash of the module the caller has: a worker with another refuses the job. */
  module: string;
  caller: string;
  task: string;
  spread: boolean;
  stopAtError: boolean;
  /** Per-item limit in ms, or null. */
  timeout: number | null;
  /** base64 of V8's serialization of the items' arguments. */
  args: string;
}

/** How an item failed, on a worker: as locally, or one of the pool's own errors. */
export type RemoteFailure = WireFailure | { poolError: SerializedThrown };

/** A chunk's outcome, pushed to the caller's results list. */
export interface ChunkResult {
  job: string;
  /** Times the job was started (more than 1: run again after its worker was lost). */
  runs: number;
  /** base64 of V8's serialization of a RemoteReport. */
  report: string;
  ms: number;
}

/** Outcomes of the chunk's first items; `lost`: the item after them died with its child (charged, as locally). */
export interface RemoteReport {
  values: unknown[];
  failures: Array<[number, RemoteFailure]>;
  lost?: SerializedThrown;
}

export function encodeValue(value: unknown): string {
  return serialize(value).toString('base64');
}

export function decodeValue(text: string): unknown {
  return deserialize(Buffer.from(text, 'base64'));
}

/** The data of a job, checked field by field: what is wrong is named. */
export function readJobData(data: unknown): JobData {
  const fail = (what: string): never => {
    throw new JobRefusedError(`Malformed job data: ${what}`);
  };
  if (typeof data !== 'object' || data === null) return fail(`expected an object, got ${data === null ? 'null' : typeof data}`);
  const d = data as Record<string, unknown>;
  if (d.v !== formatVersion) fail(`format version ${String(d.v)}, expected ${formatVersion} (caller and worker run different procpool versions?)`);
  for (const key of ['module', 'caller', 'task', 'args'] as const) if (typeof d[key] !== 'string') fail(`\`${key}\` is not a string`);
  for (const key of ['spread', 'stopAtError'] as const) if (typeof d[key] !== 'boolean') fail(`\`${key}\` is not a boolean`);
  if (d.timeout !== null && (typeof d.timeout !== 'number' || !(d.timeout > 0))) fail('`timeout` is neither null nor a positive number');
  return d as unknown as JobData;
}

/** The items' arguments of a job, checked to be a list. */
export function readArgs(data: JobData): unknown[] {
  let args: unknown;
  try {
    args = decodeValue(data.args);
  } catch (error) {
    throw new JobRefusedError(`Malformed job data: \`args\` cannot be read (${error instanceof Error ? error.message : String(error)})`);
  }
  if (!Array.isArray(args)) throw new JobRefusedError('Malformed job data: `args` is not a list');
  return args;
}

/** One item's error on a worker, ready to cross: the pool's own errors keep their class. */
export function remoteFailure(error: unknown): RemoteFailure {
  return error instanceof PoolError ? { poolError: serializeThrown(error) } : { error: serializeThrown(error) };
}

const poolClasses = new Map<string, object>(
  [PoolError, SerializationError, TaskTimeoutError, WorkerExitError, ChunkLostError, ClusterUnavailableError, JobRefusedError].map((ctor) => [ctor.name, ctor.prototype]),
);

/** Re-creates one of the pool's errors raised on a worker: its class, code and fields. */
export function revivePoolError(serialized: SerializedThrown): unknown {
  const error = deserializeThrown(serialized);
  const proto = error instanceof Error ? poolClasses.get(error.name) : undefined;
  if (proto !== undefined) Object.setPrototypeOf(error, proto);
  return error;
}

/** A worker's report as the scheduler takes it. */
export function localReport(remote: RemoteReport): Report {
  const failures = remote.failures.map(([index, failure]): [number, Failure] => [index, 'poolError' in failure ? { local: revivePoolError(failure.poolError) } : failure]);
  return { values: remote.values, failures };
}
