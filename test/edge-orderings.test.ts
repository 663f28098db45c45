/**
 * Orderings at the engine's edges (issue 17), replayed with scripted fake
 * children: room for a call is one predicate read by admission,
 * `waitForRoom` and `stats.queued`, with a reservation taken before any
 * asynchronous step; `ready()` waits for the original children, not a
 * replacement; a replacement that cannot be spawned is retried with backoff
 * once the pool has had ready children, and only failures in a row break it.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PoolBrokenError, PoolClosedError, QueueFullError } from '../src/errors.js';
import type { ChildOutput, SpawnPort } from '../src/local/spawn.js';
import type { ResolvedPoolOptions } from '../src/options.js';
import { Pool } from '../src/pool.js';
import { addTasks, fakeModule, fakePool, FakeChild } from './fixtures/fake-child.js';
// @ts-expect-error -- a plain .mjs fixture, without types
import { double as doubleFn } from './fixtures/add.mjs';

vi.setConfig({ testTimeout: 5000 });
afterEach(() => void vi.useRealTimers());

const double = (x: number): number => x * 2;
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
async function turnsUntil(done: () => boolean, most = 50): Promise<void> {
  for (let i = 0; i < most && !done(); i++) await turn();
}
const fakeTimers = (): void => void vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });

function track<T>(promise: Promise<T>): { settled: boolean; value?: T; error?: unknown } {
  const state: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  promise.then(
    (value) => Object.assign(state, { settled: true, value }),
    (error: unknown) => Object.assign(state, { settled: true, error }),
  );
  return state;
}

describe('room: one predicate, a reservation at admission', () => {
  it('(4) maxQueue 1, the task passed as a function: of 6 calls in one tick, 1 runs, 1 waits, 4 are refused', async () => {
    const fp = fakePool({ processes: 1, maxQueue: 1 });
    const child = fp.children[0]!;
    child.ready();
    await turn();
    const promises = Array.from({ length: 6 }, (_, i) => fp.pool.apply(doubleFn as (x: number) => number, [i]));
    const calls = promises.map(track);
    await turnsUntil(() => calls.filter((call) => call.settled).length >= 4);
    const refused = calls.filter((call) => call.error instanceof QueueFullError);
    expect(refused).toHaveLength(4);
    // The two admitted are the first two, and they run.
    expect(calls.slice(0, 2).every((call) => !call.settled)).toBe(true);
    child.automate();
    expect(await Promise.all(promises.slice(0, 2))).toEqual([0, 2]);
  });

  it('(9) elastic 0..2, maxQueue 0: two applies at once both run (a spare child takes the second)', async () => {
    const fp = fakePool({ processes: undefined, minProcesses: 0, maxProcesses: 2, maxQueue: 0 }, addTasks);
    const first = track(fp.pool.apply('double', [1]));
    const second = track(fp.pool.apply('double', [2]));
    await turnsUntil(() => first.settled && second.settled, 200);
    expect(second.error).toBeUndefined();
    expect([first.value, second.value]).toEqual([2, 4]);
  });

  it('(10) maxQueue 0, the only child busy: waitForRoom() waits until a call would be admitted, and the next call is', async () => {
    const fp = fakePool({ processes: 1, maxQueue: 0 });
    const child = fp.children[0]!;
    child.ready();
    const busy = fp.pool.apply('double', [1]);
    const run = await child.nextRun();
    const room = track(fp.pool.waitForRoom());
    await turn();
    await turn();
    expect(room.settled).toBe(false);
    // What waitForRoom says is what admission does: a call now is refused.
    await expect(fp.pool.apply('double', [3])).rejects.toBeInstanceOf(QueueFullError);
    expect(fp.pool.stats.queued).toBe(0);
    child.answer(run, double);
    expect(await busy).toBe(2);
    await turnsUntil(() => room.settled);
    expect(room.settled).toBe(true);
    const next = fp.pool.apply('double', [5]);
    child.answer(await child.nextRun(), double);
    expect(await next).toBe(10);
  });

  it('stats.queued counts a call admitted to wait while its task name is looked up', async () => {
    const fp = fakePool({ processes: 1, maxQueue: 5 });
    const child = fp.children[0]!;
    child.ready();
    await turn();
    const running = fp.pool.apply('double', [1]);
    await child.nextRun();
    const waiting = fp.pool.map(doubleFn as (x: number) => number, [1, 2, 3], { chunksize: 1 });
    // Admitted and reserved before the name is known: it counts as queued now.
    expect(fp.pool.stats.queued).toBe(3);
    await expect(fp.pool.map('double', [1, 2, 3], { chunksize: 1 })).rejects.toBeInstanceOf(QueueFullError);
    child.automate();
    expect(await running).toBe(2);
    expect(await waiting).toEqual([2, 4, 6]);
    expect(fp.pool.stats.queued).toBe(0);
  });
});

describe('room: waitForRoom() is judged on whole steps, and settles once the pool takes no more work', () => {
  it('maxQueue 0, maxTasksPerChild 1: each waitForRoom() is followed by a call that is admitted (a retired child and its replacement judged together)', async () => {
    const fp = fakePool({ processes: 1, maxQueue: 0, maxTasksPerChild: 1 }, addTasks);
    const results: Array<Promise<number>> = [];
    for (let i = 0; i < 6; i++) {
      await fp.pool.waitForRoom();
      const call = fp.pool.apply('double', [i]) as Promise<number>;
      results.push(call);
      // A refusal settles in this turn or the next: catch it before the next wait.
      await turn();
      const state = track(call);
      await turn();
      expect(state.error).toBeUndefined();
    }
    expect(await Promise.all(results)).toEqual([0, 2, 4, 6, 8, 10]);
  });

  it('maxQueue 0, a chunk re-queued after its child died: waitForRoom() does not resolve while it waits (queued and running judged together)', async () => {
    const fp = fakePool({ processes: 1, maxQueue: 0, retries: 1 });
    const first = await fp.child(0);
    first.ready();
    const call = fp.pool.apply('double', [1]);
    await first.nextRun();
    const room = track(fp.pool.waitForRoom());
    // The child dies: its item is queued again for the replacement, which is starting.
    first.exit(1, null);
    const second = await fp.child(1);
    await turn();
    await turn();
    expect(room.settled).toBe(false);
    await expect(fp.pool.apply('double', [3])).rejects.toBeInstanceOf(QueueFullError);
    second.automate();
    expect(await call).toBe(2);
    await turnsUntil(() => room.settled);
    expect(room.settled).toBe(true);
  });

  it.each(['terminate', 'close'] as const)('maxQueue 0, the only child busy: a pending waitForRoom() resolves at %s(), and the next call says the pool is closed', async (how) => {
    const fp = fakePool({ processes: 1, maxQueue: 0 });
    const child = fp.children[0]!;
    child.ready();
    const busy = fp.pool.apply('double', [1]).catch((error: unknown) => error);
    await child.nextRun();
    const room = track(fp.pool.waitForRoom());
    await turn();
    expect(room.settled).toBe(false);
    // An automatic child dies of terminate's kill; with close() it stays busy until the end.
    if (how === 'terminate') {
      child.automate();
      void fp.pool.terminate();
    } else fp.pool.close();
    await turnsUntil(() => room.settled);
    expect(room.settled).toBe(true);
    expect(room.error).toBeUndefined();
    await expect(fp.pool.apply('double', [2])).rejects.toBeInstanceOf(PoolClosedError);
    child.automate();
    await busy;
    await fp.pool.terminate();
  });

  it('(5) maxQueue 0, a task measured fast (fed deep): a call behind a running one is refused, not left waiting in the pipe', async () => {
    const fp = fakePool({ processes: 1, maxQueue: 0 });
    const child = fp.children[0]!;
    child.ready();
    for (let i = 0; i < 8; i++) {
      const call = fp.pool.apply('double', [i]);
      child.answer(await child.nextRun(), double, { ms: 0.05 });
      expect(await call).toBe(2 * i);
    }
    const running = fp.pool.apply('double', [1]);
    const run = await child.nextRun();
    await turn();
    // The only child runs a chunk: a second would wait behind it, in its pipe.
    const room = track(fp.pool.waitForRoom());
    await expect(fp.pool.apply('double', [2])).rejects.toBeInstanceOf(QueueFullError);
    await turn();
    expect(room.settled).toBe(false);
    expect(child.runs).toHaveLength(9);
    child.answer(run, double, { ms: 0.05 });
    expect(await running).toBe(2);
    await turnsUntil(() => room.settled);
    expect(room.settled).toBe(true);
  });

  it('maxQueue 0: waitForRoom() after close() and join() resolves', async () => {
    const fp = fakePool({ processes: 1, maxQueue: 0 }, addTasks);
    expect(await fp.pool.apply('double', [1])).toBe(2);
    fp.pool.close();
    await fp.pool.join();
    const room = track(fp.pool.waitForRoom());
    await turnsUntil(() => room.settled);
    expect(room.settled).toBe(true);
    expect(room.error).toBeUndefined();
  });

  it('maxQueue 0: a pending waitForRoom() resolves when the pool breaks, and the next call says why', async () => {
    const fp = fakePool({ processes: 1, maxQueue: 0 });
    const child = fp.children[0]!;
    const busy = fp.pool.apply('double', [1]).catch((error: unknown) => error);
    const room = track(fp.pool.waitForRoom(2));
    await turn();
    expect(room.settled).toBe(false);
    child.initError(new Error('cannot load'));
    child.exit(1, null);
    await turnsUntil(() => room.settled);
    expect(room.settled).toBe(true);
    expect(room.error).toBeUndefined();
    expect(await busy).toBeInstanceOf(PoolBrokenError);
    await expect(fp.pool.apply('double', [2])).rejects.toBeInstanceOf(PoolBrokenError);
  });
});

describe('(14) ready() waits for the original children', () => {
  it('a replacement that is ready does not count for an original still in its initializer', async () => {
    const fp = fakePool({ processes: 2 });
    const [first, second] = [await fp.child(0), await fp.child(1)];
    const ready = track(fp.pool.ready());
    first.ready();
    // The first child dies while idle; its replacement starts in its slot and is ready.
    first.exit(1, null);
    const replacement = await fp.child(2);
    replacement.ready();
    await turn();
    await turn();
    expect(ready.settled).toBe(false);
    second.ready();
    await turnsUntil(() => ready.settled);
    expect(ready.settled).toBe(true);
    expect(ready.error).toBeUndefined();
  });
});

/** A fake whose spawn failed as a real one does (EAGAIN): no process, an exit with neither code nor signal. */
class SpawnFailed extends FakeChild {
  override readonly spawnError: Error | undefined = Object.assign(new Error('spawn EAGAIN'), { code: 'EAGAIN', errno: -11, syscall: 'spawn' });
}

/** A pool whose `n`-th spawns (by start order) fail when `fails(n)`. */
function spawnFailing(options: ConstructorParameters<typeof Pool>[1], fails: (index: number) => boolean): { pool: Pool; children: FakeChild[] } {
  const children: FakeChild[] = [];
  const spawn: SpawnPort = (_options: ResolvedPoolOptions, _output: ChildOutput) => {
    const child = fails(children.length) ? new SpawnFailed(addTasks) : new FakeChild(addTasks);
    children.push(child);
    // The real port emits its exit right after the spawn error.
    if (child.spawnError !== undefined) setImmediate(() => child.exit(null, null));
    return child;
  };
  return { pool: new Pool(fakeModule, { processes: 1, nodeOptions: [], ...options }, spawn), children };
}

describe('(16) starts: a replacement that cannot be spawned', () => {
  it('after ready children, one EAGAIN is retried with backoff: the pool serves on', async () => {
    fakeTimers();
    const { pool, children } = spawnFailing({ processes: 1, maxTasksPerChild: 1 }, (index) => index === 2);
    expect(await pool.apply('double', [1])).toBe(2);
    const second = pool.apply('double', [2]);
    expect(await second).toBe(4);
    // Child 2's spawn failed; a start again follows after a backoff.
    await turnsUntil(() => children[2]?.exited === true);
    const third = track(pool.apply('double', [3]));
    await vi.advanceTimersByTimeAsync(1000);
    await turnsUntil(() => third.settled);
    expect(third).toMatchObject({ settled: true, value: 6 });
    expect(pool.stats.size).toBe(1);
    await pool.terminate();
  });

  it('one burst of EAGAIN on 5 replacements at once (6 children recycled together): each slot retries, the pool serves on', async () => {
    fakeTimers();
    const { pool, children } = spawnFailing({ processes: 6, maxTasksPerChild: 1 }, (index) => index >= 6 && index < 11);
    await pool.ready();
    const items = [1, 2, 3, 4, 5, 6];
    expect(await pool.map('double', items, { chunksize: 1 })).toEqual([2, 4, 6, 8, 10, 12]);
    const next = track(pool.map('double', items, { chunksize: 1 }));
    for (let i = 0; i < 40 && !next.settled; i++) {
      await turn();
      await vi.advanceTimersByTimeAsync(200);
    }
    expect(children.filter((child) => child.spawnError !== undefined)).toHaveLength(5);
    expect(next.error).toBeUndefined();
    expect(next.value).toEqual([2, 4, 6, 8, 10, 12]);
    await pool.terminate();
  });

  it('a start backoff is unref\'d (a waiting call holds the program) and cleared by terminate()', async () => {
    fakeTimers();
    const timers: Array<{ delay: number | undefined; timer: { hasRef(): boolean } }> = [];
    const setTimer = globalThis.setTimeout;
    const spy = vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: () => void, delay?: number) => {
      const timer = setTimer(fn, delay);
      timers.push({ delay, timer: timer as unknown as { hasRef(): boolean } });
      return timer;
    }) as typeof setTimeout);
    const { pool, children } = spawnFailing({ processes: 1, maxTasksPerChild: 1 }, (index) => index === 1);
    expect(await pool.apply('double', [1])).toBe(2);
    await turnsUntil(() => children[1]?.exited === true);
    spy.mockRestore();
    const backoff = timers.find((entry) => entry.delay === 50);
    expect(backoff).toBeDefined();
    expect(backoff!.timer.hasRef()).toBe(false);
    const before = vi.getTimerCount();
    await pool.terminate();
    expect(vi.getTimerCount()).toBeLessThan(before);
    await vi.advanceTimersByTimeAsync(2000);
    expect(children).toHaveLength(2);
  });

  it('spawns that keep failing in a row break the pool, once', async () => {
    fakeTimers();
    const { pool, children } = spawnFailing({ processes: 1, maxTasksPerChild: 1 }, (index) => index >= 1);
    expect(await pool.apply('double', [1])).toBe(2);
    const next = track(pool.apply('double', [2]));
    for (let i = 0; i < 20 && !next.settled; i++) {
      await turn();
      await vi.advanceTimersByTimeAsync(1000);
    }
    expect(next.error).toBeInstanceOf(PoolBrokenError);
    expect((next.error as Error).message).toMatch(/EAGAIN/);
    expect(children.length).toBeGreaterThanOrEqual(5);
    expect(children.length).toBeLessThan(10);
  });

  it('a pool that never had a ready child breaks at the first spawn error (nothing to retry for)', async () => {
    const { pool } = spawnFailing({ processes: 1 }, () => true);
    await expect(pool.ready()).rejects.toBeInstanceOf(PoolBrokenError);
  });
});
