/**
 * The right value whatever Redis forgets: job ids are the caller's (its id
 * and a sequence), so a chunk that finishes after Redis lost its data (a
 * restart without persistence, a FLUSHALL) can never be taken for another
 * call's chunk. Items echo their own ids; each value must be its own.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { describeCluster } from './gate.js';
import { clusterPools, finished, runs, startWorker, stopWorkers, waitFor } from './harness.js';
import { startRedis, type RedisServer } from './redis.js';

describeCluster('cluster: identity across Redis data loss', () => {
  let redis: RedisServer;
  let dir: string;
  const { open, terminateAll } = clusterPools(() => redis.url);

  beforeEach(async () => {
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'procpool-identity-'));
  });
  afterEach(async () => {
    await terminateAll();
    await stopWorkers();
    await redis.stop();
  });

  const loseData = {
    restart: async () => {
      await redis.stop('SIGKILL');
      redis = await startRedis(redis.port);
    },
    flushall: async () => {
      const connection = new Redis(redis.url);
      try {
        await connection.flushall();
      } finally {
        connection.disconnect();
      }
    },
  };

  it.each(['restart', 'flushall'] as const)('Redis loses its data mid-call (%s): chunks finished after it go to their own call, never to a new one', { timeout: 90_000 }, async (how) => {
    const worker = await startWorker(redis.url, ['-j', '4']);
    const pool = open({ unavailableTimeout: 60_000 });
    await pool.ready();
    const settle = <T>(promise: Promise<T>) => promise.then((values) => ({ values }), (error: unknown) => ({ error }));
    const oldIds = [0, 1, 2, 3];
    const old = settle(pool.starmap('markSleepDone', oldIds.map((id) => [dir, id, 500] as [string, number, number]), { chunksize: 1 }));
    await waitFor('the first call’s chunks running', () => runs(dir).length === 4);
    // Frozen, the worker can neither see the loss nor push its results; its children finish meanwhile.
    worker.signal('SIGSTOP');
    try {
      await waitFor('the first call’s chunks finished in the children', () => finished(dir).length === 4);
      await loseData[how]();
      // Added after the loss: with Redis' own counter these get the ids the finished chunks had.
      const newIds = [100, 101, 102, 103];
      const fresh = settle(pool.starmap('markSleepDone', newIds.map((id) => [dir, id, 500] as [string, number, number]), { chunksize: 1 }));
      const connection = new Redis(redis.url);
      try {
        await waitFor('the new call’s jobs queued and the caller’s heartbeat back', async () => (await connection.keys('procpool:*')).filter((key) => /:@caller:/.test(key) || /:wait$/.test(key)).length === 2);
      } finally {
        connection.disconnect();
      }
      worker.signal('SIGCONT');
      expect(await fresh).toEqual({ values: newIds });
      expect(await old).toEqual({ values: oldIds });
    } finally {
      worker.signal('SIGCONT');
    }
  });
});
