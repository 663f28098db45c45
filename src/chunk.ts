/**
 * A chunk of items and what becomes of it: what is sent, what comes back,
 * how a child's end is described, and the record a child keeps of each
 * chunk in flight.
 */
import type { WorkerExitReason } from './errors.js';
import type { DoneMessage, Outcome } from './protocol.js';

/** A chunk of items for one task, as handed to a child. */
export interface Chunk {
  task: string;
  /** Each item's arguments: a tuple when `spread`, else the one argument itself. */
  args: unknown[];
  spread: boolean;
  /** Per-item timeout in ms, armed when each item starts. */
  timeout: number | undefined;
  /** Report items one by one (exact outcomes when a child dies mid-chunk). */
  stream: boolean;
}

/**
 * What a chunk came back with. A streamed chunk whose child died or timed
 * out has fewer outcomes than items: the last is the item's local error,
 * the items after it never started.
 */
export interface RunResult {
  outcomes: Outcome[];
  /** Milliseconds the chunk ran in the child. */
  ms: number;
}

/** Raised for a chunk that was sent but never started before its child went away: safe to send elsewhere. */
export class NotStartedError extends Error {
  constructor() {
    super('The chunk did not start before its child went away');
  }
}

/** How a child ended. */
export interface ChildExit {
  pid: number | undefined;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  reason: WorkerExitReason;
  /** The child's own fatal error (uncaught exception, failed start-up), re-created. */
  cause: unknown;
  /** Whether the pool asked it to go. */
  requested: boolean;
  /** Whether the pool killed it to stop a chunk (timeout, abort). */
  killed: boolean;
  /** Whether it had become ready. */
  wasReady: boolean;
  stderr: string;
}

export interface InFlight {
  id: number;
  chunk: Chunk;
  /** Outcomes streamed so far (streamed chunks only). */
  streamed: Outcome[] | undefined;
  /**
   * Settled for its caller (cancelled, aborted) but perhaps started by the
   * child: kept in line until the child reports it, so that a death is
   * blamed on the chunk the child was really running.
   */
  detached: boolean;
  /** Counts the arming of `timer`, so that a stale expiry is ignored. */
  armed?: number;
  resolve(result: RunResult): void;
  reject(error: unknown): void;
  timer?: NodeJS.Timeout;
}

/** A done message's results as one outcome per item. */
export function expand(done: DoneMessage): Outcome[] {
  const outcomes = new Array<Outcome>(done.values.length);
  for (let i = 0; i < outcomes.length; i++) outcomes[i] = { ok: true, value: done.values[i] };
  for (const [index, outcome] of done.failures) outcomes[index] = outcome;
  return outcomes;
}
