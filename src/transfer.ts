/**
 * What may cross the process boundary. The channel is V8's serializer
 * ('advanced' IPC), not `structuredClone`: they differ (a SharedArrayBuffer
 * passes the one and throws in the other), and both turn platform objects
 * into `{}` without a word. `findUnsendable` walks a value the way the
 * serializer would and names the first part that cannot cross or would
 * arrive changed. Shared by both sides, so no `node:` import: the child loads
 * this on its start-up path.
 *
 * Refused: functions, symbols (boxed too), Promises, WeakMap, WeakSet,
 * WeakRef, FinalizationRegistry, SharedArrayBuffer and the typed arrays and
 * DataViews on one (the serializer would copy them into an unshared buffer),
 * getters that throw, and objects that would arrive as `{}`:
 *
 *   an object whose prototype is not Object.prototype, null, Array.prototype
 *   or one of the built-ins the clone keeps (Map, Set, Date, RegExp, Error and
 *   its subclasses, boxed primitives, ArrayBuffer, DataView, typed arrays,
 *   Buffer) and that has no own enumerable string-keyed property is refused:
 *   the clone would deliver `{}` (URL, URLSearchParams, AbortSignal,
 *   AbortController, Headers, Blob, EventTarget, class instances holding only
 *   #private state). Class instances with own data properties arrive as plain
 *   objects with those properties (documented, allowed).
 *
 * Checked on Node 20.20: URL, URLSearchParams, AbortSignal, AbortController,
 * Headers, Request, Response, Blob, File, FormData, EventTarget, Event,
 * CustomEvent, MessagePort, ReadableStream, TextEncoder and TextDecoder all
 * keep their state in #private fields or symbol keys and have no own
 * enumerable property, so the rule above catches each of them and no
 * Object.prototype.toString tag list is needed (test/transfer.test.ts pins
 * every one, so a Node that changes this fails there).
 *
 * Allowed though changed on arrival (the data is kept): a class instance or
 * null-prototype object arrives with Object.prototype; a Map/Set/Date/...
 * subclass arrives as its built-in. An Error arrives as Error, or as the
 * built-in its `name` names, with message, stack and an own `cause` only:
 * other own properties (`code`, AggregateError's `errors`) are dropped, which
 * is why thrown values go through error-codec instead.
 *
 * Not seen by the walk (each would cost every call): a Proxy, an `arguments`
 * object, a non-index property on an array. The serializer throws on these;
 * `checkSendable` (src/sendable.ts, parent side) asks it.
 */

/** Where the part of a value that cannot be sent sits, and what it is. */
export interface Unsendable {
  path: string;
  detail: string;
}

/** A part that cannot be sent; `steps` is its path from the walked value, innermost first, so nothing is built unless something is found. */
interface Fault {
  detail: string;
  steps: string[];
}

/** How the serializer treats objects with a given prototype; `refuse` carries a refusal's detail. */
type Kind = 'leaf' | 'view' | 'map' | 'set' | 'error' | 'other' | { refuse: string };

const builtins = new Map<object, Kind>();
for (const ctor of [Date, RegExp, Number, String, Boolean, BigInt, ArrayBuffer]) builtins.set(ctor.prototype, 'leaf');
for (const ctor of [
  Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
  Float32Array, Float64Array, BigInt64Array, BigUint64Array, DataView,
]) builtins.set(ctor.prototype, 'view');
// Buffer is a global on Node; looked up, not imported, so this file stays free of node: modules.
const buffer = (globalThis as { Buffer?: { prototype: object } }).Buffer;
if (buffer !== undefined) builtins.set(buffer.prototype, 'view');
for (const ctor of [Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError, AggregateError]) builtins.set(ctor.prototype, 'error');
builtins.set(Map.prototype, 'map');
builtins.set(Set.prototype, 'set');
const refusedClasses = [Promise, WeakMap, WeakSet, WeakRef, FinalizationRegistry, SharedArrayBuffer];
for (const ctor of refusedClasses) builtins.set(ctor.prototype, { refuse: `a ${ctor.name}` });
builtins.set(Symbol.prototype, { refuse: 'a boxed symbol' });

/** The kind of an object whose prototype is not a built-in's own: a subclass of one is sent as the built-in. */
function kindOf(value: object): Kind {
  if (ArrayBuffer.isView(value)) return 'view';
  if (value instanceof Error) return 'error';
  if (value instanceof Map) return 'map';
  if (value instanceof Set) return 'set';
  if (value instanceof Date || value instanceof RegExp || value instanceof ArrayBuffer) return 'leaf';
  for (const ctor of refusedClasses) {
    if (value instanceof ctor) return { refuse: `a ${ctor.name}` };
  }
  return 'other';
}

const mapEntries = Map.prototype.entries;
const setValues = Set.prototype.values;
const identifier = /^[A-Za-z_$][\w$]*$/;

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function article(name: string): string {
  return /^[AEIOaeio]/.test(name) ? `an ${name}` : `a ${name}`;
}

function describeScalar(value: unknown): string {
  if (typeof value !== 'function') return `a symbol (${String(value)})`;
  let name: unknown;
  try {
    name = value.name;
  } catch {
    // A class with a throwing static `name`: leave the name out.
  }
  return typeof name === 'string' && name !== '' ? `a function (${name})` : 'a function';
}

function tagOf(value: object): string {
  try {
    return Object.prototype.toString.call(value).slice(8, -1);
  } catch {
    return 'Object';
  }
}

/** The class of `value` for a refusal's detail: its constructor's name (MessagePort's tag says EventTarget), else its tag. */
function nameOf(value: object): string {
  const tag = tagOf(value);
  // 'Map Iterator' says more than its constructor's name (Iterator, from Node 22 on).
  if (tag.endsWith(' Iterator')) return tag;
  try {
    const ctor: unknown = Object.getPrototypeOf(value)?.constructor;
    if (typeof ctor === 'function' && ctor !== Object && ctor.name) return ctor.name;
  } catch {
    // A throwing getter or Proxy trap: fall back to the tag.
  }
  return tagOf(value);
}

/** Why an object with no own enumerable property is refused: built-in iterators, generators and Intl objects throw, the rest arrive as `{}`. */
function emptyDetail(value: object): string {
  const cannot = /Iterator$|Generator$|^Intl\./.test(tagOf(value));
  return `${article(nameOf(value))} (${cannot ? 'it cannot be cloned' : 'it would arrive as {}'})`;
}

function keyStep(key: string): string {
  return identifier.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

/** How a Map key reads in a path: `.get("k")`, `.get(1)`; undefined for an object or symbol key. */
function mapLabel(key: unknown): string | undefined {
  if (typeof key === 'string') return JSON.stringify(key);
  if (typeof key === 'bigint') return `${key}n`;
  if (typeof key === 'object' && key !== null) return undefined;
  return typeof key === 'symbol' || typeof key === 'function' ? undefined : String(key);
}

// Objects met in the current walk, for cycles and shared parts. Created at
// the first nested object, so a flat array or tuple allocates nothing; saved
// and restored around each walk, so a getter that walks again is safe.
let seen: Set<object> | undefined;

function visitChild(item: unknown, parent: object): Fault | undefined {
  if (typeof item !== 'object') {
    return typeof item === 'function' || typeof item === 'symbol' ? { detail: describeScalar(item), steps: [] } : undefined;
  }
  if (item === null) return undefined;
  if (seen === undefined) {
    seen = new Set();
    seen.add(parent);
  }
  if (seen.has(item)) return undefined;
  seen.add(item);
  return visitObject(item);
}

function visitArray(array: readonly unknown[]): Fault | undefined {
  for (let i = 0; i < array.length; i++) {
    const item = array[i];
    // Inlined test for primitives: arrays of numbers are the common case.
    if (typeof item !== 'object' && typeof item !== 'function' && typeof item !== 'symbol') continue;
    const found = visitChild(item, array);
    if (found !== undefined) {
      found.steps.push(`[${i}]`);
      return found;
    }
  }
  return undefined;
}

function visitKeys(value: object, keys: string[]): Fault | undefined {
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    let item: unknown;
    try {
      item = (value as Record<string, unknown>)[key];
    } catch (error) {
      return { detail: `a getter that throws (${message(error)})`, steps: [keyStep(key)] };
    }
    const found = visitChild(item, value);
    if (found !== undefined) {
      found.steps.push(keyStep(key));
      return found;
    }
  }
  return undefined;
}

function visitMap(map: Map<unknown, unknown>): Fault | undefined {
  let i = 0;
  for (const [key, entry] of mapEntries.call(map)) {
    const ofKey = visitChild(key, map);
    if (ofKey !== undefined) {
      ofKey.steps.push(`.keys()[${i}]`);
      return ofKey;
    }
    const ofEntry = visitChild(entry, map);
    if (ofEntry !== undefined) {
      const label = mapLabel(key);
      ofEntry.steps.push(label === undefined ? `.values()[${i}]` : `.get(${label})`);
      return ofEntry;
    }
    i++;
  }
  return undefined;
}

function visitSet(set: Set<unknown>): Fault | undefined {
  let i = 0;
  for (const entry of setValues.call(set)) {
    const found = visitChild(entry, set);
    if (found !== undefined) {
      found.steps.push(`.values()[${i}]`);
      return found;
    }
    i++;
  }
  return undefined;
}

function visitObject(value: object): Fault | undefined {
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) return visitKeys(value, Object.keys(value));
  if (Array.isArray(value)) return visitArray(value);
  const kind = builtins.get(proto as object) ?? kindOf(value);
  switch (kind) {
    case 'leaf':
      return undefined;
    case 'view':
      // The serializer copies a view's bytes: one on shared memory would arrive unshared.
      return (value as ArrayBufferView).buffer instanceof SharedArrayBuffer
        ? { detail: `${article(nameOf(value))} on a SharedArrayBuffer`, steps: [] }
        : undefined;
    case 'map':
      return visitMap(value as Map<unknown, unknown>);
    case 'set':
      return visitSet(value as Set<unknown>);
    case 'error': {
      // Of an error's properties the serializer sends message, stack and an own data `cause`.
      const cause = Object.getOwnPropertyDescriptor(value, 'cause');
      if (cause === undefined || !('value' in cause)) return undefined;
      const found = visitChild(cause.value, value);
      found?.steps.push('.cause');
      return found;
    }
    case 'other': {
      const keys = Object.keys(value);
      return keys.length === 0 ? { detail: emptyDetail(value), steps: [] } : visitKeys(value, keys);
    }
    default:
      return { detail: kind.refuse, steps: [] };
  }
}

/**
 * Finds the first part of `value` that cannot be sent to the other side, or
 * would arrive changed, with its path from `root` (`args[0].callback`,
 * `args[1].get("k")`, `result.items[3]`); undefined when all of it can go.
 */
export function findUnsendable(value: unknown, root: string): Unsendable | undefined {
  if (typeof value !== 'object') {
    return typeof value === 'function' || typeof value === 'symbol' ? { path: root, detail: describeScalar(value) } : undefined;
  }
  if (value === null) return undefined;
  const outer = seen;
  seen = undefined;
  let found: Fault | undefined;
  try {
    found = visitObject(value);
  } catch (error) {
    // A Proxy trap that throws, a fake built-in, or nesting deeper than the stack: the serializer throws on each too.
    found = { detail: `not cloneable (${message(error)})`, steps: [] };
  } finally {
    seen = outer;
  }
  return found === undefined ? undefined : { path: root + found.steps.reverse().join(''), detail: found.detail };
}

/**
 * Whether `value` can be sent unchanged: the walk finds nothing and
 * `structuredClone` (which catches what the walk does not see, such as a
 * Proxy) does not throw. Not node:v8, which the child would pay for at start.
 */
export function isCloneable(value: unknown): boolean {
  if (findUnsendable(value, '') !== undefined) return false;
  if (typeof value !== 'object' || value === null) return true;
  try {
    structuredClone(value);
    return true;
  } catch {
    return false;
  }
}
