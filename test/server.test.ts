/**
 * Inside a server: an elastic pool with back-pressure and priorities.
 * Growth toward maxProcesses and shrinking after idleTimeout, minProcesses 0,
 * maxQueue with QueueFullError and waitForRoom, per-call priorities,
 * sharedPool, a long life of calls, and the examples/server HTTP server.
 *
 * No test counts after a sleep: each waits for a condition (bounded, with a
 * message), or asserts the order of events (a gate the test opens, a
 * child's exit seen by its pid). Every child any test starts logs its pid
 * (fault-start-log.mjs), and every test checks that none is left.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Pool, QueueFullError, sharedPool, type CallOptions, type PoolOptions } from 'procpool';
import { childEnv, isGone, leftOver, logStarts, readLines, tempDir } from './fixtures/fault-helpers.js';

const tasks = new URL('./fixtures/server-tasks.mjs', import.meta.url);
const parentScript = fileURLToPath(new URL('./fixtures/server-parent.mjs', import.meta.url));
const root = fileURLToPath(new URL('..', import.meta.url));
const startLog = new URL('./fixtures/fault-start-log.mjs', import.meta.url).href;

/** What a gated call returns. */
interface Gated {
  name: string;
  pid: number;
}

let dir = '';
let log = '';
const pools: Pool[] = [];
beforeEach(() => {
  dir = tempDir('procpool-server-');
  log = join(dir, 'starts');
});
afterEach(async () => {
  // A safety net for a failed test: the tests close their own pools.
  await Promise.all(pools.splice(0).map((pool) => pool.terminate()));
  rmSync(dir, { recursive: true, force: true });
});

/** Waits for `check` to hold, polling; fails naming `what` after `ms` (a bound for a hang, not a timing). */
async function until(check: () => boolean, what: string | (() => string), ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`Timed out after ${ms} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(5);
  }
}

/** Options of a pool whose children log their starts to `log`. */
const logged = (): PoolOptions => ({ nodeOptions: logStarts, env: childEnv(log) });

function makePool(options: PoolOptions): Pool {
  const pool = new Pool(tasks, { ...logged(), ...options });
  pools.push(pool);
  return pool;
}

/** close(), join(), and no child this test started is left. */
async function closeAndCheck(...list: Pool[]): Promise<void> {
  for (const pool of list) pool.close();
  await Promise.all(list.map((pool) => pool.join()));
  expect(leftOver(log)).toEqual([]);
}

/** A gated call (server-tasks.mjs `gated`); its rejection never goes unhandled when a test fails early. */
function gated(pool: Pool, name: string | number, gate = 'open', options: CallOptions = {}): Promise<Gated> {
  const call = pool.apply('gated', [dir, name, gate], options) as Promise<Gated>;
  call.catch(() => undefined);
  return call;
}
/** Whether the gated call `name` runs (server-tasks.mjs `gated`). */
const started = (name: string | number): boolean => existsSync(join(dir, `started-${name}`));
/** Opens a gate of the gated calls. */
const open = (gate = 'open'): void => writeFileSync(join(dir, gate), '');
/** Whether `work` has settled by the next turn of the event loop (a promise settled at once has). */
const settledNow = (work: Promise<unknown>): Promise<boolean> =>
  Promise.race([work.then(() => true, () => true), new Promise<boolean>((resolve) => setImmediate(() => resolve(false)))]);
/** How `work` settled, as a value to compare. */
const settle = (work: Promise<unknown>): Promise<{ value: unknown } | { error: unknown }> =>
  work.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
/** The order in which calls completed, as seen by the parent. */
function completions(): { done: string[]; track: (name: string, work: Promise<unknown>) => Promise<unknown> } {
  const done: string[] = [];
  return { done, track: (name, work) => work.then(() => done.push(name)) };
}
/** Environment of a process that logs its own start, and its children's, to `log` (NODE_OPTIONS carries the preload). */
const loggedProcessEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({ ...childEnv(log, extra), NODE_OPTIONS: `--import=${startLog}` });

/** Runs a Node script that logs its start and its children's; resolves with its exit (bounded: killed after `ms`). */
function runScript(script: string, args: string[], ms = 20_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [script, ...args], { cwd: root, env: loggedProcessEnv(), timeout: ms, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr });
    });
  });
}

describe('elastic size', () => {
  it('grows toward maxProcesses while calls wait: 3 slow calls at once run on 3 children', async () => {
    const pool = makePool({ minProcesses: 1, maxProcesses: 3 });
    expect(pool.stats).toMatchObject({ processes: 3, size: 1 });
    const calls = [0, 1, 2].map((i) => gated(pool, i));
    await until(() => pool.stats.size === 3, () => `stats.size to reach 3 (it is ${pool.stats.size}, ${pool.stats.queued} item(s) queued)`, 10_000);
    // All three run at the same time: each one's child is its own.
    await until(() => [0, 1, 2].every(started), 'the 3 gated calls to run at once', 10_000);
    expect(pool.stats.size).toBe(3);
    open();
    const pids = (await Promise.all(calls)).map((result) => result.pid);
    expect(new Set(pids).size).toBe(3);
    expect(pool.stats.size).toBe(3);
    await closeAndCheck(pool);
  });

  it('grows by the waiting work only: 2 calls, 2 children of 3', async () => {
    const pool = makePool({ minProcesses: 1, maxProcesses: 3 });
    await pool.ready();
    // One after the other has started: each finds every child busy.
    const calls = [gated(pool, 0)];
    await until(() => started(0), 'the first call to run');
    calls.push(gated(pool, 1));
    await until(() => started(1), 'the second call to run');
    expect(pool.stats.size).toBe(2);
    open();
    const pids = (await Promise.all(calls)).map((result) => result.pid);
    expect(new Set(pids).size).toBe(2);
    expect(pool.stats.size).toBe(2);
    expect(pool.stats.children).toHaveLength(2);
    await closeAndCheck(pool);
    expect(readLines(log)).toHaveLength(2);
  });

  it('one call only: the pool stays at 1 while it runs and after its result came back', async () => {
    const pool = makePool({ minProcesses: 1, maxProcesses: 3 });
    const call = gated(pool, 'only');
    await until(() => started('only'), 'the call to run');
    expect(pool.stats.size).toBe(1);
    open();
    const { pid } = await call;
    expect(pool.stats.size).toBe(1);
    expect(pool.stats.children.map((child) => child.pid)).toEqual([pid]);
    await closeAndCheck(pool);
    expect(readLines(log)).toHaveLength(1);
  });

  it('calls made one after another, each once the previous result came back, never grow the pool', async () => {
    const pool = makePool({ minProcesses: 1, maxProcesses: 3 });
    // A slow call first: its chunks are long, so the child takes one chunk at a time.
    const call = gated(pool, 'first');
    await until(() => started('first'), 'the first call to run');
    open();
    const { pid } = await call;
    const sizes: number[] = [];
    for (let i = 0; i < 5; i++) {
      expect(await pool.apply('pid')).toBe(pid);
      sizes.push(pool.stats.size);
    }
    // Nothing ever waited for a child (each call found the child free): no child was started for it.
    expect(sizes).toEqual([1, 1, 1, 1, 1]);
    await closeAndCheck(pool);
    expect(readLines(log)).toHaveLength(1);
  });

  it('children idle for idleTimeout leave, down to minProcesses; the minimum child stays', async () => {
    const pool = makePool({ minProcesses: 1, maxProcesses: 3, idleTimeout: 200 });
    await pool.ready();
    // Grown to 2: the second call is made while the first runs on the (ready) first child.
    // (Two, not three: a third would race with the second child's start; see the burst test above.)
    const calls = [gated(pool, 0)];
    await until(() => started(0), 'the first call to run');
    calls.push(gated(pool, 1));
    await until(() => started(1), 'the second call to run');
    expect(pool.stats.size).toBe(2);
    open();
    const pids = (await Promise.all(calls)).map((result) => result.pid);
    expect(new Set(pids).size).toBe(2);
    // Event order, not a sleep: one of the two children exits, and the size is back to the minimum.
    await until(() => pids.some((pid) => isGone(pid)), 'the extra child to leave');
    await until(() => pool.stats.size === 1, 'stats.size back to 1');
    const survivors = pids.filter((pid) => !isGone(pid));
    expect(survivors).toHaveLength(1);
    expect(pool.stats.children.map((child) => child.pid)).toEqual(survivors);
    // A clock made of events: this child becomes idle after the survivor did, with
    // the same idleTimeout; once it has left, the survivor's timer has fired too.
    const clock = makePool({ minProcesses: 0, maxProcesses: 1, idleTimeout: 200 });
    const clockPid = (await clock.apply('pid')) as number;
    await until(() => isGone(clockPid), 'the clock child to leave after its idleTimeout');
    expect(clock.stats.size).toBe(0);
    expect(isGone(survivors[0]!)).toBe(false);
    expect(pool.stats.size).toBe(1);
    expect(await pool.apply('pid')).toBe(survivors[0]);
    await closeAndCheck(pool, clock);
  });

  it('idleTimeout with minProcesses 2: three children shrink back to two', async () => {
    const pool = makePool({ minProcesses: 2, maxProcesses: 3, idleTimeout: 200 });
    await pool.ready();
    // Two ready children take two calls; the third call waits and starts a third child.
    const calls = [gated(pool, 0), gated(pool, 1)];
    await until(() => started(0) && started(1), 'the first two calls to run');
    calls.push(gated(pool, 2));
    await until(() => started(2), 'the third call to run');
    expect(pool.stats.size).toBe(3);
    open();
    const pids = (await Promise.all(calls)).map((result) => result.pid);
    expect(new Set(pids).size).toBe(3);
    await until(() => pids.some((pid) => isGone(pid)), 'the extra child to leave');
    await until(() => pool.stats.size === 2, 'stats.size back to 2');
    expect(pids.filter((pid) => !isGone(pid))).toHaveLength(2);
    expect(await pool.map('double', [1, 2, 3, 4], { chunksize: 1 })).toEqual([2, 4, 6, 8]);
    await closeAndCheck(pool);
  });

  it('minProcesses 0: no child while idle; the first call starts one', async () => {
    const pool = makePool({ minProcesses: 0, maxProcesses: 2 });
    expect(pool.stats).toMatchObject({ processes: 2, size: 0, children: [] });
    await pool.ready();
    expect(pool.stats).toMatchObject({ size: 0, children: [] });
    const pid = (await pool.apply('pid')) as number;
    expect(pool.stats.size).toBe(1);
    expect(pool.stats.children.map((child) => child.pid)).toEqual([pid]);
    expect(await pool.apply('double', [21])).toBe(42);
    await closeAndCheck(pool);
  });

  it('minProcesses 0: a script that makes calls and never closes its pool exits by itself', async () => {
    await scriptExitsByItself('elastic');
  });
});

/** A parent script that makes calls and never closes its pool exits by itself, and its children with it. */
async function scriptExitsByItself(mode: 'elastic' | 'shared'): Promise<void> {
  const { code, stdout, stderr } = await runScript(parentScript, [mode]);
  expect(code, stderr).toBe(0);
  const out = JSON.parse(stdout) as { before: number; ran: number; doubled: number; children: number[] };
  expect(out).toMatchObject({ doubled: 42, children: [out.ran] });
  // The script and its children logged their starts; all are gone (a child once its parent left).
  await until(() => leftOver(log).length === 0, 'the children of the script to exit');
}

describe('maxQueue', () => {
  it('calls that fit wait; the one past the limit rejects at once with QueueFullError and nothing of it runs', async () => {
    const pool = makePool({ processes: 1, maxQueue: 2 });
    await pool.ready();
    const blocker = gated(pool, 'blocker');
    await until(() => started('blocker'), 'the blocker to run');
    expect(pool.stats.queued).toBe(0);
    const fits = [pool.apply('record', [dir, 'a']), pool.apply('record', [dir, 'b'])];
    expect(pool.stats.queued).toBe(2);
    const refused = pool.apply('record', [dir, 'c']);
    // The gate is closed, so nothing moves: a rejection now is a rejection at once.
    expect(await settledNow(refused)).toBe(true);
    const error = await refused.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(QueueFullError);
    expect(error).toMatchObject({ code: 'PROCPOOL_QUEUE_FULL', maxQueue: 2, queued: 2, items: 1 });
    // A batch is refused whole, with its own item count.
    const batch = pool.starmap('record', [[dir, 'm1'], [dir, 'm2']]);
    expect(await settledNow(batch)).toBe(true);
    await expect(batch).rejects.toMatchObject({ code: 'PROCPOOL_QUEUE_FULL', maxQueue: 2, queued: 2, items: 2 });
    expect(pool.stats.queued).toBe(2);
    open();
    await blocker;
    expect(await Promise.all(fits)).toEqual(['a', 'b']);
    expect(readLines(join(dir, 'ran'))).toEqual(['a', 'b']);
    await closeAndCheck(pool);
  });

  it('waitForRoom() waits while the queue is full, resolves once it drains, and the next call is admitted', async () => {
    const pool = makePool({ processes: 1, maxQueue: 2 });
    await pool.ready();
    const blocker = gated(pool, 'blocker');
    await until(() => started('blocker'), 'the blocker to run');
    const fits = [pool.apply('record', [dir, 'a']), pool.apply('record', [dir, 'b'])];
    expect(await settledNow(pool.waitForRoom(0))).toBe(true);
    const room = pool.waitForRoom();
    const roomFor2 = pool.waitForRoom(2);
    expect(await settledNow(room)).toBe(false);
    expect(await settledNow(roomFor2)).toBe(false);
    open();
    await room;
    // Room was made: a call now is admitted, not refused.
    const admitted = pool.apply('record', [dir, 'd']);
    await roomFor2;
    expect(await admitted).toBe('d');
    await blocker;
    expect(await Promise.all(fits)).toEqual(['a', 'b']);
    expect(readLines(join(dir, 'ran'))).toEqual(['a', 'b', 'd']);
    await closeAndCheck(pool);
  });

  it('waitForRoom() with no maxQueue resolves at once, however much waits', async () => {
    const pool = makePool({ processes: 1 });
    await pool.ready();
    const blocker = gated(pool, 'blocker');
    await until(() => started('blocker'), 'the blocker to run');
    const queued = Array.from({ length: 50 }, (_, i) => pool.apply('double', [i]));
    expect(pool.stats.queued).toBe(50);
    expect(await settledNow(pool.waitForRoom())).toBe(true);
    expect(await settledNow(pool.waitForRoom(1_000_000))).toBe(true);
    await expect(pool.waitForRoom(-1)).rejects.toBeInstanceOf(TypeError);
    await expect(pool.waitForRoom(1.5)).rejects.toBeInstanceOf(TypeError);
    open();
    await blocker;
    expect(await Promise.all(queued)).toEqual(Array.from({ length: 50 }, (_, i) => i * 2));
    await closeAndCheck(pool);
  });

  it('maxQueue 0 on a pool shrunk to no child: a call still starts one instead of being refused forever', async () => {
    const pool = makePool({ minProcesses: 0, maxProcesses: 1, idleTimeout: 200, maxQueue: 0 });
    await pool.ready();
    const first = await settle(pool.apply('pid'));
    // Shrunk to nothing: the child (if one ran the first call) has left.
    await until(() => pool.stats.size === 0 && leftOver(log).length === 0, 'the pool to have no child');
    const again = await settle(pool.apply('pid'));
    expect({ first, again }).toEqual({ first: { value: expect.any(Number) }, again: { value: expect.any(Number) } });
    await closeAndCheck(pool);
  });
});

describe('priorities', () => {
  it('a high-priority call queued behind a low-priority flood completes before any of it', async () => {
    const pool = makePool({ processes: 1 });
    await pool.ready();
    const { done, track } = completions();
    const blocker = gated(pool, 'blocker');
    await until(() => started('blocker'), 'the blocker to run');
    const lows = Array.from({ length: 20 }, (_, i) => `low${i}`);
    const flood = lows.map((name) => track(name, pool.apply('record', [dir, name], { priority: 0 })));
    const high = track('high', pool.apply('record', [dir, 'high'], { priority: 10 }));
    open();
    await Promise.all([blocker, high, ...flood]);
    // Equal priorities: first come, first served.
    expect(done).toEqual(['high', ...lows]);
    expect(readLines(join(dir, 'ran'))).toEqual(['high', ...lows]);
    await closeAndCheck(pool);
  });

  it('a low-priority flood delays a high-priority call by one running chunk at most', async () => {
    const pool = makePool({ processes: 1 });
    await pool.ready();
    const { done, track } = completions();
    const lows = Array.from({ length: 20 }, (_, i) => `low${i}`);
    const flood = lows.map((name) => track(name, gated(pool, name, 'open-lows', { priority: 0 })));
    await until(() => started('low0'), 'the first of the flood to run');
    const high = track('high', pool.apply('record', [dir, 'high'], { priority: 10 }));
    open('open-lows');
    await Promise.all([high, ...flood]);
    expect(done).toEqual(['low0', 'high', ...lows.slice(1)]);
    await closeAndCheck(pool);
  });

  it('higher priorities first, each priority first come first served (negative and fractional ones too)', async () => {
    const pool = makePool({ processes: 1 });
    await pool.ready();
    const { done, track } = completions();
    const blocker = gated(pool, 'blocker');
    await until(() => started('blocker'), 'the blocker to run');
    const calls: Array<[string, number]> = [
      ['a1', 1],
      ['b5', 5],
      ['c1', 1],
      ['d5', 5],
      ['e-2', -2],
      ['f2.5', 2.5],
      ['g5', 5],
      ['h-2', -2],
    ];
    const work = calls.map(([name, priority]) => track(name, pool.apply('record', [dir, name], { priority })));
    open();
    await Promise.all([blocker, ...work]);
    expect(done).toEqual(['b5', 'd5', 'g5', 'f2.5', 'a1', 'c1', 'e-2', 'h-2']);
    await closeAndCheck(pool);
  });

  it('an item that runs again after its child died keeps its call priority: it does not pass higher-priority work', async () => {
    const pool = makePool({ processes: 1 });
    await pool.ready();
    // Priority 0, one retry: killed once, it runs again.
    const retried = gated(pool, 'retried', 'open', { retries: 1, priority: 0 });
    await until(() => started('retried'), 'the retried call to run');
    const firstPid = Number(readFileSync(join(dir, 'started-retried'), 'utf8'));
    // Higher priority than the retried call (0.3 > 0): it should run first.
    const higher = pool.apply('record', [dir, 'higher'], { priority: 0.3 });
    rmSync(join(dir, 'started-retried'));
    process.kill(firstPid, 'SIGKILL');
    // Exactly one of the two runs next on the replacement; the retried call blocks it until the gate opens.
    await until(() => existsSync(join(dir, 'ran')) || started('retried'), 'the next call to run on the replacement');
    const ranFirst = existsSync(join(dir, 'ran')) ? 'higher' : 'retried';
    open();
    expect(await higher).toBe('higher');
    expect(await retried).toMatchObject({ name: 'retried' });
    expect(ranFirst).toBe('higher');
    await closeAndCheck(pool);
  });
});

describe('sharedPool', () => {
  it('same module and options: the same pool; other options: another; a larger maxProcesses grows it; a closed one is replaced', async () => {
    const options: PoolOptions = { maxProcesses: 2, ...logged() };
    const shared = sharedPool(tasks, options);
    // Equal options (not the same object), and the module as a string URL.
    expect(sharedPool(tasks, { maxProcesses: 2, ...logged() })).toBe(shared);
    expect(sharedPool(tasks.href, options)).toBe(shared);
    expect(shared.stats.processes).toBe(2);
    const other = sharedPool(tasks, { ...options, retries: 1 });
    expect(other).not.toBe(shared);
    const otherEnv = sharedPool(tasks, { ...options, env: childEnv(log, { EXTRA: '1' }) });
    expect(otherEnv).not.toBe(shared);
    expect(otherEnv).not.toBe(other);
    // Asking for more children grows the pool; asking for fewer never shrinks it.
    expect(sharedPool(tasks, { ...options, maxProcesses: 4 })).toBe(shared);
    expect(shared.stats.processes).toBe(4);
    expect(sharedPool(tasks, { ...options, maxProcesses: 1 })).toBe(shared);
    expect(shared.stats.processes).toBe(4);
    expect(await shared.map('double', [1, 2, 3], { chunksize: 1 })).toEqual([2, 4, 6]);
    // Terminated or closed: the next request gets a new pool.
    await shared.terminate();
    const fresh = sharedPool(tasks, options);
    expect(fresh).not.toBe(shared);
    expect(await fresh.apply('double', [3])).toBe(6);
    fresh.close();
    const third = sharedPool(tasks, options);
    expect(third).not.toBe(fresh);
    expect(await third.apply('double', [4])).toBe(8);
    await closeAndCheck(fresh, third, other, otherEnv);
  });

  it('without a size, a shared pool is elastic from 0: no child before the first call', async () => {
    const pool = sharedPool(tasks, logged());
    pools.push(pool);
    expect(pool.stats).toMatchObject({ size: 0, children: [] });
    expect(await pool.apply('double', [5])).toBe(10);
    expect(pool.stats.size).toBe(1);
    await closeAndCheck(pool);
  });

  it('a script that only uses sharedPool exits by itself when idle', async () => {
    await scriptExitsByItself('shared');
  });
});

describe('a long life', () => {
  it('100,000 calls through one pool: the parent heap stays flat and stats stays cheap', async () => {
    const pool = makePool({ processes: 2 });
    await pool.ready();
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const collect = (): number => {
      gc();
      gc();
      return process.memoryUsage().heapUsed;
    };
    let reads = 0;
    /**
     * `n` apply calls, 1,000 in flight at a time; `stats` read after each
     * call. Nothing runs inside the synchronous loop, so each read must see
     * its call: queued grows by exactly one per call once the two children
     * (kept fed at most 16 chunks deep) hold what they can take.
     */
    const run = async (n: number): Promise<void> => {
      for (let from = 0; from < n; from += 1000) {
        const batch: Array<Promise<unknown>> = [];
        let queued = pool.stats.queued;
        const completed = pool.stats.completed;
        for (let i = from; i < from + 1000; i++) {
          batch.push(pool.apply('double', [i]));
          const stats = pool.stats;
          if (stats.queued - queued === 1 || (stats.queued === 0 && i - from < 2 * 16)) reads++;
          if (stats.completed === completed) reads++;
          queued = stats.queued;
        }
        expect(queued).toBeGreaterThanOrEqual(1000 - 2 * 16);
        const results = (await Promise.all(batch)) as number[];
        expect(results[999]).toBe((from + 999) * 2);
      }
    };
    await run(10_000);
    const before = collect();
    await run(100_000);
    const after = collect();
    expect(reads).toBe(2 * 110_000);
    expect(pool.stats).toMatchObject({ completed: 110_000, failed: 0, queued: 0, size: 2 });
    expect((after - before) / 2 ** 20, `heap grew from ${before} to ${after} bytes`).toBeLessThan(16);
    await closeAndCheck(pool);
  });
});

describe('examples/server', () => {
  it('answers 200 with results, 503 with Retry-After past maxQueue, and exits 0 on SIGTERM', async () => {
    const server = spawn(process.execPath, ['--import', 'tsx', 'examples/server/server.ts'], {
      cwd: root,
      env: loggedProcessEnv({ PORT: '0', HOST: '127.0.0.1', MAX_QUEUE: '2', MAX_PROCESSES: '2' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    server.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
    server.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => server.on('exit', (code, signal) => resolve({ code, signal })));
    try {
      await until(() => stdout.includes('\n'), `the port on the first line of stdout (stderr: ${stderr})`);
      const port = Number(stdout.split('\n')[0]);
      expect(Number.isInteger(port) && port > 0, `first line ${JSON.stringify(stdout.split('\n')[0])}`).toBe(true);
      const get = async (path: string): Promise<{ status: number; body: Record<string, unknown>; retryAfter: string | null }> => {
        const response = await fetch(`http://127.0.0.1:${port}${path}`);
        return { status: response.status, body: (await response.json()) as Record<string, unknown>, retryAfter: response.headers.get('retry-after') };
      };
      for (const [n, primes] of [
        [0, 0],
        [10, 4],
        [1000, 168],
        [100_000, 9592],
      ] as const) {
        expect(await get(`/primes?n=${n}`)).toMatchObject({ status: 200, body: { n, primes } });
      }
      expect((await get('/primes?n=-1')).status).toBe(400);
      expect((await get('/nothing')).status).toBe(404);
      // A flood of slow requests: 2 children and 2 waiting at most, the rest are refused.
      const flood = await Promise.all(Array.from({ length: 16 }, () => get('/primes?n=2000000')));
      const ok = flood.filter((reply) => reply.status === 200);
      const busy = flood.filter((reply) => reply.status === 503);
      expect(ok.length + busy.length).toBe(16);
      expect(ok.length).toBeGreaterThanOrEqual(1);
      for (const reply of ok) expect(reply.body).toEqual({ n: 2_000_000, primes: 148_933 });
      expect(busy.length).toBeGreaterThanOrEqual(1);
      for (const reply of busy) expect(reply.retryAfter).toBe('1');
      // Still serving after the flood.
      expect(await get('/primes?n=1000')).toMatchObject({ status: 200, body: { primes: 168 } });
      server.kill('SIGTERM');
      const exit = await Promise.race([exited, sleep(20_000).then(() => 'still running after 20 s')]);
      expect(exit, stderr).toEqual({ code: 0, signal: null });
      expect(stdout).toContain('closed');
      await until(() => leftOver(log).length === 0, 'the server and its children to be gone');
    } finally {
      if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    }
  });
});
