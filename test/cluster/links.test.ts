/**
 * Slow and cut links (a TCP proxy between a process and Redis): big
 * payloads take their time without being taken for an outage, a result
 * cut on its way is read again rather than run again, and a worker's lock
 * renewals never wait behind the result it pushes.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { describeCluster } from './gate.js';
import { clusterPools, finished, runs, startWorker, stopWorkers, waitFor } from './harness.js';
import { TcpProxy } from './proxy.js';
import { startRedis, type RedisServer } from './redis.js';

const mb = 1 << 20;

describeCluster('cluster: slow and cut links', () => {
  let redis: RedisServer;
  let proxy: TcpProxy;
  let dir: string;
  const { open, terminateAll } = clusterPools(() => proxy.url);

  beforeEach(async () => {
    redis = await startRedis();
    proxy = await TcpProxy.start({ port: redis.port });
    dir = mkdtempSync(join(tmpdir(), 'procpool-links-'));
  });
  afterEach(async () => {
    await terminateAll();
    await stopWorkers();
    await proxy.close();
    await redis.stop();
  });

  it('a result cut on its way to the caller is read again, not run again', { timeout: 60_000 }, async () => {
    await startWorker(redis.url);
    const pool = open();
    await pool.ready();
    const value = `0:${'v'.repeat(6 * mb)}`;
    const call = pool.apply('markThenEcho', [dir, 0, value, 1000]);
    await waitFor('the chunk running', () => runs(dir).length === 1);
    // The job is on the worker: what goes toward the caller from now on in bulk is its result.
    proxy.cutAfter(mb);
    const got = await call;
    expect(proxy.cuts).toBe(1);
    expect(got === value).toBe(true);
    expect(runs(dir)).toHaveLength(1);
    expect(pool.stats.restarts).toBe(0);
  });

  it("the caller's link black-holed for 6 s (a partition) with a result on its way: healed, the call completes and the chunk ran once", { timeout: 60_000 }, async () => {
    await startWorker(redis.url);
    // The caller's heartbeat outlives the partition: the worker keeps its result for it.
    const pool = open({ unavailableTimeout: 30_000, callerTtl: 30_000 });
    await pool.ready();
    const call = pool.apply('markSleepDone', [dir, 0, 1000]);
    await waitFor('the chunk running', () => runs(dir).length === 1);
    proxy.set({ blackhole: true });
    const heldAt = performance.now();
    // Longer than a small command's bound (5 s): a reader that gave up on its read would have lost the result.
    await waitFor('the chunk done on the worker, and 6 s of partition', () => finished(dir).length === 1 && performance.now() - heldAt > 6000);
    proxy.heal();
    expect(await call).toBe(0);
    expect(runs(dir)).toHaveLength(1);
  });

  it("the caller's link black-holed for 7 s while it adds a job: healed, the job is added (once) and the call completes", { timeout: 60_000 }, async () => {
    await startWorker(redis.url);
    const pool = open({ unavailableTimeout: 30_000, callerTtl: 30_000 });
    await pool.ready();
    proxy.set({ blackhole: true });
    const heldAt = performance.now();
    const call = pool.apply('markSleepDone', [dir, 0, 0]);
    // Longer than an add's bound (5 s): the add is sent again on a new connection, never counted as an outage.
    await waitFor('7 s of partition', () => performance.now() - heldAt > 7000);
    proxy.heal();
    expect(await call).toBe(0);
    expect(runs(dir)).toHaveLength(1);
  });

  it("the caller's link slow (1 MB/s each way): a 6 MB chunk is added and its result read, not taken for an outage; it runs once", { timeout: 120_000 }, async () => {
    await startWorker(redis.url);
    const pool = open();
    await pool.ready();
    proxy.set({ bytesPerSecond: mb });
    const value = `0:${'v'.repeat(6 * mb)}`;
    const got = await pool.apply('markThenEcho', [dir, 0, value]);
    expect(got === value).toBe(true);
    expect(runs(dir)).toHaveLength(1);
  });

  it("the worker's link slow (1 MB/s): its lock renewals do not wait behind the 8 MB result it pushes; the chunk runs once", { timeout: 120_000 }, async () => {
    const slow = await startWorker(proxy.url);
    const caller = clusterPools(() => redis.url);
    try {
      const pool = caller.open();
      await pool.ready();
      proxy.set({ bytesPerSecond: mb });
      const call = pool.apply('markThenMake', [dir, 0, 8 * mb]);
      await waitFor('the chunk running on the slow worker', () => runs(dir).length === 1);
      expect(runs(dir)[0]!.ppid).toBe(slow.pid);
      // A worker on a fast link: its stalled check would take the chunk over if the slow one's lock lapsed.
      await startWorker(redis.url);
      const got = await call;
      expect(got.startsWith('0:') && got.length === 2 + 8 * mb).toBe(true);
      expect(runs(dir)).toHaveLength(1);
    } finally {
      await caller.terminateAll();
    }
  });
});
