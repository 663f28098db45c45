/**
 * The wire: messages exchanged with a child over its IPC channel, and
 * nothing else (parent-side records live in `engine/`). Every type carries
 * the `procpool:` prefix so a task's own `process.send` traffic is ignored.
 *
 * A chunk's life on the wire:
 *
 *   parent ── run {id} ──────────────► child   (queued in the child, in order)
 *   parent ◄── start {id} ──────────── child   its first item starts now
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
  /** Items have a time limit: the parent times each from the latest report, so reports keep their pace. */
  timed: boolean;
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

export type ParentMessage = InitMessage | RunMessage | SkipMessage | StopMessage | ParentBatch;

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

/** Child → parent: an uncaught exception or unhandled rejection; the child exits. */
export interface FatalMessage {
  type: 'procpool:fatal';
  error: SerializedThrown;
}

/** Child → parent: the child is letting go of its channel (a task called `process.disconnect()`); sent just before. */
export interface DisconnectingMessage {
  type: 'procpool:disconnecting';
}

export type ChildMessage = ReadyMessage | InitErrorMessage | StartMessage | ItemsMessage | DoneMessage | FatalMessage | DisconnectingMessage;

function hasType(value: unknown): value is { type: string } {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string';
}

const childTypes = new Set(['procpool:ready', 'procpool:init-error', 'procpool:start', 'procpool:items', 'procpool:done', 'procpool:fatal', 'procpool:disconnecting']);
const parentTypes = new Set(['procpool:init', 'procpool:run', 'procpool:skip', 'procpool:stop', 'procpool:batch']);

/** Narrows a message received by the parent; anything else is not ours. */
export function isChildMessage(value: unknown): value is ChildMessage {
  return hasType(value) && childTypes.has(value.type);
}

/** Narrows a message received by the child; anything else is not ours. */
export function isParentMessage(value: unknown): value is ParentMessage {
  return hasType(value) && parentTypes.has(value.type);
}
