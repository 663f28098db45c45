/**
 * The fault catalogue (issue 3): one row per injected failure, each with its
 * own timeout. Every row also checks that other items running at the same
 * time still resolve, that the pool serves calls afterwards, and that no
 * child process is left once the pool has closed.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Pool, PoolBrokenError, PoolClosedError, ResultTimeoutError, SerializationError, TaskTimeoutError, WorkerExitError, type PoolOptions } from 'procpool';
import { byPid, childEnv, collect, leftOver, logStarts, loggedPids, readLines, readPid, rejection, settled, tempDir, until } from './fixtures/fault-helpers.js';

const tasks = new URL('./fixtures/fault-tasks.mjs', import.meta.url);
const fixture = (name: string): URL => new URL(`./fixtures/${name}`, import.meta.url);
const EXIT = 'PROCPOOL_WORKER_EXIT';
const TIMEOUT = 'PROCPOOL_TASK_TIMEOUT';
const SERIAL = 'PROCPOOL_SERIALIZATION';
const ROW_MS = 15_000;

let dir = '';
const pools: Pool[] = [];
beforeEach(() => {
  dir = tempDir();
});
afterEach(async () => {
  await Promise.all(pools.splice(0).map((pool) => pool.terminate()));
  rmSync(dir, { recursive: true, force: true });
});

/** A pool of 2 (by default) whose child starts are logged in `dir/starts`. */
function makePool(options: PoolOptions = {}, flags: string[] = [], module: URL = tasks): Pool {
  const pool = new Pool(module, { processes: 2, nodeOptions: [...flags, ...logStarts], env: childEnv(join(dir, 'starts')), ...options });
  pools.push(pool);
  return pool;
}

/**
 * Closes the pool and checks that every child it ever started has exited.
 * (A child stopped while still starting may leave before it logs itself.)
 */
async function closeAndCheckGone(pool: Pool, minStarts = 1): Promise<number[]> {
  pool.close();
  await pool.join();
  const pids = loggedPids(join(dir, 'starts'));
  expect(pids.length).toBeGreaterThanOrEqual(minStarts);
  expect(leftOver(join(dir, 'starts'))).toEqual([]);
  return pids;
}

type Check = (error: unknown) => void;
type Call = (pool: Pool) => Promise<unknown>;
type ErrorClass = abstract new (...args: never[]) => unknown;

/** The error is a `cls` with `code` and `fields`. */
const is = (cls: ErrorClass, code: string | undefined, fields: Record<string, unknown> = {}): Check => (error) => {
  expect(error).toBeInstanceOf(cls);
  expect(error).toMatchObject(code === undefined ? fields : { code, ...fields });
};
/** A thrown non-Error comes back as the same value. */
const same = (value: unknown): Check => (error) => expect(error).toStrictEqual(value);

const anyPid = expect.any(Number);
/** An Error-like `cause` with `message`, thrown in `file` (when given). */
const cause = (message: string, file?: string): unknown => expect.objectContaining({ message, ...(file ? { stack: expect.stringContaining(file) } : {}) });
const died = { replaced: true };
class Stop extends Error {
  readonly code = 'E_STOP';
}

/** Starts `task` (it writes its pid to a file, then sleeps or spins) and, once it runs, does `act`; the call's error is checked by `expectOn`. */
async function whileRunning(pool: Pool, task: string, options: { signal?: AbortSignal }, act: (pid: number) => void, expectOn: (error: unknown, pid: number) => void): Promise<unknown> {
  const call = pool.apply(task, [join(dir, 'pid')], options);
  call.catch(() => undefined);
  const pid = await readPid(join(dir, 'pid'));
  act(pid);
  return call.catch((error: unknown) => {
    expectOn(error, pid);
    throw error;
  });
}
/** `kill -9` from outside; the error must name that pid. */
const killedFromOutside: Call = (pool) => whileRunning(pool, 'pidThenSleep', {}, (pid) => process.kill(pid, 'SIGKILL'), (error, pid) => expect(error).toMatchObject({ pid }));
/** Aborted while spinning in a synchronous loop; the call rejects with the signal's reason. */
const abortedWhileSpinning: Call = (pool) => {
  const controller = new AbortController();
  const reason = new Stop('stopped by the caller');
  return whileRunning(pool, 'pidThenSpin', { signal: controller.signal }, () => controller.abort(reason), (error) => expect(error).toBe(reason));
};

type Row = [name: string, call: Call, check: Check, how?: { replaced?: boolean; flags?: string[] }];

const rows: Row[] = [
  // A child that dies takes only its own item down and is replaced.
  ['process.exit(3) mid-item', (p) => p.apply('exitNow', [3]), is(WorkerExitError, EXIT, { pid: anyPid, exitCode: 3, signal: null, reason: 'exit' }), died],
  ['self-SIGKILL', (p) => p.apply('selfKill'), is(WorkerExitError, EXIT, { pid: anyPid, exitCode: null, signal: 'SIGKILL', reason: 'signal' }), died],
  ['external kill -9 of the child', killedFromOutside, is(WorkerExitError, EXIT, { signal: 'SIGKILL', reason: 'signal' }), died],
  ['uncaught exception later, in a setTimeout', (p) => p.apply('throwLater', ['boom']), is(WorkerExitError, EXIT, { exitCode: 1, reason: 'exit', cause: cause('boom', 'faults.mjs') }), died],
  ['uncaught exception in a timed (streamed) call', (p) => p.apply('throwLater', ['boom'], { timeout: 10_000 }), is(WorkerExitError, EXIT, { reason: 'exit', cause: cause('boom') }), died],
  ['process.exit(0) mid-item: not mistaken for a requested stop', (p) => p.apply('exitNow', [0]), is(WorkerExitError, EXIT, { exitCode: 0, signal: null, reason: 'exit' }), died],
  ['unhandled rejection', (p) => p.apply('rejectLater', ['nope']), is(WorkerExitError, EXIT, { reason: 'exit', cause: cause('nope', 'faults.mjs') }), died],
  ['out of heap (--max-old-space-size=48)', (p) => p.apply('hog'), is(WorkerExitError, EXIT, { pid: anyPid, reason: 'oom' }), { replaced: true, flags: ['--max-old-space-size=48'] }],
  ['process.disconnect()', (p) => p.apply('disconnect'), is(WorkerExitError, EXIT, { pid: anyPid, reason: 'disconnect' }), died],
  ['exit mid-chunk of a map', (p) => p.map('exitAt', [0, 1, 2, 3], { chunksize: 4 }), is(WorkerExitError, EXIT, { exitCode: 9, reason: 'exit' }), died],
  ['exit mid-chunk of an imap', (p) => collect(p.imap('exitAt', [0, 1, 2, 3], { chunksize: 4 })), is(WorkerExitError, EXIT, { exitCode: 9 }), died],
  // Timeouts and cancellation kill and replace the child.
  ['timeout stops a synchronous infinite loop', (p) => p.apply('spin', [], { timeout: 300 }), is(TaskTimeoutError, TIMEOUT, { timeout: 300 }), died],
  ['timeout stops an item that never settles', (p) => p.apply('sleep', [60_000], { timeout: 200 }), is(TaskTimeoutError, TIMEOUT, { timeout: 200 }), died],
  ['timeout of one item in a map chunk', (p) => p.map('sleep', [5, 60_000, 5], { timeout: 500, chunksize: 3 }), is(TaskTimeoutError, TIMEOUT, { timeout: 500 }), died],
  ['timeout in an imap', (p) => collect(p.imap('sleep', [5, 60_000], { timeout: 300 })), is(TaskTimeoutError, TIMEOUT, { timeout: 300 }), died],
  ['signal stops a synchronous infinite loop', abortedWhileSpinning, is(Stop, 'E_STOP'), died],
  // Errors cross intact, or at least as useful Errors; the child carries on.
  ['error whose toJSON throws', (p) => p.apply('toJSONThrows'), is(Error, 'E_TOJSON', { message: 'toJSON throws' })],
  ['error with a circular property', (p) => p.apply('circular'), is(Error, 'E_CIRCULAR', { message: 'circular', info: expect.objectContaining({ n: 1 }) })],
  ['error with a throwing getter', (p) => p.apply('getterThrows'), is(Error, undefined, { message: 'getter throws', stack: expect.stringContaining('fault-tasks.mjs') })],
  ['custom error: class, name, code, props, cause, child stack', (p) => p.apply('custom'), is(RangeError, 'E_MINE', { name: 'MyError', message: 'custom failure', details: { n: 1, list: [1, 2] }, cause: cause('root'), stack: expect.stringContaining('faults.mjs') })],
  [
    'AggregateError with a deep cause chain',
    (p) => p.apply('aggregate'),
    is(AggregateError, undefined, { message: 'many', errors: [expect.any(TypeError), expect.objectContaining({ message: 'second', code: 'E_2' })], cause: expect.objectContaining({ message: 'c1', cause: expect.objectContaining({ message: 'c2', cause: cause('c3') }) }) }),
  ],
  ["throw 'x'", (p) => p.apply('throwValue', ['x']), same('x')],
  ['throw null', (p) => p.apply('throwValue', [null]), same(null)],
  ['throw undefined', (p) => p.apply('throwValue', [undefined]), same(undefined)],
  ['throw { code: 1 }', (p) => p.apply('throwValue', [{ code: 1 }]), same({ code: 1 })],
  // What cannot cross is refused loudly; the child carries on.
  ['function in args', (p) => p.apply('echo', [{ cb: () => 1 }]), is(SerializationError, SERIAL, { direction: 'args', path: 'args[0].cb' })],
  ['symbol in args', (p) => p.apply('echo', [1, Symbol('s')]), is(SerializationError, SERIAL, { direction: 'args', path: 'args[1]' })],
  ['function deep in a map item', (p) => p.map('echo', [1, { list: [0, () => 1] }]), is(SerializationError, SERIAL, { direction: 'args', path: 'args[0].list[1]' })],
  ['function in a result', (p) => p.apply('returnFn'), is(SerializationError, SERIAL, { direction: 'result', path: 'result.handler' })],
  ['symbol as a result', (p) => p.apply('returnSymbol'), is(SerializationError, SERIAL, { direction: 'result', path: 'result' })],
  ['WeakMap in a result of a timed call', (p) => p.apply('returnWeakMap', [], { timeout: 10_000 }), is(SerializationError, SERIAL, { direction: 'result', path: 'result.w' })],
];

describe('fault catalogue', () => {
  it.each(rows)('%s', async (_name, call, check, how = {}) => {
    const pool = makePool({}, how.flags);
    // Other items sent before and after the failing one, on either child.
    const before = settled(pool.map('later', [1, 2, 3], { chunksize: 1 }));
    const failing = rejection(call(pool));
    const after = settled(pool.map('later', [4, 5, 6], { chunksize: 1 }));
    check(await failing);
    expect(await before).toEqual({ value: [1, 2, 3] });
    expect(await after).toEqual({ value: [4, 5, 6] });
    expect(await pool.map('later', [7, 8, 9], { chunksize: 1 })).toEqual([7, 8, 9]);
    if (how.replaced) expect(await until(() => pool.stats.restarts >= 1, 5000)).toBe(true);
    else expect(pool.stats.restarts).toBe(0);
    const pids = await closeAndCheckGone(pool);
    if (!how.replaced) expect(pids.length).toBeLessThanOrEqual(2);
  }, ROW_MS);

  it('an idle child killed from outside is replaced; nothing fails', async () => {
    const pool = makePool({ processes: 1 });
    process.kill((await pool.apply('pid')) as number, 'SIGKILL');
    expect(await until(() => pool.stats.restarts === 1, 5000)).toBe(true);
    expect(await pool.map('later', [1, 2, 3])).toEqual([1, 2, 3]);
    await closeAndCheckGone(pool);
  }, ROW_MS);

  it('a death after close(): the item rejects, queued work still runs, join() resolves', async () => {
    const pool = makePool({ processes: 1 });
    const dying = rejection(pool.apply('exitNow', [3]));
    const queued = pool.map('later', [1, 2, 3], { chunksize: 1 });
    pool.close();
    expect(await dying).toBeInstanceOf(WorkerExitError);
    expect(await queued).toEqual([1, 2, 3]);
    await closeAndCheckGone(pool);
  }, ROW_MS);

  it('Map, Set, Date, BigInt, typed arrays and Buffers round-trip', async () => {
    const pool = makePool({ processes: 1 });
    const value = { map: new Map([[1, 'a']]), set: new Set([2n]), date: new Date(0), big: 2n ** 70n, f64: new Float64Array([0.5]), buf: Buffer.from('hi') };
    expect(await pool.apply('echo', [value])).toStrictEqual(value);
    await closeAndCheckGone(pool, 1);
  }, ROW_MS);
});

/** [name, pool retries, call options, deaths per item, items that must still fail] */
type RetryRow = [name: string, poolRetries: number, options: Record<string, number>, deaths: number[], fails: boolean];
const retryRows: RetryRow[] = [
  ['pool-wide retries 2: an item dying twice succeeds', 2, {}, [2], false],
  ['pool-wide retries 2: an item dying 5 times rejects with the last WorkerExitError', 2, {}, [5], true],
  ['per-call retries 1 over pool-wide 0', 0, { retries: 1 }, [1], false],
  ['per-call retries 0 over pool-wide 3', 3, { retries: 0 }, [1], true],
  ['each item of a chunk has its own retries', 1, { chunksize: 2 }, [1, 1], false],
  ['retries in a timed (streamed) chunk', 1, { chunksize: 3, timeout: 10_000 }, [0, 1, 0], false],
];

describe('retries', () => {
  it.each(retryRows)('%s', async (_name, retries, options, deaths, fails) => {
    const pool = makePool({ retries });
    const files = deaths.map((_, i) => join(dir, `attempts-${i}`));
    // Others start after: the catalogue covers deaths beside other calls.
    const call = pool.starmap('dieTimes', files.map((file, i) => [file, deaths[i]]), options);
    const others = settled(pool.map('later', [1, 2, 3], { chunksize: 1 }));
    const attempts = (i: number): number => Number(readFileSync(files[i]!, 'utf8'));
    const allowed = (options.retries ?? retries) + 1;
    if (fails) {
      expect(await rejection(call)).toMatchObject({ code: EXIT, exitCode: 7, reason: 'exit' });
      expect(attempts(0)).toBe(allowed);
    } else {
      const values = (await call) as number[];
      // An item's value is the attempt that succeeded: past its deaths.
      deaths.forEach((n, i) => expect(values[i]).toBeGreaterThan(n));
    }
    expect(await others).toEqual({ value: [1, 2, 3] });
    expect(await pool.apply('later', [4])).toBe(4);
    await closeAndCheckGone(pool);
  }, ROW_MS);

  it('a task error is never retried', async () => {
    const pool = makePool({ retries: 3 });
    const file = join(dir, 'attempts');
    expect(await rejection(pool.apply('throwCounting', [file]))).toMatchObject({ name: 'Error', message: 'task error' });
    expect(readFileSync(file, 'utf8')).toBe('1');
    expect(pool.stats.restarts).toBe(0);
    await closeAndCheckGone(pool);
  }, ROW_MS);
});

/** [name, module, pool options, expected cause, expected in the stderr tail] */
type StartRow = [name: string, module: URL, options: PoolOptions, cause: unknown, stderr?: string];
const startRows: StartRow[] = [
  ['module throws on load', fixture('fault-throw-on-load.mjs'), {}, expect.objectContaining({ message: 'module refuses to load' }), 'fault-throw-on-load: about to throw'],
  ['module exits on load', fixture('fault-exit-on-load.mjs'), {}, undefined, 'fault-exit-on-load: exiting with 5'],
  ['missing module', fixture('fault-no-such-module.mjs'), {}, expect.objectContaining({ code: 'ERR_MODULE_NOT_FOUND' })],
  ['initializer missing', tasks, { initializer: 'noSuchInit' }, expect.objectContaining({ message: expect.stringContaining('noSuchInit') })],
  ['initializer throws', tasks, { initializer: 'initThrows', initArgs: ['bad init'] }, expect.objectContaining({ message: 'bad init' })],
];

/** Every way of calling rejects with PoolBrokenError. */
async function expectBroken(pool: Pool): Promise<void> {
  for (const call of [pool.apply('echo', [1]), pool.map('echo', [1, 2]), pool.imap('echo', [1]).next(), pool.applyAsync('echo', [1]).get()]) {
    expect(await rejection(call)).toBeInstanceOf(PoolBrokenError);
  }
}

describe('start-up failures break the pool once', () => {
  it.each(startRows)('%s', async (_name, module, options, cause, stderr) => {
    const pool = makePool(options, [], module);
    const early = rejection(pool.apply('echo', [1]));
    const error = await rejection(pool.ready());
    expect(error).toBeInstanceOf(PoolBrokenError);
    expect(error).toMatchObject({ code: 'PROCPOOL_BROKEN', stderr: expect.any(String) });
    if (cause !== undefined) expect((error as Error).cause).toEqual(cause);
    if (stderr !== undefined) expect((error as PoolBrokenError).stderr).toContain(stderr);
    expect(await early).toBeInstanceOf(PoolBrokenError);
    await expectBroken(pool);
    // Bounded starts, and no more of them later: never a respawn loop.
    const starts = loggedPids(join(dir, 'starts')).length;
    expect(starts).toBeGreaterThanOrEqual(1);
    expect(starts).toBeLessThanOrEqual(2);
    // Every child it started has exited (a respawn loop would keep one alive), and none came after.
    expect(await until(() => leftOver(join(dir, 'starts')).length === 0, 10_000)).toBe(true);
    expect(loggedPids(join(dir, 'starts'))).toHaveLength(starts);
    await expectBroken(pool);
    await pool.terminate();
    expect(leftOver(join(dir, 'starts'))).toEqual([]);
  }, ROW_MS);

  it('Pool.create rejects with PoolBrokenError', async () => {
    const error = await rejection(Pool.create(fixture('fault-throw-on-load.mjs'), { processes: 1, nodeOptions: [] }));
    expect(error).toBeInstanceOf(PoolBrokenError);
  }, ROW_MS);

  it('an initializer that keeps failing in replacements breaks the pool once, after 5 starts in a row (issue 17)', async () => {
    const pool = makePool({ processes: 1, initializer: 'initFailsAfter', initArgs: [join(dir, 'inits'), 1] });
    await pool.ready();
    expect(await rejection(pool.apply('exitNow', [3]))).toBeInstanceOf(WorkerExitError);
    expect(await rejection(pool.apply('echo', [1]))).toBeInstanceOf(PoolBrokenError);
    // The pool had run: a failed start is retried with backoff, 5 failures in a row break it.
    // Every child it started has exited (a respawn loop would keep one alive), and no more came.
    expect(await until(() => leftOver(join(dir, 'starts')).length === 0, 10_000)).toBe(true);
    expect(loggedPids(join(dir, 'starts'))).toHaveLength(1 + 5);
    await expectBroken(pool);
    await pool.terminate();
    expect(leftOver(join(dir, 'starts'))).toEqual([]);
  }, ROW_MS);
});

describe('cancellation and waiting', () => {
  it('queued items of an aborted call never start', async () => {
    const pool = makePool({ processes: 1 });
    const file = join(dir, 'started');
    const controller = new AbortController();
    const call = rejection(pool.starmap('recordThenSleep', [0, 1, 2, 3, 4].map((i) => [file, i, 300]), { chunksize: 1, signal: controller.signal }));
    expect(await until(() => readLines(file).length > 0, 10_000)).toBe(true);
    const reason = new Stop('enough');
    controller.abort(reason);
    expect(await call).toBe(reason);
    // The one child runs in order: queued items would have run before this one.
    expect(await pool.apply('later', ['after', 300])).toBe('after');
    expect(readLines(file)).toEqual(['0']);
    await closeAndCheckGone(pool, 1);
  }, ROW_MS);

  it('AsyncResult.get(timeout) only stops waiting', async () => {
    const pool = makePool();
    const result = pool.applyAsync('later', ['done', 500]);
    expect(await rejection(result.get(50))).toBeInstanceOf(ResultTimeoutError);
    expect(await rejection(result.get(50))).toMatchObject({ code: 'PROCPOOL_RESULT_TIMEOUT' });
    expect(result.ready()).toBe(false);
    expect(await result.get()).toBe('done');
    expect(pool.stats.restarts).toBe(0);
    expect((await closeAndCheckGone(pool)).length).toBeLessThanOrEqual(2);
  }, ROW_MS);

  it('terminate() stops a spinning item and queued ones: PoolClosedError, no child left', async () => {
    const pool = makePool({ processes: 1 });
    const spinning = rejection(pool.apply('pidThenSpin', [join(dir, 'pid')]));
    const queued = rejection(pool.map('later', [1, 2]));
    await readPid(join(dir, 'pid'));
    await pool.terminate();
    expect(await spinning).toBeInstanceOf(PoolClosedError);
    expect(await queued).toBeInstanceOf(PoolClosedError);
    expect(leftOver(join(dir, 'starts'))).toEqual([]);
  }, ROW_MS);
});

describe('recycling', () => {
  it('maxTasksPerChild counts items, not chunks', async () => {
    const pool = makePool({ maxTasksPerChild: 3 });
    const pids = (await pool.map('pidAfter', Array(12).fill(5), { chunksize: 4 })) as number[];
    for (const items of byPid(pids.map((pid) => ({ pid })))) expect(items.length).toBeLessThanOrEqual(3);
    expect(pool.stats.restarts).toBeGreaterThanOrEqual(2);
    expect(await pool.apply('later', [1])).toBe(1);
    await closeAndCheckGone(pool, 4);
  }, ROW_MS);

  // "Capacity never dips" for maxTasksPerChild is checked as an order of events in scenarios.test.ts.

  // A child grows by 24 MiB per item from ~45 MiB: past 100 MiB after its third item.
  const limit = 100;
  it.each([1, 4])('maxMemoryPerChild is checked after each item (chunksize %i)', async (chunksize) => {
    const pool = makePool({ processes: 1, maxMemoryPerChild: limit });
    const results = (await pool.map('leak', Array(8).fill(24), { chunksize })) as Array<{ pid: number; rss: number }>;
    for (const items of byPid(results)) {
      // Past the limit, a child takes no more work: the item that crossed it is its last.
      const past = items.findIndex((item) => item.rss > limit * 2 ** 20);
      if (past >= 0) expect(items.length - 1 - past).toBe(0);
    }
    expect(pool.stats.restarts).toBeGreaterThanOrEqual(1);
    // Once the replacement is ready, work runs on it, not on a child past the limit.
    const over = new Set(results.filter((item) => item.rss > limit * 2 ** 20).map((item) => item.pid));
    expect(await until(() => pool.stats.children.every((child) => !over.has(child.pid!)) && pool.stats.idle === 1, 5000)).toBe(true);
    const later = (await pool.apply('leak', [0])) as { pid: number; rss: number };
    expect(over.has(later.pid)).toBe(false);
    await closeAndCheckGone(pool, 2);
  }, ROW_MS);

});
