/**
 * Orderings at the engine's edges (issue 17), replayed with scripted fake
 * children: room for a call is one predicate read by admission,
 * `waitForRoom` and `stats.queued`, with a reservation taken before any
 * asynchronous step; `ready()` waits for the original children, not a
 * replacement; a replacement that cannot be spawned is retried with backoff
 * once the pool has had ready children, and only failures in a row break it.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PoolBrokenError, QueueFullError } from '../src/errors.js';
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
