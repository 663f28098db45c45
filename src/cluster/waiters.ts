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
