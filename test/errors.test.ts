import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pool, PoolError, SerializationError } from 'procpool';
import { base, collect, fixture } from './fixtures/api-helpers.js';

let pool: Pool;
beforeAll(async () => {
  pool = await Pool.create(fixture('api-errors.mjs'), { processes: 2, ...base });
});
afterAll(() => pool.terminate());

/** What a call rejected with. */
const thrown = (work: Promise<unknown>): Promise<unknown> => work.then(() => expect.fail('the call resolved'), (error: unknown) => error);

describe('errors thrown by a task come back as if thrown locally', () => {
  it('a custom error keeps its name, message, code and own and nested properties', async () => {
    const error = await thrown(pool.apply('throwCustom'));
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ name: 'ValidationError', message: 'bad email', code: 'E_VALIDATION', field: 'email' });
    expect((error as { meta: unknown }).meta).toEqual({ nested: { list: [1, { deep: true }] } });
  });

  it('keeps the cause chain, with classes and properties at every level', async () => {
    const error = (await thrown(pool.apply('throwChain'))) as Error;
    expect(error.message).toBe('top');
    const middle = error.cause as Error;
    expect(middle).toMatchObject({ name: 'ValidationError', message: 'middle', code: 'E_VALIDATION' });
    const root = middle.cause as Error;
    expect(root).toBeInstanceOf(TypeError);
    expect(root).toMatchObject({ name: 'TypeError', message: 'root cause', code: 'E_ROOT' });
  });

  it('keeps AggregateError.errors', async () => {
    const error = await thrown(pool.apply('throwAggregate'));
    expect(error).toBeInstanceOf(AggregateError);
    const { errors, message } = error as AggregateError;
    expect(message).toBe('both failed');
    expect(errors).toHaveLength(2);
    expect(errors[0]).toBeInstanceOf(TypeError);
    expect(errors[0]).toMatchObject({ message: 'first' });
    expect(errors[1]).toBeInstanceOf(RangeError);
    expect(errors[1]).toMatchObject({ message: 'second' });
  });

  it.each([Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError])('re-creates a %o as its class', async (ctor) => {
    const error = await thrown(pool.apply('throwBuiltin', [ctor.name]));
    expect(error).toBeInstanceOf(ctor);
    expect(error).toMatchObject({ name: ctor.name, message: `a ${ctor.name}` });
    expect(error).not.toBeInstanceOf(PoolError);
  });

  it("keeps the child's stack", async () => {
    const error = (await thrown(pool.apply('throwCustom'))) as Error;
    expect(error.stack).toContain('bad email');
    expect(error.stack).toMatch(/throwCustom .*api-errors\.mjs/);
  });

  it.each([['x'], [null], [{ code: 1 }], [42], [undefined], [['a', 1]]])('a thrown non-Error %o comes back as the same value', async (value) => {
    expect(await thrown(pool.apply('throwValue', [value]))).toEqual(value);
    expect(await thrown(pool.apply('rejectValue', [value]))).toEqual(value);
    const error = await thrown(pool.map('throwValue', [value]));
    expect(error).toEqual(value);
    if (value !== null && typeof value === 'object') expect(error).not.toBeInstanceOf(Error);
  });

  it('reaches map, imap and the *Async methods the same way', async () => {
    await expect(pool.map('throwBuiltin', ['RangeError'])).rejects.toBeInstanceOf(RangeError);
    await expect(collect(pool.imap('throwBuiltin', ['TypeError']))).rejects.toBeInstanceOf(TypeError);
    await expect(pool.applyAsync('throwCustom').get()).rejects.toMatchObject({ code: 'E_VALIDATION' });
  });
});

describe('SerializationError', () => {
  it.each([
    ['a function in an object', [{ cb: () => 1 }], 'args[0].cb'],
    ['a symbol', [Symbol('s')], 'args[0]'],
    ['a function deep in the second argument', [1, { items: [1, 2, 3, function inner() {}] }], 'args[1].items[3]'],
  ])('rejects %s among the arguments, with direction "args" and its path', async (_, args, path) => {
    const error = await thrown(pool.apply('echo', args));
    expect(error).toBeInstanceOf(SerializationError);
    expect(error).toBeInstanceOf(PoolError);
    expect(error).toMatchObject({ code: 'PROCPOOL_SERIALIZATION', direction: 'args', path });
  });

  it('rejects an unsendable item of map without sending it', async () => {
    const error = await thrown(pool.map('echo', [1, { cb: () => 1 }, 3], { chunksize: 3 }));
    expect(error).toMatchObject({ code: 'PROCPOOL_SERIALIZATION', direction: 'args', path: 'args[0].cb' });
    await expect(collect(pool.imap('echo', [Symbol('x')]))).rejects.toMatchObject({ direction: 'args', path: 'args[0]' });
  });

  it.each([
    ['returnHandler', 'result.handler'],
    ['returnSymbol', 'result'],
    ['returnNested', 'result.list[2]'],
  ])('rejects a result of %s that cannot come back, with direction "result" and path %s', async (task, path) => {
    const error = await thrown(pool.apply(task));
    expect(error).toBeInstanceOf(SerializationError);
    expect(error).toMatchObject({ code: 'PROCPOOL_SERIALIZATION', direction: 'result', path });
    await expect(pool.map(task, [1])).rejects.toMatchObject({ direction: 'result', path });
  });

  it('leaves the pool working', async () => {
    await expect(pool.apply('echo', [() => 1])).rejects.toBeInstanceOf(SerializationError);
    expect(await pool.apply('echo', ['still here'])).toBe('still here');
  });
});

describe('values that round-trip', () => {
  it.each([
    ['a Map', new Map<unknown, unknown>([['a', 1], [2, { b: [3] }]])],
    ['a Set', new Set([1, 'two', 3n])],
    ['a Date', new Date('2024-02-29T12:34:56.789Z')],
    ['a BigInt', 2n ** 70n],
    ['a Uint8Array', new Uint8Array([1, 2, 255])],
    ['a Float64Array', new Float64Array([0.5, -1, Number.MAX_VALUE])],
    ['a BigInt64Array', new BigInt64Array([-(2n ** 63n), 1n])],
    ['nested', { when: new Date(0), tags: new Set(['x']), index: new Map([[1n, [new Int16Array([-2])]]]) }],
  ])('%s', async (_, value) => {
    const back = await pool.apply('echo', [value]);
    expect(back).toEqual(value);
    expect(Object.getPrototypeOf(back)).toBe(Object.getPrototypeOf(value));
  });

  it('a Buffer, both ways', async () => {
    const buffer = Buffer.from('hello from the parent');
    expect(await pool.apply('sameBuffer', [buffer])).toBe(true);
    const back = await pool.apply('echo', [buffer]);
    expect(Buffer.isBuffer(back)).toBe(true);
    expect(back).toEqual(buffer);
    const made = await pool.apply('makeBuffer');
    expect(Buffer.isBuffer(made)).toBe(true);
    expect((made as Buffer).toString()).toBe('made in child');
  });
});
