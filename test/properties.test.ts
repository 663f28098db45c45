import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pool } from 'procpool';
import { base, collect, tasks } from './fixtures/api-helpers.js';

// One pool per size, reused by every run: starting children is the slow part.
const sizes = [1, 2, 3] as const;
const pools = new Map<number, Pool>();
beforeAll(async () => {
  for (const processes of sizes) pools.set(processes, await Pool.create(tasks, { processes, ...base }));
});
afterAll(() => Promise.all([...pools.values()].map((pool) => pool.terminate())));

const numRuns = 20;
const poolOf = fc.constantFrom(...sizes).map((processes) => pools.get(processes)!);
const chunksize = fc.option(fc.integer({ min: 1, max: 12 }), { nil: undefined });
const options = (size: number | undefined): { chunksize?: number } => (size === undefined ? {} : { chunksize: size });
const ints = fc.array(fc.integer({ min: -1_000_000, max: 1_000_000 }), { maxLength: 60 });
/** Values that survive a structured clone unchanged. */
const values = fc.array(
  fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constant(undefined), fc.bigInt(), fc.date({ noInvalidDate: true }), fc.jsonValue()),
  { maxLength: 30 },
);
/** Items that finish in random order: [sleep ms, value]. */
const shuffled = fc.array(fc.tuple(fc.integer({ min: 0, max: 8 }), fc.integer()), { maxLength: 25 });

const byNumber = (a: unknown, b: unknown): number => Number(a) - Number(b);

describe('properties', () => {
  it('map equals Array.prototype.map', async () => {
    await fc.assert(
      fc.asyncProperty(poolOf, ints, chunksize, async (pool, items, size) => {
        expect(await pool.map('double', items, options(size))).toEqual(items.map((x) => x * 2));
      }),
      { numRuns },
    );
  });

  it('map carries any cloneable value there and back', async () => {
    await fc.assert(
      fc.asyncProperty(poolOf, values, chunksize, async (pool, items, size) => {
        expect(await pool.map('echo', items, options(size))).toEqual(items);
      }),
      { numRuns },
    );
  });

  it('starmap equals Array.prototype.map over argument tuples, also when items finish out of order', async () => {
    await fc.assert(
      fc.asyncProperty(poolOf, shuffled, chunksize, async (pool, tuples, size) => {
        expect(await pool.starmap('sleep', tuples, options(size))).toEqual(tuples.map(([, value]) => value));
        expect(await pool.starmap('add', tuples, options(size))).toEqual(tuples.map(([a, b]) => a + b));
      }),
      { numRuns },
    );
  });

  it('imap equals Array.prototype.map, from an iterable or an async iterable', async () => {
    await fc.assert(
      fc.asyncProperty(poolOf, ints, chunksize, fc.boolean(), async (pool, items, size, asyncInput) => {
        async function* input(): AsyncGenerator<number> {
          yield* items;
        }
        const results = await collect(pool.imap('double', asyncInput ? input() : items, options(size)));
        expect(results).toEqual(items.map((x) => x * 2));
      }),
      { numRuns },
    );
  });

  it('imapUnordered equals Array.prototype.map as a multiset', async () => {
    await fc.assert(
      fc.asyncProperty(poolOf, shuffled, chunksize, async (pool, tuples, size) => {
        const results = await collect(pool.imapUnordered('sleep', tuples.map(([ms]) => ms), options(size)));
        expect(results.sort(byNumber)).toEqual(tuples.map(([ms]) => ms).sort(byNumber));
      }),
      { numRuns },
    );
  });
});
