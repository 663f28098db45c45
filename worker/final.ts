/**
 * The finalizer: run once when a child leaves gracefully (a stop message),
 * within its time limit. Its failure is returned, never thrown: the child
 * leaves either way.
 */

/** The finalizer of this child's pool. */
export interface Final {
  readonly fn: (...args: unknown[]) => unknown;
  readonly args: unknown[];
  /** Milliseconds it may take. */
  readonly timeout: number;
  readonly name: string;
}

/** Runs the finalizer; resolves with its failure, or undefined. */
export async function finalize(final: Final): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<Error>((resolve) => {
    timer = setTimeout(() => resolve(new Error(`it did not end within ${final.timeout} ms (finalTimeout)`)), final.timeout);
  });
  try {
    const ran = Promise.resolve().then(() => final.fn(...final.args));
    return await Promise.race([ran.then(() => undefined), late]);
  } catch (error) {
    return error;
  } finally {
    clearTimeout(timer);
  }
}
