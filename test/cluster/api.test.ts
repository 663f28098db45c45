/**
 * The Pool API through the cluster: real redis-server, real `procpool
 * worker` processes. Ordered results across workers, the core calls,
 * fidelity of values and errors, which code runs.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { Pool, PoolClosedError, SerializationError, TaskTimeoutError } from 'procpool';
import { ClusterPool, ClusterUnavailableError } from 'procpool/cluster';
import { describeCluster } from './gate.js';
import { clusterPools, startWorker, stopWorkers, tasksModule, waitFor } from './harness.js';
import { startRedis, type RedisServer } from './redis.js';

type Tasks = typeof import('../fixtures/cluster-tasks.mjs');

describeCluster('cluster: the Pool API across workers', () => {
  let redis: RedisServer;
  const { open, track, terminateAll } = clusterPools(() => redis.url);

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterEach(async () => {
    await terminateAll();
    await stopWorkers();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('returns ordered results across two workers, both of which ran chunks', async () => {
    const [a, b] = await Promise.all([startWorker(redis.url), startWorker(redis.url)]);
    const pool = open();
    await pool.ready();
    await waitFor('both workers announced', () => pool.stats.processes === 2);
    const items = Array.from({ length: 40 }, (_, i) => i);
    const pids = await pool.map('pid', items.map(() => undefined), { chunksize: 1 });
    expect(new Set(pids)).toEqual(new Set([...a.children, ...b.children]));
    expect(await pool.map('double', items)).toEqual(items.map((i) => i * 2));
    expect(await pool.starmap('add', items.map((i) => [i, i] as [number, number]))).toEqual(items.map((i) => 2 * i));
  });

  it('default chunking divides by the workers\' children, also for a map made right after the constructor', async () => {
    await Promise.all([startWorker(redis.url), startWorker(redis.url)]);
    const client = new Redis(redis.url);
    try {
      // BullMQ numbers its jobs: its counter tells how many chunks a call queued (other tests share the queue).
      const counter = (queue: string): Promise<number> => client.get(`procpool:${queue}:id`).then(Number);
      const before = await counter(open().queue);
      // A fresh pool, no ready(): before the fix it divided by 1 runner and cut 4 chunks.
      const pool = open();
      const items = Array.from({ length: 800 }, (_, i) => i);
      expect(await pool.map('double', items)).toEqual(items.map((i) => i * 2));
      expect((await counter(pool.queue)) - before).toBe(8);
    } finally {
      client.disconnect();
    }
  });

  it('offers the core calls: apply, the async forms, imap, task by function, stats, close/join, await using', async () => {
    await startWorker(redis.url);
    const tasks = (await import(tasksModule)) as Tasks;
    {
      await using pool = open();
      expect(await pool.apply('add', [2, 3])).toBe(5);
      expect(await pool.apply(tasks.double, [21])).toBe(42);
      expect(await pool.applyAsync('add', [1, 1]).get()).toBe(2);
      expect(await pool.mapAsync('double', [1, 2, 3]).get()).toEqual([2, 4, 6]);
      expect(await pool.starmapAsync('add', [[1, 2], [3, 4]]).get()).toEqual([3, 7]);
      const ordered: number[] = [];
      for await (const value of pool.imap('double', [1, 2, 3, 4], { chunksize: 1 })) ordered.push(value);
      expect(ordered).toEqual([2, 4, 6, 8]);
      const unordered: number[] = [];
      for await (const value of pool.imapUnordered('sleep', [30, 1, 20])) unordered.push(value);
      expect(unordered.sort((x, y) => x - y)).toEqual([1, 20, 30]);
      expect(pool.stats.completed).toBeGreaterThanOrEqual(14);
      expect(pool.stats.children).toHaveLength(1);
    }
    const pool = open();
    pool.close();
    await expect(pool.apply('add', [1, 1])).rejects.toBeInstanceOf(PoolClosedError);
    await pool.join();
  });

  it('carries values and errors with the local rules (compared with a local Pool)', async () => {
    await startWorker(redis.url);
    const pool = open();
    await using local = new Pool<Tasks>(tasksModule, { processes: 1, nodeOptions: [] });
    const value = { map: new Map<unknown, unknown>([[1, new Set([2n])]]), date: new Date(5), big: 2n ** 70n, bytes: new Uint8Array([1, 2, 3]), nested: [{ x: undefined }, null, -0] };
    expect(await pool.apply('echo', [value])).toEqual(value);
    const error = await pool.apply('failRich', ['boom']).catch((thrown: unknown) => thrown);
    const localError = await local.apply('failRich', ['boom']).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(RangeError);
    expect(error).toMatchObject({ name: 'RichError', message: 'boom', code: 'E_RICH' });
    expect(error).toEqual(localError);
    expect({ ...(error as object) }).toEqual({ ...(localError as object) });
    expect((error as Error).cause).toMatchObject({ message: 'root cause' });
    await expect(pool.map('failIfNegative', [1, -2, 3])).rejects.toThrow(TypeError);
    const badArg = await pool.apply('echo', [{ f: () => 1 }]).catch((thrown: unknown) => thrown);
    expect(badArg).toBeInstanceOf(SerializationError);
    expect(badArg).toMatchObject({ direction: 'args', path: 'args[0].f' });
    const badResult = await pool.apply('returnFunction').catch((thrown: unknown) => thrown);
    expect(badResult).toBeInstanceOf(SerializationError);
    expect(badResult).toMatchObject({ code: 'PROCPOOL_SERIALIZATION', direction: 'result' });
    await expect(pool.apply('sleep', [5000], { timeout: 200 })).rejects.toBeInstanceOf(TaskTimeoutError);
    expect(await pool.apply('add', [1, 2])).toBe(3);
  });

  it('fails a malformed job clearly, and the worker serves on', async () => {
    const worker = await startWorker(redis.url);
    const pool = open();
    await pool.ready();
    const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
    const queue = new Queue(pool.queue, { connection, prefix: 'procpool' });
    try {
      const job = await queue.add('echo', { v: 1, nonsense: true });
      await waitFor('the malformed job failed', async () => (await queue.getJobState(job.id!)) === 'failed');
      expect((await queue.getJob(job.id!))?.failedReason).toMatch(/Malformed job data: `module` is not a string/);
      await waitFor('the worker saying it refused the job', () => /refused job/.test(worker.output()));
      expect(await pool.apply('add', [20, 22])).toBe(42);
    } finally {
      await queue.close();
      connection.disconnect();
    }
  });

  it('never runs another version of the module: its own queue, also on an explicit one; the error names the versions that serve', async () => {
    // The same file name in two directories: only the content tells the versions apart.
    const dir = mkdtempSync(join(tmpdir(), 'procpool-cluster-'));
    const v1 = join(dir, 'v1', 'tasks.mjs');
    const v2 = join(dir, 'v2', 'tasks.mjs');
    mkdirSync(dirname(v1));
    mkdirSync(dirname(v2));
    writeFileSync(v1, 'export const version = () => 1;\n');
    writeFileSync(v2, 'export const version = () => 2;\n');
    await startWorker(redis.url, [], v1);
    await startWorker(redis.url, ['--queue', 'shared'], v1);
    const settings = { redis: redis.url, pollInterval: 200, callerTtl: 2000 };
    const same = new ClusterPool(v1, settings);
    const own = new ClusterPool(v2, { ...settings, workerTimeout: 1500 });
    const shared = new ClusterPool(v2, { ...settings, queue: 'shared', workerTimeout: 1500 });
    track(same, own, shared);
    expect(own.queue).not.toBe(same.queue);
    expect(await same.apply('version')).toBe(1);
    for (const pool of [own, shared]) {
      const noWorker = await pool.apply('version').catch((thrown: unknown) => thrown);
      expect(noWorker).toBeInstanceOf(ClusterUnavailableError);
      expect(noWorker).toMatchObject({ reason: 'no-worker' });
      // The v1 workers are named, with both hashes.
      expect((noWorker as Error).message).toMatch(/workers of other versions of this module serve it: module hash [0-9a-f]{16} \(\d workers?\); this caller's module has hash [0-9a-f]{16}/);
    }
  });

  it("keeps BullMQ's events stream (read by nobody) trimmed: 300 jobs leave at most a couple of hundred entries, not thousands", async () => {
    await startWorker(redis.url);
    const pool = open();
    expect(await pool.map('double', Array.from({ length: 300 }, (_, i) => i), { chunksize: 1 })).toHaveLength(300);
    const connection = new Redis(redis.url);
    try {
      // Each job writes several events (added, active, completed, removed…); Redis trims whole stream nodes of 100.
      expect(await connection.xlen(`procpool:${pool.queue}:events`)).toBeLessThanOrEqual(200);
    } finally {
      connection.disconnect();
    }
  });
});
