/**
 * A rolling deploy: workers of two versions of the module on one explicit
 * queue. Jobs go only to workers of their own version; the caller counts
 * and asks only those.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { ClusterPool, JobRefusedError } from 'procpool/cluster';
import { describeCluster } from './gate.js';
import { clusterPools, startWorker, stopWorkers, waitFor } from './harness.js';
import { startRedis, type RedisServer } from './redis.js';

describeCluster('cluster: versions on one queue', () => {
  let redis: RedisServer;
  const { track, terminateAll } = clusterPools(() => redis.url);

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

  it('v1 and v2 workers on one explicit queue: 40 v1 calls all run on v1 (none refused); capacity and tasks() are v1 only', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'procpool-cluster-'));
    const v1 = join(dir, 'v1', 'tasks.mjs');
    const v2 = join(dir, 'v2', 'tasks.mjs');
    mkdirSync(dirname(v1));
    mkdirSync(dirname(v2));
    writeFileSync(v1, 'export const version = async () => { await new Promise((r) => setTimeout(r, 20)); return 1; };\nexport const onlyInV1 = () => 1;\n');
    writeFileSync(v2, 'export const version = async () => { await new Promise((r) => setTimeout(r, 20)); return 2; };\nexport const onlyInV2 = () => 2;\n');
    await startWorker(redis.url, ['--queue', 'app', '-j', '2'], v2);
    await startWorker(redis.url, ['--queue', 'app', '-j', '1'], v1);
    const settings = { redis: redis.url, pollInterval: 200, callerTtl: 2000, queue: 'app' };
    const pool = new ClusterPool(v1, settings);
    const other = new ClusterPool(v2, settings);
    track(pool, other);
    await Promise.all([pool.ready(), other.ready()]);
    // Both pools see the workers of their own version only.
    await waitFor('both versions announced', () => pool.stats.processes === 1 && other.stats.processes === 2);
    // Task names are read from the pool's own version: v2's export is unknown to v1's pool.
    expect(await pool.apply('onlyInV1')).toBe(1);
    const unknown = await pool.apply('onlyInV2').catch((thrown: unknown) => thrown);
    expect(unknown).toBeInstanceOf(Error);
    expect(unknown).not.toBeInstanceOf(JobRefusedError);
    expect((unknown as Error).message).toMatch(/onlyInV2.*onlyInV1, version/s);
    expect(await other.apply('onlyInV2')).toBe(2);
    const calls = Array.from({ length: 40 }, () => pool.apply('version').then((value) => ({ value }), (error: unknown) => ({ error: String(error) })));
    const v2calls = Array.from({ length: 10 }, () => other.apply('version').then((value) => ({ value }), (error: unknown) => ({ error: String(error) })));
    expect(await Promise.all(calls)).toEqual(Array.from({ length: 40 }, () => ({ value: 1 })));
    expect(await Promise.all(v2calls)).toEqual(Array.from({ length: 10 }, () => ({ value: 2 })));
    expect(pool.stats.processes).toBe(1);
  });
});
