import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AsyncResult, Pool, PoolStateError, ResultTimeoutError } from 'procpool';
import { base, deferred, tasks, tempDir } from './fixtures/api-helpers.js';

let pool: Pool;
beforeAll(async () => {
  pool = await Pool.create(tasks, { processes: 2, ...base });
});
afterAll(() => pool.terminate());

/** What the callbacks and settlements of one AsyncResult did, in order. */
const events: unknown[] = [];
function record(value: unknown): void {
  events.push(['callback', value]);
}

/** A gate file that a task waits on, and its opener. */
function gate(): { path: string; open: () => void } {
  const path = join(tempDir(), 'gate');
  return { path, open: () => writeFileSync(path, '') };
}

describe('get(timeout)', () => {
  it('rejects with ResultTimeoutError while the work goes on', async () => {
    const { path, open } = gate();
    const result = pool.applyAsync('waitFile', [path, 'done']);
    const error = await result.get(50).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ResultTimeoutError);
    expect(error).toMatchObject({ code: 'PROCPOOL_RESULT_TIMEOUT' });
    expect(result.ready()).toBe(false);
    open();
    expect(await result.get()).toBe('done');
    expect(await result.get(1)).toBe('done');
  });

  it('resolves when the result comes in time, and rejects with the task error', async () => {
    expect(await pool.mapAsync('double', [1, 2]).get(10_000)).toEqual([2, 4]);
    await expect(pool.applyAsync('fail', ['nope']).get(10_000)).rejects.toThrow('nope');
  });

  it('rejects a timeout of the wrong type or value', async () => {
    const { path, open } = gate();
    const result = pool.applyAsync('waitFile', [path]);
    await expect(result.get('10' as unknown as number)).rejects.toBeInstanceOf(TypeError);
    await expect(result.get(-1)).rejects.toBeInstanceOf(RangeError);
    open();
    await result;
  });
});

describe('wait(timeout)', () => {
  it('resolves when the timeout passes, before the result is ready', async () => {
    const { path, open } = gate();
    const result = pool.applyAsync('waitFile', [path]);
    await expect(result.wait(30)).resolves.toBeUndefined();
    expect(result.ready()).toBe(false);
    open();
    await expect(result.wait()).resolves.toBeUndefined();
    expect(result.ready()).toBe(true);
  });

  it('never rejects, even for a failed call', async () => {
    const result = pool.applyAsync('fail');
    await expect(result.wait()).resolves.toBeUndefined();
    await expect(result.wait(5)).resolves.toBeUndefined();
    expect(result.successful()).toBe(false);
  });
});

describe('ready() and successful()', () => {
  it('successful() throws PoolStateError until ready, then tells success from failure', async () => {
    const { path, open } = gate();
    const result = pool.applyAsync('waitFile', [path]);
    expect(result.ready()).toBe(false);
    expect(() => result.successful()).toThrow(PoolStateError);
    try {
      result.successful();
    } catch (error) {
      expect(error).toMatchObject({ code: 'PROCPOOL_STATE' });
    }
    open();
    await result.wait();
    expect(result.ready()).toBe(true);
    expect(result.successful()).toBe(true);
    const failed = pool.starmapAsync('failIfNegative', [[1], [-1]]);
    await failed.wait();
    expect([failed.ready(), failed.successful()]).toEqual([true, false]);
  });
});

describe('thenable', () => {
  it('await works on every *Async method', async () => {
    const results = [pool.applyAsync('add', [1, 2]), pool.mapAsync('double', [3]), pool.starmapAsync('add', [[4, 5]])];
    for (const result of results) expect(result).toBeInstanceOf(AsyncResult);
    expect(await results[0]).toBe(3);
    expect(await results[1]).toEqual([6]);
    expect(await results[2]).toEqual([9]);
    await expect(pool.applyAsync('fail', ['thenable'])).rejects.toThrow('thenable');
    expect(await pool.applyAsync('double', [1]).then((v) => Number(v) + 1)).toBe(3);
  });
});

describe('callbacks', () => {
  it.each([
    ['applyAsync', () => pool.applyAsync('double', [2], { callback: record }), 4],
    ['mapAsync', () => pool.mapAsync('double', [1, 2], { callback: record }), [2, 4]],
    ['starmapAsync', () => pool.starmapAsync('add', [[1, 2]], { callback: record }), [3]],
  ])('%s: callback is called once with the value, before get() and wait() resolve', async (_, start, value) => {
    events.length = 0;
    const result = (start as () => AsyncResult<unknown>)();
    const got = result.get().then(() => events.push('get'));
    const waited = result.wait().then(() => events.push('wait'));
    await Promise.all([got, waited, result.wait(60_000).then(() => events.push('wait(timeout)'))]);
    expect(events[0]).toEqual(['callback', value]);
    expect(events.slice(1).sort()).toEqual(['get', 'wait', 'wait(timeout)']);
  });

  it('errorCallback is called once with the error, before get() and wait() settle; callback is not', async () => {
    const calls: unknown[] = [];
    const result = pool.mapAsync('failIfNegative', [1, -2, -3], {
      chunksize: 1,
      callback: () => calls.push('callback'),
      errorCallback: (error) => calls.push(error),
    });
    const got = result.get().catch((error: unknown) => calls.push(['get', error]));
    const waited = result.wait().then(() => calls.push('wait'));
    await Promise.all([got, waited]);
    expect(calls).toHaveLength(3);
    expect(calls[0]).toBeInstanceOf(RangeError);
    expect(calls.slice(1)).toContainEqual(['get', calls[0]]);
    expect(calls.slice(1)).toContain('wait');
    await delay(50);
    expect(calls).toHaveLength(3);
  });

  it('an error given to errorCallback is never an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const listener = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', listener);
    try {
      const delivered = deferred<unknown>();
      pool.applyAsync('fail', ['handled'], { errorCallback: delivered.resolve });
      pool.mapAsync('fail', ['handled too'], { errorCallback: () => undefined });
      expect(await delivered.promise).toMatchObject({ message: 'handled' });
      await delay(100); // unhandled rejections are reported after a turn of the loop
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', listener);
    }
  });
});
