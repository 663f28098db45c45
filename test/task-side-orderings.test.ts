// procpool/task orderings, on scripted fake children: messages before the
// result; abort, then the grace, then the kill.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TaskTimeoutError } from '../src/errors.js';
import { fakePool } from './fixtures/fake-child.js';

afterEach(() => void vi.useRealTimers());

/** A promise's outcome, readable without awaiting it. */
function track<T>(promise: Promise<T>): { settled: boolean; value?: T; error?: unknown } {
  const state: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  promise.then(
    (value) => Object.assign(state, { settled: true, value }),
    (error: unknown) => Object.assign(state, { settled: true, error }),
  );
  return state;
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('procpool/task orderings (fake children)', () => {
  it('imap: an item’s messages reach onMessage before its result is yielded, with the index in the call', async () => {
    const fp = fakePool({ processes: 1 });
    const child = fp.children[0]!;
    child.ready();
    const log: string[] = [];
    const iterator = fp.pool.imap('double', [1, 2, 3], { chunksize: 3, onMessage: (value: string, info) => void log.push(`message ${info.index} ${value} w${info.workerId}`) });
    const first = iterator.next();
    const run = await child.nextRun();
    child.start(run.id);
    child.message(run.id, 0, 'a');
    child.items(run.id, 0, [2]);
    child.message(run.id, 1, 'b');
    child.message(run.id, 1, 'c');
    child.done(run.id, { values: [4, 6] });
    log.push(`result ${String((await first).value)}`);
    for await (const value of iterator) log.push(`result ${String(value)}`);
    expect(log).toEqual(['message 0 a w1', 'message 1 b w1', 'message 1 c w1', 'result 2', 'result 4', 'result 6']);
  });

  it('a message of a later chunk carries the item’s index in the call, not in its chunk', async () => {
    const fp = fakePool({ processes: 1 });
    const child = fp.children[0]!;
    child.ready();
    const seen: Array<[unknown, number]> = [];
    const call = fp.pool.map('double', [1, 2, 3, 4], { chunksize: 2, onMessage: (value: unknown, info) => void seen.push([value, info.index]) });
    child.answer(await child.nextRun(), (x: number) => x * 2);
    const second = await child.nextRun();
    child.start(second.id);
    child.message(second.id, 1, 'x');
    child.done(second.id, { values: [6, 8] });
    expect(await call).toEqual([2, 4, 6, 8]);
    expect(seen).toEqual([['x', 3]]);
  });

  it('abort of an item that holds its signal: the call rejects at once, the child is asked to abort, and killed only after killGrace', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const fp = fakePool({ processes: 1, killGrace: 500 });
    const child = fp.children[0]!;
    child.ready();
    const controller = new AbortController();
    const call = track(fp.pool.apply('double', [1], { signal: controller.signal }));
    const run = await child.nextRun();
    child.start(run.id);
    child.listening(run.id, 0);
    controller.abort(new Error('stop'));
    await turn();
    expect(call.settled).toBe(true);
    expect((call.error as Error).message).toBe('stop');
    expect(await child.waitFor('procpool:abort')).toMatchObject({ id: run.id, why: 'signal' });
    expect(child.kills).toEqual([]);
    vi.advanceTimersByTime(499);
    expect(child.kills).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(child.kills).toEqual(['SIGKILL']);
  });

  it('abort, then the item ends within the grace: no kill, the child takes the next chunk', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const fp = fakePool({ processes: 1, killGrace: 500 });
    const child = fp.children[0]!;
    child.ready();
    const controller = new AbortController();
    const call = track(fp.pool.apply('double', [1], { signal: controller.signal }));
    const run = await child.nextRun();
    child.start(run.id);
    child.listening(run.id, 0);
    controller.abort(new Error('stop'));
    await child.waitFor('procpool:abort');
    child.done(run.id, { values: [2] });
    vi.advanceTimersByTime(1000);
    expect(child.kills).toEqual([]);
    expect((call.error as Error).message).toBe('stop');
    const next = track(fp.pool.apply('double', [5]));
    child.answer(await child.nextRun(), (x: number) => x * 2);
    await turn();
    expect(next.value).toBe(10);
    expect(fp.children).toHaveLength(1);
  });

  it('a timeout of an item that holds its signal: TaskTimeoutError at once, then abort, then the kill after the grace', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const fp = fakePool({ processes: 1, killGrace: 500 });
    const child = fp.children[0]!;
    child.ready();
    const call = track(fp.pool.apply('double', [1], { timeout: 100 }));
    const run = await child.nextRun();
    child.start(run.id);
    child.listening(run.id, 0);
    vi.advanceTimersByTime(100);
    await turn();
    await turn();
    expect(call.error).toBeInstanceOf(TaskTimeoutError);
    expect(await child.waitFor('procpool:abort')).toMatchObject({ id: run.id, why: 'timeout' });
    expect(child.kills).toEqual([]);
    vi.advanceTimersByTime(500);
    expect(child.kills).toEqual(['SIGKILL']);
  });

  it('an item that never asked for its signal is killed at once, as before the grace existed', async () => {
    const fp = fakePool({ processes: 1, killGrace: 60_000 });
    const child = fp.children[0]!;
    child.ready();
    const controller = new AbortController();
    const call = track(fp.pool.apply('double', [1], { signal: controller.signal }));
    const run = await child.nextRun();
    child.start(run.id);
    controller.abort(new Error('stop'));
    await turn();
    expect(call.settled).toBe(true);
    expect(child.kills).toEqual(['SIGKILL']);
  });
});
