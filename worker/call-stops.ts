/**
 * The calls that failed in this child, so that their later chunks are
 * dropped here, without waiting for the parent's skip: a call that stops at
 * errors never runs an item after its first failure (`imap` in input order
 * still wants the items before it, which a chunk starting earlier holds).
 */
import type { RunMessage } from '../src/protocol.js';

/** Calls remembered at most: a failed call's chunks arrive soon after its failure, or never. */
const remembered = 1024;

/** By call id: the call index of the first failure seen in this child. */
const failedAt = new Map<number, number>();

/** Item `index` of the chunk `run` failed. */
export function noteFailure(run: RunMessage, index: number): void {
  if (!run.stopAtError) return;
  const at = run.from + index;
  const known = failedAt.get(run.call);
  if (known !== undefined && known <= at) return;
  failedAt.delete(run.call);
  failedAt.set(run.call, at);
  if (failedAt.size > remembered) failedAt.delete(failedAt.keys().next().value!);
}

/** Whether `run` comes after a failure of its call in this child: it is dropped, never started. */
export function droppedByFailure(run: RunMessage): boolean {
  if (!run.stopAtError) return false;
  const at = failedAt.get(run.call);
  return at !== undefined && run.from > at;
}
