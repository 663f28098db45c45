/**
 * Paused processes: a caller whose event loop was blocked, or that was
 * stopped (SIGSTOP), judges Redis by a fresh try once it runs again — not
 * by the time it could not look; a worker frozen past its lock whose late
 * result ends the attempt has the copy running elsewhere stopped.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { describeCluster } from './gate.js';
import { alive, cleanEnv, clusterPools, finished, runs, startWorker, stopWorkers, tasksModule, waitFor } from './harness.js';
import { startRedis, type RedisServer } from './redis.js';

const pausedCaller = fileURLToPath(new URL('../fixtures/cluster-paused-caller.mjs', import.meta.url));

describeCluster('cluster: paused processes', () => {
  let redis: RedisServer;
  let dir: string;
  const { open, terminateAll } = clusterPools(() => redis.url);

  beforeEach(async () => {
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'procpool-pauses-'));
  });
  afterEach(async () => {
    await terminateAll();
    await stopWorkers();
    await redis.stop();
  });

  it("the caller's event loop blocked for 3 × unavailableTimeout while Redis is up: its calls complete (no ClusterUnavailableError)", async () => {
    await startWorker(redis.url, ['-j', '2']);
    const pool = open({ unavailableTimeout: 1000 });
    await pool.ready();
    const call = pool.starmap('markSleepDone', [0, 1].map((item) => [dir, item, 300] as [string, number, number]), { chunksize: 1 });
    await waitFor('the chunks running', () => runs(dir).length === 2);
    // A synchronous task in the caller: nothing runs here until the worker has finished and 3 s have passed.
    const until = performance.now() + 3000;
    while (finished(dir).length < 2 || performance.now() < until) {
      // Blocked on purpose.
    }
    expect(await call).toEqual([0, 1]);
    expect(await pool.apply('add', [1, 2])).toBe(3);
  });

  it('a caller stopped (SIGSTOP) past unavailableTimeout while Redis is up: after SIGCONT its call completes', { timeout: 60_000 }, async () => {
    await startWorker(redis.url, ['-j', '2']);
    const child = spawn(process.execPath, [pausedCaller, redis.url, tasksModule, dir], { env: cleanEnv, stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = once(child, 'exit');
    try {
      await waitFor('the caller’s chunks running', () => runs(dir).length === 2);
      child.kill('SIGSTOP');
      const stoppedAt = performance.now();
      await waitFor('the worker done with them, and 3 × unavailableTimeout passed', () => finished(dir).length === 2 && performance.now() - stoppedAt > 3000);
      child.kill('SIGCONT');
      await exited;
      expect(JSON.parse(output)).toEqual({ values: [0, 1] });
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  it("a worker frozen past its lock: its late result ends the attempt, and the copy running on another worker is stopped", { timeout: 90_000 }, async () => {
    const frozen = await startWorker(redis.url);
    const pool = open();
    await pool.ready();
    const call = pool.apply('markSleepDone', [dir, 0, 8000]);
    await waitFor('the chunk running on the first worker', () => runs(dir).length === 1);
    frozen.signal('SIGSTOP');
    try {
      await startWorker(redis.url);
      // Its lock lapsed: the chunk runs again on the other; meanwhile the frozen worker's child finished it.
      await waitFor('the copy running on the other worker, the first run finished', () => runs(dir).length === 2 && finished(dir).length === 1, 40_000);
    } finally {
      frozen.signal('SIGCONT');
    }
    expect(await call).toBe(0);
    const copy = runs(dir)[1]!;
    expect(copy.ppid).not.toBe(frozen.pid);
    // Stopped: its child is killed before the copy could finish.
    await waitFor('the copy’s child gone', () => !alive(copy.pid), 15_000);
    expect(finished(dir)).toHaveLength(1);
  });
});
