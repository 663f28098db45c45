import { describe, expect, it } from 'vitest';
import { Pool, WorkerExitError, TaskTimeoutError, SerializationError } from 'procpool';

const add = new URL('./fixtures/add.mjs', import.meta.url);
const faults = new URL('./fixtures/faults.mjs', import.meta.url);

describe('smoke', () => {
  it('maps in order', async () => {
    await using pool = new Pool(add, { processes: 2, nodeOptions: [] });
    expect(await pool.map('double', [1, 2, 3, 4, 5])).toEqual([2, 4, 6, 8, 10]);
    expect(await pool.apply('add', [2, 3])).toBe(5);
    const out: unknown[] = [];
    for await (const v of pool.imap('double', [1, 2, 3])) out.push(v);
    expect(out).toEqual([2, 4, 6]);
  });
  it('survives faults', async () => {
    await using pool = new Pool(faults, { processes: 2, nodeOptions: [] });
    await expect(pool.apply('exitNow', [3])).rejects.toMatchObject({ code: 'PROCPOOL_WORKER_EXIT', exitCode: 3, reason: 'exit' });
    await expect(pool.apply('selfKill')).rejects.toMatchObject({ signal: 'SIGKILL', reason: 'signal' });
    const later = await pool.apply('throwLater', ['boom']).catch((e: unknown) => e);
    expect(later).toBeInstanceOf(WorkerExitError);
    expect((later as Error).cause).toMatchObject({ message: 'boom' });
    await expect(pool.apply('spin', [], { timeout: 200 })).rejects.toBeInstanceOf(TaskTimeoutError);
    await expect(pool.apply('disconnect')).rejects.toMatchObject({ reason: 'disconnect' });
    await expect(pool.apply('returnFn')).rejects.toMatchObject({ direction: 'result', path: 'result.handler' });
    await expect(pool.apply('echo', [{ cb: () => 1 }])).rejects.toBeInstanceOf(SerializationError);
    const custom = await pool.apply('custom').catch((e: unknown) => e);
    expect(custom).toMatchObject({ name: 'MyError', code: 'E_MINE', details: { n: 1, list: [1, 2] }, message: 'custom failure' });
    expect(custom).toBeInstanceOf(RangeError);
    expect((custom as Error).cause).toMatchObject({ message: 'root' });
    await expect(pool.apply('throwValue', ['x'])).rejects.toBe('x');
    expect(await pool.apply('sleep', [5])).toBe(5);
  });
});
