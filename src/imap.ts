/**
 * `imap` / `imapUnordered`: a lazy call over an iterable or async iterable.
 * Input is read only while fewer than `window` chunks are in flight or
 * waiting to be consumed, so an endless input runs in constant memory.
 * Leaving the loop early drops the rest of the call.
 */
import type { Chunk } from './chunk.js';
import { AdaptiveChunksize } from './chunks.js';
import { callSignals, countOutcomes, dispatchOf, outcomeError, streams, type CallContext } from './calls.js';
import { ProgressReporter } from './progress.js';
import type { ResolvedCallOptions } from './options.js';
import type { Outcome } from './protocol.js';

/** How an imap call reads and yields. */
export interface ImapShape {
  /** Yield in input order (imap) or completion order (imapUnordered). */
  ordered: boolean;
  /** Each input is an argument tuple (starmap-like) rather than one argument. */
  spread: boolean;
  /** Chunks in flight or buffered at most. */
  window: number;
  /** Yield every item's outcome as a `Settled` record and go on past failures (the command line). */
  settle: boolean;
}

/** How the pool ends an imap call whose iterator was dropped unfinished. */
export interface ImapLease {
  end?: () => void;
}

/** One item's outcome, with its input position (settle mode). */
export type Settled = { index: number; ok: true; value: unknown } | { index: number; ok: false; error: unknown };

interface Slot {
  start: number;
  size: number;
  done: boolean;
  outcomes?: Outcome[];
  failure?: { error: unknown };
}

function iterate<T>(items: Iterable<T> | AsyncIterable<T>): Iterator<T> | AsyncIterator<T> {
  const asyncFactory = (items as AsyncIterable<T>)[Symbol.asyncIterator];
  if (typeof asyncFactory === 'function') return asyncFactory.call(items);
  const factory = (items as Iterable<T>)[Symbol.iterator];
  if (typeof factory === 'function') return factory.call(items);
  throw new TypeError(`Expected \`items\` to be an iterable or async iterable, got \`${String(items)}\` (${typeof items})`);
}

/** Runs `task` lazily over `items`, yielding each result (see ImapShape). */
export async function* runImap(
  context: CallContext,
  resolveTask: () => Promise<string>,
  items: unknown,
  open: () => ResolvedCallOptions,
  shape: ImapShape,
  lease: ImapLease,
): AsyncGenerator<unknown, void, undefined> {
  // Checked here, in the generator's body: a bad call rejects the first next().
  const options = open();
  const { signal } = options;
  signal?.throwIfAborted();
  const source = iterate(items as Iterable<unknown>);
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const poke = (): void => {
    const resolve = wake;
    wake = undefined;
    resolve?.();
  };
  const fail = (error: unknown): void => {
    failure ??= { error };
    // Queued chunks must not start while the caller has yet to resume.
    signals.drop?.abort(error);
    poke();
  };
  // Active until it ends, so close() lets it finish; `lease` lets the pool end
  // it if the caller drops the iterator without finishing it.
  const end = context.begin(fail);
  lease.end = end;
  const signals = callSignals(signal, fail);
  const sizes = new AdaptiveChunksize();
  const progress = new ProgressReporter(options.onProgress, undefined);
  const slots: Slot[] = [];
  let exhausted = false;
  let read = 0;

  const submit = (task: string, args: unknown[]): void => {
    const slot: Slot = { start: read, size: args.length, done: false };
    read += args.length;
    slots.push(slot);
    const endChunk = context.begin(fail);
    const chunk: Chunk = { task, args, spread: shape.spread, timeout: options.timeout, stream: shape.settle || streams(options) };
    context.dispatcher.run(chunk, dispatchOf(signals, options, !shape.settle)).then(
      ({ outcomes, ms }) => {
        sizes.observe(outcomes.length, ms);
        countOutcomes(context, outcomes);
        slot.outcomes = outcomes;
      },
      (error: unknown) => {
        slot.failure = { error };
      },
    ).finally(() => {
      slot.done = true;
      endChunk();
      poke();
    });
  };

  try {
    const task = await resolveTask();
    for (;;) {
      // Read ahead while the window has room.
      while (!exhausted && slots.length < shape.window && failure === undefined) {
        const want = options.chunksize ?? sizes.next;
        const args: unknown[] = [];
        while (args.length < want) {
          const next = await source.next();
          if (next.done) {
            exhausted = true;
            break;
          }
          args.push(next.value);
        }
        if (args.length > 0) submit(task, args);
      }
      if (failure !== undefined) throw failure.error;
      const at = shape.ordered ? (slots.length > 0 && isDone(slots[0]!) ? 0 : -1) : slots.findIndex(isDone);
      if (at >= 0) {
        const [slot] = slots.splice(at, 1);
        if (slot!.failure !== undefined) {
          context.counters.failed += slot!.size;
          throw slot!.failure.error;
        }
        const outcomes = slot!.outcomes!;
        for (let i = 0; i < outcomes.length; i++) {
          const outcome = outcomes[i]!;
          progress.add(1, outcome.ok ? 0 : 1);
          if (shape.settle) yield settled(slot!.start + i, outcome);
          else if (outcome.ok) yield outcome.value;
          else throw outcomeError(outcome);
        }
        continue;
      }
      if (exhausted && slots.length === 0) return progress.finish();
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    // Done, failed or left early: nothing more is read, queued chunks are dropped.
    end();
    signals.drop?.abort(failure?.error ?? new Error('The imap call ended'));
    signals.release();
    if (!exhausted) await closeQuietly(source);
  }
}

function settled(index: number, outcome: Outcome): Settled {
  return outcome.ok ? { index, ok: true, value: outcome.value } : { index, ok: false, error: outcomeError(outcome) };
}

function isDone(slot: Slot): boolean {
  return slot.done;
}

async function closeQuietly(source: Iterator<unknown> | AsyncIterator<unknown>): Promise<void> {
  try {
    await source.return?.();
  } catch {
    // The input's own clean-up failing must not hide the call's outcome.
  }
}
