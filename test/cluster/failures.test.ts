/**
 * The cluster's failure catalogue, one row per injected failure, against
 * real processes: a worker SIGKILLed mid-chunk, the caller killed, Redis
 * killed (and restarted), stops reaching a remote running item.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { PoolClosedError } from 'procpool';
import { ClusterUnavailableError } from 'procpool/cluster';
import { describeCluster } from './gate.js';
import { alive, cleanEnv, clusterPools, runs, startWorker, stopWorkers, tasksModule, waitFor } from './harness.js';
import { startRedis, type RedisServer } from './redis.js';

const caller = fileURLToPath(new URL('../fixtures/cluster-caller.mjs', import.meta.url));

describeCluster('cluster: failures', () => {
  let redis: RedisServer;
  let dir: string;
  const { open, terminateAll } = clusterPools(() => redis.url);
  const items = (n: number, ms: number): Array<[string, number, number]> => Array.from({ length: n }, (_, i) => [dir, i, ms]);

  beforeEach(async () => {
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'procpool-cluster-'));
  });
  afterEach(async () => {
    await terminateAll();
    await stopWorkers();
    await redis.stop();
  });

  // How soon it runs again is a figure (npm run bench: worker loss → completion), not a test: the bound here is a hang bound.
  it('a worker SIGKILLed mid-chunk: its chunks run again on another (at least once, counted)', { timeout: 90_000 }, async () => {
    const first = await startWorker(redis.url, ['-j', '2']);
    const pool = open();
    // Long enough to outlast the second worker's start on a loaded machine: they are surely running at the kill.
    const call = pool.starmap('markThenSleep', items(2, 8000), { chunksize: 1 });
    await waitFor('both chunks running on the first worker', () => runs(dir).length === 2);
    await startWorker(redis.url, ['-j', '2']);
    first.signal('SIGKILL');
    await waitFor('both chunks running again', () => runs(dir).length === 4, 60_000);
    expect(await call).toEqual([0, 1]);
    const log = runs(dir);
    expect(pool.stats.restarts, JSON.stringify(log)).toBe(2);
    for (const item of [0, 1]) {
      const ran = log.filter((run) => run.item === item);
      expect(ran).toHaveLength(2);
      expect(ran[0]!.ppid).toBe(first.pid);
      expect(ran[1]!.ppid).not.toBe(first.pid);
    }
  });

  it('the caller killed: workers drop its work within 30 s, and Redis is left clean', { timeout: 60_000 }, async () => {
    await startWorker(redis.url);
    await startWorker(redis.url);
    const child = spawn(process.execPath, [caller, redis.url, tasksModule, dir], { env: cleanEnv, stdio: 'inherit' });
    const exited = once(child, 'exit');
    await waitFor('the caller’s work running', () => runs(dir).length >= 2);
    child.kill('SIGKILL');
    await exited;
    const killedAt = performance.now();
    const connection = new Redis(redis.url);
    const queueName = `cluster-tasks.mjs-${(await connection.keys('procpool:cluster-tasks.mjs-*:meta'))[0]!.split(':')[1]!.split('-').pop()}`;
    const queue = new Queue(queueName, { connection, prefix: 'procpool' });
    try {
      const leftovers = async (): Promise<string[]> =>
        (await connection.keys('procpool:*')).filter((key) => !/:(meta|id|events|stalled-check|marker|@workers|@worker:[\w-]+)$/.test(key));
      let seen = '';
      await waitFor('no job, caller key or result left in Redis', async () => {
        const counts = await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized', 'completed', 'failed');
        const left = await leftovers();
        seen = JSON.stringify({ counts, left });
        return Object.values(counts).every((count) => count === 0) && left.length === 0;
      }, 30_000).catch((error: Error) => {
        throw new Error(`${error.message}: ${seen}`);
      });
      expect(performance.now() - killedAt).toBeLessThan(30_000);
      expect(runs(dir).length).toBeLessThan(40);
    } finally {
      await queue.close();
      connection.disconnect();
    }
  });

  it('Redis killed and restarted mid-call: the call completes with every item (re-run), or rejects typed; never hangs', async () => {
    await startWorker(redis.url);
    await startWorker(redis.url);
    const pool = open({ unavailableTimeout: 30_000 });
    const call = pool.starmap('markThenSleep', items(6, 700), { chunksize: 1 }).then(
      (values) => ({ values }),
      (error: unknown) => ({ error }),
    );
    await waitFor('work running', () => runs(dir).length >= 1);
    await redis.stop('SIGKILL');
    redis = await startRedis(redis.port);
    // Redis came back empty within unavailableTimeout: the lost jobs are added again, every item completes.
    expect(await call).toEqual({ values: [0, 1, 2, 3, 4, 5] });
    const ran = new Set(runs(dir).map((run) => run.item));
    expect([...ran].sort()).toEqual([0, 1, 2, 3, 4, 5]);
    // Workers reconnected: the cluster serves again.
    expect(await pool.apply('add', [1, 2])).toBe(3);
  });

  it('the only worker lost: the chunk it ran fails with ClusterUnavailableError (no-worker) after workerTimeout; close/join end', async () => {
    const worker = await startWorker(redis.url);
    const pool = open({ workerTimeout: 1000 });
    const call = pool.apply('markThenSleep', [dir, 0, 60_000]).catch((thrown: unknown) => thrown);
    await waitFor('the item running', () => runs(dir).length === 1);
    worker.signal('SIGKILL');
    await worker.exited;
    const error = await call;
    expect(error).toBeInstanceOf(ClusterUnavailableError);
    expect(error).toMatchObject({ code: 'PROCPOOL_CLUSTER_UNAVAILABLE', reason: 'no-worker' });
    pool.close();
    await pool.join();
  });

  it('a job Redis lost (twice) is added again: the call completes (no item failed for it)', async () => {
    await startWorker(redis.url);
    const pool = open();
    await pool.ready();
    const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
    const queue = new Queue(pool.queue, { connection, prefix: 'procpool' });
    try {
      // Paused: the job stays in the queue, where it can be lost.
      await queue.pause();
      const call = pool.apply('add', [20, 22]).then((value) => ({ value }), (error: unknown) => ({ error }));
      const waiting = async (): Promise<string[]> => (await queue.getJobs(['wait'])).map((job) => job.id!);
      await waitFor('the job queued', async () => (await waiting()).length === 1);
      // Lost twice: the second time its chunk would be charged with ChunkLostError if a loss were not re-run.
      const lost: string[] = [];
      for (const time of [1, 2]) {
        const [id] = await waiting();
        expect(await queue.remove(id!)).toBe(1);
        lost.push(id!);
        await waitFor(`the job added again (${time})`, async () => (await waiting()).some((other) => !lost.includes(other)));
      }
      await queue.resume();
      expect(await call).toEqual({ value: 42 });
    } finally {
      await queue.close();
      connection.disconnect();
    }
  });

  it('Redis silent (its host gone without closing the socket: SIGSTOP): calls reject with ClusterUnavailableError after unavailableTimeout', async () => {
    await startWorker(redis.url);
    const pool = open({ unavailableTimeout: 1000 });
    await pool.ready();
    const call = pool.apply('markThenSleep', [dir, 0, 60_000]).catch((thrown: unknown) => thrown);
    await waitFor('work running', () => runs(dir).length >= 1);
    process.kill(redis.pid, 'SIGSTOP');
    try {
      const error = await call;
      expect(error).toBeInstanceOf(ClusterUnavailableError);
      expect(error).toMatchObject({ reason: 'redis' });
      expect(await pool.apply('add', [1, 1]).catch((thrown: unknown) => thrown)).toBeInstanceOf(ClusterUnavailableError);
    } finally {
      process.kill(redis.pid, 'SIGCONT');
    }
    // Back: the pool serves again.
    await waitFor('the pool serving again', async () => (await pool.apply('add', [1, 2]).catch(() => 0)) === 3);
  });

  it('Redis gone for good: calls reject with ClusterUnavailableError after unavailableTimeout', async () => {
    await startWorker(redis.url);
    const pool = open({ unavailableTimeout: 1000 });
    await pool.ready();
    const call = pool.starmap('markThenSleep', items(2, 60_000), { chunksize: 1 });
    await waitFor('work running', () => runs(dir).length >= 1);
    await redis.stop('SIGKILL');
    const error = await call.catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(ClusterUnavailableError);
    expect(error).toMatchObject({ code: 'PROCPOOL_CLUSTER_UNAVAILABLE', reason: 'redis' });
    const later = await pool.apply('add', [1, 1]).catch((thrown: unknown) => thrown);
    expect(later).toBeInstanceOf(ClusterUnavailableError);
    // Back, so that the workers can leave cleanly.
    redis = await startRedis(redis.port);
  });

  it('signal, timeout and terminate() stop the remote running item (its child is killed); the worker serves on', async () => {
    await startWorker(redis.url);
    const pool = open();
    const controller = new AbortController();
    const aborted = pool.apply('markThenSleep', [dir, 7, 60_000], { signal: controller.signal }).catch((thrown: unknown) => thrown);
    await waitFor('the item running', () => existsSync(join(dir, 'started-7')));
    const first = Number(readFileSync(join(dir, 'started-7'), 'utf8'));
    controller.abort();
    expect(await aborted).toMatchObject({ name: 'AbortError' });
    await waitFor('the child running the aborted item gone', () => !alive(first));
    expect(await pool.apply('add', [2, 2])).toBe(4);
    const terminated = pool.apply('markThenSleep', [dir, 8, 60_000]).catch((thrown: unknown) => thrown);
    await waitFor('the next item running', () => existsSync(join(dir, 'started-8')));
    const second = Number(readFileSync(join(dir, 'started-8'), 'utf8'));
    await pool.terminate();
    expect(await terminated).toBeInstanceOf(PoolClosedError);
    await waitFor('the child running the terminated item gone', () => !alive(second));
  });
});
