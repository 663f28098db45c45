/**
 * Thrown values made cloneable: errors through serialize-error, which keeps
 * name, code, own properties, causes and `AggregateError.errors`; built-in
 * classes re-created on the other side. Shared by both sides (the child
 * loads it only when something throws); the only home of serialize-error.
 */
import { serializeError, deserializeError } from 'serialize-error';
import { isCloneable } from './transfer.js';

/** A thrown value on the wire: an Error as a plain object, or any other value as itself. */
export type SerializedThrown =
  | { kind: 'error'; error: Record<string, unknown>; builtin?: string; props?: Record<string, unknown> }
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

/** Keys serialize-error itself carries across (errors within errors). */
const handled = new Set(['name', 'message', 'stack', 'cause', 'errors']);

/**
 * Own properties that cross as they are (a Date, a Map, a typed array, a
 * BigInt): serialize-error turns them into JSON (a string, `{}`), which is lossy.
 */
function cloneableProps(error: object): Record<string, unknown> | undefined {
  let props: Record<string, unknown> | undefined;
  for (const key of Object.keys(error)) {
    if (handled.has(key)) continue;
    let value: unknown;
    try {
      value = (error as Record<string, unknown>)[key];
    } catch {
      continue;
    }
    const lossy = typeof value === 'bigint' || (typeof value === 'object' && value !== null && !(value instanceof Error) && isCloneable(value));
    if (lossy) (props ??= {})[key] = value;
  }
  return props;
}

/** Makes a thrown value sendable, keeping as much of it as can be kept. */
export function serializeThrown(thrown: unknown): SerializedThrown {
  if (thrown instanceof Error) {
    const builtin = builtinOf(thrown);
    const props = cloneableProps(thrown);
    return {
      kind: 'error',
      error: errorToPlain(thrown),
      ...(builtin !== undefined && builtin !== 'Error' ? { builtin } : {}),
      ...(props === undefined ? {} : { props }),
    };
  }
  if (isCloneable(thrown)) return { kind: 'value', value: thrown };
  if (typeof thrown === 'object' && thrown !== null) return { kind: 'error', error: errorToPlain(thrown) };
  return { kind: 'error', error: errorToPlain(new Error(`A task threw an uncloneable ${typeof thrown}: ${String(thrown)}`)) };
}

/** Re-creates a thrown value on the receiving side. */
export function deserializeThrown(serialized: SerializedThrown): unknown {
  if (serialized.kind === 'value') return serialized.value;
  const { error, builtin, props } = serialized;
  let revived: Error;
  if (builtin === undefined || builtin === error.name) revived = deserializeError(error);
  else {
    // Re-create the built-in class (so `instanceof TypeError` holds), then restore the custom name.
    revived = deserializeError({ ...error, name: builtin });
    Object.defineProperty(revived, 'name', { value: error.name, enumerable: false, configurable: true, writable: true });
  }
  if (props !== undefined) {
    for (const [key, value] of Object.entries(props)) Object.defineProperty(revived, key, { value, enumerable: true, configurable: true, writable: true });
  }
  return revived;
}
