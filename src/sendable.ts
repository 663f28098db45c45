/**
 * Whether a value can be sent to a child, asked of the channel's own
 * serializer. Parent side only: node:v8 is too dear for the child's start.
 */
import { serialize } from 'node:v8';
import { findUnsendable, type Unsendable } from './transfer.js';

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

const identifier = /^[A-Za-z_$][\w$]*$/;

/** A Map entry's step, as the walk writes it: `.get("k")`, `.get(1)`, or `.values()[i]` for an object key. */
function mapStep(key: unknown, i: number): string {
  if (typeof key === 'string') return `.get(${JSON.stringify(key)})`;
  if (typeof key === 'bigint') return `.get(${key}n)`;
  if (typeof key === 'object' || typeof key === 'function' || typeof key === 'symbol') return key === null ? '.get(null)' : `.values()[${i}]`;
  return `.get(${String(key)})`;
}

/** The parts of `value` the serializer writes, with their path steps; none for leaves such as typed arrays. */
function children(value: object): [string, unknown][] {
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof Date || value instanceof RegExp) return [];
  if (value instanceof Map) {
    return [...value].flatMap(([key, entry], i): [string, unknown][] => [
      [`.keys()[${i}]`, key],
      [mapStep(key, i), entry],
    ]);
  }
  if (value instanceof Set) return [...value].map((entry, i): [string, unknown] => [`.values()[${i}]`, entry]);
  if (value instanceof Error) {
    // The serializer sends an error's own data `cause`, nothing else of it that could fail.
    const cause = Object.getOwnPropertyDescriptor(value, 'cause');
    return cause !== undefined && 'value' in cause ? [['.cause', cause.value]] : [];
  }
  // Object.keys, not indices: a non-index property of an array is sent too.
  const isArray = Array.isArray(value);
  return Object.keys(value).map((key): [string, unknown] => [
    isArray && /^\d+$/.test(key) ? `[${key}]` : identifier.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`,
    (value as Record<string, unknown>)[key],
  ]);
}

/** Narrows a serializer failure to the innermost part that fails alone (the slow path: it serializes each part again). */
function locate(value: unknown, path: string, error: unknown, depth: number): Unsendable {
  if (typeof value === 'object' && value !== null && depth < 100) {
    try {
      for (const [step, child] of children(value)) {
        // A part the walk never reached (a non-index property of an array) may have a plainer answer.
        const found = findUnsendable(child, path + step);
        if (found !== undefined) return found;
        try {
          serialize(child);
        } catch (childError) {
          return locate(child, path + step, childError, depth + 1);
        }
      }
    } catch {
      // A part that cannot even be listed: report the value itself.
    }
  }
  return { path, detail: `not cloneable (${message(error)})` };
}

/**
 * Finds the first part of `value` that cannot be sent to a child, with its
 * path from `root`: the walk first, then V8's serializer (what the channel
 * uses) as the final word for what the walk does not see.
 */
export function checkSendable(value: unknown, root: string): Unsendable | undefined {
  const found = findUnsendable(value, root);
  if (found !== undefined) return found;
  try {
    serialize(value);
    return undefined;
  } catch (error) {
    return locate(value, root, error, 0);
  }
}
