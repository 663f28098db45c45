import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pool, type PoolOptions } from 'procpool';
import { base, tasks } from './fixtures/api-helpers.js';

type ErrorClass = typeof TypeError | typeof RangeError;
/** [option, value, error class, what the message says is expected, how it shows the value] */
type Row = [string, unknown, ErrorClass, RegExp, string];

/** Numbers no integer option takes. */
const badCounts = (name: string, what = /integer/): Row[] => [
  [name, '2', TypeError, what, '"2"'],
  [name, 0, RangeError, what, '`0`'],
  [name, -1, RangeError, what, '`-1`'],
  [name, 0.5, RangeError, what, '`0.5`'],
  [name, Number.NaN, RangeError, what, '`NaN`'],
];

/** Checks the class and that the message names the option, the expectation and the value. */
function expectInvalid(error: unknown, [name, , type, what, shown]: Row): void {
  expect(error).toBeInstanceOf(type);
  const { message } = error as Error;
  expect(message).toContain(`\`${name}\``);
  expect(message).toMatch(what);
  expect(message).toContain(shown);
}

const poolRows: Row[] = [
  ...badCounts('processes'),
  ['processes', Number.POSITIVE_INFINITY, RangeError, /integer/, '`Infinity`'],
  ...badCounts('maxTasksPerChild'),
  ['initializer', 5, TypeError, /name|export|string/, '`5`'],
  ['initializer', '', RangeError, /name|export/, '""'],
  ['initArgs', 'a', TypeError, /array/, '"a"'],
  ['initArgs', { 0: 1 }, TypeError, /array/, '{"0":1}'],
  ['nodeOptions', '--inspect', TypeError, /array/, '"--inspect"'],
  ['nodeOptions', [7], TypeError, /string/, '[7]'],
  ['env', 'A=1', TypeError, /object/, '"A=1"'],
  ['cwd', 42, TypeError, /path|URL/, '`42`'],
  ['stdio', 1, TypeError, /inherit/, '`1`'],
  ['stdio', 'ignore', RangeError, /'inherit' or 'pipe'/, '"ignore"'],
];

describe('pool options', () => {
  it.each(poolRows)('%s: %o is a %o', (...row) => {
    const [name, value] = row;
    let error: unknown;
    try {
      new Pool(tasks, { ...base, [name]: value } as PoolOptions);
    } catch (caught) {
      error = caught;
    }
    expectInvalid(error, row);
  });

  it('env values must be strings', () => {
    expect(() => new Pool(tasks, { ...base, env: { A: 1 } as unknown as Record<string, string> })).toThrow(TypeError);
  });

  it('the module must be a path or a URL', () => {
    expect(() => new Pool(42 as unknown as string, base)).toThrow(TypeError);
  });

  it('valid edge values are accepted', async () => {
    await using pool = new Pool(tasks, { ...base, processes: 1, maxTasksPerChild: Number.POSITIVE_INFINITY, initArgs: [], env: { A: undefined } });
    expect(await pool.apply('double', [1])).toBe(2);
  });
});

let pool: Pool;
beforeAll(async () => {
  pool = await Pool.create(tasks, { processes: 1, ...base });
});
afterAll(() => pool.terminate());

const chunkRows: Row[] = [...badCounts('chunksize'), ['chunksize', Number.POSITIVE_INFINITY, RangeError, /integer/, '`Infinity`']];
const callRows: Row[] = [
  ['timeout', '100', TypeError, /milliseconds|number/, '"100"'],
  ['timeout', 0, RangeError, /milliseconds|positive/, '`0`'],
  ['timeout', -1, RangeError, /milliseconds|positive/, '`-1`'],
  ['timeout', Number.NaN, RangeError, /milliseconds|positive/, '`NaN`'],
  ['timeout', Number.POSITIVE_INFINITY, RangeError, /milliseconds|positive/, '`Infinity`'],
  ['signal', 'stop', TypeError, /AbortSignal/, '"stop"'],
  ['signal', {}, TypeError, /AbortSignal/, '{}'],
];
const callbackRows: Row[] = [
  ['callback', 5, TypeError, /function/, '`5`'],
  ['errorCallback', 'log', TypeError, /function/, '"log"'],
];

/** Every method, as one call that returns a promise of its outcome (imap*: the first next()). */
const methods: Record<string, (options: object) => Promise<unknown>> = {
  apply: (options) => pool.apply('double', [1], options),
  applyAsync: (options) => pool.applyAsync('double', [1], options).get(),
  map: (options) => pool.map('double', [1], options),
  mapAsync: (options) => pool.mapAsync('double', [1], options).get(),
  starmap: (options) => pool.starmap('add', [[1, 2]], options),
  starmapAsync: (options) => pool.starmapAsync('add', [[1, 2]], options).get(),
  imap: (options) => pool.imap('double', [1], options).next(),
  imapUnordered: (options) => pool.imapUnordered('double', [1], options).next(),
};
const chunked = ['map', 'mapAsync', 'starmap', 'starmapAsync', 'imap', 'imapUnordered'];
const async = ['applyAsync', 'mapAsync', 'starmapAsync'];

const cases: Array<[string, ...Row]> = [
  ...Object.keys(methods).flatMap((method) => callRows.map((row): [string, ...Row] => [method, ...row])),
  ...chunked.flatMap((method) => chunkRows.map((row): [string, ...Row] => [method, ...row])),
  ...async.flatMap((method) => callbackRows.map((row): [string, ...Row] => [method, ...row])),
];

describe('per-call options', () => {
  it.each(cases)('%s: %s %o rejects with %o, never throws', async (method, ...row) => {
    const [name, value] = row;
    let work: Promise<unknown> | undefined;
    expect(() => (work = methods[method]!({ [name]: value }))).not.toThrow();
    expectInvalid(await work!.then(() => expect.fail('the call resolved'), (error: unknown) => error), row);
  });

  it.each(Object.keys(methods))('%s: an options argument that is not an object rejects with TypeError', async (method) => {
    let work: Promise<unknown> | undefined;
    expect(() => (work = methods[method]!('fast' as unknown as object))).not.toThrow();
    await expect(work).rejects.toBeInstanceOf(TypeError);
  });

  it('bad arguments reject too, never throw', async () => {
    const calls = [
      () => pool.apply('add', 5 as unknown as [number, number]),
      () => pool.map('double', 5 as unknown as number[]),
      () => pool.starmap('add', [5] as unknown as Array<[number, number]>),
      () => pool.apply(42 as unknown as string),
      () => pool.imap('double', 5 as unknown as number[]).next(),
      () => pool.imapUnordered(null as unknown as string, [1]).next(),
    ];
    for (const call of calls) {
      let work: Promise<unknown> | undefined;
      expect(() => (work = call())).not.toThrow();
      await expect(work).rejects.toBeInstanceOf(TypeError);
    }
  });

  it('a valid call still works after all of that', async () => {
    expect(await pool.map('double', [1, 2], { chunksize: 1, timeout: 10_000, signal: new AbortController().signal })).toEqual([2, 4]);
  });
});
