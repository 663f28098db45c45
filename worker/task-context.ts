/**
 * The child's side of procpool/task: which item runs now (chunk and
 * position), its AbortSignal (made only when a task asks for it), and
 * emit(). Items of a child run one at a time, so "the running item" is a
 * value here, set around each call of the task.
 */
import { childKey, type ChildGlobal } from '../src/task-global.js';
import type { ChildMessage } from '../src/protocol.js';
import { findUnsendable } from '../src/transfer.js';

/** Why a running item's signal was aborted, as the parent said. */
export type AbortWhy = 'timeout' | 'signal' | 'failed' | 'terminate';

let post: (message: ChildMessage) => void = () => undefined;
/** The chunk running now, and the position of its running item; undefined between items. */
let chunk: number | undefined;
let index = 0;
let controller: AbortController | undefined;
/** The running chunk was asked to stop: its signal's reason. */
let stopped: { id: number; reason: Error } | undefined;

function reasonFor(why: AbortWhy): Error {
  const text = {
    timeout: 'its timeout passed',
    signal: "its call's signal was aborted",
    failed: 'its call no longer needs it (the call failed on another item, or its caller left an imap loop)',
    terminate: 'the pool was terminated',
  }[why];
  const error = new Error(`procpool: this item was cancelled: ${text}`);
  error.name = 'AbortError';
  return error;
}

function running(what: string): number {
  if (chunk === undefined) throw new Error(`procpool/task ${what} was called while no item runs in this child (at load time, in the initializer or finalizer, or after the item ended)`);
  return chunk;
}

const shared: ChildGlobal = {
  loading: undefined,
  emit(value: unknown): void {
    const id = running('emit()');
    const bad = findUnsendable(value, 'value');
    if (bad !== undefined) throw new TypeError(`procpool/task emit() cannot send this value: ${bad.path} is ${bad.detail}`);
    post({ type: 'procpool:message', id, index, value });
  },
  abortSignal(): AbortSignal {
    const id = running('abortSignal()');
    if (controller === undefined) {
      controller = new AbortController();
      // Only an item that holds its signal gets the grace: any other is killed at once, as before.
      post({ type: 'procpool:listening', id, index });
      if (stopped?.id === id) controller.abort(stopped.reason);
    }
    return controller.signal;
  },
};

/** Installs the context on `globalThis`; `send` posts to the parent. */
export function installTaskContext(send: (message: ChildMessage) => void): ChildGlobal {
  post = send;
  (globalThis as Record<symbol, ChildGlobal>)[childKey] = shared;
  return shared;
}

/** Item `at` of chunk `id` starts. */
export function enterItem(id: number, at: number): void {
  chunk = id;
  index = at;
}

/** The running item ended. */
export function leaveItem(): void {
  chunk = undefined;
  controller = undefined;
}

/** Chunk `id` is asked to stop: the running item's signal aborts; the chunk ends after it. */
export function stopChunk(id: number, why: AbortWhy): void {
  if (stopped?.id === id) return;
  stopped = { id, reason: reasonFor(why) };
  if (chunk === id) controller?.abort(stopped.reason);
}

/** Whether chunk `id` was asked to stop. */
export function chunkStopped(id: number): boolean {
  return stopped?.id === id;
}
