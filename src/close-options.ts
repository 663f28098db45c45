/** Options of `pool.close()`, and their validation. */
import { maxTimerMs } from './expected.js';

/** Options of `pool.close(options)`. */
export interface CloseOptions {
  /** Items not yet started reject with PoolClosedError (a call with any such item rejects); running ones finish. */
  cancel?: boolean;
  /** Milliseconds to wait for the work; then what still runs is terminated (as `terminate()`). */
  timeout?: number;
}

/** Validates `close()`'s options. */
export function resolveCloseOptions(options: unknown): { cancel: boolean; timeout: number | undefined } {
  if (options === undefined) return { cancel: false, timeout: undefined };
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw new TypeError(`Expected close() \`options\` to be an object, got \`${String(options)}\` (${options === null ? 'null' : typeof options})`);
  for (const key of Object.keys(options)) if (key !== 'cancel' && key !== 'timeout') throw new TypeError(`Unknown close() option \`${key}\`; known options: cancel, timeout`);
  const { cancel = false, timeout } = options as CloseOptions;
  if (typeof cancel !== 'boolean') throw new TypeError(`Expected \`cancel\` to be a boolean, got \`${String(cancel)}\` (${typeof cancel})`);
  if (timeout !== undefined) {
    if (typeof timeout !== 'number') throw new TypeError(`Expected \`timeout\` to be a number of milliseconds, got \`${String(timeout)}\` (${typeof timeout})`);
    if (!(timeout >= 0) || timeout > maxTimerMs) throw new RangeError(`Expected \`timeout\` to be a number of milliseconds from 0 up to ${maxTimerMs}, got \`${timeout}\``);
  }
  return { cancel, timeout };
}
