/**
 * What may cross the process boundary: thrown values made cloneable (errors
 * through serialize-error, which keeps name, code, own properties, causes and
 * `AggregateError.errors`), and the search for the value that cannot cross.
 * Shared by both sides; the only home of serialize-error.
 */
import { serialize as v8Serialize } from 'node:v8';
import { serializeError, deserializeError } from 'serialize-error';

/** A thrown value on the wire: an Error as a plain object, or any other value as itself. */
export type SerializedThrown =
  | { kind: 'error'; error: Record<string, unknown>; builtin?: string }
  | { kind: 'value'; value: unknown };

const builtins = new Map<unknown, string>(
  [Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError, AggregateError].map((ctor) => [ctor.prototype, ctor.name]),
);

/** The nearest built-in error class of `error` (`TypeError` for `class E extends TypeError`). */
function builtinOf(error: object): string | undefined {
  for (let proto: unknown = Object.getPrototypeOf(error); proto !== null; proto = Object.getPrototypeOf(proto)) {
    const name = builtins.get(proto);
    if (name !== undefined) return name;
  }
  return undefined;
}

/** Whether `value` survives V8's structured clone (what 'advanced' IPC uses). */
export function isCloneable(value: unknown): boolean {
  try {
    v8Serialize(value);
    return true;
  } catch {
    return false;
  }
}

function errorToPlain(error: object): Record<string, unknown> {
  for (const useToJSON of [true, false]) {
    try {
      const plain = serializeError(error, { useToJSON }) as Record<string, unknown>;
      if (typeof plain === 'object' && plain !== null && isCloneable(plain)) return plain;
    } catch {
      // A throwing toJSON or getter: try again without toJSON, then fall back below.
    }
  }
  const read = (key: string): string | undefined => {
    try {
      const value = (error as Record<string, unknown>)[key];
      return typeof value === 'string' ? value : undefined;
    } catch {
      return undefined;
    }
  };
  return { name: read('name') ?? 'Error', message: read('message') ?? '', stack: read('stack') ?? '' };
}

/** Makes a thrown value sendable, keeping as much of it as can be kept. */
export function serializeThrown(thrown: unknown): SerializedThrown {
  if (thrown instanceof Error) {
    const builtin = builtinOf(thrown);
    return { kind: 'error', error: errorToPlain(thrown), ...(builtin !== undefined && builtin !== 'Error' ? { builtin } : {}) };
  }
  if (isCloneable(thrown)) return { kind: 'value', value: thrown };
  if (typeof thrown === 'object' && thrown !== null) return { kind: 'error', error: errorToPlain(thrown) };
  return { kind: 'error', error: errorToPlain(new Error(`A task threw an uncloneable ${typeof thrown}: ${String(thrown)}`)) };
}

/** Re-creates a thrown value on the receiving side. */
export function deserializeThrown(serialized: SerializedThrown): unknown {
  if (serialized.kind === 'value') return serialized.value;
  const { error, builtin } = serialized;
  if (builtin === undefined || builtin === error.name) return deserializeError(error);
  // Re-create the built-in class (so `instanceof TypeError` holds), then restore the custom name.
  const revived = deserializeError({ ...error, name: builtin });
  Object.defineProperty(revived, 'name', { value: error.name, enumerable: false, configurable: true, writable: true });
  return revived;
}

/** Where a value that cannot be cloned sits, and what it is. */
export interface Unsendable {
  path: string;
  detail: string;
}

const identifier = /^[A-Za-z_$][\w$]*$/;

function describe(value: unknown): string | undefined {
  if (typeof value === 'function') return `a function${value.name ? ` (${value.name})` : ''}`;
  if (typeof value === 'symbol') return `a symbol (${value.toString()})`;
  if (value instanceof Promise) return 'a Promise';
  if (value instanceof WeakMap || value instanceof WeakSet || value instanceof WeakRef) return `a ${value.constructor.name}`;
  return undefined;
}

function search(value: unknown, path: string, seen: Set<object>): Unsendable | undefined {
  const simple = describe(value);
  if (simple !== undefined) return { path, detail: simple };
  if (typeof value !== 'object' || value === null || seen.has(value) || ArrayBuffer.isView(value)) return undefined;
  seen.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = search(value[i], `${path}[${i}]`, seen);
      if (found) return found;
    }
  } else if (value instanceof Map) {
    for (const [key, entry] of value) {
      const label = JSON.stringify(typeof key === 'string' || typeof key === 'number' ? key : String(key));
      const found = search(key, `${path}.keys()[${label}]`, seen) ?? search(entry, `${path}.get(${label})`, seen);
      if (found) return found;
    }
  } else if (value instanceof Set) {
    let i = 0;
    for (const entry of value) {
      const found = search(entry, `${path}.values()[${i++}]`, seen);
      if (found) return found;
    }
  } else {
    for (const key of Object.keys(value)) {
      let entry: unknown;
      try {
        entry = (value as Record<string, unknown>)[key];
      } catch {
        return { path: identifier.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`, detail: 'a getter that throws' };
      }
      const found = search(entry, identifier.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`, seen);
      if (found) return found;
    }
  }
  return undefined;
}

/**
 * Finds the first part of `value` that cannot be cloned, with its path from
 * `root` (`args[0].callback`), or undefined when all of it can be cloned.
 */
export function findUnsendable(value: unknown, root: string): Unsendable | undefined {
  if (isCloneable(value)) return undefined;
  const found = search(value, root, new Set());
  if (found) return found;
  try {
    v8Serialize(value);
  } catch (error) {
    return { path: root, detail: `not cloneable (${error instanceof Error ? error.message : String(error)})` };
  }
  return undefined;
}
