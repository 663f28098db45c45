import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pool } from 'procpool';
import { base, collect, fixture, tasks } from './fixtures/api-helpers.js';

interface Tag {
  i: number;
  pid: number;
  gen: number;
}

/**
 * Sizes of the chunks the items ran in: items of one chunk run on one child
 * in one synchronous stretch, so they share `pid` and `gen` (api-chunks.mjs).
 */
function chunkSizes(results: unknown[]): number[] {
  const tags = results as Tag[];
  const sizes: number[] = [];
  const seen = new Set<string>();
  let last: string | undefined;
  for (const [at, tag] of tags.entries()) {
    expect(tag.i).toBe(at);
    const key = `${tag.pid}:${tag.gen}`;
    if (key === last) sizes[sizes.length - 1]!++;
    else {
      expect(seen.has(key), `a chunk's items run consecutively (item ${at})`).toBe(false);
      seen.add(key);
      sizes.push(1);
    }
    last = key;
  }
  return sizes;
}

const indices = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const chunks = fixture('api-chunks.mjs');

describe('order', () => {
  let pool: Pool;
  beforeAll(async () => {
    pool = await Pool.create(tasks, { processes: 3, ...base });
  });
  afterAll(() => pool.terminate());

  it('map, starmap and imap keep input order when completion order is shuffled', async () => {
    const n = 24;
    const ms = indices(n).map(() => Math.floor(Math.random() * 30));
    const tuples = indices(n).map((i): [number, number] => [ms[i]!, i]);
    for (const chunksize of [1, 2, 5]) {
      expect(await pool.starmap('sleep', tuples, { chunksize })).toEqual(indices(n));
      expect(await collect(pool.imap('double', indices(n), { chunksize }))).toEqual(indices(n).map((i) => i * 2));
    }
    expect(await pool.map('sleep', ms, { chunksize: 1 })).toEqual(ms);
    const unordered = await collect(pool.imapUnordered('sleep', ms, { chunksize: 1 }));
    expect(unordered.sort((a, b) => Number(a) - Number(b))).toEqual([...ms].sort((a, b) => a - b));
  });

  it('imapUnordered yields in completion order', async () => {
    // Three children, three items: the longest started first finishes last.
    const out = await collect(pool.imapUnordered('sleep', [900, 450, 0], { chunksize: 1 }));
    expect(out).toEqual([0, 450, 900]);
  });
});

describe('chunking', () => {
  let pool: Pool;
  beforeAll(async () => {
    pool = await Pool.create(chunks, { processes: 2, ...base });
  });
  afterAll(() => pool.terminate());

  it('0 items: every method resolves empty', async () => {
    await using tasksPool = new Pool(tasks, { processes: 1, ...base });
    expect(await tasksPool.map('double', [])).toEqual([]);
    expect(await tasksPool.map('double', [], { chunksize: 3 })).toEqual([]);
    expect(await tasksPool.starmap('add', [])).toEqual([]);
    expect(await tasksPool.mapAsync('double', []).get()).toEqual([]);
    expect(await tasksPool.starmapAsync('add', []).get()).toEqual([]);
    expect(await collect(tasksPool.imap('double', []))).toEqual([]);
    expect(await collect(tasksPool.imapUnordered('double', [], { chunksize: 2 }))).toEqual([]);
  });

  it('1 item: one chunk of one', async () => {
    expect(chunkSizes(await pool.map('chunkTag', [0]))).toEqual([1]);
    expect(chunkSizes(await collect(pool.imap('chunkTag', [0])))).toEqual([1]);
  });

  it('a chunksize larger than the input makes one chunk', async () => {
    expect(chunkSizes(await pool.map('chunkTag', indices(5), { chunksize: 100 }))).toEqual([5]);
    expect(chunkSizes(await pool.starmap('chunkTag', indices(5).map((i) => [i]), { chunksize: 6 }))).toEqual([5]);
  });

  it('chunksize 1 makes one chunk per item', async () => {
    expect(chunkSizes(await pool.map('chunkTag', indices(6), { chunksize: 1 }))).toEqual([1, 1, 1, 1, 1, 1]);
  });

  it('chunksize 1 spreads slow items over the children', async () => {
    await using tasksPool = await Pool.create(tasks, { processes: 2, ...base });
    const pids = await tasksPool.map('slowPid', [300, 300, 300, 300], { chunksize: 1 });
    expect(new Set(pids).size).toBe(2);
  });

  it('an explicit chunksize cuts items into chunks of that size, the last one shorter', async () => {
    expect(chunkSizes(await pool.map('chunkTag', indices(10), { chunksize: 4 }))).toEqual([4, 4, 2]);
    expect(chunkSizes(await collect(pool.imap('chunkTag', indices(7), { chunksize: 3 })))).toEqual([3, 3, 1]);
  });

  it.each([
    // [items, processes, ceil(items / (4 × processes))]
    [24, 2, 3],
    [10, 1, 3],
    [7, 2, 1],
    [40, 2, 5],
  ])("map's default chunksize is Python's rule: %i items on %i processes → %i", async (n, processes, size) => {
    await using sized = processes === 2 ? undefined : await Pool.create(chunks, { processes, ...base });
    const target = sized ?? pool;
    const expected = indices(Math.ceil(n / size)).map((k) => Math.min(size, n - k * size));
    expect(chunkSizes(await target.map('chunkTag', indices(n)))).toEqual(expected);
    expect(chunkSizes(await target.starmap('chunkTag', indices(n).map((i) => [i])))).toEqual(expected);
  });
});
