// procpool/task against real children: emit/onMessage, abortSignal with
// killGrace, workerId, the finalizer, close({ cancel, timeout }).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Pool, PoolClosedError, TaskTimeoutError, sharedPool } from 'procpool';
import * as taskFns from './fixtures/task-side-tasks.mjs';
import { base, deferred, fixture, tempDir, until } from './fixtures/api-helpers.js';

const tasks = fixture('task-side-tasks.mjs');
type Tasks = typeof taskFns;

type Event = ['message', number, unknown] | ['result', number];

/** Per item: every message comes before the result, in the order emitted. */
function checkOrder(events: Event[], items: number, perItem: (index: number) => unknown[]): void {
  for (let index = 0; index < items; index++) {
    const mine = events.filter((event) => event[1] === index);
    expect(mine.at(-1)?.[0], `item ${index}'s result comes last`).toBe('result');
    expect(mine.slice(0, -1).map((event) => event[2])).toEqual(perItem(index));
  }
}

function lines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

describe('emit() and onMessage', () => {
  it('imap and imapUnordered: each item’s messages arrive in order, before its result, with its index and workerId', async () => {
    await using pool = new Pool<Tasks>(tasks, { processes: 2, ...base });
    const counts = [5, 1, 0, 3, 7, 2];
    for (const kind of ['imap', 'imapUnordered'] as const) {
      const events: Event[] = [];
      const workers = new Set<number>();
      const iterator = pool[kind]('chatter', counts, {
        chunksize: 2,
        onMessage: (value: { i: number }, info) => {
          workers.add(info.workerId);
          events.push(['message', info.index, value.i]);
        },
      });
      for await (const count of iterator) events.push(['result', counts.indexOf(count as number)]);
      checkOrder(events, counts.length, (index) => Array.from({ length: counts[index]! }, (_, i) => i));
      for (const id of workers) expect([1, 2]).toContain(id);
    }
  });

  it('every kind of call delivers messages: apply, map, starmap and the *Async forms (an async task emits after an await too)', async () => {
    await using pool = new Pool<Tasks>(tasks, { processes: 2, ...base });
    const got: Array<[unknown, number]> = [];
    const onMessage = (value: string, info: { index: number }): void => void got.push([value, info.index]);
    expect(await pool.apply('chatterAsync', ['a'], { onMessage })).toBe('a');
    expect(await pool.applyAsync('chatterAsync', ['b'], { onMessage }).get()).toBe('b');
    expect(await pool.map('chatterAsync', ['c', 'd'], { onMessage, chunksize: 1 })).toEqual(['c', 'd']);
    expect(await pool.mapAsync('chatterAsync', ['e'], { onMessage }).get()).toEqual(['e']);
    expect(await pool.starmap('chatterAsync', [['f']], { onMessage })).toEqual(['f']);
    expect(await pool.starmapAsync('chatterAsync', [['g'], ['h']], { onMessage, chunksize: 2 }).get()).toEqual(['g', 'h']);
    const byTag = new Map<string, Array<[string, number]>>();
    for (const [value, index] of got) {
      const [tag, when] = String(value).split(':') as [string, string];
      byTag.set(tag, [...(byTag.get(tag) ?? []), [when, index]]);
    }
    const index = { a: 0, b: 0, c: 0, d: 1, e: 0, f: 0, g: 0, h: 1 } as Record<string, number>;
    for (const tag of 'abcdefgh') expect(byTag.get(tag), tag).toEqual([['before', index[tag]], ['after', index[tag]]]);
  });

  it('10,000 messages of one item arrive all, in order, before its result', async () => {
    await using pool = new Pool<Tasks>(tasks, { processes: 1, ...base });
    const seen: number[] = [];
    let seenAtResult = -1;
    const result = await pool
      .apply('chatter', [10_000], {
        onMessage: (value: { i: number }) => {
          seen.push(value.i);
        },
      })
      .then((value) => ((seenAtResult = seen.length), value));
    expect(result).toBe(10_000);
    expect(seenAtResult).toBe(10_000);
    expect(seen).toEqual(Array.from({ length: 10_000 }, (_, i) => i));
  });

  it('emit() with no item running (at load time) throws in the child, as does a value that cannot be sent; outside a child it throws too', async () => {
    await using pool = new Pool<Tasks>(tasks, { processes: 1, ...base });
    expect(await pool.apply('emitOutside')).toMatch(/emit\(\) was called while no item runs/);
    expect(await pool.apply('emitFunction')).toMatch(/cannot send this value: value\.callback is a function/);
    const { emit, abortSignal, workerId } = await import('procpool/task');
    expect(() => emit(1)).toThrow(/works only in a pool's child process/);
    expect(() => abortSignal()).toThrow(/works only in a pool's child process/);
    expect(workerId).toBe(0);
  });

  it('emit() in the initializer throws there: the pool cannot start, and says why', async () => {
    const pool = new Pool<Tasks>(tasks, { processes: 1, initializer: 'emitInInit', ...base });
    await expect(pool.ready()).rejects.toThrow(/emit\(\) was called while no item runs/);
    await pool.terminate();
  });

  it('an onMessage that throws fails its call with that error', async () => {
    await using pool = new Pool<Tasks>(tasks, { processes: 1, ...base });
    const boom = new Error('listener failed');
    await expect(
      pool.apply('chatter', [3], {
        onMessage: () => {
          throw boom;
        },
      }),
    ).rejects.toBe(boom);
    expect(await pool.apply('chatter', [1])).toBe(1);
  });
});

describe('abortSignal() and killGrace', () => {
  it("the call's signal: the call rejects at once, the item sees its signal, and a task that stops on it keeps its child", async () => {
    await using pool = new Pool<Tasks>(tasks, { processes: 1, killGrace: 30_000, ...base });
    const before = await pool.apply('pid');
    const controller = new AbortController();
    const started = deferred();
    const call = pool.apply('stopOnSignal', [], { signal: controller.signal, onMessage: () => started.resolve() });
    await started.promise;
    controller.abort(new Error('caller stopped'));
    await expect(call).rejects.toThrow('caller stopped');
    // The same child runs the next item: not killed, not replaced (a kill would come 30 s later, past the test's time).
    expect(await pool.apply('pid')).toBe(before);
    expect(pool.stats.restarts).toBe(0);
  });

  it('a timeout: TaskTimeoutError at once, the signal aborts with "its timeout passed", the child stays', async () => {
    const dir = tempDir();
    const file = join(dir, 'aborts');
    await using pool = new Pool<Tasks>(tasks, { processes: 1, killGrace: 30_000, ...base });
    const before = await pool.apply('pid');
    await expect(pool.apply('markOnAbort', [file], { timeout: 200 })).rejects.toBeInstanceOf(TaskTimeoutError);
    await until(() => lines(file).length > 0);
    expect(lines(file)).toEqual([`procpool: this item was cancelled: its timeout passed ${before}`]);
    expect(await pool.apply('pid')).toBe(before);
    expect(pool.stats.restarts).toBe(0);
  });

  it('an item that stops on its timeout before the rest of its chunk: the chunk runs again, and the later chunks of the call still run in that child (no spin)', async () => {
    // The timed-out item is not the last unreported one, so its loss is uncertain: the rest runs again
    // exactly, and this time the item returns. Its AbortError in the child is no failure of the call.
    const file = join(tempDir(), 'waited');
    await using pool = new Pool<Tasks>(tasks, { processes: 1, killGrace: 30_000, ...base });
    const items = [0, 1, 2, 3, 4, 5].map((x) => [file, x] as [string, number]);
    const done = pool.starmap('stopOnSignalOnce', items, { chunksize: 3, timeout: 200 });
    // A hang bound, not a timing: before, the call's later chunks were dropped in the child and queued again for ever.
    let bound: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([done, new Promise((resolve) => (bound = setTimeout(resolve, 20_000, 'still pending')))]);
    clearTimeout(bound);
    if (outcome === 'still pending') await pool.terminate();
    expect(outcome).toEqual([0, 10, 20, 30, 40, 50]);
    expect(lines(file)).toEqual(['waited']);
  });

  it('a task that ignores its signal (a synchronous loop) is killed after the grace, never before the call rejects', async () => {
    await using pool = new Pool<Tasks>(tasks, { processes: 1, killGrace: 300, ...base });
    const before = await pool.apply('pid');
    await expect(pool.apply('spin', [60_000], { timeout: 200 })).rejects.toBeInstanceOf(TaskTimeoutError);
    // Rejected while the child still runs the loop: the kill comes after the grace.
    expect(pool.stats.restarts).toBe(0);
    await until(() => pool.stats.restarts === 1);
    expect(await pool.apply('pid')).not.toBe(before);
  });

  it("the call's first error aborts the signal of its items running on other children", async () => {
    const dir = tempDir();
    const file = join(dir, 'aborts');
    await using pool = new Pool<Tasks>(tasks, { processes: 2, ...base });
    await pool.ready();
    const call = pool.starmap('failOrMark', [[file, false], [file, true]], { chunksize: 1 });
    await expect(call).rejects.toThrow('failed on purpose');
    await until(() => lines(file).length > 0);
    expect(lines(file)[0]).toMatch(/^procpool: this item was cancelled: its call no longer needs it \(the call failed on another item, or its caller left an imap loop\) \d+$/);
    expect(pool.stats.restarts).toBe(0);
  });

  it('leaving an imap loop early aborts the signal of its items still running', async () => {
    const dir = tempDir();
    const file = join(dir, 'aborts');
    await using pool = new Pool<Tasks>(tasks, { processes: 2, ...base });
    const started = deferred();
    const iterator = pool.imap('quickOrMark', [{ file, mark: false }, { file, mark: true }], { chunksize: 1, onMessage: () => started.resolve() });
    expect((await iterator.next()).value).toBe('quick');
    await started.promise;
    await iterator.return!();
    await until(() => lines(file).length > 0);
    expect(lines(file)[0]).toMatch(/^procpool: this item was cancelled: its call no longer needs it .* \d+$/);
    expect(pool.stats.restarts).toBe(0);
  });

  it('terminate() aborts the running item’s signal before the kill', async () => {
    const dir = tempDir();
    const file = join(dir, 'aborts');
    const pool = new Pool<Tasks>(tasks, { processes: 1, ...base });
    const started = deferred();
    const call = pool.apply('markOnAbort', [file], { onMessage: () => started.resolve() }).catch((error: unknown) => error);
    await started.promise;
    await pool.terminate();
    expect(await call).toBeInstanceOf(PoolClosedError);
    expect(lines(file)[0]).toMatch(/^procpool: this item was cancelled: the pool was terminated \d+$/);
  });
});

describe('workerId', () => {
  it('from 1, unique among live children, the same in PROCPOOL_WORKER_ID and stats; a dead child’s replacement takes its id', async () => {
    await using pool = new Pool<Tasks>(tasks, { processes: 3, ...base });
    await pool.ready();
    const seen = await pool.map('whoAmI', [1, 2, 3, 4, 5, 6], { chunksize: 1 });
    for (const who of seen) expect(who.env).toBe(String(who.workerId));
    const ids = pool.stats.children.map((child) => child.workerId).sort();
    expect(ids).toEqual([1, 2, 3]);
    const victim = pool.stats.children.find((child) => child.workerId === 2)!;
    process.kill(victim.pid!, 'SIGKILL');
    await until(() => pool.stats.children.some((child) => child.workerId === 2 && child.pid !== victim.pid && child.pid !== undefined));
    expect(pool.stats.children.map((child) => child.workerId).sort()).toEqual([1, 2, 3]);
  });

  it('unique among live children under recycling (maxTasksPerChild: 1) and elastic growth', async () => {
    // Each child holds a lock file named by its id from its first item to its exit: a second live child with that id fails to take it.
    const dir = tempDir();
    await using pool = new Pool<Tasks>(tasks, { minProcesses: 1, maxProcesses: 3, maxTasksPerChild: 1, ...base });
    const results = await pool.map('holdId', Array.from({ length: 12 }, () => dir), { chunksize: 1 });
    expect(new Set(results.map((who) => who.pid)).size).toBe(12);
    for (const who of results) expect(who.workerId).toBeGreaterThanOrEqual(1);
  });
});

describe('finalizer', () => {
  it('runs once in each child that leaves gracefully: close()+join(), maxTasksPerChild; given by name or as the export itself', async () => {
    const dir = tempDir();
    const file = join(dir, 'final');
    const pool = new Pool<Tasks>(tasks, { processes: 2, maxTasksPerChild: 2, finalizer: 'writeFinal', finalArgs: [file, 'bye'], initializer: taskFns.setup, ...base });
    const pids = await pool.map('pidIfSetUp', [1, 2, 3, 4, 5, 6, 7, 8], { chunksize: 1 });
    expect(pids).not.toContain(-1);
    pool.close();
    await pool.join();
    const written = lines(file);
    // At most 2 items per child: 4 children or more ran them, and each wrote once as it left (replacements still starting at close() never loaded).
    expect(new Set(pids).size).toBeGreaterThanOrEqual(4);
    for (const pid of new Set(pids)) expect(written.filter((line) => line === `bye ${pid}`)).toHaveLength(1);
    expect(new Set(written).size).toBe(written.length);
    expect(pool.stats.finalizerFailures).toBe(0);
  });

  it('runs in an idle child of an elastic pool as it leaves', async () => {
    const dir = tempDir();
    const file = join(dir, 'final');
    await using pool = new Pool<Tasks>(tasks, { minProcesses: 0, maxProcesses: 1, idleTimeout: 100, finalizer: 'writeFinal', finalArgs: [file, 'idle'], ...base });
    const pid = await pool.apply('pid');
    await until(() => lines(file).length > 0);
    expect(lines(file)).toEqual([`idle ${pid}`]);
  });

  it('sharedPool tells pools apart by finalArgs too (any value that crosses, a BigInt included)', async () => {
    const one = sharedPool<Tasks>(tasks, { ...base, processes: 1, finalizer: 'writeFinal', finalArgs: [1n, 'a'] });
    const same = sharedPool<Tasks>(tasks, { ...base, processes: 1, finalizer: 'writeFinal', finalArgs: [1n, 'a'] });
    const other = sharedPool<Tasks>(tasks, { ...base, processes: 1, finalizer: 'writeFinal', finalArgs: [2n, 'a'] });
    expect(same).toBe(one);
    expect(other).not.toBe(one);
    await Promise.all([one.terminate(), other.terminate()]);
  });

  it('never runs in a killed child (terminate)', async () => {
    const dir = tempDir();
    const file = join(dir, 'final');
    const pool = new Pool<Tasks>(tasks, { processes: 2, finalizer: 'writeFinal', finalArgs: [file, 'bye'], ...base });
    await pool.ready();
    await pool.terminate();
    expect(lines(file)).toEqual([]);
  });

  it('one that throws or hangs is reported (stderr, stats.finalizerFailures) and never hangs join()', async () => {
    for (const finalizer of ['throwFinal', 'hangFinal'] as const) {
      const pool = new Pool<Tasks>(tasks, { processes: 2, finalizer, finalTimeout: 300, stdio: 'pipe', ...base });
      let stderr = '';
      pool.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      await pool.ready();
      pool.close();
      await pool.join();
      expect(pool.stats.finalizerFailures, finalizer).toBe(2);
      expect(stderr).toMatch(finalizer === 'throwFinal' ? /finalizer throwFinal failed .*finalizer failed on purpose/ : /finalizer hangFinal failed .*did not end within 300 ms/);
    }
  });
});

describe('close({ cancel, timeout })', () => {
  it('cancel: calls with items not yet started reject with PoolClosedError; the running item finishes', async () => {
    await using pool = new Pool<Tasks>(tasks, { processes: 1, ...base });
    await pool.ready();
    const started = deferred();
    const running = pool.apply('waitForSignal', [300], { onMessage: () => started.resolve() });
    const queued = pool.map('pid', [1, 2, 3]);
    await started.promise;
    pool.close({ cancel: true });
    await expect(queued).rejects.toBeInstanceOf(PoolClosedError);
    expect(await running).toMatchObject({ aborted: false });
    await pool.join();
  });

  it('timeout: what still runs after it is terminated, and join() resolves', async () => {
    const pool = new Pool<Tasks>(tasks, { processes: 1, killGrace: 0, ...base });
    const started = deferred();
    const running = pool.apply('spin', [60_000], { onMessage: () => started.resolve() }).catch((error: unknown) => error);
    await started.promise;
    pool.close({ timeout: 200 });
    await pool.join();
    expect(await running).toBeInstanceOf(PoolClosedError);
  });

  it('close() without options still lets queued work run; bad options are refused', async () => {
    const pool = new Pool<Tasks>(tasks, { processes: 1, ...base });
    const queued = pool.map('pid', [1, 2, 3], { chunksize: 1 });
    expect(() => pool.close({ cancel: 'yes' } as never)).toThrow(TypeError);
    expect(() => pool.close({ wait: 1 } as never)).toThrow(/Unknown close\(\) option `wait`/);
    pool.close();
    expect(await queued).toHaveLength(3);
    await pool.join();
  });
});

describe('tasks passed as functions under a test runner', () => {
  it("a test runner's copy of an export with the same name and source text is accepted", async () => {
    await using pool = new Pool<Tasks>(tasks, { processes: 1, ...base });
    expect(typeof (await pool.apply(taskFns.pid))).toBe('number');
  });
});
