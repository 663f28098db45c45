/**
 * `procpool worker` as a deployed process: stopping with and without Redis
 * (SIGTERM drains, a second one stops now, both bounded), a stopping worker
 * fetching nothing more, what its task processes can see.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { describeCluster } from './gate.js';
import { alive, childrenOf, cleanEnv, cli, clusterPools, runs, startWorker, stopWorkers, tasksModule, waitFor } from './harness.js';
import { freePort, startRedis, type RedisServer } from './redis.js';

/** How long a stop may take on this loaded machine: a hang bound, not a latency. */
const stopBound = 10_000;

describeCluster('cluster: the worker process', () => {
  let redis: RedisServer;
  let dir: string;
  const { open, terminateAll } = clusterPools(() => redis.url);

  beforeEach(async () => {
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'procpool-cluster-'));
  });
  afterEach(async () => {
    await terminateAll();
    await stopWorkers();
    await redis.stop();
  });

  /** Resolves with the milliseconds `worker` took to exit after `from`; fails past `bound`. */
  const exitWithin = async (worker: { exited: Promise<unknown>; output(): string }, from: number, bound: number): Promise<number> => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`the worker did not exit within ${bound} ms: ${worker.output()}`)), bound)));
    try {
      await Promise.race([worker.exited, late]);
    } finally {
      clearTimeout(timer);
    }
    return performance.now() - from;
  };

  it('Redis unreachable, idle worker: SIGTERM ends it at once (bounded)', async () => {
    const worker = await startWorker(redis.url);
    await redis.stop('SIGKILL');
    await waitFor('the worker noticing Redis gone', () => /lost its connection to Redis/.test(worker.output()));
    const at = performance.now();
    worker.signal('SIGTERM');
    await exitWithin(worker, at, stopBound);
    expect(worker.children.every((pid) => !alive(pid))).toBe(true);
  });

  it('Redis unreachable from the start: the worker says so once, never "serving", and SIGTERM ends it at once', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [cli, 'worker', tasksModule, '--redis', `redis://127.0.0.1:${port}`, '-j', '1'], { env: cleanEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = once(child, 'exit');
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    try {
      await waitFor('the worker saying it cannot reach Redis', () => /cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+: connection refused/.test(output));
      const children = childrenOf(child.pid!);
      const at = performance.now();
      child.kill('SIGTERM');
      await exitWithin({ exited, output: () => output }, at, stopBound);
      expect(output).not.toMatch(/serving/);
      expect(output.match(/cannot reach Redis/g)).toHaveLength(1);
      await waitFor('its children gone', () => children.every((pid) => !alive(pid)));
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  it('Redis unreachable, busy worker: SIGTERM ends it after its running chunk (bounded)', async () => {
    const worker = await startWorker(redis.url);
    const pool = open({ unavailableTimeout: 60_000 });
    void pool.apply('markSleepFinish', [dir, 0, 2000]).catch(() => undefined);
    await waitFor('the item running', () => runs(dir).length === 1);
    await redis.stop('SIGKILL');
    const at = performance.now();
    worker.signal('SIGTERM');
    await exitWithin(worker, at, 2000 + stopBound);
    // It waited for its running chunk.
    expect(existsSync(join(dir, 'finished-0'))).toBe(true);
  });

  it('Redis unreachable, busy worker: a second SIGTERM ends it now (its chunk is not finished)', async () => {
    const worker = await startWorker(redis.url);
    const pool = open({ unavailableTimeout: 60_000 });
    void pool.apply('markSleepFinish', [dir, 0, 60_000]).catch(() => undefined);
    await waitFor('the item running', () => runs(dir).length === 1);
    await redis.stop('SIGKILL');
    worker.signal('SIGTERM');
    await waitFor('the worker stopping', () => /stopping/.test(worker.output()));
    const at = performance.now();
    worker.signal('SIGTERM');
    await exitWithin(worker, at, stopBound);
    expect(existsSync(join(dir, 'finished-0'))).toBe(false);
    await waitFor('the child running the item gone', () => runs(dir).every((run) => !alive(run.pid)));
  });

  it('a stopping worker runs no chunk it had fetched but not started: that chunk runs on another worker', async () => {
    const first = await startWorker(redis.url);
    const pool = open();
    const call = pool.starmap('markSleepFinish', [[dir, 0, 1500], [dir, 1, 0]], { chunksize: 1 });
    await waitFor('item 0 running', () => runs(dir).length === 1);
    // Both jobs are the first worker's (one running, one fetched ahead) before it is told to stop.
    const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
    const queue = new Queue(pool.queue, { connection, prefix: 'procpool' });
    try {
      await waitFor('both jobs taken by the first worker', async () => (await queue.getActiveCount()) === 2);
    } finally {
      await queue.close();
      connection.disconnect();
    }
    first.signal('SIGTERM');
    await waitFor('the first worker stopping', () => /stopping/.test(first.output()));
    const second = await startWorker(redis.url);
    expect(await call).toEqual([0, 1]);
    await first.exited;
    expect(runs(dir).map((run) => [run.item, run.ppid])).toEqual([
      [0, first.pid],
      [1, second.pid],
    ]);
    expect(first.output()).toMatch(/stopped after 1 chunks/);
    // Given back unstarted, it ran once: not a restart.
    expect(pool.stats.restarts).toBe(0);
  });

  it("the Redis URL and its password never reach the worker's task processes", async () => {
    const password = 's3cret-for-test';
    await redis.stop();
    redis = await startRedis(undefined, ['--requirepass', password]);
    const url = `redis://:${password}@127.0.0.1:${redis.port}`;
    await startWorker(url, [], undefined, { viaEnv: true });
    const pool = open({ redis: url });
    const env = await pool.apply('environment', []);
    expect(env.PROCPOOL_REDIS).toBeUndefined();
    expect(JSON.stringify(env)).not.toContain(password);
  });
});
