/**
 * Validation of the pool options around a task's life in its child:
 * `initializer` / `finalizer` (a name, or the exported function: its name,
 * and its source text for the child to check) and their arguments, `killGrace`.
 */
import { expected, maxTimerMs } from './expected.js';
import { checkSendable } from './sendable.js';

/** The export name of an initializer/finalizer given by name or as the function (its source text kept in `sources`). */
export function exportName(name: 'initializer' | 'finalizer', value: unknown, sources: { initializer?: string; finalizer?: string }): string | undefined {
  if (value === undefined) return undefined;
  const what = 'the name of an exported function, or the function itself';
  if (typeof value === 'function') {
    if (value.name === '') throw new RangeError(expected(name, `${what} (a named one)`, value));
    sources[name] = Function.prototype.toString.call(value);
    return value.name;
  }
  if (typeof value !== 'string') throw new TypeError(expected(name, what, value));
  if (value === '') throw new RangeError(expected(name, what, value));
  return value;
}

export function checkArgs(name: string, args: unknown): void {
  if (!Array.isArray(args)) throw new TypeError(expected(name, 'an array', args));
  const unsendable = checkSendable(args, name);
  if (unsendable !== undefined) throw new TypeError(`Expected \`${name}\` to be values that can be sent to a child, but ${unsendable.path} is ${unsendable.detail}`);
}

export function checkGrace(value: unknown): number {
  const what = `a number of milliseconds from 0 up to ${maxTimerMs}`;
  if (typeof value !== 'number') throw new TypeError(expected('killGrace', what, value));
  if (!(value >= 0) || value > maxTimerMs) throw new RangeError(expected('killGrace', what, value));
  return value;
}
