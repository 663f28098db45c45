/**
 * Regressions found in review: each row once left a call pending, ran work
 * that was dropped, or reported the wrong thing.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Pool, PoolBrokenError, PoolClosedError } from 'procpool';
import { add } from './fixtures/review-tasks.mjs';

const tasks = new URL('./fixtures/review-tasks.mjs', import.meta.url);
const dir = mkdtempSync(join(tmpdir(), 'procpool-review-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const open = (options: ConstructorParameters<typeof Pool>[1] = {}): Pool => new Pool(tasks, { processes: 1, nodeOptions: [], ...options });
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('regressions', () => {
  it('a call after a failed call with dropped chunks is served', async () => {
    await using pool = open();
    for (let i = 0; i < 100; i++) await pool.apply('quick');
    await expect(pool.starmap('sleep', [[40, true], [40], [40]], { chunksize: 1 })).rejects.toThrow('boom');
    expect(await pool.apply('quick')).toBe(1);
  }, 10_000);

  it('an apply aborted while queued never runs', async () => {
    await using pool = open();
    const file = join(dir, 'aborted-apply');
    const busy = pool.apply('sleep', [200]);
    const controller = new AbortController();
    const aborted = pool.apply('mark', [file], { signal: controller.signal });
    setTimeout(() => controller.abort(), 30);
    await expect(aborted).rejects.toMatchObject({ name: 'AbortError' });
    await busy;
    expect(await pool.apply('quick')).toBe(1);
    expect(existsSync(file)).toBe(false);
  }, 10_000);

  it('initArgs that cannot be sent are refused at construction', () => {
    expect(() => open({ initArgs: [() => 1] })).toThrow(TypeError);
    expect(() => open({ initArgs: [{ cb: () => 1 }] })).toThrow(/initArgs\[0\]\.cb/);
  });

  it('a child that cannot be spawned breaks the pool', async () => {
    const pool = open({ cwd: join(dir, 'no-such-dir') });
    await expect(pool.ready()).rejects.toBeInstanceOf(PoolBrokenError);
    await expect(pool.apply('quick')).rejects.toBeInstanceOf(PoolBrokenError);
    await pool.terminate();
  }, 10_000);

  it.each(['terminate', 'close'] as const)('ready() settles when the pool is stopped while starting (%s)', async (how) => {
    const pool = open();
    const ready = pool.ready().then(
      () => 'resolved',
      (error: unknown) => error,
    );
    if (how === 'terminate') await pool.terminate();
    else {
      pool.close();
      await pool.join();
    }
    await expect(Promise.race([ready, sleep(3000).then(() => 'pending')])).resolves.not.toBe('pending');
  }, 10_000);

  it('close() waits for a call that named its task by function', async () => {
    const pool = open({ processes: 2 });
    const sums = pool.map(add as never, [1, 2, 3] as never);
    pool.close();
    await pool.join();
    // add(x) with one argument: NaN each, but the call ran rather than being refused.
    await expect(sums).resolves.toHaveLength(3);
  }, 10_000);

  it('a timeout longer than a Node timer takes is refused', async () => {
    await using pool = open();
    await expect(pool.apply('quick', [], { timeout: 3e9 })).rejects.toBeInstanceOf(RangeError);
    await expect(pool.applyAsync('quick').get(3e9)).rejects.toBeInstanceOf(RangeError);
  });

  it('items that ran after their call failed are still counted', async () => {
    await using pool = open({ processes: 2 });
    await pool.ready();
    await expect(pool.starmap('sleep', [[10, true], [100]], { chunksize: 1 })).rejects.toThrow('boom');
    // join() resolves once the chunk still running has ended: no time window to guess.
    pool.close();
    await pool.join();
    expect(pool.stats).toMatchObject({ completed: 1, failed: 1 });
  }, 10_000);

  it('a call on a terminated pool is refused', async () => {
    const pool = open();
    await pool.terminate();
    await expect(pool.apply('quick')).rejects.toBeInstanceOf(PoolClosedError);
  });
});
