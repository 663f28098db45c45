/**
 * How work flows at the engine's edges, on real child processes (issue 17):
 * the first failure stops what is already in a child's pipe, a skip is
 * honoured, a dropped imap iterator with a live signal is collected, a
 * result's transfer is not charged to its item's timeout, a per-item timeout
 * runs per item, and re-queued rests go ahead of new work. Orders of events
 * are read from files the tasks write; no test counts on timing.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Pool, type PoolOptions } from 'procpool';
import { childEnv, leftOver, logStarts, readLines, rejection, tempDir, until } from './fixtures/fault-helpers.js';
import { within } from './fixtures/scenario-helpers.js';

const tasks = new URL('./fixtures/scenario-tasks.mjs', import.meta.url);
const TEST_MS = 60_000;
const parentScript = fileURLToPath(new URL('./fixtures/flow-parent.mjs', import.meta.url));
// The parent script runs from the package root, so that its `import 'procpool'` resolves to dist/.
const root = fileURLToPath(new URL('..', import.meta.url));

let dir = '';
const pools: Pool[] = [];
const startLog = (): string => join(dir, 'starts');

beforeEach(() => {
  dir = tempDir('procpool-flow-');
});
afterEach(async () => {
  await Promise.all(pools.splice(0).map((pool) => pool.terminate()));
  for (const pid of leftOver(startLog())) process.kill(pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function makePool(options: PoolOptions = {}): Pool {
  const pool = new Pool(tasks, { processes: 2, nodeOptions: logStarts, env: childEnv(startLog()), ...options });
  pools.push(pool);
  return pool;
}

/** close() + join(), bounded; then no child is left. */
async function closeAndCheckGone(pool: Pool): Promise<void> {
  pool.close();
  await within(pool.join(), 20_000, 'join()');
  expect(leftOver(startLog())).toEqual([]);
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

/** Many fast items of `recordsThenFails`: its chunks are measured as tiny, so each child is kept fed (many chunks in its pipe). */
async function warm(pool: Pool): Promise<void> {
  const file = join(dir, 'warm');
  await pool.map('recordsThenFails', range(2, 400).map((index) => ({ file, index })), { chunksize: 1 });
}

const ranIn = (file: string): number[] => readLines(file).map(Number).sort((a, b) => a - b);

describe('the first failure stops what is already in a child’s pipe', () => {
  it('one child kept fed; map (chunksize 1) whose item 0 fails after 60 ms: none of the later items runs', async () => {
    const pool = makePool({ processes: 1 });
    await warm(pool);
    const file = join(dir, 'ran');
    const error = await within(rejection(pool.map('recordsThenFails', range(0, 41).map((index) => ({ file, index, failMs: 60 })), { chunksize: 1 })), 20_000, 'the map');
    expect(error).toMatchObject({ code: 'E_ITEM0' });
    await closeAndCheckGone(pool);
    expect(ranIn(file)).toEqual([0]);
  }, TEST_MS);

  it('two children kept fed; item 0 fails on one: the chunks in the other child’s pipe are skipped, not run', async () => {
    const pool = makePool({ processes: 2 });
    await warm(pool);
    const file = join(dir, 'ran');
    const gates = { 0: join(dir, 'gate0'), 1: join(dir, 'gate1') };
    // Item 0 on one child, item 1 on the other; every other chunk of the call waits in their pipes.
    const mapped = rejection(pool.map('recordsThenFails', range(0, 32).map((index) => ({ file, index, gates })), { chunksize: 1 }));
    expect(await until(() => ranIn(file).length === 2, 20_000)).toBe(true);
    expect(ranIn(file)).toEqual([0, 1]);
    writeFileSync(gates[0], '');
    expect(await within(mapped, 20_000, 'the map')).toMatchObject({ code: 'E_ITEM0' });
    // The skips are on their way before item 1 ends: the child reads them while item 1 waits.
    writeFileSync(gates[1], '');
    await closeAndCheckGone(pool);
    expect(existsSync(file)).toBe(true);
    expect(ranIn(file)).toEqual([0, 1]);
  }, TEST_MS);
});

describe('calls sharing a signal', () => {
  it('an imap iterator dropped half-way, its signal alive, is collected with the results it buffered', () => {
    const run = spawnSync(process.execPath, ['--expose-gc', parentScript, 'dropped-imap'], { cwd: root, env: childEnv(startLog()), encoding: 'utf8', timeout: 50_000 });
    expect(run.stderr).toBe('');
    expect(run.stdout.trim()).toBe('collected');
    expect(leftOver(startLog())).toEqual([]);
  }, TEST_MS);
});

describe('timeout measures the item in the child, not the transfer of its result', () => {
  it('timeout is per item, also with chunksize > 1: a chunk of 6 items of 500 ms each under timeout 2000 ms resolves; an item past it fails alone', async () => {
    const pool = makePool({ processes: 1 });
    await pool.ready();
    const items = [500, 500, 500, 500, 500, 500];
    expect(await within(pool.map('sleepFor', items, { chunksize: 6, timeout: 2000 }), 30_000, 'the map')).toEqual(items);
    const error = await within(rejection(pool.map('sleepFor', [10, 10, 60_000, 10], { chunksize: 4, timeout: 2000 })), 30_000, 'the map');
    expect(error).toMatchObject({ code: 'PROCPOOL_TASK_TIMEOUT', timeout: 2000 });
    await closeAndCheckGone(pool);
  }, TEST_MS);


  /** Blocks this process's event loop: no IPC is read meanwhile, no timer runs. */
  const blockUntil = (done: () => boolean): void => {
    while (!done()) {
      // Busy: the point is that the event loop does not turn.
    }
  };

  it('an item that ends well within its timeout and returns 128 MiB, read only after the timeout has passed: it resolves', async () => {
    const pool = makePool({ processes: 1 });
    await pool.ready();
    const timeout = 2000;
    const files = { started: join(dir, 'started'), gate: join(dir, 'gate'), returning: join(dir, 'returning') };
    const result = pool.apply('bigAfterGate', [{ ...files, mib: 128 }], { timeout }).then(
      (bytes: unknown) => ({ length: (bytes as Buffer).length }),
      (error: unknown) => ({ error }),
    );
    expect(await until(() => existsSync(files.started), 20_000)).toBe(true);
    // A few turns: the start message (sent before the item began) is read and the timer armed.
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    writeFileSync(files.gate, '');
    const gateAt = performance.now();
    // While this process reads nothing, the item ends and its result waits in the pipe; the timer's time passes.
    blockUntil(() => existsSync(files.returning) && performance.now() - gateAt > timeout + 200);
    const returnedAt = performance.now();
    blockUntil(() => performance.now() - returnedAt > 300);
    expect(await within(result, 30_000, 'the apply')).toEqual({ length: 128 * 1024 * 1024 });
    await closeAndCheckGone(pool);
  }, TEST_MS);
});

describe('a chunk’s rest that runs again goes ahead of new work', () => {
  it('item 2 of a chunk of 6 ends its child (retries: 1); a call queued meanwhile runs after the rest of that chunk', async () => {
    const pool = makePool({ processes: 1 });
    await pool.ready();
    const file = join(dir, 'ran');
    const marker = join(dir, 'exited');
    const items = range(0, 6).map((index) => ({ file, index, exitAt: 2, marker }));
    const chunk = pool.map('recordsExitOnce', items, { chunksize: 6, retries: 1 });
    // Queued while the chunk runs (its task is not measured: it waits in the queue, not in the pipe).
    const later = pool.map('recordsExitOnce', [10, 11].map((index) => ({ file, index, exitAt: -1, marker })), { chunksize: 1 });
    expect(await within(chunk, 20_000, 'the chunk')).toEqual(range(0, 6));
    expect(await within(later, 20_000, 'the later call')).toEqual([10, 11]);
    // Run order, unsorted: the rest (from item 2, run again) before the later call.
    expect(readLines(file).map(Number)).toEqual([0, 1, 2, 2, 3, 4, 5, 10, 11]);
    await closeAndCheckGone(pool);
  }, TEST_MS);
});
