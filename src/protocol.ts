/**
 * The wire: messages exchanged with a child over its IPC channel, and
 * nothing else (parent-side records live in `engine/`). Every type carries
 * the `procpool:` prefix so a task's own `process.send` traffic is ignored.
 *
 * A chunk's life on the wire:
 *
 *   parent ── run {id} ──────────────► child   (queued in the child, in order)
 *   parent ◄── start {id} ──────────── child   its first item starts now
 *   parent ◄── ended {id, count} ───── child   (timed chunks) items before count ended
 *   parent ◄── items {id, from, …} ─── child   outcomes so far (every few ms)
 *   parent ◄── done {id, from, …} ──── child   the rest; may announce the next start
 *
 * Only a chunk whose start the parent has read can be charged for a death.
 */
import type { SerializedThrown } from './error-codec.js';

/** Parent → child: what to load and how to start. Sent once, first. */
export interface InitMessage {
  type: 'procpool:init';
  /** `file:` URL of the task module. */
  module: string;
  initializer: string | undefined;
  initArgs: unknown[];
  /** Run when the child leaves gracefully (a stop message), within `finalTimeout` ms. */
  finalizer: string | undefined;
  finalArgs: unknown[];
  finalTimeout: number;
  /** The source text of an initializer/finalizer passed as a function: the export must be that function. */
  sources: { initializer?: string; finalizer?: string };
  /** maxMemoryPerChild in bytes (Infinity: none): past it after an item, the child ends its chunk there. */
  memoryLimit: number;
}

/** Parent → child: run `task` on each item of the chunk, in order. */
export interface RunMessage {
  type: 'procpool:run';
  id: number;
  task: string;
  /** Each item's arguments: a tuple when `spread`, else the one argument itself. */
  args: unknown[];
  spread: boolean;
  /** End the chunk at its first failing item (the call fails there anyway). */
  stopAtError: boolean;
  /** Report after every item, not every few ms: exact blame after an ambiguous death. */
  exact: boolean;
  /** Items have a time limit: the child marks the end of its items (`ended`) before their outcomes cross, and starts the next item once big outcomes are written. */
  timed: boolean;
  /** The call the chunk belongs to, and the call index of its first item (with `stopAtError`: a failure in this child drops the call's later chunks). */
  call: number;
  from: number;
}

/** Parent → child: skip chunk `id` if it has not started (answered by a `done` with `skipped`). */
export interface SkipMessage {
  type: 'procpool:skip';
  id: number;
}

/** Parent → child: leave once the output is flushed (sent only when the child has no chunk). */
export interface StopMessage {
  type: 'procpool:stop';
}

/** Several run messages in one: fewer writes and wake-ups when a child is kept fed. */
export interface ParentBatch {
  type: 'procpool:batch';
  messages: RunMessage[];
}

/** Parent → child: abort the running item's signal (procpool/task) and end chunk `id` after it; skip it if queued. */
export interface AbortMessage {
  type: 'procpool:abort';
  id: number;
  why: 'timeout' | 'signal' | 'failed' | 'terminate';
}

export type ParentMessage = InitMessage | RunMessage | SkipMessage | StopMessage | ParentBatch | AbortMessage;

/**
 * Exit code of a child whose IPC channel closed without a stop message. The
 * parent never reads blame from it (a task may exit with any code): it
 * knows a child let go of its channel from the `disconnecting` message.
 */
export const DISCONNECTED_EXIT_CODE = 75;

/** Child → parent: module loaded, initializer done. */
export interface ReadyMessage {
  type: 'procpool:ready';
  /** Names of the module's exported functions. */
  tasks: string[];
}

/** Child → parent: the module or the initializer failed; the child exits. */
export interface InitErrorMessage {
  type: 'procpool:init-error';
  error: SerializedThrown;
}

/** How one item failed, as it crosses the wire. */
export type WireFailure =
  | { error: SerializedThrown }
  | { unsendable: { path: string; detail: string } }
  | { unknownTask: { task: string; module: string; exports: string[] } };

/** Child → parent: chunk `id`'s first item starts now. */
export interface StartMessage {
  type: 'procpool:start';
  id: number;
}

/**
 * Child → parent: outcomes of items `from` … `from + values.length - 1` of
 * chunk `id`. Plain values cross faster than one `{ ok, value }` each, so
 * failed items sit apart (by position in `values`, whose slot is undefined).
 */
export interface ItemsMessage {
  type: 'procpool:items';
  id: number;
  from: number;
  values: unknown[];
  failures: Array<[index: number, failure: WireFailure]>;
}

/** Child → parent: chunk `id` ended; items after the last reported one did not start. */
export interface DoneMessage extends Omit<ItemsMessage, 'type'> {
  type: 'procpool:done';
  /** The chunk was skipped before it started (a skip message, or none of its items ran). */
  skipped: boolean;
  /** Milliseconds the chunk ran. */
  ms: number;
  /** Resident set size of the child after the chunk, in bytes. */
  rss: number;
  /** The next chunk, already queued in the child, starts now (saves a start message). */
  next: number | undefined;
}

/**
 * Child → parent, for a timed chunk: items before `count` of chunk `id` have
 * ended (the next starts once big outcomes are written). Sent just before
 * the outcomes, so the parent stops the item's timer before they cross.
 */
export interface EndedMessage {
  type: 'procpool:ended';
  id: number;
  count: number;
}

/** Child → parent: an uncaught exception or unhandled rejection; the child exits. */
export interface FatalMessage {
  type: 'procpool:fatal';
  error: SerializedThrown;
}

/** Child → parent: a running item's `emit(value)` (procpool/task); `index` in chunk `id`. */
export interface TaskMessage {
  type: 'procpool:message';
  id: number;
  index: number;
  value: unknown;
}

/** Child → parent: item `index` of chunk `id` asked for its AbortSignal: stopping it waits killGrace for it to end. */
export interface ListeningMessage {
  type: 'procpool:listening';
  id: number;
  index: number;
}

/** Child → parent: the finalizer failed (threw, or passed its time limit); the child leaves anyway. */
export interface FinalErrorMessage {
  type: 'procpool:final-error';
  error: SerializedThrown;
}


/** Child → parent: the child is letting go of its channel (a task called `process.disconnect()`); sent just before. */
export interface DisconnectingMessage {
  type: 'procpool:disconnecting';
}

export type ChildMessage =
  | TaskMessage
  | ListeningMessage
  | FinalErrorMessage
  | ReadyMessage
  | InitErrorMessage
  | StartMessage
  | EndedMessage
  | ItemsMessage
  | DoneMessage
  | FatalMessage
  | DisconnectingMessage;

function hasType(value: unknown): value is { type: string } {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string';
}

const childTypes = new Set(['procpool:message', 'procpool:listening', 'procpool:final-error', 'procpool:ready', 'procpool:init-error', 'procpool:start', 'procpool:ended', 'procpool:items', 'procpool:done', 'procpool:fatal', 'procpool:disconnecting']);
const parentTypes = new Set(['procpool:init', 'procpool:run', 'procpool:skip', 'procpool:stop', 'procpool:batch', 'procpool:abort']);

/** Narrows a message received by the parent; anything else is not ours. */
export function isChildMessage(value: unknown): value is ChildMessage {
  return hasType(value) && childTypes.has(value.type);
}

/** Narrows a message received by the child; anything else is not ours. */
export function isParentMessage(value: unknown): value is ParentMessage {
  return hasType(value) && parentTypes.has(value.type);
}
