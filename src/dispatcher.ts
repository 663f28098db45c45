/**
 * Dispatch on p-queue: one job per chunk; the job takes a child with room,
 * sends the chunk and waits for its outcomes. A chunk that never started on
 * a child that went away is sent again; one whose child died mid-run is
 * re-run only if the call allows retries. Timeouts and cancellation stop the
 * child itself: p-queue's own would free the slot while the child runs on.
 * The only home of p-queue.
 */
import PQueue from 'p-queue';
import { NotStartedError, type Chunk, type RunResult } from './chunk.js';
import { maxInFlightPerChild, type Children } from './children.js';
import { WorkerExitError } from './errors.js';
import type { Outcome } from './protocol.js';
import type { Counters } from './stats.js';

/** How one chunk is to be run. */
export interface Dispatch {
  /** Stops the chunk even while it runs (its child is killed and replaced). */
  stop: AbortSignal | undefined;
  /** Drops the chunk if it has not started; a running one finishes. (None for a call of one chunk.) */
  drop: AbortSignal | undefined;
  /** Re-runs after a child death allowed. */
  retries: number;
  /** Return at the first failed item of a streamed chunk (the call fails there anyway). */
  stopAtError: boolean;
}

function isLocalFailure(outcome: Outcome | undefined): outcome is { ok: false; local: unknown } {
  return outcome !== undefined && !outcome.ok && 'local' in outcome;
}

/** The queue of chunks waiting for a child. */
export class Dispatcher {
  readonly #queue: PQueue;
  readonly #children: Children;
  #queuedItems = 0;

  readonly #counters: Counters;

  constructor(children: Children, processes: number, counters: Counters) {
    this.#children = children;
    this.#counters = counters;
    this.#queue = new PQueue({ concurrency: processes * maxInFlightPerChild });
  }

  /** Items not yet sent to any child. */
  get queuedItems(): number {
    return this.#queuedItems;
  }

  /** Resolves when no chunk is queued or running. */
  onIdle(): Promise<void> {
    return this.#queue.onIdle();
  }

  /** Runs `chunk` on the next child with room; resolves with one outcome per item. */
  run(chunk: Chunk, how: Dispatch): Promise<RunResult> {
    this.#queuedItems += chunk.args.length;
    // No signal for p-queue: it would add a listener per queued chunk to the
    // call's one signal, and EventTarget makes each add scan the others
    // (quadratic). A dropped chunk's job instead ends at once when it comes up.
    return this.#queue.add(() => this.#job(chunk, how, performance.now()));
  }

  async #job(chunk: Chunk, how: Dispatch, queuedAt: number): Promise<RunResult> {
    // `drop` also fires when `stop` does (the call fails first): one signal to watch while queued.
    const signal = how.drop ?? how.stop;
    const size = chunk.args.length;
    let outcomes: Outcome[] = [];
    let ms = 0;
    let attempts = 0; // re-runs of a whole chunk whose child died (not streamed)
    const itemAttempts = new Map<number, number>(); // re-runs of one item (streamed)
    let queued = size; // this chunk's items counted in #queuedItems
    const requeue = (items: number): void => {
      queued += items;
      this.#queuedItems += items;
    };
    try {
      while (outcomes.length < size) {
        signal?.throwIfAborted();
        // The child comes with a slot reserved for this chunk, so that jobs
        // started together spread over the children.
        const child = await this.#children.acquire(chunk.task, signal);
        child.reserved--;
        signal?.throwIfAborted();
        // Cut the chunk where the child reaches maxTasksPerChild, so items are counted exactly.
        const take = Math.min(size - outcomes.length, this.#children.room(child));
        if (take <= 0) continue; // retired meanwhile: no longer picked
        const part = take === size ? chunk : { ...chunk, args: chunk.args.slice(outcomes.length, outcomes.length + take) };
        if (attempts === 0 && outcomes.length === 0) this.#counters.queueWait.record(performance.now() - queuedAt);
        requeue(-take);
        const { id, result } = child.run(part);
        // Counted after sending: reaching the limit retires the child once this chunk is done.
        this.#children.assign(child, take);
        const watch = how.stop !== undefined || how.drop !== undefined;
        const onStop = (): void => child.abort(id, how.stop!.reason);
        const onDrop = (): void => child.cancel(id);
        if (watch) {
          how.stop?.addEventListener('abort', onStop, { once: true });
          how.drop?.addEventListener('abort', onDrop, { once: true });
        }
        try {
          const done = await result;
          let got = done.outcomes;
          // A streamed chunk cut short by a death or a timeout: its last outcome is that item's error.
          const last = got[got.length - 1];
          if (isLocalFailure(last) && last.local instanceof WorkerExitError) {
            const at = outcomes.length + got.length - 1;
            const tried = itemAttempts.get(at) ?? 0;
            if (tried < how.retries) {
              itemAttempts.set(at, tried + 1);
              got = got.slice(0, -1);
            }
          }
          // (No spread: a chunk may hold more items than a call may take arguments.)
          if (outcomes.length === 0) outcomes = got;
          else for (const outcome of got) outcomes.push(outcome);
          ms += done.ms;
          if (got.length > 0 && done.ms > 0) this.#counters.runTime.record(done.ms / got.length);
          requeue(take - got.length);
          if (how.stopAtError && got.some((outcome) => !outcome.ok)) return { outcomes, ms };
        } catch (error) {
          requeue(take);
          signal?.throwIfAborted();
          const failure = this.#children.failure;
          if (failure) throw failure;
          if (error instanceof WorkerExitError && attempts < how.retries) attempts++;
          else if (!(error instanceof NotStartedError)) throw error;
        } finally {
          if (watch) {
            how.stop?.removeEventListener('abort', onStop);
            how.drop?.removeEventListener('abort', onDrop);
          }
        }
      }
      return { outcomes, ms };
    } finally {
      // Items of this chunk never sent (dropped, failed) are no longer queued.
      this.#queuedItems -= queued;
    }
  }
}
