/**
 * Regressions found in review of the rebuilt engine, each with real
 * processes: a memory reading that dips back under the limit, a call that
 * ends before an elastic pool has a child, piped output nobody reads, and a
 * fixed shared pool asked for more children.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Pool, sharedPool } from 'procpool';
import { base, fixture, until } from './fixtures/api-helpers.js';

const rssTasks = fixture('review-rss-tasks.mjs');
const pools: Pool[] = [];
const make = (options: ConstructorParameters<typeof Pool>[1]): Pool => {
  const pool = new Pool(rssTasks, { ...base, ...options });
  pools.push(pool);
  return pool;
};
afterEach(async () => {
  await Promise.all(pools.splice(0).map((pool) => pool.terminate()));
});

describe('review regressions', () => {
  it('a child whose memory crossed maxMemoryPerChild mid-chunk is retired even if its next reading is lower: the call completes, no spin', async () => {
    const pool = make({ processes: 1, maxMemoryPerChild: 100_000 });
    await pool.ready();
    const limit = 100_000 * 1024 * 1024;
    // Chunk of 2: after item 0 the reading is past the limit (the child stops taking work); the next ones are low.
    const pids = (await pool.starmap('spike', [[limit + 1, 1], [limit + 1, 1]], { chunksize: 2 })) as number[];
    expect(pids).toHaveLength(2);
    expect(pids[1]).not.toBe(pids[0]);
    expect(pool.stats.restarts).toBeGreaterThanOrEqual(1);
  });

  it('a call aborted while an elastic pool has no child: join() resolves', async () => {
    const pool = make({ minProcesses: 0, maxProcesses: 2, idleTimeout: 50 });
    expect(await pool.apply('id', [1])).toBe(1);
    await until(() => pool.stats.size === 0);
    const controller = new AbortController();
    const call = pool.apply('id', [2], { signal: controller.signal });
    controller.abort(new Error('gave up'));
    await expect(call).rejects.toThrow('gave up');
    pool.close();
    await pool.join();
    expect(pool.stats.queued).toBe(0);
  });

  it("stdio 'pipe' with nobody reading pool.stdout and no close(): the script still exits by itself", async () => {
    const script = fileURLToPath(fixture('review-unread-parent.mjs'));
    const { stdout } = await promisify(execFile)(process.execPath, [script], { timeout: 25_000 });
    expect(stdout.trim()).toBe('called');
  });

  it('a fixed shared pool asked for more children stays fixed: all of them start', async () => {
    const first = sharedPool(rssTasks, { ...base, processes: 1, idleTimeout: 50 });
    pools.push(first);
    const grown = sharedPool(rssTasks, { ...base, processes: 2, idleTimeout: 50 });
    expect(grown).toBe(first);
    expect(grown.stats.processes).toBe(2);
    // Before the fix the second child started only under a burst, and left again when idle.
    await until(() => grown.stats.size === 2 && grown.stats.idle === 2);
    expect(await grown.map('pid', [0, 1, 2, 3], { chunksize: 1 })).toHaveLength(4);
  });
});
