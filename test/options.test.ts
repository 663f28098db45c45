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

// The elastic pool, maxQueue and priority (issue: an elastic pool with back-pressure and priorities).
const elasticRows: Row[] = [
  ['minProcesses', '1', TypeError, /integer from 0/, '"1"'],
  ['minProcesses', -1, RangeError, /integer from 0/, '`-1`'],
  ['minProcesses', 0.5, RangeError, /integer from 0/, '`0.5`'],
  ['minProcesses', Number.NaN, RangeError, /integer from 0/, '`NaN`'],
  ['minProcesses', Number.POSITIVE_INFINITY, RangeError, /integer from 0/, '`Infinity`'],
  ...badCounts('maxProcesses', /integer from 1/),
  ['maxProcesses', Number.POSITIVE_INFINITY, RangeError, /integer from 1/, '`Infinity`'],
  ['idleTimeout', '100', TypeError, /milliseconds/, '"100"'],
  ['idleTimeout', 0, RangeError, /positive number of milliseconds/, '`0`'],
  ['idleTimeout', -1, RangeError, /positive number of milliseconds/, '`-1`'],
  ['idleTimeout', Number.NaN, RangeError, /positive number of milliseconds/, '`NaN`'],
  ['idleTimeout', Number.POSITIVE_INFINITY, RangeError, /positive number of milliseconds/, '`Infinity`'],
  ['idleTimeout', 2 ** 31, RangeError, /positive number of milliseconds/, '`2147483648`'],
  ['maxQueue', '2', TypeError, /integer from 0/, '"2"'],
  ['maxQueue', -1, RangeError, /integer from 0/, '`-1`'],
  ['maxQueue', 0.5, RangeError, /integer from 0/, '`0.5`'],
  ['maxQueue', Number.NaN, RangeError, /integer from 0/, '`NaN`'],
  ['maxQueue', Number.NEGATIVE_INFINITY, RangeError, /integer from 0/, '`-Infinity`'],
];

describe('elastic pool options', () => {
  it.each(elasticRows)('%s: %o is a %o', (...row) => {
    const [name, value] = row;
    let error: unknown;
    try {
      new Pool(tasks, { ...base, [name]: value } as PoolOptions);
    } catch (caught) {
      error = caught;
    }
    expectInvalid(error, row);
  });

  it.each<[string, PoolOptions, RegExp]>([
    ['minProcesses > maxProcesses', { minProcesses: 3, maxProcesses: 2 }, /`minProcesses` \(3\).*`maxProcesses` \(2\)/],
    ['processes with minProcesses', { processes: 2, minProcesses: 1 }, /`processes`.*`minProcesses`/],
    ['processes with maxProcesses', { processes: 2, maxProcesses: 4 }, /`processes`.*`maxProcesses`/],
    ['processes with both', { processes: 2, minProcesses: 1, maxProcesses: 4 }, /`processes`.*`minProcesses`/],
  ])('%s is a RangeError', (_, options, message) => {
    expect(() => new Pool(tasks, { ...base, ...options })).toThrow(RangeError);
    expect(() => new Pool(tasks, { ...base, ...options })).toThrow(message);
  });

  it('valid edge values are accepted', async () => {
    await using elastic = new Pool(tasks, { ...base, minProcesses: 0, maxProcesses: 1, idleTimeout: 2 ** 31 - 1, maxQueue: 0 });
    expect(elastic.stats.processes).toBe(1);
    await using fixed = new Pool(tasks, { ...base, processes: 1, maxQueue: Number.POSITIVE_INFINITY, idleTimeout: 0.5 });
    expect(await fixed.apply('double', [1], { priority: -1.5 })).toBe(2);
    // min = max: an elastic pool that never changes size.
    await using same = new Pool(tasks, { ...base, minProcesses: 1, maxProcesses: 1 });
    expect(same.stats).toMatchObject({ processes: 1, size: 1 });
  });
});

const priorityRows: Row[] = [
  ['priority', '1', TypeError, /finite number/, '"1"'],
  ['priority', null, TypeError, /finite number/, '`null`'],
  ['priority', Number.NaN, RangeError, /finite number/, '`NaN`'],
  ['priority', Number.POSITIVE_INFINITY, RangeError, /finite number/, '`Infinity`'],
  ['priority', Number.NEGATIVE_INFINITY, RangeError, /finite number/, '`-Infinity`'],
];

describe('per-call priority', () => {
  it.each(Object.keys(methods).flatMap((method) => priorityRows.map((row): [string, ...Row] => [method, ...row])))(
    '%s: %s %o rejects with %o, never throws',
    async (method, ...row) => {
      const [name, value] = row;
      let work: Promise<unknown> | undefined;
      expect(() => (work = methods[method]!({ [name]: value }))).not.toThrow();
      expectInvalid(await work!.then(() => expect.fail('the call resolved'), (error: unknown) => error), row);
    },
  );

  it.each(Object.keys(methods))('%s takes any finite priority', async (method) => {
    for (const priority of [0, 10, -3, 2.5]) await expect(methods[method]!({ priority })).resolves.toBeDefined();
  });
});
