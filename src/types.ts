/**
 * Types that tie calls to a task module: `Pool<typeof import('./tasks.js')>`
 * makes task names, argument tuples and results checked at compile time.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the widest function type, for matching only
export type AnyFunction = (...args: any[]) => unknown;

/** A module's shape when none is given: any task, any arguments, `unknown` results. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- untyped pools accept any arguments
export type UntypedModule = Record<string, (...args: any[]) => unknown>;

/** Names of the exports of `M` that are functions. */
export type TaskName<M> = { [K in keyof M]: M[K] extends AnyFunction ? K : never }[keyof M] & string;

/** A task: an export name of `M`, or the exported function itself. */
export type TaskRef<M> = TaskName<M> | M[TaskName<M>];

/** The function a task reference stands for. */
export type TaskFunction<M, K> = K extends AnyFunction ? K : K extends keyof M ? (M[K] extends AnyFunction ? M[K] : never) : never;

/** Parameters of a task. */
export type TaskArgs<M, K> = Parameters<TaskFunction<M, K>>;

/** Awaited result of a task. */
export type TaskResult<M, K> = Awaited<ReturnType<TaskFunction<M, K>>>;

/** In place of an item type: `map` was given a task that needs more than one argument. */
export interface UseStarmapForTasksOfSeveralArguments {
  readonly 'procpool: map and imap pass one argument per item, and this task needs more: use starmap': never;
}

/**
 * What `map`/`imap` pass to a task: its first parameter. A task with more
 * than one required parameter cannot be mapped (Python raises TypeError).
 */
export type TaskItem<M, K> =
  TaskArgs<M, K> extends []
    ? undefined
    : TaskArgs<M, K> extends [unknown, unknown, ...unknown[]]
      ? UseStarmapForTasksOfSeveralArguments
      : TaskArgs<M, K>[0];

/** An iterable, or for `imap*`, an async iterable too. */
export type MaybeAsyncIterable<T> = Iterable<T> | AsyncIterable<T>;
