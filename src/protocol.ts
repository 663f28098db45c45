/**
 * Messages exchanged with a child over its IPC channel. Every type carries
 * the `procpool:` prefix so a task's own `process.send` traffic is ignored.
 */
import type { SerializedThrown } from './error-codec.js';

/** Parent → child: what to load and how to start. Sent once, first. */
export interface InitMessage {
  type: 'procpool:init';
  /** `file:` URL of the task module. */
  module: string;
  initializer: string | undefined;
  initArgs: unknown[];
  /** maxMemoryPerChild in bytes (Infinity: none): past it after an item, the child stops its chunk there. */
  memoryLimit: number;
}

/** Parent → child: run `task` on each argument tuple of the chunk, in order. */
export interface RunMessage {
  type: 'procpool:run';
  id: number;
  task: string;
  /** Each item's arguments: a tuple when `spread`, else the one argument itself (map: no tuple per item). */
  args: unknown[];
  spread: boolean;
  /** Report when the chunk starts (only when the call has a timeout). */
  timed: boolean;
  /** Send each item's outcome as it finishes, not all at the end. */
  stream: boolean;
}

/** Parent → child: skip chunk `id` if it has not started. */
export interface CancelMessage {
  type: 'procpool:cancel';
  id: number;
}

/** Parent → child: leave now (sent only when the child is idle). */
export interface StopMessage {
  type: 'procpool:stop';
}

/** Several messages in one: fewer writes and wake-ups when a child is kept fed. */
export interface ParentBatch {
  type: 'procpool:batch';
  messages: RunMessage[];
}

export type ParentMessage = InitMessage | RunMessage | CancelMessage | StopMessage | ParentBatch;

/** Exit code of a child whose IPC channel closed without a stop message. */
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

/** The outcome of one item. `local` is an error raised in the parent (the item's child died or timed out). */
export type Outcome =
  | { ok: true; value: unknown }
  | { ok: false; error: SerializedThrown }
  | { ok: false; unsendable: { path: string; detail: string } }
  | { ok: false; local: unknown }
  | { ok: false; unknownTask: { task: string; module: string; exports: string[] } };

/** Child → parent: a chunk finished (or was skipped after a cancel). */
export interface DoneMessage {
  type: 'procpool:done';
  id: number;
  /**
   * Results by item position, with failed items' outcomes apart: plain values
   * cross faster than one `{ ok, value }` object each.
   */
  values: unknown[];
  failures: Array<[index: number, outcome: Outcome]>;
  /** Milliseconds the chunk ran, for adaptive chunking. */
  ms: number;
  /** Resident set size of the child after the chunk, in bytes. */
  rss: number;
  cancelled?: boolean;
}

/** Child → parent: item `index` of streamed chunk `id` finished. */
export interface ItemMessage {
  type: 'procpool:item';
  id: number;
  index: number;
  outcome: Outcome;
}

/** Child → parent: item `index` of timed chunk `id` starts now. */
export interface StartMessage {
  type: 'procpool:start';
  id: number;
  index: number;
}

/** Child → parent: an uncaught exception or unhandled rejection; the child exits. */
export interface FatalMessage {
  type: 'procpool:fatal';
  error: SerializedThrown;
}

export type ChildMessage = ReadyMessage | InitErrorMessage | DoneMessage | ItemMessage | StartMessage | FatalMessage;

function hasType(value: unknown): value is { type: string } {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string';
}

const childTypes = new Set(['procpool:ready', 'procpool:init-error', 'procpool:done', 'procpool:item', 'procpool:start', 'procpool:fatal']);
const parentTypes = new Set(['procpool:init', 'procpool:run', 'procpool:cancel', 'procpool:stop', 'procpool:batch']);

/** Narrows a message received by the parent; anything else is not ours. */
export function isChildMessage(value: unknown): value is ChildMessage {
  return hasType(value) && childTypes.has(value.type);
}

/** Narrows a message received by the child; anything else is not ours. */
export function isParentMessage(value: unknown): value is ParentMessage {
  return hasType(value) && parentTypes.has(value.type);
}
