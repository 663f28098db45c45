import { existsSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { AsyncResult, Pool, PoolBrokenError, PoolError, TaskTimeoutError } from 'procpool';
import * as taskFns from './fixtures/api-tasks.mjs';
import { add as typedAdd } from './fixtures/api-typed-tasks.js';
import { base, collect, fixture, isGone, tasks, tempDir, until, type Tasks } from './fixtures/api-helpers.js';

describe('methods', () => {
  it('apply, map, starmap and their *Async forms return results in input order', async () => {
    await using pool = new Pool(tasks, { processes: 2, ...base });
    expect(await pool.apply('add', [2, 3])).toBe(5);
    expect(await pool.apply('pid')).toBeTypeOf('number');
    expect(await pool.map('double', [1, 2, 3])).toEqual([2, 4, 6]);
    expect(await pool.starmap('add', [[1, 2], [3, 4]])).toEqual([3, 7]);
    const async = [pool.applyAsync('add', [1, 1]), pool.mapAsync('double', [5]), pool.starmapAsync('add', [[2, 2]])];
    for (const result of async) expect(result).toBeInstanceOf(AsyncResult);
    expect(await Promise.all(async.map((result) => result.get()))).toEqual([2, [10], [4]]);
  });

  it('map and starmap take any iterable', async () => {
    await using pool = new Pool(tasks, { processes: 1, ...base });
    expect(await pool.map('double', new Set([1, 2]))).toEqual([2, 4]);
    function* tuples(): Generator<[number, number]> {
      yield [1, 1];
      yield [2, 2];
    }
    expect(await pool.starmap('add', tuples())).toEqual([2, 4]);
  });

  it('imap yields in input order, imapUnordered every result, from iterables and async iterables', async () => {
    await using pool = new Pool(tasks, { processes: 2, ...base });
    expect(await collect(pool.imap('double', [1, 2, 3, 4]))).toEqual([2, 4, 6, 8]);
    async function* input(): AsyncGenerator<number> {
      for (let i = 1; i <= 4; i++) yield i;
    }
    expect(await collect(pool.imap('double', input()))).toEqual([2, 4, 6, 8]);
    expect((await collect(pool.imapUnordered('double', input()))).sort((a, b) => Number(a) - Number(b))).toEqual([2, 4, 6, 8]);
  });

  it('imap reads an endless input lazily and leaving the loop stops reading it', async () => {
    await using pool = new Pool(tasks, { processes: 1, ...base });
    let reads = 0;
    function* endless(): Generator<number> {
      for (;;) yield reads++;
    }
    const seen: unknown[] = [];
    for await (const value of pool.imap('double', endless(), { chunksize: 1 })) {
      seen.push(value);
      if (seen.length === 5) break;
    }
    expect(seen).toEqual([0, 2, 4, 6, 8]);
    // At most 2 × processes chunks are in flight or buffered beyond what was consumed.
    expect(reads).toBeLessThanOrEqual(5 + 2 + 1);
  });

  it('ready() resolves once children are up, and Pool.create awaits it', async () => {
    await using pool = await Pool.create(tasks, { processes: 2, ...base });
    expect(pool.stats.idle).toBe(2);
    await using other = new Pool(tasks, { processes: 1, ...base });
    await expect(other.ready()).resolves.toBeUndefined();
  });

  it('ready() and Pool.create reject with PoolBrokenError when the module cannot load', async () => {
    await using pool = new Pool(fixture('api-broken.mjs'), { processes: 1, ...base });
    await expect(pool.ready()).rejects.toBeInstanceOf(PoolBrokenError);
    await expect(Pool.create(fixture('api-broken.mjs'), { processes: 1, ...base })).rejects.toMatchObject({ code: 'PROCPOOL_BROKEN' });
  });

  it('stats counts busy, idle, queued, completed, failed and restarts', async () => {
    await using pool = await Pool.create(tasks, { processes: 1, ...base });
    expect(pool.stats).toMatchObject({ processes: 1, busy: 0, idle: 1, queued: 0, completed: 0, failed: 0, restarts: 0 });
    const gate = join(tempDir(), 'gate');
    const work = pool.map('waitFile', Array<string>(50).fill(gate), { chunksize: 1 });
    await until(() => pool.stats.busy === 1);
    // However deep the pool pipelines, 50 chunks are not all sent to one blocked child.
    expect(pool.stats).toMatchObject({ busy: 1, idle: 0, queued: expect.toSatisfy((n: number) => n > 0 && n < 50) });
    writeFileSync(gate, '');
    await work;
    expect(pool.stats).toMatchObject({ busy: 0, idle: 1, queued: 0, completed: 50, failed: 0 });
    await expect(pool.map('failIfNegative', [1, -1], { chunksize: 2 })).rejects.toBeInstanceOf(RangeError);
    expect(pool.stats).toMatchObject({ completed: 51, failed: 1 });
    await expect(pool.apply('sleep', [60_000], { timeout: 50 })).rejects.toBeInstanceOf(TaskTimeoutError);
    await until(() => pool.stats.restarts === 1);
    expect(pool.stats.failed).toBe(2);
  });
});

describe('pool options', () => {
  it("stdio 'pipe' exposes the children's output as pool.stdout / pool.stderr", async () => {
    const pool = new Pool(tasks, { processes: 2, stdio: 'pipe', ...base });
    let out = '';
    let err = '';
    pool.stdout!.on('data', (data: Buffer) => (out += data.toString()));
    pool.stderr!.on('data', (data: Buffer) => (err += data.toString()));
    await pool.map('log', ['a', 'b', 'c'], { chunksize: 1 });
    pool.close();
    await pool.join();
    expect(out.split('\n').filter(Boolean).sort()).toEqual(['out:a', 'out:b', 'out:c']);
    expect(err.split('\n').filter(Boolean).sort()).toEqual(['err:a', 'err:b', 'err:c']);
  });

  it('env replaces the environment of the children; by default they get process.env', async () => {
    process.env.PROCPOOL_API_PARENT_ONLY = 'parent';
    try {
      await using inherited = new Pool(tasks, { processes: 1, ...base });
      expect(await inherited.apply('env', ['PROCPOOL_API_PARENT_ONLY'])).toBe('parent');
      await using replaced = new Pool(tasks, { processes: 1, env: { PROCPOOL_API_CHILD: 'child' }, ...base });
      expect(await replaced.map('env', ['PROCPOOL_API_CHILD', 'PROCPOOL_API_PARENT_ONLY'])).toEqual(['child', undefined]);
    } finally {
      delete process.env.PROCPOOL_API_PARENT_ONLY;
    }
  });

  it('cwd sets the working directory of the children, as a path or a URL', async () => {
    const dir = realpathSync(tmpdir());
    await using byPath = new Pool<Tasks>(tasks, { processes: 1, cwd: dir, ...base });
    expect(realpathSync(await byPath.apply('cwd'))).toBe(dir);
    await using byUrl = new Pool<Tasks>(tasks, { processes: 1, cwd: pathToFileURL(dir), ...base });
    expect(realpathSync(await byUrl.apply('cwd'))).toBe(dir);
    await using byDefault = new Pool(tasks, { processes: 1, ...base });
    expect(await byDefault.apply('cwd')).toBe(process.cwd());
  });

  it('initializer runs with initArgs once in every child, replacements included', async () => {
    await using pool = new Pool<Tasks>(tasks, { processes: 2, initializer: 'setup', initArgs: ['tag', { n: 1 }], maxTasksPerChild: 1, ...base });
    const states = await pool.map('initState', Array.from({ length: 5 }, () => undefined), { chunksize: 1 });
    expect(new Set(states.map((state) => state.pid)).size).toBe(5);
    for (const state of states) expect(state).toMatchObject({ inits: 1, initArgs: ['tag', { n: 1 }] });
  });

  it('maxTasksPerChild counts items, not chunks: each child serves exactly N items', async () => {
    await using pool = new Pool(tasks, { processes: 1, maxTasksPerChild: 3, ...base });
    const pids = await pool.map('slowPid', Array<number>(9).fill(5), { chunksize: 4 });
    const served = new Map<unknown, number>();
    for (const pid of pids) served.set(pid, (served.get(pid) ?? 0) + 1);
    expect([...served.values()]).toEqual([3, 3, 3]);
    expect(pool.stats.restarts).toBe(3);
  });
});

describe('naming a task', () => {
  it('takes the exported function itself', async () => {
    await using pool = new Pool(tasks, { processes: 2, ...base });
    expect(await pool.apply(taskFns.add, [1, 2])).toBe(3);
    expect(await pool.map(taskFns.double, [1, 2])).toEqual([2, 4]);
    expect(await pool.starmap(taskFns.add, [[1, 1]])).toEqual([2]);
    expect(await collect(pool.imap(taskFns.double, [3]))).toEqual([6]);
    expect(await pool.applyAsync(taskFns.double, [4])).toBe(8);
  });

  it('rejects an unknown name and a function that is not an export with PROCPOOL_UNKNOWN_TASK', async () => {
    await using pool = new Pool(tasks, { processes: 1, ...base });
    const unknown = await pool.apply('nope').catch((error: unknown) => error);
    expect(unknown).toBeInstanceOf(PoolError);
    expect(unknown).toMatchObject({ code: 'PROCPOOL_UNKNOWN_TASK', message: expect.stringContaining('double') });
    await expect(pool.apply('notATask')).rejects.toMatchObject({ code: 'PROCPOOL_UNKNOWN_TASK' });
    const stray = (x: number): number => x;
    await expect(pool.map(stray, [1])).rejects.toMatchObject({ code: 'PROCPOOL_UNKNOWN_TASK' });
    await expect(collect(pool.imap(stray, [1]))).rejects.toMatchObject({ code: 'PROCPOOL_UNKNOWN_TASK' });
    // Same name and body as an export, but another module's function.
    await expect(pool.apply(typedAdd, [1, 2])).rejects.toMatchObject({ code: 'PROCPOOL_UNKNOWN_TASK' });
    expect(await pool.apply('double', [1])).toBe(2);
  });
});

describe('per-call options', () => {
  it('signal: queued items never start, the running one is stopped, the call rejects with signal.reason', async () => {
    const dir = tempDir();
    const pool = new Pool(tasks, { processes: 1, ...base });
    const controller = new AbortController();
    const work = pool.starmap('mark', [0, 1, 2, 3].map((i) => [dir, i, 60_000]), { chunksize: 1, signal: controller.signal });
    await until(() => existsSync(join(dir, '0')));
    const reason = new Error('stop it');
    controller.abort(reason);
    await expect(work).rejects.toBe(reason);
    const runningPid = Number(readFileSync(join(dir, '0'), 'utf8'));
    await until(() => isGone(runningPid));
    expect(await pool.apply('double', [2])).toBe(4); // the child was replaced
    pool.close();
    await pool.join();
    expect(readdirSync(dir)).toEqual(['0']);
  });

  it('signal: an imap loop under way rejects with signal.reason', async () => {
    await using pool = new Pool(tasks, { processes: 1, ...base });
    const controller = new AbortController();
    const seen: unknown[] = [];
    const loop = (async () => {
      for await (const value of pool.imap('sleep', [1, 60_000, 2], { chunksize: 1, signal: controller.signal })) {
        seen.push(value);
        controller.abort('enough');
      }
    })();
    await expect(loop).rejects.toBe('enough');
    expect(seen).toEqual([1]);
  });

  it('signal already aborted: the call rejects with its reason', async () => {
    await using pool = new Pool(tasks, { processes: 1, ...base });
    const signal = AbortSignal.abort('gone');
    await expect(pool.apply('double', [1], { signal })).rejects.toBe('gone');
    await expect(pool.map('double', [1], { signal })).rejects.toBe('gone');
    await expect(collect(pool.imap('double', [1], { signal }))).rejects.toBe('gone');
  });

  it('timeout: an item running past it rejects with TaskTimeoutError, its child is replaced', async () => {
    await using pool = new Pool<Tasks>(tasks, { processes: 1, ...base });
    const before = await pool.apply('pid');
    const error = await pool.map('sleep', [1, 60_000], { timeout: 300, chunksize: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskTimeoutError);
    expect(error).toMatchObject({ code: 'PROCPOOL_TASK_TIMEOUT', timeout: 300 });
    await until(() => isGone(before));
    expect(await pool.apply('pid')).not.toBe(before);
  });

  it('timeout counts per item while it runs, not while queued', async () => {
    await using pool = new Pool(tasks, { processes: 1, ...base });
    expect(await pool.map('sleep', [100, 100, 100, 100, 100, 100], { timeout: 450, chunksize: 1 })).toHaveLength(6);
  });
});

describe('task modules', () => {
  const path = fileURLToPath(tasks);

  it.each([
    ['an absolute path', path],
    ['a relative path', relative(process.cwd(), path)],
    ['a file: URL string', tasks.href],
    ['a URL', tasks],
  ])('loads a module given as %s', async (_, module) => {
    await using pool = new Pool(module, { processes: 1, ...base });
    expect(await pool.apply('double', [21])).toBe(42);
  });

  it("loads a .ts module with nodeOptions ['--import', 'tsx']", async () => {
    await using pool = new Pool<typeof import('./fixtures/api-typed-tasks.js')>(fixture('api-typed-tasks.ts'), {
      processes: 1,
      nodeOptions: ['--import', 'tsx'],
    });
    expect(await pool.apply('greet', ['ts', true])).toBe('hello ts!');
    expect(await pool.map('norm', [{ x: 3, y: 4 }])).toEqual([5]);
  });

  it('loads a CommonJS (.cjs) module', async () => {
    await using pool = new Pool(fixture('api-tasks.cjs'), { processes: 1, ...base });
    expect(await pool.map('triple', [1, 2])).toEqual([3, 6]);
    expect(await pool.apply('kind')).toBe('function');
  });
});
