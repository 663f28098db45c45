/**
 * Orderings of child events the engine must get right, replayed with
 * scripted fake children (fixtures/fake-child.ts): each test drives one
 * ordering event by event, with no sleeps. Titles starting with (n) cover
 * the engine issue of that number.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PoolBrokenError, PoolClosedError, SerializationError, TaskTimeoutError, WorkerExitError } from '../src/errors.js';
import { settleEach } from '../src/internal.js';
import type { Pool } from '../src/pool.js';
import { addTasks, fakeModule, fakePool, wireError, type FakeChild } from './fixtures/fake-child.js';

vi.setConfig({ testTimeout: 5000 });
afterEach(() => void vi.useRealTimers());

const double = (x: number): number => x * 2;

/** One turn of the event loop: pending IPC-like callbacks (setImmediate) and every microtask before them. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Turns until `done()` holds; a bounded number, so a missed event fails fast instead of hanging. */
async function turnsUntil(done: () => boolean, most = 50): Promise<void> {
  for (let i = 0; i < most && !done(); i++) await turn();
}

/** Timers the engine arms (per-item timeouts, start backoff) under the test's control; setImmediate stays real. */
const fakeTimers = (): void => void vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/** A promise's outcome, readable without awaiting it (and never an unhandled rejection). */
function track<T>(promise: Promise<T>): { settled: boolean; value?: T; error?: unknown } {
  const state: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  promise.then(
    (value) => Object.assign(state, { settled: true, value }),
    (error: unknown) => Object.assign(state, { settled: true, error }),
  );
  return state;
}

function deferred<T = void>(): { promise: Promise<T>; resolve(value: T): void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** One fast chunk on `child`: chunks are then measured as tiny and each child is kept fed (depth 16). */
async function warm(pool: Pool, child: FakeChild): Promise<void> {
  const call = pool.apply('double', [0]);
  child.answer(await child.nextRun(), double, { ms: 0 });
  await call;
}

function expectExit(error: unknown, fields: Partial<WorkerExitError>): void {
  expect(error).toBeInstanceOf(WorkerExitError);
  expect(error).toMatchObject(fields);
}

describe('engine orderings (fake children)', () => {
  describe('(1) abort', () => {
    it('(1) map with a signal, then apply, then abort() in one tick: the apply settles with its result, nothing stays queued', async () => {
      const fp = fakePool();
      const child = fp.children[0]!;
      child.ready();
      const controller = new AbortController();
      const mapped = pool(fp).map('double', [1, 2, 3, 4], { signal: controller.signal, chunksize: 2 });
      const applied = pool(fp).apply('double', [5]);
      controller.abort();
      await expect(mapped).rejects.toMatchObject({ name: 'AbortError' });
      const first = await child.nextRun();
      expect(first.args).toEqual([1, 2]);
      // Sent but not started: skipped, never killed.
      expect(child.skips).toEqual([first.id]);
      expect(child.kills).toEqual([]);
      child.done(first.id, { skipped: true });
      const second = await child.nextRun();
      expect(second.args).toEqual([[5]]);
      child.answer(second, double);
      await expect(applied).resolves.toBe(10);
      expect(pool(fp).stats.queued).toBe(0);
      // The map's second chunk was never sent.
      expect(child.runs).toHaveLength(2);
    });

    it('(1) the same, when the child announces the aborted chunk before reading the skip: killed, and the apply runs on the replacement', async () => {
      const fp = fakePool();
      const child = fp.children[0]!;
      child.ready();
      const controller = new AbortController();
      const mapped = pool(fp).map('double', [1, 2, 3, 4], { signal: controller.signal, chunksize: 2 });
      const applied = pool(fp).apply('double', [5]);
      controller.abort();
      await expect(mapped).rejects.toMatchObject({ name: 'AbortError' });
      const first = await child.nextRun();
      child.start(first.id);
      expect(child.kills).toEqual(['SIGKILL']);
      child.exit(null, 'SIGKILL');
      const replacement = await fp.child(1);
      replacement.ready();
      replacement.answer(await replacement.nextRun(), double);
      await expect(applied).resolves.toBe(10);
      expect(pool(fp).stats.queued).toBe(0);
    });
  });

  describe('(5) deaths of idle children', () => {
    it('(5) a child exits while idle, then several calls at once: none is blamed; none waits for the replacement while the other child is ready', async () => {
      const fp = fakePool({ processes: 2 });
      const [a, b] = fp.children as [FakeChild, FakeChild];
      a.ready();
      b.ready();
      await turn();
      a.exit(1, null);
      const c = await fp.child(2);
      const calls = [1, 2, 3, 4].map((x) => pool(fp).apply('double', [x]));
      // The replacement never becomes ready here: every call must still end.
      b.automate();
      expect(await Promise.all(calls)).toEqual([2, 4, 6, 8]);
      expect(b.runs.length).toBe(4);
      expect(c.runs.length).toBe(0);
      expect(pool(fp).stats.failed).toBe(0);
    });

    it('(5) at start-up, with no child ready yet, calls wait in the starting children\'s pipes', async () => {
      const fp = fakePool({ processes: 2 });
      const [a, b] = fp.children as [FakeChild, FakeChild];
      const calls = [1, 2].map((x) => pool(fp).apply('double', [x]));
      await turn();
      expect(a.runs.length + b.runs.length).toBe(2);
      a.automate();
      b.automate();
      expect(await Promise.all(calls)).toEqual([2, 4]);
    });

    it('(5) a chunk sent to a child that dies before announcing its start is re-run elsewhere, never blamed', async () => {
      const fp = fakePool({ processes: 2 });
      const [a, b] = fp.children as [FakeChild, FakeChild];
      a.ready();
      b.ready();
      const calls = [1, 2].map((x) => pool(fp).apply('double', [x]));
      const lost = await a.nextRun();
      a.exit(1, null);
      const c = await fp.child(2);
      b.automate();
      c.automate();
      expect(await Promise.all(calls)).toEqual([2, 4]);
      // Run again where there was room first, the other child or the replacement.
      expect([...b.runs, ...c.runs].filter((run) => JSON.stringify(run.args) === JSON.stringify(lost.args))).toHaveLength(1);
      expect(pool(fp).stats.failed).toBe(0);
    });

    it('only an announced chunk is charged: A started, B queued behind it on the same child, exit code 3 → A fails, B runs on the replacement', async () => {
      const fp = fakePool();
      const child = fp.children[0]!;
      child.ready();
      await warm(pool(fp), child);
      const a = pool(fp).apply('double', [1]);
      const b = pool(fp).map('double', [2, 3], { chunksize: 2 });
      const runA = await child.nextRun();
      const runB = await child.nextRun();
      expect(runB.args).toEqual([2, 3]);
      child.start(runA.id);
      child.exit(3, null);
      expectExit(await caught(a), { exitCode: 3, signal: null, reason: 'exit', pid: child.pid });
      const replacement = await fp.child(1);
      expect((await replacement.nextRun()).args).toEqual([2, 3]);
      replacement.automate();
      await expect(b).resolves.toEqual([4, 6]);
    });
  });

  describe('(6) children that cannot start', () => {
    it('(6) a replacement killed by SIGKILL while starting is started again; the healthy child goes on; 5 in a row break the pool', async () => {
      fakeTimers();
      const fp = fakePool({ processes: 2 });
      const [a, b] = fp.children as [FakeChild, FakeChild];
      a.ready();
      b.ready();
      const running = pool(fp).apply('double', [21]);
      const run = await a.nextRun();
      a.start(run.id);
      b.exit(null, 'SIGKILL');
      for (let failures = 1; failures <= 4; failures++) {
        const starting = fp.children.at(-1)!;
        starting.exit(null, 'SIGKILL');
        await vi.advanceTimersByTimeAsync(1000);
        expect(fp.children).toHaveLength(3 + failures);
      }
      expect(pool(fp).stats.restarts).toBe(5);
      a.done(run.id, { values: [42] });
      await expect(running).resolves.toBe(42);
      await expect(pool(fp).ready()).resolves.toBeUndefined();
      fp.children.at(-1)!.exit(null, 'SIGKILL');
      await expect(pool(fp).apply('double', [1])).rejects.toBeInstanceOf(PoolBrokenError);
      await expect(pool(fp).ready()).rejects.toBeInstanceOf(PoolBrokenError);
      expect(a.kills).toEqual(['SIGKILL']);
      await vi.advanceTimersByTimeAsync(5000);
      expect(fp.children).toHaveLength(7);
    });

    it('(6) a chunk sent to a starting child killed by SIGKILL runs on the child started again: not blamed, not broken', async () => {
      fakeTimers();
      const fp = fakePool();
      const call = pool(fp).apply('double', [3]);
      const run = await fp.children[0]!.nextRun();
      fp.children[0]!.exit(null, 'SIGKILL');
      await vi.advanceTimersByTimeAsync(1000);
      const again = await fp.child(1);
      expect((await again.nextRun()).args).toEqual(run.args);
      again.automate();
      await expect(call).resolves.toBe(6);
      await expect(pool(fp).ready()).resolves.toBeUndefined();
    });

    it('(6) a start failure is forgotten once a child gets ready: failures must be in a row to break the pool', async () => {
      fakeTimers();
      const fp = fakePool();
      for (let round = 0; round < 3; round++) {
        for (let failure = 0; failure < 4; failure++) {
          fp.children.at(-1)!.exit(null, 'SIGKILL');
          await vi.advanceTimersByTimeAsync(1000);
        }
        fp.children.at(-1)!.ready();
        fp.children.at(-1)!.exit(1, null);
      }
      const last = fp.children.at(-1)!;
      last.automate();
      await expect(pool(fp).apply('double', [2])).resolves.toBe(4);
    });

    it('(6) an init-error before ready breaks the pool at once, and calls made before fail with it', async () => {
      const fp = fakePool({ processes: 2 });
      const [a, b] = fp.children as [FakeChild, FakeChild];
      const early = caught(pool(fp).apply('double', [1]));
      a.initError(new TypeError('initializer threw'));
      a.exit(1, null);
      const error = await caught(pool(fp).ready());
      expect(error).toBeInstanceOf(PoolBrokenError);
      expect((error as PoolBrokenError).message).toContain('initializer threw');
      expect((error as PoolBrokenError).cause).toBeInstanceOf(TypeError);
      expect(await early).toBe(error);
      expect(b.kills).toEqual(['SIGKILL']);
      expect(fp.children).toHaveLength(2);
    });

    it('(6) an init-error breaks the pool even when the child then dies by a signal', async () => {
      const fp = fakePool();
      fp.children[0]!.initError(new Error('no module'));
      fp.children[0]!.exit(null, 'SIGKILL');
      await expect(pool(fp).ready()).rejects.toBeInstanceOf(PoolBrokenError);
      expect(fp.children).toHaveLength(1);
    });

    it.each([
      ['null', null],
      ['undefined', undefined],
    ])('(6) abort (reason %s) of a chunk queued on a starting child sends a skip, not a kill, and does not break the pool', async (_name, reason) => {
      const fp = fakePool();
      const child = fp.children[0]!;
      const controller = new AbortController();
      const aborted = pool(fp).apply('double', [1], { signal: controller.signal });
      const run = await child.nextRun();
      controller.abort(reason);
      const error = await caught(aborted);
      if (reason === null) expect(error).toBeNull();
      else expect(error).toMatchObject({ name: 'AbortError' });
      expect(child.skips).toEqual([run.id]);
      expect(child.kills).toEqual([]);
      child.automate();
      await expect(pool(fp).ready()).resolves.toBeUndefined();
      await expect(pool(fp).apply('double', [2])).resolves.toBe(4);
      expect(child.runs).toHaveLength(2);
    });

    it.each([
      ['null', null],
      ['undefined', undefined],
    ])('(6) abort (reason %s) of a running chunk kills its child, which is replaced; the pool is not broken', async (_name, reason) => {
      const fp = fakePool();
      const child = fp.children[0]!;
      child.ready();
      const controller = new AbortController();
      const aborted = track(pool(fp).apply('double', [1], { signal: controller.signal }));
      child.start((await child.nextRun()).id);
      controller.abort(reason);
      expect(child.kills).toEqual(['SIGKILL']);
      child.exit(null, 'SIGKILL');
      await turn();
      expect(aborted.settled).toBe(true);
      expect(aborted.error ?? null).toSatisfy((error: unknown) => (reason === null ? error === null : error instanceof DOMException));
      const replacement = await fp.child(1);
      replacement.automate();
      await expect(pool(fp).apply('double', [2])).resolves.toBe(4);
    });
  });

  describe('(7) the first failure stops the call', () => {
    it('(7) map over 3 chunks on 1 child at depth 1: the first chunk fails → rejects at once, the other chunks are never sent, later calls work', async () => {
      const fp = fakePool();
      const child = fp.children[0]!;
      child.ready();
      const mapped = pool(fp).map('double', [1, 2, 3, 4, 5, 6], { chunksize: 2 });
      const first = await child.nextRun();
      child.start(first.id);
      // A chunk of 10 ms: the depth stays 1 (a faster one would raise it, and the next chunk could be sent, then skipped).
      child.done(first.id, { values: [2, undefined], failures: [[1, wireError(new RangeError('bad item'))]], ms: 10 });
      const error = await caught(mapped);
      expect(error).toBeInstanceOf(RangeError);
      expect((error as Error).message).toBe('bad item');
      await turn();
      expect(child.runs).toHaveLength(1);
      expect(pool(fp).stats.queued).toBe(0);
      const later = pool(fp).apply('double', [5]);
      child.answer(await child.nextRun(), double);
      await expect(later).resolves.toBe(10);
    });

    it('(7) at depth 16 the other chunks were sent: they get skip messages, no kill', async () => {
      const fp = fakePool();
      const child = fp.children[0]!;
      child.ready();
      await warm(pool(fp), child);
      const mapped = pool(fp).map('double', [1, 2, 3, 4, 5, 6], { chunksize: 2 });
      const [first, second, third] = [await child.nextRun(), await child.nextRun(), await child.nextRun()];
      child.start(first.id);
      child.done(first.id, { values: [undefined], failures: [[0, wireError(new Error('first fails'))]] });
      await expect(mapped).rejects.toThrow('first fails');
      await child.until(() => child.skips.length === 2);
      expect(child.skips).toEqual([second.id, third.id]);
      expect(child.kills).toEqual([]);
      child.done(second.id, { skipped: true });
      child.done(third.id, { skipped: true });
      const later = pool(fp).apply('double', [5]);
      child.answer(await child.nextRun(), double);
      await expect(later).resolves.toBe(10);
    });

    it('a skip that crosses the start of its chunk: the chunk runs on, nothing is killed or blamed', async () => {
      const fp = fakePool();
      const child = fp.children[0]!;
      child.ready();
      await warm(pool(fp), child);
      const mapped = pool(fp).map('double', [1, 2, 3, 4], { chunksize: 2 });
      const [first, second] = [await child.nextRun(), await child.nextRun()];
      child.start(first.id);
      child.done(first.id, { values: [undefined], failures: [[0, wireError(new Error('boom'))]] });
      await expect(mapped).rejects.toThrow('boom');
      await child.until(() => child.skips.includes(second.id));
      // The child had already started it when the skip came.
      child.start(second.id);
      child.done(second.id, { values: [6, 8] });
      expect(child.kills).toEqual([]);
      const later = pool(fp).apply('double', [5]);
      child.answer(await child.nextRun(), double);
      await expect(later).resolves.toBe(10);
      expect(pool(fp).stats.completed).toBe(4);
    });
  });

  describe('(8) imap failures', () => {
    it('(8) imap chunksize 4: items 0,1 reported, then exit code 9 → yields their results, then throws WorkerExitError', async () => {
      const fp = fakePool();
      const child = fp.children[0]!;
      child.ready();
      const seen: unknown[] = [];
      const loop = (async () => {
        for await (const value of pool(fp).imap('double', [0, 1, 2, 3], { chunksize: 4 })) seen.push(value);
      })();
      const run = await child.nextRun();
      expect(run.args).toEqual([0, 1, 2, 3]);
      child.start(run.id);
      child.items(run.id, 0, [0, 2]);
      child.exit(9, null);
      expectExit(await caught(loop), { exitCode: 9, reason: 'exit' });
      expect(seen).toEqual([0, 2]);
    });

    it('(8) imap over an input that throws after yielding 0,1,2 → yields their results, then throws the input error', async () => {
      const fp = fakePool({}, addTasks);
      function* source(): Generator<number> {
        yield 0;
        yield 1;
        yield 2;
        throw new Error('input broke');
      }
      const seen: unknown[] = [];
      const loop = (async () => {
        for await (const value of pool(fp).imap('double', source(), { chunksize: 4 })) seen.push(value);
      })();
      await expect(loop).rejects.toThrow('input broke');
      expect(seen).toEqual([0, 2, 4]);
    });
  });

  describe('(9) imap stopped from outside', () => {
    async function running(fp: ReturnType<typeof fakePool>, signal?: AbortSignal): Promise<{ it: AsyncIterableIterator<unknown>; child: FakeChild; last: number }> {
      const child = fp.children[0]!;
      child.ready();
      const it = pool(fp).imap('double', [0, 1, 2], { chunksize: 1, ...(signal ? { signal } : {}) });
      const first = it.next();
      child.answer(await child.nextRun(), double);
      expect(await first).toEqual({ value: 0, done: false });
      // Computed, not consumed yet.
      child.answer(await child.nextRun(), double);
      const last = await child.nextRun();
      child.start(last.id);
      return { it, child, last: last.id };
    }

    it('(9) after abort() nothing more is yielded, even a computed result or a report read later', async () => {
      const fp = fakePool();
      const controller = new AbortController();
      const { it, child, last } = await running(fp, controller.signal);
      controller.abort(new Error('stop'));
      await expect(it.next()).rejects.toThrow('stop');
      expect(child.kills).toEqual(['SIGKILL']);
      // The chunk's done is read before the kill's exit.
      child.done(last, { values: [4] });
      child.exit(null, 'SIGKILL');
      await turn();
      await expect(it.next()).resolves.toEqual({ done: true, value: undefined });
    });

    it('(9) after terminate() nothing more is yielded: PoolClosedError', async () => {
      const fp = fakePool();
      const { it, child, last } = await running(fp);
      const terminated = pool(fp).terminate();
      await expect(it.next()).rejects.toBeInstanceOf(PoolClosedError);
      child.done(last, { values: [4] });
      child.exit(null, 'SIGKILL');
      await terminated;
      await expect(it.next()).resolves.toEqual({ done: true, value: undefined });
    });

    it('terminate() in the same tick as an imap’s first next(): next() settles, with PoolClosedError', async () => {
      const fp = fakePool({}, addTasks);
      await pool(fp).ready();
      const it = pool(fp).imap('double', [1, 2, 3]);
      const first = track(it.next());
      await pool(fp).terminate();
      await turnsUntil(() => first.settled);
      expect(first.settled).toBe(true);
      expect(first.error).toBeInstanceOf(PoolClosedError);
    });

    it('terminate() while an apply naming its task by function is being resolved: the apply settles, with PoolClosedError', async () => {
      const fp = fakePool({}, addTasks);
      await pool(fp).ready();
      const mod = (await import(fakeModule)) as { double: (x: number) => number };
      const call = track(pool(fp).apply(mod.double, [1]));
      await pool(fp).terminate();
      // The lookup imports the module in this process: through vitest's module runner, many turns.
      await turnsUntil(() => call.settled, 20_000);
      expect(call.settled).toBe(true);
      expect(call.error).toBeInstanceOf(PoolClosedError);
    });
  });

  describe('(2) imap sources', () => {
    it.each([undefined, 1, 4])('(2) a source that yields its next item only after the consumer saw a result does not deadlock (chunksize %s)', async (chunksize) => {
      const fp = fakePool({}, addTasks);
      const gates = Array.from({ length: 5 }, () => deferred());
      async function* source(): AsyncGenerator<number> {
        for (let i = 0; i < 5; i++) {
          yield i;
          await gates[i]!.promise;
        }
      }
      const seen: unknown[] = [];
      for await (const value of pool(fp).imap('double', source(), { chunksize })) {
        seen.push(value);
        gates[seen.length - 1]!.resolve();
      }
      expect(seen).toEqual([0, 2, 4, 6, 8]);
    });

    it('(2) with a trickling source, a finished result is yielded before the next item arrives', async () => {
      const fp = fakePool();
      const child = fp.children[0]!;
      child.ready();
      const feeds = Array.from({ length: 3 }, () => deferred<IteratorResult<number>>());
      let asked = 0;
      const source: AsyncIterable<number> = { [Symbol.asyncIterator]: () => ({ next: () => feeds[asked++]!.promise }) };
      const it = pool(fp).imap('double', source, { chunksize: 8 });
      const first = it.next();
      feeds[0]!.resolve({ value: 1, done: false });
      // The source is silent: the one item read goes out alone.
      const run = await child.nextRun();
      expect(run.args).toEqual([1]);
      child.answer(run, double);
      await expect(first).resolves.toEqual({ value: 2, done: false });
      expect(asked).toBe(2);
      const second = it.next();
      feeds[1]!.resolve({ value: 2, done: false });
      child.answer(await child.nextRun(), double);
      await expect(second).resolves.toEqual({ value: 4, done: false });
      feeds[2]!.resolve({ value: undefined, done: true });
      await expect(it.next()).resolves.toEqual({ done: true, value: undefined });
    });
  });

  describe('(4) close() with an imap suspended at a yield', () => {
    it('(4) close() + join() resolve while it holds nothing in flight; then it yields its computed results and ends', async () => {
      const fp = fakePool({}, addTasks);
      const child = fp.children[0]!;
      const it = pool(fp).imap('double', [1, 2, 3], { chunksize: 3 });
      expect(await it.next()).toEqual({ value: 2, done: false });
      await turnsUntil(() => pool(fp).stats.busy === 0);
      // Suspended, still referenced, nothing in flight: it keeps no child referenced.
      expect(child.refed).toBe(false);
      pool(fp).close();
      await pool(fp).join();
      expect(child.exited).toBe(true);
      expect(await it.next()).toEqual({ value: 4, done: false });
      expect(await it.next()).toEqual({ value: 6, done: false });
      expect(await it.next()).toEqual({ done: true, value: undefined });
    });

    it('(4) with input left: close() + join() resolve, the computed results are yielded, then PoolClosedError; the input is closed', async () => {
      const fp = fakePool({}, addTasks);
      let closed = false;
      function* naturals(): Generator<number> {
        try {
          for (let i = 0; ; i++) yield i;
        } finally {
          closed = true;
        }
      }
      const it = pool(fp).imap('double', naturals(), { chunksize: 1 });
      expect(await it.next()).toEqual({ value: 0, done: false });
      // The read-ahead (2 chunks for 1 child) fills up and runs.
      await turnsUntil(() => fp.children[0]!.runs.length === 3 && pool(fp).stats.busy === 0);
      expect(fp.children[0]!.runs.map((run) => run.args)).toEqual([[0], [1], [2]]);
      pool(fp).close();
      await pool(fp).join();
      expect(await it.next()).toEqual({ value: 2, done: false });
      expect(await it.next()).toEqual({ value: 4, done: false });
      await expect(it.next()).rejects.toBeInstanceOf(PoolClosedError);
      expect(closed).toBe(true);
    });

    it('close() right after calls made while the children start: the calls run, then the children leave and join() resolves', async () => {
      const fp = fakePool({ processes: 2 }, addTasks);
      const calls = [pool(fp).map('double', [1, 2, 3], { chunksize: 1 }), pool(fp).apply('add', [1, 2])];
      pool(fp).close();
      await pool(fp).join();
      expect(await Promise.all(calls)).toEqual([[2, 4, 6], 3]);
      expect(fp.children.every((child) => child.exited && child.received.at(-1)?.type === 'procpool:stop')).toBe(true);
    });

    it('close() in the same tick as an imap’s first next(): next() settles, and join() resolves', async () => {
      const fp = fakePool({}, addTasks);
      await pool(fp).ready();
      const it = pool(fp).imap('double', [1, 2, 3]);
      const first = track(it.next());
      pool(fp).close();
      await pool(fp).join();
      await turnsUntil(() => first.settled);
      expect(first.settled).toBe(true);
    });
  });

  describe('timeouts', () => {
    it('a done read after the pool killed the child for a timeout (before its exit): the chunk resolves with its values, no TaskTimeoutError', async () => {
      fakeTimers();
      const fp = fakePool();
      const child = fp.children[0]!;
      child.ready();
      const call = pool(fp).apply('double', [1], { timeout: 100 });
      const run = await child.nextRun();
      child.start(run.id);
      await vi.advanceTimersByTimeAsync(100);
      await turn();
      expect(child.kills).toEqual(['SIGKILL']);
      child.done(run.id, { values: [2] });
      child.exit(null, 'SIGKILL');
      await expect(call).resolves.toBe(2);
      expect(pool(fp).stats.failed).toBe(0);
    });

    it('a timeout whose target finished first does not blame the chunk announced after it: that one re-runs, exactly', async () => {
      fakeTimers();
      const fp = fakePool();
      const child = fp.children[0]!;
      child.ready();
      await warm(pool(fp), child);
      const a = pool(fp).apply('double', [1], { timeout: 100 });
      const b = pool(fp).apply('double', [2]);
      const [runA, runB] = [await child.nextRun(), await child.nextRun()];
      child.start(runA.id);
      await vi.advanceTimersByTimeAsync(100);
      await turn();
      expect(child.kills).toEqual(['SIGKILL']);
      child.done(runA.id, { values: [2], next: runB.id });
      child.exit(null, 'SIGKILL');
      await expect(a).resolves.toBe(2);
      const replacement = await fp.child(1);
      const again = await replacement.nextRun();
      expect(again.args).toEqual([[2]]);
      expect(again.exact).toBe(true);
      replacement.ready();
      replacement.answer(again, double);
      await expect(b).resolves.toBe(4);
    });

    it('an items report re-arms the per-item timer; a kill with 2 items unreported charges nothing, the exact re-run charges the TaskTimeoutError', async () => {
      fakeTimers();
      const fp = fakePool();
      const first = fp.children[0]!;
      first.ready();
      const settled = pool(fp)[settleEach]('double', [1, 2, 3], { chunksize: 3, timeout: 100 }, { ordered: true, spread: false });
      const records: Array<{ index: number; ok: boolean; value?: unknown; error?: unknown }> = [];
      const loop = (async () => {
        for await (const record of settled) records.push(record);
      })();
      const run = await first.nextRun();
      first.start(run.id);
      await vi.advanceTimersByTimeAsync(60);
      first.items(run.id, 0, [2]);
      await vi.advanceTimersByTimeAsync(60);
      await turn();
      expect(first.kills).toEqual([]);
      await vi.advanceTimersByTimeAsync(40);
      await turn();
      expect(first.kills).toEqual(['SIGKILL']);
      first.exit(null, 'SIGKILL');
      // Items 1 and 2 unreported: which one ran past the limit is unknown.
      const second = await fp.child(1);
      const rest = await second.nextRun();
      expect(rest).toMatchObject({ args: [2, 3], exact: true });
      second.ready();
      second.start(rest.id);
      await vi.advanceTimersByTimeAsync(100);
      await turn();
      expect(second.kills).toEqual(['SIGKILL']);
      second.exit(null, 'SIGKILL');
      const third = await fp.child(2);
      expect((await third.nextRun()).args).toEqual([3]);
      third.automate();
      await loop;
      expect(records.map((record) => record.ok)).toEqual([true, false, true]);
      expect(records[1]!.error).toBeInstanceOf(TaskTimeoutError);
      expect(records[2]).toEqual({ index: 2, ok: true, value: 6 });
    });

    it('an abort kill whose target finished first does not blame the chunk announced after it', async () => {
      const fp = fakePool();
      const child = fp.children[0]!;
      child.ready();
      await warm(pool(fp), child);
      const controller = new AbortController();
      const a = pool(fp).apply('double', [1], { signal: controller.signal });
      const b = pool(fp).apply('double', [2]);
      const [runA, runB] = [await child.nextRun(), await child.nextRun()];
      child.start(runA.id);
      controller.abort(new Error('stop A'));
      await expect(a).rejects.toThrow('stop A');
      expect(child.kills).toEqual(['SIGKILL']);
      child.done(runA.id, { values: [2], next: runB.id });
      child.exit(null, 'SIGKILL');
      const replacement = await fp.child(1);
      replacement.automate();
      await expect(b).resolves.toBe(4);
    });

    it('an aborted chunk announced in a done’s next (the skip crossed it) is stopped by a kill', async () => {
      const fp = fakePool();
      const child = fp.children[0]!;
      child.ready();
      await warm(pool(fp), child);
      const controller = new AbortController();
      const a = pool(fp).apply('double', [1]);
      const b = pool(fp).apply('double', [2], { signal: controller.signal });
      const [runA, runB] = [await child.nextRun(), await child.nextRun()];
      child.start(runA.id);
      controller.abort(new Error('stop B'));
      await expect(b).rejects.toThrow('stop B');
      expect(child.skips).toEqual([runB.id]);
      expect(child.kills).toEqual([]);
      child.done(runA.id, { values: [2], next: runB.id });
      await expect(a).resolves.toBe(2);
      expect(child.kills).toEqual(['SIGKILL']);
      child.exit(null, 'SIGKILL');
      const replacement = await fp.child(1);
      replacement.automate();
      await expect(pool(fp).apply('double', [3])).resolves.toBe(6);
    });
  });

  describe('uncertain deaths and retries', () => {
    it('a SIGKILL with 7 items unreported charges nothing; the rest re-runs exactly; a second SIGKILL charges item 5', async () => {
      const fp = fakePool();
      const first = fp.children[0]!;
      first.ready();
      const items = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
      const mapped = pool(fp).map('double', items, { chunksize: 10 });
      const run = await first.nextRun();
      expect(run.exact).toBe(false);
      first.start(run.id);
      first.items(run.id, 0, [0, 2, 4]);
      first.exit(null, 'SIGKILL');
      const second = await fp.child(1);
      const rest = await second.nextRun();
      expect(rest.args).toEqual([3, 4, 5, 6, 7, 8, 9]);
      expect(rest.exact).toBe(true);
      expect(pool(fp).stats.failed).toBe(0);
      second.ready();
      second.start(rest.id);
      second.items(rest.id, 0, [6, 8]);
      second.exit(null, 'SIGKILL');
      expectExit(await caught(mapped), { signal: 'SIGKILL', reason: 'signal', exitCode: null, pid: second.pid });
      expect(pool(fp).stats).toMatchObject({ completed: 5, failed: 1 });
    });

    it('the same, item by item: only item 5 fails, the items after it run on the next child', async () => {
      const fp = fakePool();
      const first = fp.children[0]!;
      first.ready();
      const settled = pool(fp)[settleEach]('double', [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], { chunksize: 10 }, { ordered: true, spread: false });
      const records: Array<{ index: number; ok: boolean; value?: unknown; error?: unknown }> = [];
      const loop = (async () => {
        for await (const record of settled) records.push(record);
      })();
      const run = await first.nextRun();
      first.start(run.id);
      first.items(run.id, 0, [0, 2, 4]);
      first.exit(null, 'SIGKILL');
      const second = await fp.child(1);
      const rest = await second.nextRun();
      second.ready();
      second.start(rest.id);
      second.items(rest.id, 0, [6, 8]);
      second.exit(null, 'SIGKILL');
      const third = await fp.child(2);
      expect((await third.nextRun()).args).toEqual([6, 7, 8, 9]);
      third.automate();
      await loop;
      expect(records.map((record) => record.ok)).toEqual([true, true, true, true, true, false, true, true, true, true]);
      expectExit(records[5]!.error, { signal: 'SIGKILL', pid: second.pid });
      expect(records.filter((record) => record.ok).map((record) => record.value)).toEqual([0, 2, 4, 6, 8, 12, 14, 16, 18]);
    });

    it('retries: 1 — a charged death re-runs the item once on the next child; a second death rejects', async () => {
      const fp = fakePool({ retries: 1 });
      const first = fp.children[0]!;
      first.ready();
      const once = pool(fp).apply('double', [4]);
      first.start((await first.nextRun()).id);
      first.exit(3, null);
      const second = await fp.child(1);
      const again = await second.nextRun();
      expect(again.args).toEqual([[4]]);
      second.ready();
      second.answer(again, double);
      await expect(once).resolves.toBe(8);
      const twice = pool(fp).apply('double', [5]);
      second.start((await second.nextRun()).id);
      second.exit(3, null);
      const third = await fp.child(2);
      third.ready();
      third.start((await third.nextRun()).id);
      third.exit(4, null);
      expectExit(await caught(twice), { exitCode: 4, pid: third.pid });
    });
  });

  describe('child deaths, reasons', () => {
    it('a fatal message before the exit becomes the WorkerExitError’s cause', async () => {
      const fp = fakePool();
      const child = fp.children[0]!;
      child.ready();
      const call = pool(fp).apply('double', [1]);
      child.start((await child.nextRun()).id);
      child.fatal(new TypeError('late throw'));
      child.exit(1, null);
      const error = await caught(call);
      expectExit(error, { exitCode: 1, reason: 'exit' });
      expect((error as Error).cause).toBeInstanceOf(TypeError);
      expect(((error as Error).cause as Error).message).toBe('late throw');
    });

    it('a child that lets go of its channel (it says so first) is reason disconnect', async () => {
      const fp = fakePool();
      const child = fp.children[0]!;
      child.ready();
      const call = pool(fp).apply('double', [1]);
      child.start((await child.nextRun()).id);
      child.letGo();
      child.exit(75, null);
      expectExit(await caught(call), { exitCode: 75, reason: 'disconnect' });
    });

    it('a child that exits with 75 itself (the channel closes with the process) is reason exit', async () => {
      const fp = fakePool();
      const child = fp.children[0]!;
      child.ready();
      const call = pool(fp).apply('double', [1]);
      child.start((await child.nextRun()).id);
      child.disconnect();
      child.exit(75, null);
      expectExit(await caught(call), { exitCode: 75, reason: 'exit' });
    });

    it('a child whose channel closed but which does not exit is killed after a grace period, reason disconnect', async () => {
      fakeTimers();
      const fp = fakePool();
      const child = fp.children[0]!;
      child.ready();
      const call = pool(fp).apply('double', [1]);
      child.start((await child.nextRun()).id);
      child.disconnect();
      expect(child.kills).toEqual([]);
      await vi.advanceTimersByTimeAsync(1000);
      expect(child.kills).toEqual(['SIGKILL']);
      child.exit(null, 'SIGKILL');
      expectExit(await caught(call), { reason: 'disconnect', signal: 'SIGKILL' });
    });

    it('a child out of heap (stderr says so) is reason oom', async () => {
      const fp = fakePool();
      const child = fp.children[0]!;
      child.ready();
      const call = pool(fp).apply('double', [1]);
      child.start((await child.nextRun()).id);
      child.stderrTail = 'FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory';
      child.exit(null, 'SIGABRT');
      expectExit(await caught(call), { reason: 'oom', signal: 'SIGABRT' });
    });
  });

  describe('sending', () => {
    it('a run message the serializer refuses (a Proxy the walk lets through): that item rejects with SerializationError, others run', async () => {
      const fp = fakePool({}, addTasks);
      const child = fp.children[0]!;
      const proxy = new Proxy({ a: 1 }, {});
      const [one, bad, three] = await Promise.allSettled([pool(fp).apply('double', [1]), pool(fp).apply('double', [proxy as never]), pool(fp).apply('double', [3])]);
      expect(one).toEqual({ status: 'fulfilled', value: 2 });
      expect(three).toEqual({ status: 'fulfilled', value: 6 });
      expect(bad!.status).toBe('rejected');
      const error = (bad as PromiseRejectedResult).reason as SerializationError;
      expect(error).toBeInstanceOf(SerializationError);
      expect(error).toMatchObject({ direction: 'args', path: 'args[0]' });
      expect(child.refused).toHaveLength(1);
      expect(child.runs.map((run) => run.args)).toEqual([[[1]], [[3]]]);
    });

    it('in one chunk: the items before it run, it alone fails, the items after it run', async () => {
      const fp = fakePool({}, addTasks);
      const child = fp.children[0]!;
      const proxy = new Proxy({ a: 1 }, {});
      const records: Array<{ index: number; ok: boolean; value?: unknown; error?: unknown }> = [];
      for await (const record of pool(fp)[settleEach]('double', [1, 2, proxy, 4], { chunksize: 4 }, { ordered: true, spread: false })) records.push(record);
      expect(records.map((record) => record.ok)).toEqual([true, true, false, true]);
      expect(records[2]!.error).toBeInstanceOf(SerializationError);
      expect(records[2]!.error).toMatchObject({ path: 'args[0]' });
      expect(records[3]).toEqual({ index: 3, ok: true, value: 8 });
      expect(child.runs.map((run) => run.args)).toEqual([[1, 2], [4]]);
    });
  });

  describe('terminate() and close()', () => {
    it('terminate() while chunks are queued and running: every call rejects with PoolClosedError; join() resolves once the children exit', async () => {
      const fp = fakePool({ processes: 2 });
      const [a, b] = fp.children as [FakeChild, FakeChild];
      a.ready();
      b.ready();
      const mapped = pool(fp).map('double', [1, 2, 3, 4, 5, 6, 7, 8], { chunksize: 2 });
      const applied = pool(fp).apply('double', [9]);
      const it = pool(fp).imap('double', [1, 2, 3]);
      const first = it.next();
      const runA = await a.nextRun();
      await b.nextRun();
      a.start(runA.id);
      await turn();
      const terminated = track(pool(fp).terminate());
      for (const error of await Promise.all([mapped, applied, first].map((call) => caught(call)))) expect(error).toBeInstanceOf(PoolClosedError);
      expect(a.kills).toEqual(['SIGKILL']);
      expect(b.kills).toEqual(['SIGKILL']);
      expect(pool(fp).stats.queued).toBe(0);
      a.exit(null, 'SIGKILL');
      await turn();
      expect(terminated.settled).toBe(false);
      b.exit(null, 'SIGKILL');
      await pool(fp).join();
      expect(fp.children).toHaveLength(2);
      await expect(pool(fp).apply('double', [1])).rejects.toBeInstanceOf(PoolClosedError);
    });

    it('maxTasksPerChild cuts a chunk where the child reaches it: the rest runs on the one replacement, the old child leaves when asked', async () => {
      const fp = fakePool({ maxTasksPerChild: 2 });
      const old = fp.children[0]!;
      old.ready();
      const mapped = pool(fp).map('double', [1, 2, 3], { chunksize: 3 });
      const run = await old.nextRun();
      expect(run.args).toEqual([1, 2]);
      const replacement = await fp.child(1);
      old.answer(run, double);
      await old.waitFor('procpool:stop');
      old.exit(0, null);
      expect((await replacement.nextRun()).args).toEqual([3]);
      replacement.automate();
      await expect(mapped).resolves.toEqual([2, 4, 6]);
      expect(fp.children).toHaveLength(2);
    });

    it('maxMemoryPerChild: the child past the limit is stopped at once; its replacement killed while starting is started again; the slot ends with one child', async () => {
      fakeTimers();
      const fp = fakePool({ maxMemoryPerChild: 1 });
      const old = fp.children[0]!;
      old.ready();
      const first = pool(fp).apply('double', [1]);
      old.answer(await old.nextRun(), double, { rss: 2 * 1024 * 1024 });
      await expect(first).resolves.toBe(2);
      // No more work for it: it is told to leave before its replacement is ready.
      await old.waitFor('procpool:stop');
      const successor = await fp.child(1);
      expect(successor.isReady).toBe(false);
      old.exit(0, null);
      successor.exit(null, 'SIGKILL');
      await vi.advanceTimersByTimeAsync(1000);
      for (const child of fp.children) if (!child.exited) child.automate();
      for (let i = 0; i < 4; i++) await expect(pool(fp).apply('double', [i])).resolves.toBe(2 * i);
      const live = (): FakeChild[] => fp.children.filter((child) => !child.exited);
      expect(live()).toHaveLength(1);
      expect(fp.children).toHaveLength(3);
      expect(pool(fp).stats.children).toHaveLength(1);
    });

    it('refs: a starting child is referenced only while work waits for it, an idle one never, a busy one always', async () => {
      const fp = fakePool();
      const child = fp.children[0]!;
      expect(child.refed).toBe(false);
      const ready = pool(fp).ready();
      expect(child.refed).toBe(true);
      child.ready();
      await ready;
      await turn();
      expect(child.refed).toBe(false);
      const call = pool(fp).apply('double', [1]);
      expect(child.refed).toBe(true);
      child.answer(await child.nextRun(), double);
      await call;
      await turn();
      expect(child.refed).toBe(false);
    });
  });
});

/** The pool of a fake pool (keeps test lines short). */
function pool(fp: ReturnType<typeof fakePool>): Pool {
  return fp.pool;
}
