/**
 * Cluster logic that a real Redis cannot be made to trigger on cue: the
 * result reader when a read is cut, the awake clock through a blocked loop, the URL check's message,
 * the delivery timing. Needs no Redis.
 */
import { describe, expect, it } from 'vitest';
import { ClusterPool, serve } from 'procpool/cluster';
import { defaultTiming } from '../../src/cluster/queue.js';
import type { Redis } from '../../src/cluster/redis.js';
import { ResultReader } from '../../src/cluster/results.js';
import { AwakeClock } from '../../src/cluster/awake.js';
import { Slots } from '../../src/cluster/slots.js';
import { tasksModule, waitFor } from './harness.js';

describe('cluster units', () => {
  it('the result reader removes a result only after it has it: a read cut on its way is read again, then trimmed', async () => {
    const result = { job: 'c-7', runs: 1, report: '', ms: 1 };
    const list = [JSON.stringify(result)];
    const calls: string[] = [];
    let reads = 0;
    const fake = {
      once: () => undefined,
      off: () => undefined,
      eval: async () => {
        calls.push('read');
        // The first reply is cut on its way (the connection drops): Redis kept the result.
        if (reads++ === 0) throw new Error('Connection is closed.');
        return [...list];
      },
      ltrim: async (_key: string, from: number) => {
        calls.push('trim');
        list.splice(0, from);
        return 'OK';
      },
      blpop: async () => {
        calls.push('block');
        await new Promise((resolve) => setTimeout(resolve, 10));
        return null;
      },
    } as unknown as Redis;
    const taken: unknown[] = [];
    const reader = new ResultReader(fake, 'results', 'token', (one) => taken.push(one));
    try {
      await waitFor('the reader blocking for more', () => calls.includes('block'));
      expect(calls.slice(0, 4)).toEqual(['read', 'read', 'trim', 'read']);
      expect(taken).toEqual([result]);
      expect(list).toEqual([]);
    } finally {
      reader.stop();
      await reader.done;
    }
  });

  it('the awake clock does not count a blocked event loop, and a bound that expired in it lets a reply waiting there win', async () => {
    const clock = new AwakeClock();
    try {
      let answer!: (value: string) => void;
      const reply = new Promise<string>((resolve) => (answer = resolve));
      const bounded = clock.bound(reply, 200, () => new Error('unanswered'));
      const before = clock.now();
      const until = performance.now() + 1500;
      while (performance.now() < until) {
        // Blocked on purpose: 1.5 s, over seven times the bound.
      }
      // The reply arrived during the block: it is read before any timer's verdict.
      setImmediate(() => answer('reply'));
      expect(await bounded).toBe('reply');
      expect(clock.now() - before).toBeLessThan(1000);
      await expect(clock.bound(new Promise(() => undefined), 50, () => new Error('unanswered'))).rejects.toThrow('unanswered');
    } finally {
      clock.stop();
    }
  });

  it.each([
    ['redis:/:s3cret@host', 's3cret'],
    ['redis://:s3cret@', 's3cret'],
    ['http://user:s3cret@host:6379', 's3cret'],
  ])('an invalid Redis URL (%s) is refused without showing its password', async (url, password) => {
    let thrown: unknown;
    try {
      new ClusterPool(tasksModule, { redis: url });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(TypeError);
    expect((thrown as Error).message).toMatch(/redis:\/\/ or rediss:\/\/ URL/);
    expect((thrown as Error).message).not.toContain(password);
    const refused = await serve({ module: tasksModule, redis: url }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(TypeError);
    expect((refused as Error).message).not.toContain(password);
  });

  it('delivery timing: a lost worker’s chunk runs elsewhere within 10 s, and a lock outlives two long pauses of 2 s', () => {
    expect(defaultTiming.lockDuration + defaultTiming.stalledInterval).toBeLessThanOrEqual(10_000);
    // Renewed every half of it: a renewal may come up to lock/2 late before the lock lapses.
    expect(defaultTiming.lockDuration / 2).toBeGreaterThanOrEqual(2000);
  });

  it("a worker's slots: short chunks take jobs deeper; once chunks are long, the jobs waiting past the new depth go back (newest first); a stop gives back the rest", async () => {
    const slots = new Slots(1);
    expect(slots.taken).toBe(2);
    for (let i = 0; i < 5; i++) slots.timed(0.5);
    expect(slots.taken).toBe(40);
    expect(await slots.take(undefined)).toBe('slot');
    const waiting = Array.from({ length: 15 }, (_, i) => slots.take(undefined).then((granted) => [i, granted] as const));
    expect(slots.waiting).toBe(15);
    // A long chunk: two at a time from now on, one running and one waiting; the other 14 go back.
    expect(slots.timed(5000)).toBe(true);
    expect(slots.taken).toBe(2);
    expect(slots.waiting).toBe(1);
    slots.free();
    const settled = await Promise.all(waiting);
    expect(settled[0]).toEqual([0, 'slot']);
    expect(settled.slice(1).every(([, granted]) => granted === 'refused')).toBe(true);
    const next = slots.take(undefined);
    slots.release();
    expect(await next).toBe('refused');
    expect(await slots.take(undefined)).toBe('refused');
  });

  it("a worker's slots: a job given a child adopts the waiting ones that fit (oldest first, up to its share), and a depth wavering by one gives no job back", async () => {
    const slots = new Slots<string>(1);
    for (let i = 0; i < 5; i++) slots.timed(1);
    expect(slots.taken).toBe(20);
    expect(slots.merged).toBe(20);
    expect(await slots.take('first')).toBe('slot');
    const names = ['a1', 'b1', 'a2', 'a3', 'a4'];
    const grants = names.map((name) => slots.take(name));
    expect(slots.adopt((name): name is string => name.startsWith('a'), 3)).toEqual(['a1', 'a2', 'a3']);
    expect(slots.waiting).toBe(2);
    // 1 ms → 1.05 ms: depth 20 → 19, under a quarter less: kept, nothing given back.
    expect(slots.timed(1.25)).toBe(false);
    expect(slots.taken).toBe(20);
    slots.free();
    slots.release();
    expect(await Promise.all(grants)).toEqual(['joined', 'slot', 'joined', 'joined', 'refused']);
  });
});
