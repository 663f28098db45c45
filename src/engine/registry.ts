/**
 * Two things a pool must know about its calls, kept apart:
 * - open calls: what `terminate()` or a broken pool must fail;
 * - work in flight (chunks queued or running, calls still resolving their
 *   task, `ready()`): what `close()` waits for.
 * An `imap` suspended at a `yield` with nothing in flight is open but holds
 * nothing: it never keeps `join()` or the process waiting.
 *
 * And the pool's liveness, owned here alone: while work is in flight or a
 * `join()` is pending, ONE ref'd handle keeps the parent's event loop alive
 * — never a child's pipe or timer that happens to be ref'd.
 */

/** A call that can be failed from outside. */
export interface OpenCall {
  fail(error: unknown): void;
  /** The pool was closed: queue nothing new (what is queued still runs). */
  poolClosed?(): void;
  /** close({ cancel }): fail with `error` if any item has not started (running ones run on). */
  cancelPending?(error: unknown): void;
}

/** The pool's open calls and work in flight. */
export class Registry {
  /** Calls that always settle (apply, map): held until they do. */
  readonly #held = new Set<OpenCall>();
  /** Held weakly: an imap iterator dropped half-way, with nothing in flight, is collected with its input and results. */
  readonly #open = new Set<WeakRef<OpenCall>>();
  #sweepAt = 1024;
  readonly #onDemand: (on: boolean) => void;
  #holds = 0;
  /** Pending join()s (they keep the parent alive, not close() waiting). */
  #joins = 0;
  /** The one ref'd handle: there while #holds or #joins. */
  #alive: NodeJS.Timeout | undefined;
  #idle: Array<() => void> = [];
  /** The pool was closed: calls opened from now on queue nothing new. */
  #closed = false;
  /** The pool was terminated or broke: calls opened from now on fail with this at once. */
  #failed: { error: unknown } | undefined;

  /** `onDemand` hears when work first arrives and when the last of it leaves. */
  constructor(onDemand: (on: boolean) => void) {
    this.#onDemand = onDemand;
  }

  /**
   * Registers an open call; returns its removal. A call that opens after
   * the pool was closed or failed (it was still looking up its task) hears
   * so at once: no call slips past terminate() or close().
   */
  open(call: OpenCall, how: 'settles' | 'may be dropped' = 'settles'): () => void {
    let close: () => void;
    if (how === 'settles') {
      // No WeakRef for a call that always settles: one per tiny call showed in the collector's time.
      this.#held.add(call);
      close = () => void this.#held.delete(call);
    } else {
      // When the set has doubled, the entries of calls already collected go (amortized: no sweep per call).
      if (this.#open.size >= this.#sweepAt) {
        for (const ref of this.#open) if (ref.deref() === undefined) this.#open.delete(ref);
        this.#sweepAt = Math.max(1024, 2 * this.#open.size);
      }
      const ref = new WeakRef(call);
      this.#open.add(ref);
      close = () => void this.#open.delete(ref);
    }
    if (this.#failed !== undefined) call.fail(this.#failed.error);
    else if (this.#closed) call.poolClosed?.();
    return close;
  }

  /** Fails every open call (each removes itself when it settles), and every call opened later. */
  failAll(error: unknown): void {
    this.#failed ??= { error };
    for (const call of this.#calls()) call.fail(error);
  }

  #calls(): OpenCall[] {
    const calls: OpenCall[] = [...this.#held];
    for (const ref of this.#open) {
      const call = ref.deref();
      if (call === undefined) this.#open.delete(ref);
      else calls.push(call);
    }
    return calls;
  }

  /** Tells every open call that the pool was closed. */
  closeAll(): void {
    this.#closed = true;
    for (const call of this.#calls()) call.poolClosed?.();
  }

  /** close({ cancel }): every open call with items not yet started fails with `error`. */
  cancelAll(error: unknown): void {
    for (const call of this.#calls()) call.cancelPending?.(error);
  }

  /** Counts work in flight until the returned release is called (once). */
  hold(): () => void {
    if (this.#holds++ === 0) {
      this.#keepAlive();
      this.#onDemand(true);
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.#holds > 0) return;
      this.#keepAlive();
      this.#onDemand(false);
      for (const resolve of this.#idle.splice(0)) resolve();
    };
  }

  /** `finished` (what join() returns) keeps the parent alive until it settles. */
  join<T>(finished: Promise<T>): Promise<T> {
    this.#joins++;
    this.#keepAlive();
    const done = (): void => {
      this.#joins--;
      this.#keepAlive();
    };
    finished.then(done, done);
    return finished;
  }

  #keepAlive(): void {
    const on = this.#holds > 0 || this.#joins > 0;
    if (on === (this.#alive !== undefined)) return;
    // An interval that never fires: its ref is the whole point. Cleared when
    // nothing waits, so that a pool that is done keeps no timer.
    if (on) this.#alive = setInterval(() => undefined, 2 ** 31 - 1);
    else {
      clearInterval(this.#alive);
      this.#alive = undefined;
    }
  }

  /** Resolves once no work is in flight. */
  whenIdle(): Promise<void> {
    if (this.#holds === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }
}
