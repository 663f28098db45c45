/**
 * What a child shares with every copy of procpool code it loads (the
 * worker's bundle, `procpool/task` imported by a task module, `procpool`
 * itself): one object on `globalThis`, filled in by worker/task-context.ts.
 */

/** The child's side of procpool/task, and what the pool constructor checks. */
export interface ChildGlobal {
  /** The task module's `file:` URL while the child loads it; undefined once it has loaded. */
  loading: string | undefined;
  /** Sends `value` to the running item's caller; throws when no item runs. */
  emit(value: unknown): void;
  /** The running item's AbortSignal; throws when no item runs. */
  abortSignal(): AbortSignal;
}

/** The key of the child's state on `globalThis`. */
export const childKey = Symbol.for('procpool.child');

/** The child's state, when this process is a pool's child. */
export function childGlobal(): ChildGlobal | undefined {
  return (globalThis as Record<symbol, ChildGlobal | undefined>)[childKey];
}
