/**
 * What a child's exit means: why it ended, and how each chunk still on it
 * ends — never started (run elsewhere), aborted, or lost with the child
 * (charged to the running item, unless which item ran is uncertain).
 */
import type { AttemptEnd } from '../engine/backend.js';
import { TaskTimeoutError, WorkerExitError, type WorkerExitReason } from '../errors.js';
import type { Entry } from './ledger.js';

/** A child's life: starting → ready → draining → stopping → exited. */
export type ChildState = 'starting' | 'ready' | 'draining' | 'stopping' | 'exited';

/** Why the pool killed a child. */
export type KillReason =
  | { kind: 'none' }
  | { kind: 'timeout'; entry: Entry; timeout: number }
  | { kind: 'abort'; entry: Entry }
  | { kind: 'channel-lost' }
  | { kind: 'terminate' };

/** How a child ended. */
export interface ChildExit {
  pid: number | undefined;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  reason: WorkerExitReason;
  /** The child's own fatal error (uncaught exception, failed start-up, spawn error), re-created. */
  cause: unknown;
  /** The module or the initializer failed (the child said so), or the process could not be spawned. */
  startFailed: boolean;
  /** The pool asked it to go (stop, terminate). */
  requested: boolean;
  /** The state it was in when it exited. */
  from: ChildState;
  stderr: string;
}

/** The child's channel: open, or let go of by the child (it said so before it closed). */
export type ChannelState = 'open' | 'let go';

/**
 * Why a child ended, from what the parent saw: the child letting go of its
 * channel, the pool's own kill, a signal, what it last wrote to stderr —
 * never from an exit code, which a task may use too.
 */
export function exitReason(signal: NodeJS.Signals | null, stderr: string, kill: KillReason, channel: ChannelState, exitCode: number | null = null): WorkerExitReason {
  // V8 aborts when out of heap: the text alone is something a task may print.
  const aborted = signal === 'SIGABRT' || signal === 'SIGTRAP' || exitCode === 134;
  if (aborted && /heap out of memory|Reached heap limit/i.test(stderr)) return 'oom';
  if (channel === 'let go' || kill.kind === 'channel-lost') return 'disconnect';
  return signal !== null ? 'signal' : 'exit';
}

/** How `entry` ends when its child has exited (every message it sent has been read). */
export function endAtExit(entry: Entry, exit: ChildExit, kill: KillReason): AttemptEnd {
  if (entry.phase !== 'started') return { kind: 'ran', report: { values: [], failures: [] }, ms: 0 };
  if (kill.kind === 'abort' && kill.entry === entry) return { kind: 'aborted' };
  const error = kill.kind === 'timeout' && kill.entry === entry ? new TaskTimeoutError(kill.timeout) : new WorkerExitError(exit, exit.cause === undefined ? undefined : { cause: exit.cause });
  // Killed to stop another chunk (that ended meanwhile): this one is no culprit.
  const bystander = (kill.kind === 'timeout' || kill.kind === 'abort') && kill.entry !== entry;
  // Killed by a signal, the child may have finished items it had not yet
  // reported; with two or more unreported, which one ran is unknown.
  const unreported = entry.job.args.length - entry.values.length;
  const uncertain = bystander || (exit.signal !== null && !entry.job.exact && unreported >= 2 && kill.kind !== 'terminate');
  return { kind: 'lost', report: entry.report, error, uncertain };
}
