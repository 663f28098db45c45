/**
 * The record of one chunk on one child: where it stands (in the outbox,
 * sent, started), what it has reported, and the attempt its caller holds.
 */
import type { Attempt, AttemptEnd, ChunkJob, Failure } from '../engine/backend.js';

/** Where a chunk stands on its child. Only a `started` chunk can be charged for a death. */
export type EntryPhase = 'outbox' | 'sent' | 'started';

/** What the entry asks of its child when its caller skips or aborts it. */
export interface EntryOwner {
  skipEntry(entry: Entry): void;
  abortEntry(entry: Entry, reason: unknown): void;
  cancelEntry(entry: Entry): void;
}

let nextId = 1;

/** One chunk on a child, and the caller's handle on it. */
export class Entry implements Attempt {
  readonly id = nextId++;
  readonly job: ChunkJob;
  readonly end: Promise<AttemptEnd>;
  phase: EntryPhase = 'outbox';
  /** When the parent heard that it started (performance.now()). */
  startedAt = 0;
  /** Outcomes reported so far, from the chunk's first item. */
  values: unknown[] = [];
  readonly failures: Array<[number, Failure]> = [];
  /** A skip was asked for while the chunk was on its way. */
  skipAsked = false;
  /** An abort was asked for: stop the chunk as soon as it starts. */
  abortAsked: { reason: unknown } | undefined;
  /** The child was asked to abort the running item's signal (procpool/task). */
  signalled = false;
  /** The latest item of the chunk that asked for its AbortSignal (-1: none). */
  listening = -1;
  /** The per-item timer, and a count that makes a stale expiry harmless. */
  timer: NodeJS.Timeout | undefined;
  armed = 0;
  readonly #owner: EntryOwner;
  #resolve!: (end: AttemptEnd) => void;
  #ended = false;

  constructor(owner: EntryOwner, job: ChunkJob) {
    this.#owner = owner;
    this.job = job;
    this.end = new Promise((resolve) => (this.#resolve = resolve));
  }

  get started(): boolean {
    return this.phase === 'started';
  }

  get ended(): boolean {
    return this.#ended;
  }

  skip(): void {
    if (!this.#ended) this.#owner.skipEntry(this);
  }

  cancel(): void {
    if (!this.#ended) this.#owner.cancelEntry(this);
  }

  abort(reason: unknown): void {
    if (!this.#ended) this.#owner.abortEntry(this, reason);
  }

  /** Back to the queue if it has not started (work of a higher priority waits, or its child's depth dropped). */
  recall(): void {
    if (!this.#ended && this.phase !== 'started') this.#owner.skipEntry(this);
  }

  /** Appends reported outcomes (positions relative to `from`). */
  append(from: number, values: unknown[], failures: Array<[number, Failure]>): void {
    // Reports arrive in order; one that repeats items is a protocol error to ignore.
    if (from !== this.values.length) return;
    for (const [index, failure] of failures) this.failures.push([from + index, failure]);
    // Adopted as it came when it is the first: no copy of a large chunk's values.
    if (this.values.length === 0) this.values = values;
    else for (const value of values) this.values.push(value);
  }

  /** Settles the attempt (once). */
  finish(end: AttemptEnd): void {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.timer);
    this.armed++;
    this.#resolve(end);
  }

  /** The outcomes reported so far, as the attempt's report. */
  get report(): { values: unknown[]; failures: Array<[number, Failure]> } {
    return { values: this.values, failures: this.failures };
  }
}
