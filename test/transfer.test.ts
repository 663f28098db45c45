/**
 * What may cross the process boundary, checked against V8's own serializer
 * (node:v8 is what 'advanced' IPC uses): every value the walk accepts must
 * round-trip unchanged, and every object it refuses must really throw or
 * arrive changed there.
 *
 * Rough cost of findUnsendable (not asserted; Node 20.20, 2-core AMD EPYC,
 * tsx, median of 7 runs after warm-up):
 *   1,000,000 small numbers, one call each ........... ~0.8 ms
 *   one array of 1,000,000 small numbers ............. ~0.4 ms
 *   100,000 [a, b] tuples, one call each ............. ~1.7 ms
 *   one array of 100,000 [a, b] tuples ............... ~10 ms (the cycle set grows)
 *   100,000 { id, name, tags: [..] }, one call each .. ~11 ms
 * The structuredClone check it replaces took ~184 ms for the numbers and
 * ~57 ms for the tuples, one call each.
 */
import { deserialize, serialize } from 'node:v8';
import fc from 'fast-check';
import { describe, it, expect } from 'vitest';
import { findUnsendable, isCloneable } from '../src/transfer.js';
import { checkSendable } from '../src/sendable.js';

const roundTrip = (value: unknown): unknown => deserialize(serialize(value));

class Private {
  #secret = 1;
  get secret(): number {
    return this.#secret;
  }
}
class Empty {}
class Point {
  #tag = 'p';
  constructor(
    public x: number,
    public y: number,
  ) {}
  get tag(): string {
    return this.#tag;
  }
}
class CodedError extends TypeError {
  code = 'E_CODED';
  extra = { n: 1 };
  constructor(message: string) {
    super(message);
    this.name = 'CodedError';
  }
}
class Registry extends Map<string, number> {}

function cyclic(): Record<string, unknown> {
  const value: Record<string, unknown> = { n: 1, list: [1, 2] };
  value.self = value;
  (value.list as unknown[]).push(value);
  return value;
}

function throwingGetter(): object {
  return Object.defineProperty({ ok: 1 }, 'bad', {
    enumerable: true,
    get() {
      throw new Error('boom');
    },
  });
}

function nested(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = { value };
  return value;
}

/** The part of `value` that `path` (from `args[0]`) names: checks that the paths the walk reports lead somewhere. */
function partAt(value: unknown, path: string): unknown {
  const step = /^(?:\.get\(([^)]*)\)|\.values\(\)\[(\d+)\]|\.keys\(\)\[(\d+)\]|\.([A-Za-z_$][\w$]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\])/;
  let rest = path.slice('args[0]'.length);
  let at = value as Record<string, unknown> & Map<unknown, unknown>;
  while (rest !== '') {
    const match = step.exec(rest);
    if (match === null) throw new Error(`Not a path step: ${rest}`);
    rest = rest.slice(match[0].length);
    const [, key, value, key2, name, index, quoted] = match;
    const next = (): unknown => {
      if (name !== undefined) return at[name];
      if (index !== undefined) return at[Number(index)];
      if (quoted !== undefined) return at[JSON.parse(quoted) as string];
      if (key !== undefined) return at.get(JSON.parse(key));
      if (value !== undefined) return [...at.values()][Number(value)];
      return [...at.keys()][Number(key2)];
    };
    at = next() as typeof at;
  }
  return at;
}

/** How V8's serializer treats a refused value: it throws, or it delivers something else. */
/** What V8's serializer does with it: throws, changes it, or (Blob, File, streams) throws on Node 20 and delivers {} from Node 22 on. */
type Serializer = 'throws' | 'changes' | 'throws or empties';

interface Refused {
  name: string;
  make: () => unknown;
  path: string;
  detail: string;
  serializer: Serializer;
}

const refused: Refused[] = [
  { name: 'a function', make: () => ({ callback: () => 1 }), path: 'args[0].callback', detail: 'a function (callback)', serializer: 'throws' },
  { name: 'an anonymous function', make: () => [0, (() => () => 1)()], path: 'args[0][1]', detail: 'a function', serializer: 'throws' },
  { name: 'a class', make: () => Point, path: 'args[0]', detail: 'a function (Point)', serializer: 'throws' },
  { name: 'a symbol', make: () => [1, Symbol('x')], path: 'args[0][1]', detail: 'a symbol (Symbol(x))', serializer: 'throws' },
  { name: 'a boxed symbol', make: () => ({ s: Object(Symbol('y')) }), path: 'args[0].s', detail: 'a boxed symbol', serializer: 'throws' },
  { name: 'a Promise', make: () => ({ later: Promise.resolve(1) }), path: 'args[0].later', detail: 'a Promise', serializer: 'throws' },
  { name: 'a WeakMap', make: () => [new WeakMap()], path: 'args[0][0]', detail: 'a WeakMap', serializer: 'throws' },
  { name: 'a WeakSet', make: () => [new WeakSet()], path: 'args[0][0]', detail: 'a WeakSet', serializer: 'throws' },
  { name: 'a WeakRef', make: () => [new WeakRef({})], path: 'args[0][0]', detail: 'a WeakRef', serializer: 'throws' },
  { name: 'a FinalizationRegistry', make: () => [new FinalizationRegistry(() => {})], path: 'args[0][0]', detail: 'a FinalizationRegistry', serializer: 'throws' },
  { name: 'a SharedArrayBuffer', make: () => ({ memory: new SharedArrayBuffer(8) }), path: 'args[0].memory', detail: 'a SharedArrayBuffer', serializer: 'throws' },
  { name: 'a typed array on shared memory', make: () => ({ view: new Int32Array(new SharedArrayBuffer(8)) }), path: 'args[0].view', detail: 'an Int32Array on a SharedArrayBuffer', serializer: 'changes' },
  { name: 'a DataView on shared memory', make: () => [new DataView(new SharedArrayBuffer(8))], path: 'args[0][0]', detail: 'a DataView on a SharedArrayBuffer', serializer: 'changes' },
  { name: 'a getter that throws', make: () => ({ outer: throwingGetter() }), path: 'args[0].outer.bad', detail: 'a getter that throws (boom)', serializer: 'throws' },
  { name: 'a URL', make: () => ({ url: new URL('https://example.com/a?b=1') }), path: 'args[0].url', detail: 'a URL (it would arrive as {})', serializer: 'changes' },
  { name: 'URLSearchParams', make: () => [new URLSearchParams('a=1')], path: 'args[0][0]', detail: 'a URLSearchParams (it would arrive as {})', serializer: 'changes' },
  { name: 'an AbortSignal', make: () => ({ signal: AbortSignal.abort() }), path: 'args[0].signal', detail: 'an AbortSignal (it would arrive as {})', serializer: 'changes' },
  { name: 'an AbortController', make: () => [new AbortController()], path: 'args[0][0]', detail: 'an AbortController (it would arrive as {})', serializer: 'changes' },
  { name: 'Headers', make: () => ({ headers: new Headers({ a: '1' }) }), path: 'args[0].headers', detail: 'a Headers (it would arrive as {})', serializer: 'changes' },
  { name: 'a Request', make: () => [new Request('https://example.com/')], path: 'args[0][0]', detail: 'a Request (it would arrive as {})', serializer: 'changes' },
  { name: 'a Response', make: () => [new Response('hi')], path: 'args[0][0]', detail: 'a Response (it would arrive as {})', serializer: 'changes' },
  { name: 'FormData', make: () => [new FormData()], path: 'args[0][0]', detail: 'a FormData (it would arrive as {})', serializer: 'changes' },
  // A Blob is a host object: node:v8 throws, the IPC channel's serializer sends `{ ...blob }`, that is `{}`.
  { name: 'a Blob', make: () => [new Blob(['ab'])], path: 'args[0][0]', detail: 'a Blob (it would arrive as {})', serializer: 'throws or empties' },
  { name: 'a File', make: () => [new File(['ab'], 'f.txt')], path: 'args[0][0]', detail: 'a File (it would arrive as {})', serializer: 'throws or empties' },
  { name: 'an EventTarget', make: () => [new EventTarget()], path: 'args[0][0]', detail: 'an EventTarget (it would arrive as {})', serializer: 'changes' },
  { name: 'an Event', make: () => [new Event('e')], path: 'args[0][0]', detail: 'an Event (it would arrive as {})', serializer: 'changes' },
  { name: 'a CustomEvent', make: () => [new CustomEvent('e', { detail: 1 })], path: 'args[0][0]', detail: 'a CustomEvent (it would arrive as {})', serializer: 'changes' },
  { name: 'a TextEncoder', make: () => [new TextEncoder()], path: 'args[0][0]', detail: 'a TextEncoder (it would arrive as {})', serializer: 'changes' },
  { name: 'a TextDecoder', make: () => [new TextDecoder()], path: 'args[0][0]', detail: 'a TextDecoder (it would arrive as {})', serializer: 'changes' },
  { name: 'a ReadableStream', make: () => [new ReadableStream()], path: 'args[0][0]', detail: 'a ReadableStream (it would arrive as {})', serializer: 'throws or empties' },
  { name: 'a class with only #private state', make: () => ({ state: new Private() }), path: 'args[0].state', detail: 'a Private (it would arrive as {})', serializer: 'changes' },
  { name: 'an instance of an empty class', make: () => [new Empty()], path: 'args[0][0]', detail: 'an Empty (it would arrive as {})', serializer: 'changes' },
  { name: 'an empty object with a plain prototype', make: () => [Object.create({ inherited: 1 })], path: 'args[0][0]', detail: 'an Object (it would arrive as {})', serializer: 'changes' },
  { name: 'a generator', make: () => [(function* gen() {})()], path: 'args[0][0]', detail: 'a Generator (it cannot be cloned)', serializer: 'throws' },
  { name: 'a Map iterator', make: () => [new Map().keys()], path: 'args[0][0]', detail: 'a Map Iterator (it cannot be cloned)', serializer: 'throws' },
  { name: 'an Intl object', make: () => [new Intl.NumberFormat()], path: 'args[0][0]', detail: 'a NumberFormat (it cannot be cloned)', serializer: 'throws' },
  { name: 'a function in an error cause', make: () => [new Error('x', { cause: { retry: () => 1 } })], path: 'args[0][0].cause.retry', detail: 'a function (retry)', serializer: 'throws' },
  // Nested in arrays, objects, Map keys and values, Sets.
  { name: 'a URL as a Map value', make: () => [1, new Map([['k', new URL('https://example.com/')]])], path: 'args[0][1].get("k")', detail: 'a URL (it would arrive as {})', serializer: 'changes' },
  { name: 'a function as a Map value under a number key', make: () => new Map([[1, () => 1]]), path: 'args[0].get(1)', detail: 'a function', serializer: 'throws' },
  { name: 'a function under an object key', make: () => new Map([[{ k: 1 }, Math.max]]), path: 'args[0].values()[0]', detail: 'a function (max)', serializer: 'throws' },
  { name: 'a function as a Map key', make: () => new Map<unknown, number>([['a', 1], [Math.min, 2]]), path: 'args[0].keys()[1]', detail: 'a function (min)', serializer: 'throws' },
  { name: 'an AbortSignal in a Set', make: () => ({ signals: new Set([1, AbortSignal.abort()]) }), path: 'args[0].signals.values()[1]', detail: 'an AbortSignal (it would arrive as {})', serializer: 'changes' },
  { name: 'a Headers deep in arrays', make: () => ({ items: [0, 1, 2, [[new Headers()]]] }), path: 'args[0].items[3][0][0]', detail: 'a Headers (it would arrive as {})', serializer: 'changes' },
  { name: 'a MessagePort inside a MessageChannel', make: () => ({ channel: new MessageChannel() }), path: 'args[0].channel.port1', detail: 'a MessagePort (it would arrive as {})', serializer: 'throws' },
  { name: 'an odd key', make: () => ({ 'not an identifier': [Symbol.iterator] }), path: 'args[0]["not an identifier"][0]', detail: 'a symbol (Symbol(Symbol.iterator))', serializer: 'throws' },
  { name: 'a function inside a cycle', make: () => Object.assign(cyclic(), { late: parseInt }), path: 'args[0].late', detail: 'a function (parseInt)', serializer: 'throws' },
  { name: 'nesting deeper than the stack', make: () => nested(100_000), path: 'args[0]', detail: 'not cloneable (Maximum call stack size exceeded)', serializer: 'throws' },
];

interface Accepted {
  name: string;
  make: () => unknown;
  /** What the serializer delivers, where it is not a deep copy of the value itself. */
  arrives?: unknown;
}

const accepted: Accepted[] = [
  { name: 'a number', make: () => 1 },
  { name: '-0', make: () => -0 },
  { name: 'NaN', make: () => NaN },
  { name: 'a string', make: () => 'text' },
  { name: 'null', make: () => null },
  { name: 'undefined', make: () => undefined },
  { name: 'a BigInt', make: () => 12345678901234567890n },
  { name: 'plain nested data', make: () => ({ a: 1, b: ['x', { c: null, d: [true, false] }], e: { f: { g: 'deep' } }, 'odd key': 2 }) },
  { name: 'an array of numbers', make: () => Array.from({ length: 1000 }, (_, i) => i * 1.5) },
  { name: 'a sparse array', make: () => [1, , 3] }, // eslint-disable-line no-sparse-arrays
  { name: 'tuples', make: () => [[1, 'a'], [2, 'b']] },
  { name: 'a null-prototype object', make: () => Object.assign(Object.create(null), { a: 1 }), arrives: { a: 1 } },
  { name: 'a Map', make: () => new Map<unknown, unknown>([['k', { v: [1, 2] }], [1, new Set([1n])], [{ key: true }, 'object key']]) },
  { name: 'a Set', make: () => new Set([1, 'two', { three: 3 }, [4]]) },
  { name: 'a Date', make: () => new Date(1_700_000_000_000) },
  { name: 'a RegExp', make: () => /a+b/giu },
  { name: 'boxed primitives', make: () => [new Number(1), new String('s'), new Boolean(false), Object(2n)] },
  { name: 'an ArrayBuffer', make: () => new Uint8Array([1, 2, 3]).buffer },
  { name: 'typed arrays', make: () => [new Uint8Array([1, 2]), new Float64Array([0.5]), new BigInt64Array([-1n]), new Uint8ClampedArray(3)] },
  { name: 'a DataView', make: () => new DataView(new ArrayBuffer(4)) },
  { name: 'a Buffer', make: () => Buffer.from('hello') },
  { name: 'an Error', make: () => new Error('plain') },
  { name: 'a TypeError with a cause', make: () => new TypeError('outer', { cause: new RangeError('inner') }) },
  // Custom props and the subclass are dropped (error-codec is the path for thrown errors); the message and the data stay.
  { name: 'an Error subclass with custom props', make: () => new CodedError('coded'), arrives: new Error('coded') },
  { name: 'a class instance with own props', make: () => ({ at: new Point(1, 2) }), arrives: { at: { x: 1, y: 2 } } },
  { name: 'a Map subclass', make: () => new Registry([['a', 1]]), arrives: new Map([['a', 1]]) },
  { name: 'a cycle', make: cyclic },
  { name: 'a Map holding itself', make: () => { const map = new Map<string, unknown>(); map.set('self', map); return map; } },
  { name: 'a shared part', make: () => { const part = { p: 1 }; return [part, part, { again: part }]; } },
];

describe('findUnsendable', () => {
  it.each(refused)('refuses $name', ({ make, path, detail }) => {
    const value = make();
    expect(findUnsendable(value, 'args[0]')).toEqual({ path, detail });
    // The path leads to the refused part itself (a throwing getter cannot be followed).
    if (!detail.startsWith('a getter')) expect(findUnsendable(partAt(value, path), 'part')?.detail).toBe(detail);
  });

  it.each(refused)('is right to refuse $name: the serializer $serializer', ({ make, path, serializer }) => {
    const value = make();
    if (serializer === 'throws') {
      expect(() => serialize(value)).toThrow();
      return;
    }
    if (serializer === 'throws or empties') {
      let arrived: unknown;
      try {
        arrived = partAt(roundTrip(value), path);
      } catch {
        return;
      }
      expect(arrived).toStrictEqual({});
      return;
    }
    const part = partAt(value, path);
    const arrived = partAt(roundTrip(value), path);
    if (ArrayBuffer.isView(part)) {
      expect(part.buffer).toBeInstanceOf(SharedArrayBuffer);
      expect((arrived as ArrayBufferView).buffer).not.toBeInstanceOf(SharedArrayBuffer);
    } else {
      expect(Object.getPrototypeOf(part)).not.toBe(Object.prototype);
      expect(Object.getPrototypeOf(arrived)).toBe(Object.prototype);
      expect(arrived).toStrictEqual({});
    }
  });

  it.each(accepted)('accepts $name, and the serializer delivers it', ({ make, arrives }) => {
    const value = make();
    expect(findUnsendable(value, 'args[0]')).toBeUndefined();
    expect(checkSendable(value, 'args[0]')).toBeUndefined();
    expect(roundTrip(value)).toStrictEqual(arrives ?? value);
  });

  it('puts the root at the start of every path', () => {
    expect(findUnsendable(() => 1, 'result')).toEqual({ path: 'result', detail: 'a function' });
    expect(findUnsendable({ items: [0, 1, 2, Symbol('s')] }, 'result')).toEqual({ path: 'result.items[3]', detail: 'a symbol (Symbol(s))' });
  });

  it('walks again safely from inside a getter', () => {
    const value = {
      get inner() {
        return findUnsendable({ f: () => 1 }, 'inner') === undefined ? 1 : 2;
      },
      after: [{ x: 1 }, { y: () => 2 }],
    };
    expect(findUnsendable(value, 'args[0]')).toEqual({ path: 'args[0].after[1].y', detail: 'a function (y)' });
  });

  it('does not see a Proxy, an arguments object or a non-index property of an array (checkSendable does)', () => {
    const args = (function (..._: unknown[]) {
      // eslint-disable-next-line prefer-rest-params
      return arguments;
    })(1, 2);
    for (const value of [new Proxy({ a: 1 }, {}), args, Object.assign([1], { extra: 2 })]) expect(findUnsendable(value, 'args[0]')).toBeUndefined();
  });
});

describe('checkSendable', () => {
  it.each(refused)('refuses $name as the walk does', ({ make, path, detail }) => {
    expect(checkSendable(make(), 'args[0]')).toEqual({ path, detail });
  });

  it('asks the serializer about what the walk does not see, and narrows the path', () => {
    expect(checkSendable({ list: [1, new Proxy({ a: 1 }, {})] }, 'initArgs')).toEqual({
      path: 'initArgs.list[1]',
      detail: 'not cloneable (#<Object> could not be cloned.)',
    });
    expect(checkSendable([Object.assign([1, 2], { hook: parseFloat })], 'initArgs')).toEqual({ path: 'initArgs[0].hook', detail: 'a function (parseFloat)' });
    const args = (function (..._: unknown[]) {
      // eslint-disable-next-line prefer-rest-params
      return arguments;
    })(1);
    expect(checkSendable({ args }, 'initArgs')).toEqual({ path: 'initArgs.args', detail: 'not cloneable (#<Object> could not be cloned.)' });
  });

  it('accepts an array with a plain non-index property (the serializer sends it)', () => {
    const value = Object.assign([1, 2], { label: 'x' });
    expect(checkSendable(value, 'args')).toBeUndefined();
    expect((roundTrip(value) as { label: string }).label).toBe('x');
  });
});

describe('isCloneable', () => {
  it('is false for what the walk refuses and for what structuredClone throws on', () => {
    expect(isCloneable({ a: [1, new Map([['k', new Date(0)]])] })).toBe(true);
    expect(isCloneable(1)).toBe(true);
    expect(isCloneable(new SharedArrayBuffer(4))).toBe(false);
    expect(isCloneable({ url: new URL('https://example.com/') })).toBe(false);
    expect(isCloneable(new Proxy({}, {}))).toBe(false);
    expect(isCloneable(() => 1)).toBe(false);
  });
});

describe('the walk against the serializer, on generated data', () => {
  const data = fc.anything({
    maxDepth: 4,
    withMap: true,
    withSet: true,
    withDate: true,
    withBigInt: true,
    withTypedArray: true,
    withBoxedValues: true,
    withNullPrototype: true,
    withSparseArray: true,
  });

  it('accepts JSON-like data with Maps, Sets and Dates, and the serializer round-trips it', () => {
    fc.assert(
      fc.property(data, (value) => {
        expect(findUnsendable(value, 'args[0]')).toBeUndefined();
        expect(checkSendable(value, 'args[0]')).toBeUndefined();
        // toEqual, not toStrictEqual: a null-prototype object arrives with Object.prototype.
        expect(roundTrip(value)).toEqual(value);
      }),
      { numRuns: 300 },
    );
  });

  it('finds a function planted anywhere in such data, at the right path', () => {
    fc.assert(
      fc.property(fc.array(fc.jsonValue({ maxDepth: 3 }), { minLength: 1, maxLength: 8 }), fc.nat(), (items, at) => {
        const index = at % items.length;
        const value = items.map((item, i) => (i === index ? { item, hook: Math.abs } : item));
        expect(findUnsendable(value, 'args')).toEqual({ path: `args[${index}].hook`, detail: 'a function (abs)' });
      }),
      { numRuns: 200 },
    );
  });
});
