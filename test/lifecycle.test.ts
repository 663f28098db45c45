import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Pool, PoolClosedError, PoolStateError } from 'procpool';
import { base, fixture, isGone, tasks, tempDir, until, type Tasks } from './fixtures/api-helpers.js';

const run = promisify(execFile);

/** Pids of the children that ran the items marked in `dir` (api-tasks.mjs `mark`). */
const markedPids = (dir: string): number[] => readdirSync(dir).map((name) => Number(readFileSync(join(dir, name), 'utf8')));

/** Every way to start work, each returning a promise of its outcome. */
const calls: Array<[string, (pool: Pool) => Promise<unknown>]> = [
  ['apply', (pool) => pool.apply('double', [1])],
  ['applyAsync', (pool) => pool.applyAsync('double', [1]).get()],
  ['map', (pool) => pool.map('double', [1])],
  ['mapAsync', (pool) => pool.mapAsync('double', [1]).get()],
  ['starmap', (pool) => pool.starmap('add', [[1, 2]])],
  ['starmapAsync', (pool) => pool.starmapAsync('add', [[1, 2]]).get()],
  ['imap', (pool) => pool.imap('double', [1]).next()],
  ['imapUnordered', (pool) => pool.imapUnordered('double', [1]).next()],
];

describe('join()', () => {
  it('rejects with PoolStateError before close() or terminate()', async () => {
    await using pool = new Pool(tasks, { processes: 1, ...base });
    const error = await pool.join().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PoolStateError);
    expect(error).toMatchObject({ code: 'PROCPOOL_STATE' });
  });

  it('resolves after close() once every child has exited', async () => {
    const pool = new Pool<Tasks>(tasks, { processes: 2, ...base });
    const pids = await pool.map('slowPid', [50, 50, 50, 50], { chunksize: 1 });
    pool.close();
    await pool.join();
    for (const pid of pids) expect(isGone(pid), `child ${pid}`).toBe(true);
  });
});

describe('close()', () => {
  it.each(calls)('%s after close() rejects with PoolClosedError', async (_, call) => {
    const pool = new Pool(tasks, { processes: 1, ...base });
    pool.close();
    await expect(call(pool)).rejects.toBeInstanceOf(PoolClosedError);
    await expect(call(pool)).rejects.toMatchObject({ code: 'PROCPOOL_CLOSED' });
    await pool.join();
  });

  it('lets queued work finish', async () => {
    const pool = new Pool(tasks, { processes: 1, ...base });
    const work = pool.map('sleep', [30, 30, 30, 30, 30], { chunksize: 1 });
    const single = pool.apply('add', [1, 2]);
    pool.close();
    await pool.join();
    expect(await work).toEqual([30, 30, 30, 30, 30]);
    expect(await single).toBe(3);
  });

  it('an imap loop under way at close() yields what was queued, then PoolClosedError for input it could not run', async () => {
    const pool = new Pool(tasks, { processes: 1, ...base });
    const seen: unknown[] = [];
    let error: unknown;
    try {
      for await (const value of pool.imap('double', [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], { chunksize: 1 })) {
        seen.push(value);
        if (seen.length === 1) pool.close();
      }
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(PoolClosedError);
    // A prefix, in order: what the read-ahead (2 chunks per process) had queued.
    expect(seen.length).toBeGreaterThanOrEqual(1);
    expect(seen.length).toBeLessThan(10);
    expect(seen).toEqual([2, 4, 6, 8, 10, 12, 14, 16, 18, 20].slice(0, seen.length));
    await pool.join();
  });

  it('an imap whose input was all queued before close() ends normally', async () => {
    const pool = new Pool(tasks, { processes: 2, ...base });
    const iterator = pool.imap('double', [1, 2, 3]);
    const first = await iterator.next();
    expect(first).toEqual({ done: false, value: 2 });
    await until(() => pool.stats.queued === 0);
    pool.close();
    const rest: unknown[] = [];
    for await (const value of iterator) rest.push(value);
    expect(rest).toEqual([4, 6]);
    await pool.join();
  });

  it('join() does not wait for an imap consumer suspended with nothing in flight', async () => {
    const pool = new Pool(tasks, { processes: 1, ...base });
    const iterator = pool.imap('double', [1, 2, 3]);
    expect((await iterator.next()).value).toBe(2);
    // Everything ran (results buffered): the consumer is suspended, holding nothing.
    await until(() => pool.stats.completed === 3);
    pool.close();
    await pool.join();
    const rest: unknown[] = [];
    for await (const value of iterator) rest.push(value);
    expect(rest).toEqual([4, 6]);
  });
});

describe('terminate()', () => {
  it('rejects running and queued work with PoolClosedError and kills the children', async () => {
    const dir = tempDir();
    const pool = new Pool(tasks, { processes: 2, ...base });
    // One at a time, so that each child is surely running one.
    const running: Array<Promise<unknown>> = [];
    for (const i of [0, 1]) {
      running.push(pool.apply('mark', [dir, i, 60_000]).catch((e: unknown) => e));
      await until(() => readdirSync(dir).length === i + 1);
    }
    const queued = pool.map('double', [1, 2], { chunksize: 1 }).catch((e: unknown) => e);
    const lazy = pool.imap('double', [1, 2, 3]);
    await pool.terminate();
    for (const outcome of [...running, queued]) expect(await outcome).toBeInstanceOf(PoolClosedError);
    await expect(lazy.next()).rejects.toBeInstanceOf(PoolClosedError);
    for (const pid of markedPids(dir)) expect(isGone(pid), `child ${pid}`).toBe(true);
    await pool.join();
  });

  it('rejects work that waits for children still starting', async () => {
    const pool = new Pool(tasks, { processes: 1, ...base });
    const early = pool.apply('double', [1]).catch((e: unknown) => e);
    const mapped = pool.map('double', [1, 2]).catch((e: unknown) => e);
    await pool.terminate();
    expect(await early).toBeInstanceOf(PoolClosedError);
    expect(await mapped).toBeInstanceOf(PoolClosedError);
  });

  it.each(calls)('%s after terminate() rejects with PoolClosedError', async (_, call) => {
    const pool = new Pool(tasks, { processes: 1, ...base });
    await pool.terminate();
    await expect(call(pool)).rejects.toBeInstanceOf(PoolClosedError);
  });
});

describe('Symbol.asyncDispose', () => {
  it('is graceful: pending work completes before the block is left', async () => {
    let outcome: unknown;
    let pid: number | undefined;
    {
      await using pool = new Pool<Tasks>(tasks, { processes: 1, ...base });
      pid = await pool.apply('pid');
      void pool.map('sleep', [40, 40, 40], { chunksize: 1 }).then((values) => (outcome = values));
    }
    expect(outcome).toEqual([40, 40, 40]);
    expect(isGone(pid!)).toBe(true);
  });
});

describe('a script that never calls close()', () => {
  const script = fileURLToPath(fixture('api-no-close.mjs'));
  it.each([
    ['map', '[2,4,6]'],
    ['imap', '8\n10'],
    ['callback', '42'],
    ['ready', 'undefined'],
    ['idle', ''],
  ])('exits once its work is done (%s)', async (mode, output) => {
    expect(existsSync(script)).toBe(true);
    const { stdout } = await run(process.execPath, [script, mode], { timeout: 20_000, killSignal: 'SIGKILL' });
    expect(stdout.trim()).toBe(output);
  });
});
