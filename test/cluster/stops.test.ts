/**
 * Stopping work on real `procpool worker` processes: a worker stopped once
 * (its running chunk finishes there) or twice (the chunk goes back to the
 * queue and runs on another), a stop mark whose message was missed, a
 * per-item timeout reaching the remote child.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { TaskTimeoutError } from 'procpool';
import { describeCluster } from './gate.js';
import { alive, clusterPools, runs, startWorker, stopWorkers, waitFor } from './harness.js';
import { startRedis, type RedisServer } from './redis.js';

describeCluster('cluster: stopping remote work', () => {
  let redis: RedisServer;
  let dir: string;
  const { open, terminateAll } = clusterPools(() => redis.url);
  const startedPid = (item: number): number => Number(readFileSync(join(dir, `started-${item}`), 'utf8'));

  beforeAll(async () => {
    redis = await startRedis();
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'procpool-cluster-'));
  });
  afterEach(async () => {
    await terminateAll();
    await stopWorkers();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('SIGTERM once: the worker finishes its running chunk, sends its result, then exits', async () => {
    const worker = await startWorker(redis.url);
    const pool = open();
    const call = pool.apply('markThenSleep', [dir, 0, 1500]);
    await waitFor('the item running', () => existsSync(join(dir, 'started-0')));
    worker.signal('SIGTERM');
    expect(await call).toBe(0);
    await worker.exited;
    expect(runs(dir)).toEqual([{ item: 0, pid: startedPid(0), ppid: worker.pid }]);
    expect(worker.output()).toMatch(/stopped after 1 chunks \(1 items/);
    expect(pool.stats.restarts).toBe(0);
  });

  it('SIGTERM twice: the running chunk goes back to the queue and completes on another worker (a restart, counted)', async () => {
    const first = await startWorker(redis.url);
    const pool = open();
    const call = pool.apply('markThenSleep', [dir, 0, 2000]);
    await waitFor('the item running on the first worker', () => runs(dir).length === 1);
    const second = await startWorker(redis.url);
    first.signal('SIGTERM');
    // Two signals sent at once may merge into one: the second goes once the first was seen.
    await waitFor('the first worker stopping', () => /stopping/.test(first.output()));
    first.signal('SIGTERM');
    expect(await call).toBe(0);
    await first.exited;
    const log = runs(dir);
    expect(log.map((run) => [run.item, run.ppid])).toEqual([
      [0, first.pid],
      [0, second.pid],
    ]);
    expect(alive(log[0]!.pid)).toBe(false);
    expect(pool.stats.restarts).toBe(1);
  });

  it('a stop mark whose message was missed (pub/sub keeps nothing) still stops the running item', async () => {
    await startWorker(redis.url);
    const pool = open();
    void pool.apply('markThenSleep', [dir, 0, 60_000]).catch(() => undefined);
    await waitFor('the item running', () => existsSync(join(dir, 'started-0')));
    const pid = startedPid(0);
    const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
    const queue = new Queue(pool.queue, { connection, prefix: 'procpool' });
    try {
      const [job] = await queue.getActive();
      // The mark alone, as a caller leaves it when its message went to a worker not listening then.
      await connection.set(`procpool:${pool.queue}:@cancelled:${job!.id!}`, '1', 'PX', 60_000);
      await waitFor('the child running the marked item gone', () => !alive(pid), 10_000);
    } finally {
      await queue.close();
      connection.disconnect();
    }
  });

  it('a per-item timeout kills the remote child running the item; the worker serves on', async () => {
    await startWorker(redis.url);
    const pool = open();
    await expect(pool.apply('markThenSleep', [dir, 3, 60_000], { timeout: 500 })).rejects.toBeInstanceOf(TaskTimeoutError);
    await waitFor('the child running the timed-out item gone', () => !alive(startedPid(3)));
    expect(await pool.apply('add', [1, 2])).toBe(3);
  });
});
