/**
 * Scenarios of the engine issue, on real child processes: one `describe`
 * per fault the rebuilt engine fixes (numbered as in the issue), then the
 * recycling guarantees as orders of events. No test counts on timing: each
 * waits for a condition with a generous bound, or reads the order in which
 * things happened from files the children write (starts, readies, exits,
 * items that ran). Every pool is closed and every child it started is
 * checked to be gone.
 */
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Pool, PoolBrokenError, PoolClosedError, SerializationError, WorkerExitError, type PoolOptions } from 'procpool';
import { deferred } from './fixtures/api-helpers.js';
import { childEnv, isGone, leftOver, logStarts, loggedPids, readLines, readPid, rejection, settled, sleep, tempDir, until } from './fixtures/fault-helpers.js';
import { drain, eventAt, lifeEvents, printedLines, readSlowly, within, type LifeEvent } from './fixtures/scenario-helpers.js';

const tasks = new URL('./fixtures/scenario-tasks.mjs', import.meta.url);
/** The same tasks behind a gate file ($SCENARIO_GATE): a child stays in its start while the file is missing. */
const gated = new URL('./fixtures/scenario-gated.mjs', import.meta.url);
/** Children log `start <pid>` and `exit <pid>` to $SCENARIO_EVENTS. */
const lifecycle = ['--import', new URL('./fixtures/scenario-lifecycle.mjs', import.meta.url).href];
const parentScript = fileURLToPath(new URL('./fixtures/scenario-parent.mjs', import.meta.url));
// The parent script runs from the package root, so that its `import 'procpool'` resolves to dist/.
const root = fileURLToPath(new URL('..', import.meta.url));
const TEST_MS = 30_000;
const MiB = 1024 * 1024;

class Stop extends Error {
  readonly code = 'E_STOP';
}

let dir = '';
const pools: Pool[] = [];
const startLog = (): string => join(dir, 'starts');

beforeEach(() => {
  dir = tempDir('procpool-scenario-');
});
afterEach(async () => {
  await Promise.all(pools.splice(0).map((pool) => pool.terminate()));
  // Whatever a failing test left behind (a parent script's children too).
  for (const pid of leftOver(startLog())) process.kill(pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** A pool of 2 (by default) on `module`, its child starts logged; `env` and `flags` add to the children's. */
function makePool(options: PoolOptions = {}, module: URL = tasks, env: Record<string, string> = {}, flags: string[] = []): Pool {
  const pool = new Pool(module, { processes: 2, nodeOptions: [...logStarts, ...flags], env: childEnv(startLog(), env), ...options });
  pools.push(pool);
  return pool;
}

/** close() + join(), bounded; then no child the pool ever started is left. */
async function closeAndCheckGone(pool: Pool, minStarts = 1): Promise<number[]> {
  // Replacements first become ready (and so have logged their starts): a child
  // stopped while it starts may leave before it logs itself.
  await until(() => pool.stats.idle === pool.stats.processes, 10_000);
  pool.close();
  await within(pool.join(), 20_000, 'join()');
  const pids = loggedPids(startLog());
  expect(pids.length).toBeGreaterThanOrEqual(minStarts);
  expect(leftOver(startLog())).toEqual([]);
  return pids;
}

function* range(from: number, to: number): Generator<number> {
  for (let i = from; i < to; i++) yield i;
}
const list = (from: number, to: number): number[] => [...range(from, to)];

describe('(1) map with a signal, apply, abort() in the same tick', () => {
  it.each([
    ['one ready child', 1, true],
    ['two ready children', 2, true],
    ['children still starting', 2, false],
  ])('the apply resolves (%s)', async (_name, processes, waitReady) => {
    const pool = makePool({ processes });
    if (waitReady) await pool.ready();
    const controller = new AbortController();
    const reason = new Stop('the map is stopped');
    const mapped = rejection(pool.map('sleepFor', [50, 50, 50, 50], { chunksize: 1, signal: controller.signal }));
    const applied = settled(pool.apply('double', [21]));
    controller.abort(reason);
    expect(await within(mapped, 10_000, 'the aborted map')).toBe(reason);
    expect(await within(applied, 10_000, 'the apply')).toEqual({ value: 42 });
    expect(await pool.apply('double', [1])).toBe(2);
    await closeAndCheckGone(pool);
  }, TEST_MS);

  it('the apply queued behind a running item of the aborted map resolves on the replacement', async () => {
    const pool = makePool({ processes: 1 });
    const controller = new AbortController();
    const reason = new Stop('the map is stopped');
    const mark = join(dir, 'mark');
    const mapped = rejection(pool.starmap('markThenWait', [[mark, join(dir, 'never')]], { signal: controller.signal }));
    const applied = settled(pool.apply('double', [21]));
    const running = await readPid(mark);
    controller.abort(reason);
    expect(await within(mapped, 10_000, 'the aborted map')).toBe(reason);
    expect(await within(applied, 10_000, 'the apply')).toEqual({ value: 42 });
    expect(await pool.apply('pid')).not.toBe(running);
    await closeAndCheckGone(pool, 2);
  }, TEST_MS);
});

describe('(2) imap over a source that waits for the consumer', () => {
  it.each([
    ['imap', true, undefined],
    ['imap, chunksize 8', true, 8],
    ['imapUnordered', false, undefined],
    ['imapUnordered, chunksize 8', false, 8],
  ])('%s: the next item comes only after the previous result was seen, and the loop completes', async (_name, ordered, chunksize) => {
    const pool = makePool();
    const n = 30;
    let seen = deferred();
    // Item i + 1 is produced only once the consumer has seen result i.
    async function* source(): AsyncGenerator<number> {
      for (let i = 0; i < n; i++) {
        if (i > 0) {
          await seen.promise;
          seen = deferred();
        }
        yield i;
      }
    }
    const options = chunksize === undefined ? {} : { chunksize };
    const iterator = ordered ? pool.imap('double', source(), options) : pool.imapUnordered('double', source(), options);
    const results: unknown[] = [];
    const loop = (async () => {
      for await (const value of iterator) {
        results.push(value);
        seen.resolve();
      }
    })();
    await within(loop, 20_000, 'the imap loop');
    expect(results).toEqual(list(0, n).map((i) => i * 2));
    await closeAndCheckGone(pool);
  }, TEST_MS);
});

describe('(3) initArgs that cannot be sent', () => {
  it.each([
    ['a SharedArrayBuffer', () => new SharedArrayBuffer(8)],
    ['a typed array on a SharedArrayBuffer', () => new Int32Array(new SharedArrayBuffer(8))],
    ['a Proxy', () => new Proxy({ a: 1 }, {})],
  ])('%s: new Pool throws a TypeError naming initArgs[0] at once', (_name, make) => {
    let error: unknown;
    try {
      makePool({ initializer: 'echo', initArgs: [make()] });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toContain('initArgs[0]');
  });

  it('a script whose new Pool throws for it exits by itself: no child, nothing hangs', async () => {
    const parent = spawn(process.execPath, [parentScript, 'bad-init-args'], { cwd: root, env: childEnv(startLog()), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    parent.stdout.on('data', (data: Buffer) => (output += data.toString()));
    parent.stderr.on('data', (data: Buffer) => (output += data.toString()));
    const exit = await within(new Promise((resolve) => parent.once('close', (code, signal) => resolve({ code, signal }))), 15_000, 'the script');
    expect(exit, output).toEqual({ code: 0, signal: null });
    expect(JSON.parse(output.split('\n')[0]!)).toMatchObject({ thrown: true, name: 'TypeError', message: expect.stringContaining('initArgs[0]') });
    expect(loggedPids(startLog())).toEqual([]);
  }, TEST_MS);
});

describe('(4) close() and join() with an imap iterator partly consumed and still referenced', () => {
  it('input read in full: join() resolves, then the iterator yields every result and ends', async () => {
    const pool = makePool();
    const iterator = pool.imap('double', list(0, 30), { chunksize: 10 });
    const head = [(await iterator.next()).value, (await iterator.next()).value, (await iterator.next()).value];
    pool.close();
    await within(pool.join(), 15_000, 'join() with a partly consumed imap');
    expect(leftOver(startLog())).toEqual([]);
    const rest = await drain(iterator);
    expect(rest.error).toBeUndefined();
    expect([...head, ...rest.values]).toEqual(list(0, 30).map((i) => i * 2));
  }, TEST_MS);

  it('input left: join() resolves, then the iterator yields what was computed and rejects with PoolClosedError', async () => {
    const pool = makePool();
    const iterator = pool.imap('double', range(0, 1000), { chunksize: 10 });
    const head = [(await iterator.next()).value, (await iterator.next()).value, (await iterator.next()).value];
    pool.close();
    await within(pool.join(), 15_000, 'join() with a partly consumed imap');
    expect(leftOver(startLog())).toEqual([]);
    const rest = await drain(iterator);
    const all = [...head, ...rest.values];
    expect(all).toEqual(list(0, all.length).map((i) => i * 2));
    expect(all.length).toBeLessThan(1000);
    expect(rest.error).toBeInstanceOf(PoolClosedError);
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
  }, TEST_MS);

  it('leaving `await using` with the iterator still referenced: the block exits, the iterator ends likewise', async () => {
    let iterator: AsyncIterableIterator<unknown> | undefined;
    const head: unknown[] = [];
    const block = async (): Promise<void> => {
      await using pool = makePool();
      iterator = pool.imap('double', range(0, 1000), { chunksize: 10 });
      head.push((await iterator.next()).value, (await iterator.next()).value);
    };
    await within(block(), 15_000, 'leaving the await using block');
    expect(leftOver(startLog())).toEqual([]);
    const rest = await drain(iterator!);
    const all = [...head, ...rest.values];
    expect(all).toEqual(list(0, all.length).map((i) => i * 2));
    expect(rest.error).toBeInstanceOf(PoolClosedError);
  }, TEST_MS);
});

describe('(5) an idle child killed from outside, then several calls at once', () => {
  it('no call rejects: each resolves (three rounds)', async () => {
    const pool = makePool();
    await pool.ready();
    for (let round = 1; round <= 3; round++) {
      expect(await until(() => pool.stats.idle === 2, 10_000)).toBe(true);
      const victim = pool.stats.children[0]!.pid!;
      process.kill(victim, 'SIGKILL');
      // Made in the same tick as the kill: the pool has not seen the death yet.
      const calls = [
        ...list(0, 6).map((i) => pool.apply('double', [i])),
        pool.map('double', list(0, 8), { chunksize: 1 }),
        pool.starmap('double', [[1], [2]]),
        (async () => {
          const out: unknown[] = [];
          for await (const value of pool.imap('double', list(0, 8), { chunksize: 1 })) out.push(value);
          return out;
        })(),
      ];
      const outcomes = await within(Promise.all(calls.map(settled)), 15_000, 'the calls');
      expect(outcomes).toEqual([
        ...list(0, 6).map((i) => ({ value: i * 2 })),
        { value: list(0, 8).map((i) => i * 2) },
        { value: [2, 4] },
        { value: list(0, 8).map((i) => i * 2) },
      ]);
      expect(await until(() => pool.stats.restarts >= round, 10_000)).toBe(true);
      expect(pool.stats.children.map((child) => child.pid)).not.toContain(victim);
    }
    // The last replacement logged its start (one stopped while starting may leave before it does).
    expect(await until(() => pool.stats.idle === 2, 10_000)).toBe(true);
    await closeAndCheckGone(pool, 5);
  }, TEST_MS);
});

describe('(6) a replacement child killed with SIGKILL while it starts', () => {
  it('the pool replaces it and goes on: the healthy child’s item resolves, nothing rejects with PoolBrokenError', async () => {
    const gate = join(dir, 'gate');
    writeFileSync(gate, '');
    const pool = makePool({ processes: 2 }, gated, { SCENARIO_GATE: gate });
    await within(pool.ready(), 15_000, 'ready()');
    const mark = join(dir, 'mark');
    const release = join(dir, 'release');
    const healthy = settled(pool.starmap('markThenWait', [[mark, release]]));
    const healthyPid = await readPid(mark);
    // From now on a starting child waits in its module's top-level code.
    rmSync(gate);
    expect(await rejection(pool.apply('exitNow', [3]))).toBeInstanceOf(WorkerExitError);
    // Its replacement starts (and logs its pid), then is stuck loading the module.
    expect(await until(() => loggedPids(startLog()).length === 3, 10_000)).toBe(true);
    const starting = loggedPids(startLog())[2]!;
    // Calls and ready() made while it starts.
    const calls = settled(pool.map('pid', list(0, 6), { chunksize: 1 }));
    const ready = settled(pool.ready());
    process.kill(starting, 'SIGKILL');
    // The pool starts another one (still behind the gate), then the gate opens.
    expect(await until(() => loggedPids(startLog()).length >= 4, 10_000)).toBe(true);
    writeFileSync(gate, '');
    writeFileSync(release, '');
    expect(await within(healthy, 15_000, 'the healthy child’s item')).toEqual({ value: [{ pid: healthyPid, released: true }] });
    const outcome = await within(calls, 15_000, 'the calls made while the replacement started');
    expect(outcome).not.toHaveProperty('error');
    expect((outcome as { error?: unknown }).error).not.toBeInstanceOf(PoolBrokenError);
    expect(await within(ready, 15_000, 'ready()')).toEqual({ value: undefined });
    expect(await pool.map('double', [1, 2, 3])).toEqual([2, 4, 6]);
    expect(await within(pool.ready(), 15_000, 'ready()')).toBeUndefined();
    expect(await pool.apply('double', [4])).toBe(8);
    expect(pool.stats.children.map((child) => child.pid)).not.toContain(starting);
    await closeAndCheckGone(pool, 4);
  }, TEST_MS);
});

describe('(7) the first failure stops the call at once', () => {
  const items = (file: string): Array<{ file: string; index: number; ms: number }> => list(0, 6).map((index) => ({ file, index, ms: 200 }));
  const rows: Array<[string, Record<string, number>]> = [
    ['', {}],
    [' with retries', { retries: 2 }],
    [' with timeout', { timeout: 10_000 }],
    [' with retries and timeout', { retries: 2, timeout: 10_000 }],
  ];

  it.each(rows)('map%s: rejects with item 0’s error; none of items 1–5 ran', async (_name, options) => {
    const pool = makePool();
    const file = join(dir, 'ran');
    const error = await within(rejection(pool.map('firstFails', items(file), { chunksize: 6, ...options })), 10_000, 'the map');
    expect(error).toMatchObject({ message: 'item 0 fails', code: 'E_ITEM0' });
    await closeAndCheckGone(pool);
    expect(readLines(file)).toEqual([]);
  }, TEST_MS);

  it.each(rows)('imap%s: throws item 0’s error first; none of items 1–5 ran', async (_name, options) => {
    const pool = makePool();
    const file = join(dir, 'ran');
    const out = await drain(pool.imap('firstFails', items(file), { chunksize: 6, ...options }));
    expect(out.values).toEqual([]);
    expect(out.error).toMatchObject({ message: 'item 0 fails', code: 'E_ITEM0' });
    await closeAndCheckGone(pool);
    expect(readLines(file)).toEqual([]);
  }, TEST_MS);
});

describe('(8) imap: a child dies mid-chunk', () => {
  const exited = { code: 'PROCPOOL_WORKER_EXIT', exitCode: 9, signal: null, reason: 'exit' };
  const killed = { code: 'PROCPOOL_WORKER_EXIT', exitCode: null, signal: 'SIGKILL', reason: 'signal' };
  it.each([
    ['item 2 calls process.exit', 'exitAt', {}, exited],
    ['item 2 calls process.exit, with timeout', 'exitAt', { timeout: 10_000 }, exited],
    ['item 2 SIGKILLs itself', 'killAt', {}, killed],
    ['item 2 SIGKILLs itself, with timeout', 'killAt', { timeout: 10_000 }, killed],
  ])('%s: yields 0 and 1, then throws WorkerExitError; no other item fails', async (_name, task, options, fields) => {
    const pool = makePool();
    const iterator = pool.imap(task, [0, 1, 2, 3], { chunksize: 4, ...options });
    const out = await drain(iterator);
    expect(out.values).toEqual([0, 1]);
    expect(out.error).toBeInstanceOf(WorkerExitError);
    expect(out.error).toMatchObject(fields);
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
    expect(pool.stats.failed).toBe(1);
    expect(await pool.map('double', [1, 2, 3])).toEqual([2, 4, 6]);
    await closeAndCheckGone(pool, 3);
  }, TEST_MS);

  it.each([
    [
      'a generator',
      (error: Error) =>
        (function* (): Generator<number> {
          yield* [0, 1, 2];
          throw error;
        })(),
    ],
    [
      'an async generator',
      (error: Error) =>
        (async function* (): AsyncGenerator<number> {
          yield* [0, 1, 2];
          throw error;
        })(),
    ],
  ])('input from %s that throws after 0, 1, 2: yields their results, then throws its error', async (_name, source) => {
    const pool = makePool();
    const error = new Stop('the input failed');
    const out = await drain(pool.imap('double', source(error), { chunksize: 4 }));
    expect(out.values).toEqual([0, 2, 4]);
    expect(out.error).toBe(error);
    await closeAndCheckGone(pool);
  }, TEST_MS);
});

describe('(9) imap yields nothing more after it stops', () => {
  /** An imap over many tiny items whose first result was taken, with thousands more computed and not consumed. */
  async function busyImap(pool: Pool, signal?: AbortSignal): Promise<AsyncIterableIterator<unknown>> {
    const iterator = pool.imap('double', range(0, 200_000), { chunksize: 5000, ...(signal ? { signal } : {}) });
    expect(await iterator.next()).toEqual({ done: false, value: 0 });
    expect(await until(() => pool.stats.completed >= 5000, 10_000)).toBe(true);
    return iterator;
  }

  it('after the signal is aborted: next() rejects with the reason, then the iterator is done', async () => {
    const pool = makePool();
    const controller = new AbortController();
    const iterator = await busyImap(pool, controller.signal);
    const reason = new Stop('enough');
    controller.abort(reason);
    expect(await within(rejection(iterator.next()), 10_000, 'next()')).toBe(reason);
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
    expect(await pool.apply('double', [2])).toBe(4);
    await closeAndCheckGone(pool);
  }, TEST_MS);

  it('a next() waiting when the signal is aborted rejects with the reason', async () => {
    const pool = makePool();
    const controller = new AbortController();
    const iterator = pool.imap('sleepFor', [60_000, 60_000], { signal: controller.signal });
    const pending = rejection(iterator.next());
    expect(await until(() => pool.stats.busy > 0, 10_000)).toBe(true);
    const reason = new Stop('enough');
    controller.abort(reason);
    expect(await within(pending, 10_000, 'next()')).toBe(reason);
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
    await closeAndCheckGone(pool);
  }, TEST_MS);

  it('after terminate(): next() rejects with PoolClosedError, then the iterator is done', async () => {
    const pool = makePool();
    const iterator = await busyImap(pool);
    await within(pool.terminate(), 10_000, 'terminate()');
    expect(await within(rejection(iterator.next()), 10_000, 'next()')).toBeInstanceOf(PoolClosedError);
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
    expect(leftOver(startLog())).toEqual([]);
  }, TEST_MS);

  it('after a failure: every result before it, the error, and nothing past it', async () => {
    const pool = makePool();
    const items = list(0, 20_000).map((i) => (i === 5000 ? -1 : i));
    const iterator = pool.imap('failIfNegative', items, { chunksize: 1000 });
    const out = await drain(iterator);
    expect(out.values.length).toBe(5000);
    expect(out.values).toEqual(list(0, 5000));
    expect(out.error).toBeInstanceOf(RangeError);
    expect(out.error).toMatchObject({ message: 'negative: -1' });
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
    await closeAndCheckGone(pool);
  }, TEST_MS);
});

describe('(10) values that cannot cross are refused with SerializationError', () => {
  class Secret {
    #value = 1;
    get value(): number {
      return this.#value;
    }
  }
  const refused: Array<[string, () => unknown]> = [
    ['URL', () => new URL('https://example.com/a?b=1')],
    ['AbortSignal', () => new AbortController().signal],
    ['Headers', () => new Headers({ accept: 'text/plain' })],
    ['#private', () => new Secret()],
  ];
  const serialization = (direction: 'args' | 'result', path: string): Record<string, unknown> => ({ code: 'PROCPOOL_SERIALIZATION', direction, path });

  it.each(refused)('%s as an argument of apply, map and imap', async (_name, make) => {
    const pool = makePool({ processes: 1 });
    for (const error of [
      await rejection(pool.apply('echo', [make()])),
      await rejection(pool.map('echo', [1, make()])),
      await rejection(pool.imap('echo', [make()]).next()),
    ]) {
      expect(error).toBeInstanceOf(SerializationError);
      expect(error).toMatchObject(serialization('args', 'args[0]'));
    }
    const nested = await rejection(pool.map('echo', [{ ok: 1, url: make() }]));
    expect(nested).toBeInstanceOf(SerializationError);
    expect(nested).toMatchObject(serialization('args', 'args[0].url'));
    expect(await pool.apply('double', [2])).toBe(4);
    expect(pool.stats.restarts).toBe(0);
    await closeAndCheckGone(pool);
  }, TEST_MS);

  it.each(refused)('%s as a task’s result', async (name) => {
    const pool = makePool({ processes: 1 });
    const error = await rejection(pool.apply('unsendable', [name]));
    expect(error).toBeInstanceOf(SerializationError);
    expect(error).toMatchObject(serialization('result', 'result'));
    const inMap = await rejection(pool.map('unsendable', [name]));
    expect(inMap).toMatchObject(serialization('result', 'result'));
    expect(await pool.apply('double', [2])).toBe(4);
    expect(pool.stats.restarts).toBe(0);
    await closeAndCheckGone(pool);
  }, TEST_MS);

  it('a URL deep in a result: the path names it', async () => {
    const pool = makePool({ processes: 1 });
    const error = await rejection(pool.apply('unsendable', ['nested URL']));
    expect(error).toBeInstanceOf(SerializationError);
    expect(error).toMatchObject(serialization('result', 'result.url'));
    await closeAndCheckGone(pool);
  }, TEST_MS);

  it.each([
    ['a SharedArrayBuffer', () => new SharedArrayBuffer(8)],
    ['a typed array on a SharedArrayBuffer', () => new Uint8Array(new SharedArrayBuffer(8))],
  ])('%s as an argument: a SerializationError with its code, not a plain Error', async (_name, make) => {
    const pool = makePool({ processes: 1 });
    for (const error of [await rejection(pool.apply('echo', [make()])), await rejection(pool.map('echo', [make()]))]) {
      expect(error).toBeInstanceOf(SerializationError);
      expect(error).toMatchObject(serialization('args', 'args[0]'));
    }
    expect(await pool.apply('double', [2])).toBe(4);
    await closeAndCheckGone(pool);
  }, TEST_MS);

  it('Map, Set, Date, BigInt and typed arrays still round-trip', async () => {
    const pool = makePool({ processes: 1 });
    const value = {
      map: new Map<unknown, unknown>([[1, 'a'], ['k', { deep: [1n] }]]),
      set: new Set([2n, 'b']),
      date: new Date(0),
      big: 2n ** 70n,
      f64: new Float64Array([0.5, -1]),
      u8: new Uint8Array([1, 2, 3]),
      i32: new Int32Array([-7]),
      buffer: new ArrayBuffer(4),
    };
    expect(await pool.apply('echo', [value])).toStrictEqual(value);
    expect(await pool.map('echo', [value, value.map, value.f64])).toStrictEqual([value, value.map, value.f64]);
    await closeAndCheckGone(pool);
  }, TEST_MS);
});

describe('(11) a child’s output is not truncated when it stops', () => {
  const count = 10_000; // 80 bytes a line: 800 KB

  it("stdio 'pipe': a slow consumer of pool.stdout receives all of the last task's output", async () => {
    const pool = makePool({ processes: 1, stdio: 'pipe' });
    const received = readSlowly(pool.stdout!, 10);
    expect(await pool.apply('echo', [1])).toBe(1);
    const printed = settled(pool.apply('printLines', [count]));
    pool.close();
    await within(pool.join(), 20_000, 'join()');
    expect(await printed).toEqual({ value: count * 80 });
    const text = (await within(received, 20_000, 'the end of pool.stdout')).toString();
    expect(text.length).toBe(count * 80);
    expect(text === printedLines(count)).toBe(true);
    expect(leftOver(startLog())).toEqual([]);
  }, TEST_MS);

  it("stdio 'pipe': a consumer that paused and comes back well after the child exited still receives all of it", async () => {
    const pool = makePool({ processes: 1, stdio: 'pipe' });
    // A consumer is there from the start, but paused (busy elsewhere). A stream
    // nobody ever reads counts as done once idle: it must not hold up join().
    pool.stdout!.pause();
    const pid = (await pool.apply('pid')) as number;
    // More than pool.stdout buffers (its two sides: 2 × the high-water mark, 16 KiB on Node 20,
    // 64 KiB from Node 22), so that the rest waits in the pipe from the child; less than that
    // pipe holds besides (~14 KiB more were seen to fit on Node 24), so that the child
    // finishes its write and exits while nothing is read.
    const lines = Math.ceil((2 * pool.stdout!.readableHighWaterMark + 8192) / 80);
    expect(await within(pool.apply('printLines', [lines]), 10_000, 'printLines')).toBe(lines * 80);
    pool.close();
    const joined = settled(pool.join());
    expect(await until(() => isGone(pid), 10_000)).toBe(true);
    // A consumer busy elsewhere for a while, longer than the pool's 2 s idle check on an
    // exited child's pipe. Not a window that anything is counted in: a loaded machine only
    // makes the consumer later, which the pool must bear anyway.
    await sleep(3000);
    const text = (await within(readSlowly(pool.stdout!, 0), 10_000, 'the end of pool.stdout')).toString();
    expect(await within(joined, 10_000, 'join()')).toEqual({ value: undefined });
    expect(text.length).toBe(lines * 80);
    expect(text === printedLines(lines)).toBe(true);
  }, TEST_MS);

  it("stdio 'inherit': a parent script's slow reader receives all of it", async () => {
    const parent = spawn(process.execPath, [parentScript, 'print', String(count)], { cwd: root, env: childEnv(startLog()), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    parent.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    const exit = new Promise((resolve) => parent.once('close', (code, signal) => resolve({ code, signal })));
    const text = (await within(readSlowly(parent.stdout, 10), 25_000, "the end of the script's stdout")).toString();
    expect(await within(exit, 10_000, 'the script')).toEqual({ code: 0, signal: null });
    expect(stderr).toContain(`printed ${count * 80}`);
    expect(text.length).toBe(count * 80);
    expect(text === printedLines(count)).toBe(true);
    expect(leftOver(startLog())).toEqual([]);
  }, TEST_MS);
});

/**
 * Recycling as an order of events: each child logs its start and exit
 * (scenario-lifecycle.mjs) and its readiness (the initializer), so that the
 * claim "the replacement is ready before its predecessor leaves" is read
 * from the log rather than sampled from `pool.stats`.
 */
describe('recycling, as an order of events', () => {
  const readyPids = (events: readonly LifeEvent[]): number[] => events.filter((event) => event.kind === 'ready').map((event) => event.pid);

  it('maxTasksPerChild: each child’s last item waits for its successor to be ready, then the child leaves', async () => {
    const events = join(dir, 'events');
    const pool = makePool({ processes: 1, maxTasksPerChild: 2, initializer: 'recordReady', initArgs: [events] }, tasks, { SCENARIO_EVENTS: events }, lifecycle);
    await pool.ready();
    // Child k (from 0) runs items 2k and 2k + 1; its last waits for k + 2 readies: its successor's.
    const args = [1, 2, 2, 3, 3, 4].map((n) => [events, n]);
    const results = (await within(pool.starmap('waitReadies', args, { chunksize: 1 }), 25_000, 'the starmap')) as Array<{ pid: number; saw: boolean }>;
    expect(results.map((result) => result.saw)).toEqual([true, true, true, true, true, true]);
    // Each child ran exactly its 2 items (a replacement may start, and so get ready, beside
    // another still starting: the order of readies is not the order of generations).
    const ran = results.map((result) => result.pid);
    const generations = [ran[0]!, ran[2]!, ran[4]!];
    expect(ran).toEqual([0, 0, 1, 1, 2, 2].map((k) => generations[k]));
    expect(new Set(generations).size).toBe(3);
    // One successor per child that reached its limit (3): 4 children in all.
    expect(readyPids(lifeEvents(events)), 'children started by a pool of 1 for 3 retirements').toHaveLength(4);
    const last = readyPids(lifeEvents(events)).find((pid) => !generations.includes(pid))!;
    // Capacity never dips: whenever one of them exits, another child is already ready and still there.
    expect(await until(() => generations.every((pid) => eventAt(lifeEvents(events), 'exit', pid) >= 0), 10_000)).toBe(true);
    const up = new Set<number>();
    for (const event of lifeEvents(events)) {
      if (event.kind === 'ready') up.add(event.pid);
      if (event.kind !== 'exit') continue;
      up.delete(event.pid);
      expect(up.size, `children ready when ${event.pid} exited`).toBeGreaterThanOrEqual(1);
    }
    expect(pool.stats.children.map((child) => child.pid)).toEqual([last]);
    expect(await pool.apply('pid')).toBe(last);
    await closeAndCheckGone(pool, 4);
  }, TEST_MS);

  /** A pool of 1 whose first child went past maxMemoryPerChild; its successor is held in its initializer until `gate` exists. */
  async function pastMemoryLimit(): Promise<{ pool: Pool; events: string; gate: string; first: number; successor: number }> {
    const events = join(dir, 'events');
    const gate = join(dir, 'gate');
    const limit = 100;
    const pool = makePool({ processes: 1, maxMemoryPerChild: limit, initializer: 'recordReady', initArgs: [events, gate] }, tasks, { SCENARIO_EVENTS: events }, lifecycle);
    await pool.ready();
    const first = (await pool.apply('pid')) as number;
    const over = (await pool.apply('leak', [limit + 60])) as { pid: number; rss: number };
    expect(over.pid).toBe(first);
    expect(over.rss).toBeGreaterThan(limit * MiB);
    // Its successor starts, and is held in its start.
    expect(await until(() => lifeEvents(events).filter((event) => event.kind === 'start').length === 2, 10_000)).toBe(true);
    const successor = lifeEvents(events).find((event) => event.kind === 'start' && event.pid !== first)!.pid;
    return { pool, events, gate, first, successor };
  }

  it('maxMemoryPerChild: the child past the limit leaves at once, before its replacement is ready; calls meanwhile wait and run on the replacement', async () => {
    const { pool, events, gate, first, successor } = await pastMemoryLimit();
    // The limit holds: the old child takes no more work and exits while its successor is still held in its start.
    expect(await until(() => eventAt(lifeEvents(events), 'exit', first) >= 0, 10_000)).toBe(true);
    expect(eventAt(lifeEvents(events), 'ready', successor)).toBe(-1);
    const calls = [pool.apply('pid'), pool.apply('pid')];
    writeFileSync(gate, '');
    expect(await within(Promise.all(calls), 10_000, 'the calls made while the replacement started')).toEqual([successor, successor]);
    await closeAndCheckGone(pool, 2);
  }, TEST_MS);

  it('maxMemoryPerChild: no item runs on a child after the one that crossed the limit', async () => {
    const events = join(dir, 'events');
    const pool = makePool({ processes: 1, maxMemoryPerChild: 100 }, tasks, { SCENARIO_EVENTS: events }, lifecycle);
    // 24 MiB kept per item from ~45 MiB: past 100 MiB at the third item of each child.
    const results = (await within(pool.map('leak', Array(10).fill(24), { chunksize: 4 }), 20_000, 'the map')) as Array<{ pid: number; rss: number }>;
    const byChild = new Map<number, Array<{ rss: number }>>();
    for (const result of results) byChild.set(result.pid, [...(byChild.get(result.pid) ?? []), result]);
    for (const items of byChild.values()) {
      const past = items.findIndex((item) => item.rss > 100 * MiB);
      if (past >= 0) expect(items.length - 1 - past, 'items after the crossing one').toBe(0);
    }
    expect(byChild.size).toBeGreaterThanOrEqual(2);
    await closeAndCheckGone(pool, byChild.size);
  }, TEST_MS);
});
