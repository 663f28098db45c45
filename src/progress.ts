/**
 * Per-call progress reports (`onProgress`): throttled so a hot path of tiny
 * items pays a counter increment, not a callback, per item.
 */

/** What `onProgress` receives. */
export interface Progress {
  /** Items finished (with a result or an error). */
  readonly done: number;
  /** Items in the call, when known (`map`/`starmap`; `undefined` for `imap*`). */
  readonly total: number | undefined;
  /** Items finished with an error. */
  readonly failed: number;
}

const everyMs = 100;

/** Counts a call's items and reports at most every 100 ms, and once at the end. */
export class ProgressReporter {
  readonly #listener: ((progress: Progress) => void) | undefined;
  readonly #total: number | undefined;
  #done = 0;
  #failed = 0;
  #last = 0;

  constructor(listener: ((progress: Progress) => void) | undefined, total: number | undefined) {
    this.#listener = listener;
    this.#total = total;
  }

  /** Records finished items; reports if the last report is old enough. */
  add(done: number, failed = 0): void {
    if (this.#listener === undefined) return;
    this.#done += done;
    this.#failed += failed;
    const now = Date.now();
    if (now - this.#last < everyMs) return;
    this.#last = now;
    this.#report();
  }

  /** The final report. */
  finish(): void {
    if (this.#listener !== undefined) this.#report();
  }

  #report(): void {
    try {
      this.#listener!({ done: this.#done, total: this.#total, failed: this.#failed });
    } catch {
      // A progress listener's own failure must not fail the work it watches.
    }
  }
}
