/**
 * The results an `imap*` call has received and not yet yielded: parts of
 * consecutive items, handed out in input order (imap) or in the order they
 * arrived (imapUnordered), one item at a time.
 */
import type { Failure } from './backend.js';

/** A chunk as submitted: counts toward the read-ahead until all of it is consumed. */
export interface Sent {
  unconsumed: number;
  /** Items it was submitted with. */
  readonly items: number;
}

/** Reported outcomes of consecutive items, waiting to be yielded. */
export interface Part {
  start: number;
  values: unknown[];
  failed: Map<number, Failure> | undefined;
  sent: Sent;
}

/** One result handed out: its input position, and its value or failure. */
export interface Taken {
  index: number;
  value: unknown;
  failure: Failure | undefined;
}

/** Received results, in the order they are to be yielded. */
export class Results {
  readonly #ordered: boolean;
  readonly #byStart = new Map<number, Part>();
  readonly #arrived: Part[] = [];
  #part: Part | undefined;
  #next = 0;

  constructor(ordered: boolean) {
    this.#ordered = ordered;
  }

  /** Input position of the next result in order (imap). */
  get next(): number {
    return this.#next;
  }

  add(part: Part): void {
    if (this.#ordered) this.#byStart.set(part.start, part);
    else this.#arrived.push(part);
  }

  /**
   * The next result whose turn has come, before position `limit` (imap: a
   * failure's position); `consumed` hears of each chunk all of whose results
   * were handed out.
   */
  take(limit: number, consumed: (sent: Sent) => void): Taken | undefined {
    let part = this.#part;
    if (part === undefined) {
      if (this.#ordered) {
        if (this.#next >= limit) return undefined;
        part = this.#byStart.get(this.#next);
        if (part === undefined) return undefined;
        this.#byStart.delete(this.#next);
      } else {
        part = this.#arrived.shift();
        if (part === undefined) return undefined;
        this.#next = part.start;
      }
      this.#part = part;
    }
    const index = this.#next++;
    const at = index - part.start;
    if (at === part.values.length - 1) {
      this.#part = undefined;
      part.sent.unconsumed -= part.values.length;
      if (part.sent.unconsumed === 0) consumed(part.sent);
    }
    return { index, value: part.values[at], failure: part.failed?.get(at) };
  }
}
