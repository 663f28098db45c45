/**
 * A worker's children as slots: a job taken from the queue waits here for a
 * free child before its chunk goes to the local pool. A job still waiting
 * has not started, so a stopping worker gives it back (`release`) instead
 * of running it.
 */
export class Slots {
  #free: number;
  readonly #waiting: Array<(granted: boolean) => void> = [];
  #released = false;

  constructor(count: number) {
    this.#free = count;
  }

  /** True with a slot (give it back with `free()`); false once released: the job goes back to the queue. */
  take(): Promise<boolean> {
    if (this.#released) return Promise.resolve(false);
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  free(): void {
    const next = this.#released ? undefined : this.#waiting.shift();
    if (next === undefined) this.#free++;
    else next(true);
  }

  /** Every job waiting, and every one after, is refused a slot. */
  release(): void {
    this.#released = true;
    for (const resolve of this.#waiting.splice(0)) resolve(false);
  }
}
