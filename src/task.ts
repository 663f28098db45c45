/**
 * procpool/task: what a running task can do, imported by task modules.
 * Meaningful only in a pool's child, while it runs an item; elsewhere each
 * function throws (and `workerId` is 0). The child's side lives in
 * worker/task-context.ts; this module only reads it from `globalThis`, so
 * any copy of procpool the task module resolves finds the same child.
 */
import { childGlobal } from './task-global.js';

function child(what: string): NonNullable<ReturnType<typeof childGlobal>> {
  const found = childGlobal();
  if (found === undefined) throw new Error(`procpool/task ${what} works only in a pool's child process, while it runs a task; this process is not one`);
  return found;
}

/**
 * Sends `value` (anything a task may return) to the caller of the item that
 * runs now: its call's `onMessage(value, { index, workerId })`, in order,
 * before the item's result. Throws when no item runs (at load time, in the
 * initializer, after the item ended) or when `value` cannot be sent.
 */
export function emit<T = unknown>(value: T): void {
  child('emit()').emit(value);
}

/**
 * The running item's AbortSignal: aborted when its `timeout` passes, its
 * call's `signal` aborts, its call fails or the pool terminates. An item
 * that ends on it keeps its child; one still running `killGrace` ms later
 * is killed.
 */
export function abortSignal(): AbortSignal {
  return child('abortSignal()').abortSignal();
}

/**
 * This child's id: a small integer from 1, unique among the pool's live
 * children, taken over by the replacement of a child that died (also
 * `PROCPOOL_WORKER_ID` in its environment). 0 outside a child.
 */
export const workerId: number = childGlobal() === undefined ? 0 : Number(process.env.PROCPOOL_WORKER_ID ?? 0);
