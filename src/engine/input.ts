/**
 * Reading a call's input: any iterable or async iterable, opened once,
 * closed quietly when the call ends before it.
 */

/** The input's iterator (async first). */
export function iterate(items: unknown): Iterator<unknown> | AsyncIterator<unknown> {
  const asyncFactory = (items as AsyncIterable<unknown> | null)?.[Symbol.asyncIterator];
  if (typeof asyncFactory === 'function') return asyncFactory.call(items) as AsyncIterator<unknown>;
  const factory = (items as Iterable<unknown> | null)?.[Symbol.iterator];
  if (typeof factory === 'function') return factory.call(items) as Iterator<unknown>;
  throw new TypeError(`Expected \`items\` to be an iterable or async iterable, got \`${String(items)}\` (${items === null ? 'null' : typeof items})`);
}

/** Whether an input answered next() with a promise (an async input). */
export function isThenable(value: unknown): value is PromiseLike<IteratorResult<unknown>> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/** Closes the input; its own clean-up failing must not hide the call's outcome. */
export async function closeQuietly(source: Iterator<unknown> | AsyncIterator<unknown>): Promise<void> {
  try {
    await source.return?.();
  } catch {
    // The input's own clean-up failing must not hide the call's outcome.
  }
}
