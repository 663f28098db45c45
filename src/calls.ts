/**
 * One call over many items (`apply`, `map`, `starmap`): cut into chunks,
 * dispatched, results placed by index. The call settles once: with every
 * result in input order, or with the first error as soon as it occurs, its
 * items not yet started dropped.
 */
import { setMaxListeners } from 'node:events';
import type { Chunk } from './chunk.js';
import type { Dispatch, Dispatcher } from './dispatcher.js';
import { ProgressReporter } from './progress.js';
import { SerializationError } from './errors.js';
import type { ResolvedCallOptions } from './options.js';
import type { Outcome } from './protocol.js';
import type { Counters } from './stats.js';
import { deserializeThrown } from './error-codec.js';
import { chunkItems } from './chunks.js';
import { unknownTask } from './task-ref.js';

/** What a call needs of its pool. */
export interface CallContext {
  readonly dispatcher: Dispatcher;
  readonly counters: Counters;
  readonly processes: number;
  /** Registers a running call: terminate() fails it, close() waits for it. Returns its end. */
  begin(fail: (error: unknown) => void): () => void;
}

/** Counts items that ran: with a result, or with an error. */
export function countOutcomes(context: CallContext, outcomes: readonly Outcome[]): void {
  let failed = 0;
  for (const outcome of outcomes) if (!outcome.ok) failed++;
  context.counters.completed += outcomes.length - failed;
  context.counters.failed += failed;
}

/** The error an item's outcome stands for. */
export function outcomeError(outcome: Exclude<Outcome, { ok: true }>): unknown {
  if ('local' in outcome) return outcome.local;
  if ('unknownTask' in outcome) return unknownTask(`Task "${outcome.unknownTask.task}"`, outcome.unknownTask.module, outcome.unknownTask.exports);
  if ('unsendable' in outcome) {
    const { path, detail } = outcome.unsendable;
    return new SerializationError({ direction: path.startsWith('result') ? 'result' : 'args', path, detail });
  }
  return deserializeThrown(outcome.error);
}

/** The signals of one call: `stop` follows the caller's signal, `drop` fires when the call fails. */
export interface CallSignals {
  stop: AbortController | undefined;
  drop: AbortController | undefined;
  /** Detaches from the caller's signal. */
  release(): void;
}

const noSignals: CallSignals = { stop: undefined, drop: undefined, release: () => undefined };

/**
 * Makes the call's own signals, so that per-chunk listeners never pile up
 * on the caller's. A call of one chunk has nothing to drop: it skips them
 * (they cost more than a tiny item's round trip).
 */
export function callSignals(signal: AbortSignal | undefined, onAbort: (reason: unknown) => void, chunks = Number.POSITIVE_INFINITY): CallSignals {
  if (signal === undefined && chunks <= 1) return noSignals;
  const drop = new AbortController();
  setMaxListeners(0, drop.signal);
  if (signal === undefined) return { stop: undefined, drop, release: () => undefined };
  const stop = new AbortController();
  setMaxListeners(0, stop.signal);
  const follow = (): void => {
    onAbort(signal.reason);
    stop.abort(signal.reason);
  };
  signal.addEventListener('abort', follow, { once: true });
  return { stop, drop, release: () => signal.removeEventListener('abort', follow) };
}

/**
 * Whether a call's chunks report item by item: needed to time each item, and
 * to know which item a dying child was running (per-item retries).
 */
export function streams(options: ResolvedCallOptions): boolean {
  return options.timeout !== undefined || options.retries > 0;
}

/** How a call's chunks are dispatched. */
export function dispatchOf(signals: CallSignals, options: ResolvedCallOptions, stopAtError: boolean): Dispatch {
  return { stop: signals.stop?.signal, drop: signals.drop?.signal, retries: options.retries, stopAtError };
}

/** Runs `task(...args)` once: `apply`'s lean path, since a tiny call's overhead is all there is. */
export function runOne(context: CallContext, task: string, args: unknown[], options: ResolvedCallOptions): Promise<unknown> {
  const { signal, timeout } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<unknown>((resolve, reject) => {
    let settled = false;
    const finish = (ok: boolean, value: unknown): void => {
      if (settled) return;
      settled = true;
      end();
      // Not queued any more either: the job watches `drop` while it waits.
      if (!ok) signals.drop?.abort(value);
      signals.release();
      if (ok) resolve(value);
      else reject(value);
    };
    const end = context.begin((error) => finish(false, error));
    const signals = callSignals(signal, (error) => finish(false, error), 1);
    const chunk: Chunk = { task, args: [args], spread: true, timeout, stream: timeout !== undefined };
    context.dispatcher.run(chunk, dispatchOf(signals, options, true)).then(
      ({ outcomes }) => {
        const outcome = outcomes[0]!;
        countOutcomes(context, outcomes);
        if (settled) return;
        finish(outcome.ok, outcome.ok ? outcome.value : outcomeError(outcome));
      },
      (error: unknown) => {
        if (!settled) context.counters.failed++;
        finish(false, error);
      },
    );
  });
}

/** Runs `task` on every argument tuple; resolves with the results in input order. */
export function runBatch(
  context: CallContext,
  task: string,
  items: { args: unknown[]; spread: boolean },
  chunksize: number,
  options: ResolvedCallOptions,
): Promise<unknown[]> {
  const { args: tuples, spread } = items;
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  if (tuples.length === 0) return Promise.resolve([]);
  return new Promise<unknown[]>((resolve, reject) => {
    const results = new Array<unknown>(tuples.length);
    let settled = false;
    const fail = (error: unknown): void => {
      if (settled) return;
      settled = true;
      end();
      signals.drop?.abort(error);
      signals.release();
      reject(error);
    };
    const end = context.begin(fail);
    const chunks = chunkItems(tuples, chunksize);
    const signals = callSignals(signal, fail, chunks.length);
    const progress = new ProgressReporter(options.onProgress, tuples.length);
    let remaining = chunks.length;
    chunks.forEach((args, at) => {
      const offset = at * chunksize;
      const chunk: Chunk = { task, args, spread, timeout: options.timeout, stream: streams(options) };
      context.dispatcher.run(chunk, dispatchOf(signals, options, true)).then(
        ({ outcomes }) => {
          // Counted even after the call failed: they ran.
          countOutcomes(context, outcomes);
          if (settled) return;
          for (let i = 0; i < outcomes.length; i++) {
            const outcome = outcomes[i]!;
            if (!outcome.ok) {
              progress.add(i + 1, 1);
              progress.finish();
              return fail(outcomeError(outcome));
            }
            results[offset + i] = outcome.value;
          }
          progress.add(outcomes.length);
          if (--remaining > 0) return;
          progress.finish();
          settled = true;
          end();
          signals.release();
          resolve(results);
        },
        (error: unknown) => {
          if (!settled) context.counters.failed += args.length;
          fail(error);
        },
      );
    });
  });
}
