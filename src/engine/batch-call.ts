/**
 * One call over a known list of items (`apply`, `map`, `starmap`): cut into
 * chunks, queued, results placed by index. It settles once: with every
 * result in input order, or with the first failure as soon as it is known —
 * then its chunks not yet started are skipped (never run); chunks already
 * running on other children finish and are counted, their results dropped.
 */
import { ProgressReporter } from '../progress.js';
import type { ResolvedCallOptions } from '../options.js';
import type { Counters } from '../stats.js';
import type { Attempt, Report } from './backend.js';
import { countReport, failureError, firstFailure } from './outcome.js';
import { deliver, dropAttempt } from './messages.js';
import type { OpenCall, Registry } from './registry.js';
import type { SignalFollower, Signals } from './signals.js';
import type { ChunkOwner, Scheduler } from './scheduler.js';
import { findUnsendable } from '../transfer.js';
import { SerializationError } from '../errors.js';

/** What a call needs of its pool. */
export interface CallContext {
  readonly scheduler: Scheduler;
  readonly registry: Registry;
  readonly counters: Counters;
  /** One abort listener per signal, for every call that shares it. */
  readonly signals: Signals;
  /** Children (or runners) the pool has: the read-ahead of `imap*`. */
  readonly processes: number;
}

/** Why `item` cannot cross to a child, if it cannot. */
export function unsendableItem(item: unknown, spread: boolean): SerializationError | undefined {
  const found = findUnsendable(item, spread ? 'args' : 'args[0]');
  return found === undefined ? undefined : new SerializationError({ direction: 'args', ...found });
}

type State = 'running' | 'settled';

/** A call whose items are all known when it is made. */
export class BatchCall implements ChunkOwner, OpenCall, SignalFollower {
  readonly task: string;
  readonly spread: boolean;
  readonly timeout: number | undefined;
  readonly retries: number;
  readonly priority: number;
  readonly stopAtError = true;
  readonly onMessage: ((index: number, value: unknown, workerId: number) => void) | undefined;
  readonly promise: Promise<unknown>;
  readonly #context: CallContext;
  readonly #results: unknown[];
  readonly #attempts = new Set<Attempt>();
  #attempt: Attempt | undefined;
  readonly #progress: ProgressReporter;
  readonly #single: boolean;
  #state: State = 'running';
  #remaining: number;
  #resolve!: (value: unknown) => void;
  #reject!: (error: unknown) => void;
  #close: () => void = () => undefined;
  #unfollow: () => void = () => undefined;

  /** Starts `task` over `items` (argument tuples when `spread`); `single`: `apply`, resolving with the one result. */
  constructor(context: CallContext, task: string, items: unknown[], how: { spread: boolean; single: boolean; chunksize: number }, options: ResolvedCallOptions) {
    this.#context = context;
    this.task = task;
    this.spread = how.spread;
    this.timeout = options.timeout;
    this.retries = options.retries;
    this.priority = options.priority;
    this.#single = how.single;
    this.#results = new Array<unknown>(items.length);
    this.#remaining = items.length;
    this.#progress = new ProgressReporter(options.onProgress, items.length);
    const { onMessage } = options;
    this.onMessage = onMessage === undefined ? undefined : (index, value, workerId) => this.#state === 'running' && deliver(onMessage, value, { index, workerId }, this);
    this.promise = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    const { signal } = options;
    if (!this.#admit(items, signal)) return;
    this.#close = context.registry.open(this);
    // Opened after terminate() or a break: already failed, nothing to queue.
    if (this.#state !== 'running') {
      this.#close();
      return;
    }
    if (signal !== undefined) this.#unfollow = context.signals.follow(signal, this);
    const size = how.chunksize;
    if (size >= items.length) context.scheduler.submit(this, undefined, 0, items);
    else for (let start = 0; start < items.length; start += size) context.scheduler.submit(this, undefined, start, items.slice(start, start + size));
  }

  /** Settles at once what needs no child: an aborted signal, no items, an item that cannot be sent. */
  #admit(items: unknown[], signal: AbortSignal | undefined): boolean {
    if (signal?.aborted) return !this.#settle(false, signal.reason);
    if (items.length === 0) return !this.#settle(true, this.#single ? undefined : []);
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      // Numbers, strings, booleans, null: nothing to walk (most items of a big map).
      if (item === null || (typeof item !== 'object' && typeof item !== 'function' && typeof item !== 'symbol')) continue;
      const error = unsendableItem(item, this.spread);
      if (error === undefined) continue;
      this.#context.counters.failed++;
      return !this.#settle(false, error);
    }
    return true;
  }

  wants(): boolean {
    return this.#state === 'running';
  }

  attach(attempt: Attempt): void {
    // `apply`: one attempt at a time, no set to keep (its cost shows in a tiny call).
    if (this.#single) this.#attempt = attempt;
    else this.#attempts.add(attempt);
  }

  detach(attempt: Attempt): void {
    if (this.#attempt === attempt) this.#attempt = undefined;
    else this.#attempts.delete(attempt);
  }

  accept(_tag: unknown, start: number, report: Report): void {
    // Counted even after the call failed: they ran.
    countReport(this.#context.counters, report);
    if (this.#state !== 'running') return;
    const first = firstFailure(report);
    if (first !== undefined) {
      this.#progress.add(first[0] + 1, 1);
      return this.fail(failureError(first[1]));
    }
    const { values } = report;
    for (let i = 0; i < values.length; i++) this.#results[start + i] = values[i];
    this.#progress.add(values.length);
    this.#remaining -= values.length;
    if (this.#remaining === 0) this.#settle(true, this.#single ? this.#results[0] : this.#results);
  }

  /** Fails the call; its chunks not yet started are skipped, its running items' signals abort. */
  fail(error: unknown): void {
    if (!this.#settle(false, error)) return;
    if (this.#attempt !== undefined) dropAttempt(this.#attempt);
    for (const attempt of this.#attempts) dropAttempt(attempt);
  }

  cancelPending(error: unknown): void {
    const waiting = this.#context.scheduler.hasQueued(this) || this.#attempt?.started === false || [...this.#attempts].some((attempt) => attempt.started === false);
    // Running items finish (their results are dropped): only what has not started is skipped.
    if (!waiting || !this.#settle(false, error)) return;
    this.#attempt?.skip();
    for (const attempt of this.#attempts) attempt.skip();
  }

  /** The caller's signal: running chunks are stopped too. */
  signalAborted(reason: unknown): void {
    if (!this.#settle(false, reason)) return;
    this.#attempt?.abort(reason);
    for (const attempt of this.#attempts) attempt.abort(reason);
  }

  #settle(ok: boolean, value: unknown): boolean {
    if (this.#state !== 'running') return false;
    this.#state = 'settled';
    this.#close();
    this.#unfollow();
    this.#context.scheduler.forget(this);
    this.#progress.finish();
    if (ok) this.#resolve(value);
    else this.#reject(value);
    return true;
  }
}
