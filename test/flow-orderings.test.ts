/**
 * How work flows at the engine's edges (issue 17), as orderings on scripted fake children
 * (fixtures/fake-child.ts): the read-ahead of `imap*`, depth and priority,
 * and calls sharing one AbortSignal. No sleeps: each test waits for a
 * condition or counts event-loop turns.
 */
import { getEventListeners } from 'node:events';
import { describe, expect, it, vi } from 'vitest';
import type { Pool } from '../src/pool.js';
import type { RunMessage } from '../src/protocol.js';
import { addTasks, fakePool, type FakeChild } from './fixtures/fake-child.js';

vi.setConfig({ testTimeout: 10_000 });

const double = (x: number): number => x * 2;

const pool = (fp: { pool: Pool }): Pool => fp.pool;

/** One turn of the event loop. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Turns until `done()` holds; a bounded number, so a missed event fails fast instead of hanging. */
async function turnsUntil(done: () => boolean, most = 50): Promise<void> {
  for (let i = 0; i < most && !done(); i++) await turn();
}

/** An endless async source the test feeds one item at a time; it counts what was read. */
function fedSource(): { source: AsyncIterable<number>; readonly asked: boolean; readonly read: number; feed(): void } {
  const asks: Array<(result: IteratorResult<number>) => void> = [];
  let read = 0;
  return {
    source: { [Symbol.asyncIterator]: () => ({ next: () => new Promise<IteratorResult<number>>((resolve) => asks.push(resolve)) }) },
    get asked() {
      return asks.length > 0;
    },
    get read() {
      return read;
    },
    feed() {
      asks.shift()!({ value: read++, done: false });
    },
  };
}

describe('imap read-ahead: the window is checked before every read', () => {
  it.each([
    ['chunksize 10', 10],
    ['default chunking', undefined],
  ])('a slow endless source, 1 process, %s, the consumer pauses after 8 results: reading stops within the bound', async (_name, chunksize) => {
    const fp = fakePool({ processes: 1 });
    const child = fp.children[0]!;
    child.ready();
    const src = fedSource();
    const it = pool(fp).imap('double', src.source, { chunksize });
    let consumed = 0;
    const consumer = (async () => {
      for (; consumed < 8; consumed++) expect(await it.next()).toEqual({ value: 2 * consumed, done: false });
    })();
    let answered = 0;
    const answer = (): void => {
      // Answered as tiny chunks: default chunking grows its chunks.
      for (const run of child.runs.slice(answered)) child.answer(run, double, { ms: 0.001 * run.args.length });
      answered = child.runs.length;
    };
    // Each item arrives in a later turn than it was asked for: the partial chunk goes out without waiting to fill.
    for (let i = 0; i < 400; i++) {
      await turnsUntil(() => src.asked, 30);
      if (!src.asked) break;
      src.feed();
      await turn();
      answer();
    }
    await consumer;
    // Paused: at most 2 × processes chunks read ahead, of at most `chunksize` items (default: at most the chunk being filled had grown to).
    expect(src.asked).toBe(false);
    expect(src.read - consumed).toBeLessThanOrEqual(2 * (chunksize ?? 64));
    // The consumer resumes: once a whole chunk is consumed, reading resumes.
    for (let i = consumed; i < src.read && !src.asked; i++) {
      await expect(it.next()).resolves.toEqual({ value: 2 * i, done: false });
      await turnsUntil(() => src.asked, 30);
      answer();
    }
    expect(src.asked).toBe(true);
    await it.return!();
  });

  it.each([
    ['a sync iterator', () => ({ [Symbol.iterator]: () => ({ next: () => 5 }) })],
    ['an async iterator', () => ({ [Symbol.asyncIterator]: () => ({ next: () => Promise.resolve(5) }) })],
  ])('%s whose next() returns a non-object: imap throws TypeError, as map does', async (_name, make) => {
    const fp = fakePool({ processes: 1 }, addTasks);
    const it = pool(fp).imap('double', make() as unknown as Iterable<number>);
    await expect(it.next()).rejects.toThrow(TypeError);
    await expect(it.next()).resolves.toEqual({ done: true, value: undefined });
    await expect(pool(fp).map('double', make() as unknown as Iterable<number>)).rejects.toThrow(TypeError);
  });
});

describe('calls sharing one AbortSignal', () => {
  it('1,000 applies and 20 imaps pending with one signal: one abort listener, no leak warning; it goes when they settle', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => void warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const fp = fakePool({ processes: 1 });
      const child = fp.children[0]!;
      child.ready();
      const { signal } = new AbortController();
      const applies = Array.from({ length: 1000 }, (_, i) => pool(fp).apply('double', [i], { signal }));
      const imaps = Array.from({ length: 20 }, () => pool(fp).imap('double', [1], { signal }));
      const firsts = imaps.map((it) => it.next());
      await turnsUntil(() => child.runs.length >= 1);
      expect(getEventListeners(signal, 'abort')).toHaveLength(1);
      child.automate();
      expect(await Promise.all(applies)).toEqual(Array.from({ length: 1000 }, (_, i) => 2 * i));
      expect(await Promise.all(firsts)).toEqual(imaps.map(() => ({ value: 2, done: false })));
      for (const it of imaps) await expect(it.next()).resolves.toEqual({ done: true, value: undefined });
      expect(getEventListeners(signal, 'abort')).toHaveLength(0);
      await turn();
      expect(warnings.filter((warning) => warning.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('an abort stops every call that shares the signal, and only those', async () => {
    const fp = fakePool({ processes: 1 });
    const child = fp.children[0]!;
    child.ready();
    const controller = new AbortController();
    const reason = new Error('stopped');
    const shared = Array.from({ length: 30 }, (_, i) => pool(fp).apply('double', [i], { signal: controller.signal }).then(() => 'ran', (error: unknown) => error));
    const it = pool(fp).imap('double', [1, 2], { signal: controller.signal });
    const first = it.next().then(() => 'ran', (error: unknown) => error);
    const other = pool(fp).apply('double', [21]);
    await turnsUntil(() => child.runs.length >= 1);
    controller.abort(reason);
    expect(await Promise.all(shared)).toEqual(shared.map(() => reason));
    expect(await first).toBe(reason);
    child.automate();
    await expect(other).resolves.toBe(42);
  });
});

describe('depth: measured per task, and a chunk never waits in a pipe for what it need not', () => {
  /** Fast chunks of `double`: measured as tiny, each child is then kept fed (many chunks in its pipe). */
  async function warm(p: Pool, child: FakeChild): Promise<void> {
    const call = p.apply('double', [0]);
    child.answer(await child.nextRun(), double, { ms: 0 });
    await call;
  }

  it('a task not measured yet goes one chunk at a time, even while another task is kept fed; measured tiny, it is kept fed too', async () => {
    const fp = fakePool({ processes: 1 });
    const child = fp.children[0]!;
    child.ready();
    await warm(pool(fp), child);
    const pairs = [[1, 1], [2, 2], [3, 3], [4, 4]];
    const cold = pool(fp).starmap('add', pairs, { chunksize: 1 });
    const first = await child.nextRun();
    await turnsUntil(() => child.runs.length > 2, 10);
    expect(child.runs).toHaveLength(2);
    child.answer(first, (a: number, b: number) => a + b, { ms: 0.01 });
    // Measured tiny: the rest is sent at once.
    await turnsUntil(() => child.runs.length >= 5, 10);
    expect(child.runs).toHaveLength(5);
    child.automate();
    await expect(cold).resolves.toEqual([2, 4, 6, 8]);
  });

  it('a flood of slow items on one child, then a priority 10 call: the flood’s chunks waiting in the pipe are recalled; the call runs right after the running one', async () => {
    const fp = fakePool({ processes: 1 });
    const child = fp.children[0]!;
    child.ready();
    await warm(pool(fp), child);
    const flood = pool(fp).map('double', Array.from({ length: 30 }, (_, i) => i), { chunksize: 1 });
    const sent: RunMessage[] = [];
    await turnsUntil(() => child.runs.length >= 17);
    for (let i = 0; i < 16; i++) sent.push(await child.nextRun());
    child.start(sent[0]!.id);
    const urgent = pool(fp).apply('double', [100], { priority: 10 });
    await turnsUntil(() => child.skips.length >= 15);
    expect(child.skips.sort((a, b) => a - b)).toEqual(sent.slice(1).map((run) => run.id));
    for (const id of child.skips) child.done(id, { skipped: true });
    // The next chunk the child gets is the urgent one: it waits only for the running chunk.
    const next = await child.nextRun();
    expect(next.args).toEqual([[100]]);
    child.done(sent[0]!.id, { values: [0], ms: 200 });
    child.answer(next, double);
    await expect(urgent).resolves.toBe(200);
    child.automate();
    await expect(flood).resolves.toEqual(Array.from({ length: 30 }, (_, i) => 2 * i));
  });

  it('two children kept fed, one finds the items slow: the chunks waiting in both pipes are recalled, and the free child takes them while the other runs its one', async () => {
    const fp = fakePool({ processes: 2 });
    const [a, b] = [fp.children[0]!, fp.children[1]!];
    a.ready();
    b.ready();
    await warm(pool(fp), a);
    const flood = pool(fp).map('double', Array.from({ length: 24 }, (_, i) => i), { chunksize: 1 });
    await turnsUntil(() => a.runs.length + b.runs.length >= 25);
    const onA = a.runs.slice(1);
    const onB = b.runs.slice();
    expect(onA.length).toBeGreaterThan(1);
    expect(onB.length).toBeGreaterThan(1);
    a.start(onA[0]!.id);
    // b's first chunk took 200 ms: the task is slow; nothing more may wait behind a running chunk.
    b.answer(onB[0]!, double, { ms: 200 });
    // a keeps the chunk it runs, b the one it runs next; the rest comes back to the queue.
    await turnsUntil(() => a.skips.length >= onA.length - 1 && b.skips.length >= onB.length - 2);
    expect(a.skips.sort((x, y) => x - y)).toEqual(onA.slice(1).map((run) => run.id));
    expect(b.skips.sort((x, y) => x - y)).toEqual(onB.slice(2).map((run) => run.id));
    for (const id of a.skips) a.done(id, { skipped: true });
    for (const id of b.skips) b.done(id, { skipped: true });
    for (let i = 0; i < 5; i++) await turn();
    expect(a.runs.length).toBe(onA.length + 1);
    expect(b.runs.length).toBe(onB.length);
    // b ends its chunk while a still runs its one: b gets the next, a nothing more.
    b.answer(onB[1]!, double, { ms: 200 });
    await turnsUntil(() => b.runs.length > onB.length);
    expect(b.runs.length).toBe(onB.length + 1);
    expect(a.runs.length).toBe(onA.length + 1);
    a.automate();
    b.automate();
    await expect(flood).resolves.toEqual(Array.from({ length: 24 }, (_, i) => 2 * i));
  });
});

describe('an idle child never waits while chunks wait in another child’s pipe behind an overdue one', () => {
  it('two children kept fed; one ends its chunks, the other’s running chunk stays far past its usual time: the chunks behind it come back to the idle child', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    try {
      const fp = fakePool({ processes: 2 });
      const [a, b] = [fp.children[0]!, fp.children[1]!];
      a.ready();
      b.ready();
      const call = pool(fp).apply('double', [0]);
      a.answer(await a.nextRun(), double, { ms: 0 });
      await call;
      const flood = pool(fp).map('double', Array.from({ length: 24 }, (_, i) => i), { chunksize: 1 });
      await turnsUntil(() => a.runs.length + b.runs.length >= 25);
      const onA = a.runs.slice(1);
      const onB = b.runs.slice();
      a.start(onA[0]!.id);
      // b runs its chunks as fast as ever, and is left idle with nothing queued.
      for (const run of onB) b.answer(run, double, { ms: 0 });
      for (let i = 0; i < 5; i++) await turn();
      expect(a.skips).toEqual([]);
      // a's running chunk goes on, far past its task's usual time.
      vi.advanceTimersByTime(50);
      await turnsUntil(() => a.skips.length >= onA.length - 1);
      expect(a.skips.sort((x, y) => x - y)).toEqual(onA.slice(1).map((run) => run.id));
      for (const id of a.skips) a.done(id, { skipped: true });
      // They all go to b: none goes back behind the overdue chunk.
      await turnsUntil(() => b.runs.length >= onB.length + onA.length - 1);
      expect(b.runs.length).toBe(onB.length + onA.length - 1);
      expect(a.runs.length).toBe(onA.length + 1);
      a.automate();
      b.automate();
      await expect(flood).resolves.toEqual(Array.from({ length: 24 }, (_, i) => 2 * i));
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('the first failure stops what a child holds of the call', () => {
  it('each run names its call and first index; the child drops the call’s later chunks after a failure in it, none announced to run', async () => {
    let ran = 0;
    const failsAt0 = (x: number): number => {
      ran++;
      if (x === 0) throw new RangeError('item 0');
      return x;
    };
    const tasks = { ...addTasks, failsAt0 };
    const fp = fakePool({ processes: 1 }, tasks);
    await pool(fp).map('failsAt0', Array.from({ length: 200 }, (_, i) => i + 1), { chunksize: 1 });
    const child = fp.children[0]!;
    const before = child.runs.length;
    ran = 0;
    const [other, failing] = [pool(fp).map('failsAt0', [1, 2], { chunksize: 1 }), pool(fp).map('failsAt0', Array.from({ length: 20 }, (_, i) => i), { chunksize: 1 })];
    await expect(failing).rejects.toThrow(RangeError);
    await expect(other).resolves.toEqual([1, 2]);
    const runs = child.runs.slice(before);
    const calls = [...new Set(runs.map((run) => run.call))];
    expect(calls).toHaveLength(2);
    const froms = runs.filter((run) => run.call === calls[1]).map((run) => run.from);
    expect(froms.length).toBeGreaterThan(2);
    expect(froms).toEqual(froms.map((_, i) => i));
    // The other call's two items and item 0: nothing of the failed call after its failure.
    expect(ran).toBe(3);
  });
});

describe('timeout: the child marks the end of its items', () => {
  it('an item marked ended stops its timer: the result may take far longer than the timeout to arrive; the next item is timed from its report', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const fp = fakePool({ processes: 1 });
      const child = fp.children[0]!;
      child.ready();
      const mapped = pool(fp).map('double', [1, 2], { chunksize: 2, timeout: 100 });
      const run = await child.nextRun();
      expect(run.timed).toBe(true);
      child.start(run.id);
      vi.advanceTimersByTime(60);
      child.ended(run.id, 1);
      // The result is in transit for 10 timeouts: nothing is charged.
      vi.advanceTimersByTime(1000);
      await turn();
      expect(child.kills).toEqual([]);
      child.items(run.id, 0, [2]);
      // Item 1 runs from the report on, and overruns.
      vi.advanceTimersByTime(150);
      await turnsUntil(() => child.kills.length > 0);
      expect(child.kills).toEqual(['SIGKILL']);
      child.exit(null, 'SIGKILL');
      await expect(mapped).rejects.toMatchObject({ code: 'PROCPOOL_TASK_TIMEOUT' });
    } finally {
      vi.useRealTimers();
    }
  });
});
