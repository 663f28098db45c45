/**
 * The calls that follow each AbortSignal: one 'abort' listener per signal
 * and pool, however many calls share it (a listener per call made one
 * shared signal quadratic, and Node warned of a leak from the 11th). A call
 * that always settles is held until it does; an `imap` call, which may be
 * dropped half-way, is held weakly, so that it is collected with what it
 * buffered while the signal lives on.
 */

/** A call that stops when its signal aborts. */
export interface SignalFollower {
  signalAborted(reason: unknown): void;
}

/** The followers of one signal. */
interface Followers {
  held: Set<SignalFollower>;
  weak: Set<WeakRef<SignalFollower>>;
  /** When `weak` has doubled, the entries of collected calls go (amortized). */
  sweepAt: number;
  listener: () => void;
}

/** One pool's signal listeners. */
export class Signals {
  readonly #bySignal = new WeakMap<AbortSignal, Followers>();

  /** `call` hears of `signal`'s abort until the returned removal is called. */
  follow(signal: AbortSignal, call: SignalFollower, how: 'settles' | 'may be dropped' = 'settles'): () => void {
    const followers = this.#bySignal.get(signal) ?? this.#listen(signal);
    if (how === 'settles') {
      followers.held.add(call);
      return () => {
        followers.held.delete(call);
        this.#unlistenIfEmpty(signal, followers);
      };
    }
    if (followers.weak.size >= followers.sweepAt) {
      for (const ref of followers.weak) if (ref.deref() === undefined) followers.weak.delete(ref);
      followers.sweepAt = Math.max(64, 2 * followers.weak.size);
    }
    const ref = new WeakRef(call);
    followers.weak.add(ref);
    return () => {
      followers.weak.delete(ref);
      this.#unlistenIfEmpty(signal, followers);
    };
  }

  #listen(signal: AbortSignal): Followers {
    const followers: Followers = {
      held: new Set(),
      weak: new Set(),
      sweepAt: 64,
      listener: () => {
        this.#bySignal.delete(signal);
        for (const call of [...followers.held]) call.signalAborted(signal.reason);
        for (const ref of [...followers.weak]) ref.deref()?.signalAborted(signal.reason);
      },
    };
    this.#bySignal.set(signal, followers);
    signal.addEventListener('abort', followers.listener, { once: true });
    return followers;
  }

  /** No call follows `signal` any more: its listener goes (a long-lived signal keeps nothing of this pool). */
  #unlistenIfEmpty(signal: AbortSignal, followers: Followers): void {
    if (followers.held.size > 0 || followers.weak.size > 0 || this.#bySignal.get(signal) !== followers) return;
    this.#bySignal.delete(signal);
    signal.removeEventListener('abort', followers.listener);
  }
}
