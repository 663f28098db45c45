/** Promises waiting for one event, each with its own time limit. */
export class Waiters {
  #waiting: Array<{ resolve(): void; reject(error: unknown): void; timer: NodeJS.Timeout }> = [];

  /** Resolves at the next `resolve()`; rejects with `onTimeout()` after `ms`. */
  wait(ms: number, onTimeout: () => unknown): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting = this.#waiting.filter((waiter) => waiter.timer !== timer);
        reject(onTimeout());
      }, ms);
      this.#waiting.push({ resolve, reject, timer });
    });
  }

  /** Rejects every waiter now with `error`. */
  reject(error: unknown): void {
    for (const waiter of this.#waiting.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
  }

  resolve(): void {
    for (const waiter of this.#waiting.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.resolve();
    }
  }
}

/** `promise`, or nothing after `ms` or once `cut` resolves; never rejects. */
export function within(promise: Promise<unknown>, ms: number, cut?: Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const waits = [promise.then(() => undefined, () => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))), ...(cut ? [cut] : [])];
  return Promise.race(waits).finally(() => clearTimeout(timer));
}

export function deferred(): { promise: Promise<void>; resolve(): void; reject(error: Error): void } {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((done, fail) => ((resolve = done), (reject = fail)));
  // Read by serve() only: a rejection nobody awaits yet must not end the program.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/** Rejects with the signal's reason once it is aborted (at once if it is). */
export function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}
