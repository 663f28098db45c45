/**
 * What waits on children starting: `ready()` (a child ready in each of the
 * first `minProcesses` slots: the original children, a replacement counting
 * only for the slot it took over) and the module's export names (known from
 * the first child ready). Both are rejected once when the pool stops or
 * breaks first.
 */

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
}

/** Waiters on the children's start. */
export class Starts {
  readonly #min: number;
  /** Slots below `min` that have had a ready child. */
  readonly #readySlots = new Set<number>();
  #tasks: string[] | undefined;
  #whenReady: Array<Waiter<void>> = [];
  #whenTasks: Array<Waiter<string[]>> = [];

  /** `min`: children that must be ready for `ready()`. */
  constructor(min: number) {
    this.#min = min;
  }

  /** The export names, once a child reported them. */
  get tasks(): string[] | undefined {
    return this.#tasks;
  }

  /** Resolves when each of the first `min` slots has had a ready child. */
  /** Whether any child has been ready (a later failed start is then retried). */
  get started(): boolean {
    return this.#tasks !== undefined;
  }

  ready(): Promise<void> {
    if (this.#readySlots.size >= this.#min) return Promise.resolve();
    return new Promise((resolve, reject) => this.#whenReady.push({ resolve, reject }));
  }

  /** Resolves with the export names. */
  names(): Promise<string[]> {
    if (this.#tasks) return Promise.resolve(this.#tasks);
    return new Promise((resolve, reject) => this.#whenTasks.push({ resolve, reject }));
  }

  /** The child in `slot` is ready, with the module's export names. */
  readied(slot: number, tasks: string[]): void {
    if (slot < this.#min) this.#readySlots.add(slot);
    if (this.#tasks === undefined) {
      this.#tasks = tasks;
      for (const waiter of this.#whenTasks.splice(0)) waiter.resolve(tasks);
    }
    if (this.#readySlots.size >= this.#min) for (const waiter of this.#whenReady.splice(0)) waiter.resolve();
  }

  /** No child will start any more: every waiter rejects with `error`. */
  reject(error: unknown): void {
    for (const waiter of this.#whenReady.splice(0)) waiter.reject(error);
    for (const waiter of this.#whenTasks.splice(0)) waiter.reject(error);
  }
}
