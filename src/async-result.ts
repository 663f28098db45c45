/**
 * AsyncResult: what Python's `apply_async`/`map_async` return, made
 * thenable. Callbacks run before it settles; a rejection is never unhandled
 * just because nobody asked for it (as in Python, `get()` surfaces it).
 */
import { PoolStateError, ResultTimeoutError } from './errors.js';
import { maxTimerMs } from './options.js';

/**
 * Calls a user's callback; if it throws, that error is the user's to see
 * (an uncaught exception, as for any Node callback), and the result stays
 * what it was.
 */
function call<T>(callback: ((value: T) => void) | undefined, value: T): void {
  try {
    callback?.(value);
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}

/** The handle of a call started with an `*Async` method. */
export class AsyncResult<T> implements PromiseLike<T> {
  readonly #promise: Promise<T>;
  #state: 'pending' | 'fulfilled' | 'rejected' = 'pending';
  /**
   * Polls with a timeout waiting for the call (`wait(ms)`, `get(ms)`): told
   * once it settles, each gone at its own timeout. Not a reaction on the
   * promise per poll: those would stay until the call settles.
   */
  readonly #polls = new Set<() => void>();

  /** @internal Wraps the call's promise; callbacks run before it settles. */
  constructor(
    work: Promise<T>,
    callbacks: { callback?: ((value: T) => void) | undefined; errorCallback?: ((error: unknown) => void) | undefined } = {},
  ) {
    this.#promise = work.then(
      (value) => {
        this.#state = 'fulfilled';
        call(callbacks.callback, value);
        this.#endPolls();
        return value;
      },
      (error: unknown) => {
        this.#state = 'rejected';
        call(callbacks.errorCallback, error);
        this.#endPolls();
        throw error;
      },
    );
    this.#promise.catch(() => undefined);
  }

  #endPolls(): void {
    for (const settled of this.#polls) settled();
    this.#polls.clear();
  }

  /** Calls `settled` once the call settles, or `expired` after `ms`, whichever comes first. */
  #poll(ms: number, settled: () => void, expired: () => void): void {
    const done = (): void => {
      clearTimeout(timer);
      this.#polls.delete(done);
      settled();
    };
    const timer = setTimeout(() => {
      this.#polls.delete(done);
      expired();
    }, ms);
    this.#polls.add(done);
  }

  /** The value; with `timeout` (ms), rejects with ResultTimeoutError if not ready in time — the work goes on. */
  get(timeout?: number): Promise<T> {
    if (timeout === undefined || this.#state !== 'pending') return this.#promise;
    if (typeof timeout !== 'number' || !(timeout >= 0) || timeout > maxTimerMs) {
      const message = `Expected \`timeout\` to be a number of milliseconds from 0 to ${maxTimerMs}, got \`${String(timeout)}\` (${typeof timeout})`;
      return Promise.reject(typeof timeout === 'number' ? new RangeError(message) : new TypeError(message));
    }
    return new Promise<T>((resolve, reject) => {
      this.#poll(
        timeout,
        () => resolve(this.#promise),
        () => reject(new ResultTimeoutError(timeout)),
      );
    });
  }

  /** Resolves when ready or when `timeout` (ms) passes; never rejects. */
  wait(timeout?: number): Promise<void> {
    if (timeout === undefined || this.#state !== 'pending') {
      return this.#promise.then(
        () => undefined,
        () => undefined,
      );
    }
    return new Promise<void>((resolve) => this.#poll(Math.min(maxTimerMs, Math.max(0, Number(timeout) || 0)), resolve, resolve));
  }

  /** Whether the call has settled. */
  ready(): boolean {
    return this.#state !== 'pending';
  }

  /** Whether the call succeeded; throws PoolStateError if it has not settled. */
  successful(): boolean {
    if (this.#state === 'pending') throw new PoolStateError('successful() was called before the result was ready');
    return this.#state === 'fulfilled';
  }

  then<A = T, B = never>(
    onFulfilled?: ((value: T) => A | PromiseLike<A>) | null,
    onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.#promise.then(onFulfilled, onRejected);
  }

  catch<B = never>(onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<T | B> {
    return this.#promise.catch(onRejected);
  }

  finally(onFinally?: (() => void) | null): Promise<T> {
    return this.#promise.finally(onFinally);
  }

  get [Symbol.toStringTag](): string {
    return 'AsyncResult';
  }
}
