/**
 * What procpool needs of Redis, as the README says it: the least-privilege
 * ACL user of the README serves a caller and a worker (its line is read from
 * the README, as written); a server that evicts keys is warned of; Redis
 * Cluster is refused at start with a clear message.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, expect, it } from 'vitest';
import { ClusterPool, ClusterUnavailableError } from 'procpool/cluster';
import { describeCluster } from './gate.js';
import { startWorker, stopWorkers, tasksModule, waitFor, type ClusterTasks } from './harness.js';
import { startRedis, type RedisServer } from './redis.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

describeCluster('cluster: what Redis must be', () => {
  const servers: RedisServer[] = [];
  const pools: ClusterPool[] = [];

  afterEach(async () => {
    await Promise.all(pools.splice(0).map((pool) => pool.terminate()));
    await stopWorkers();
    await Promise.all(servers.splice(0).map((server) => server.stop()));
  });

  const redisWith = async (extra: string[] = []): Promise<RedisServer> => {
    const server = await startRedis(undefined, extra);
    servers.push(server);
    return server;
  };

  it("the README's least-privilege ACL user runs a caller and a worker: calls, a stop, nothing denied", async () => {
    const line = /^ACL SETUSER procpool .*$/m.exec(readme)?.[0];
    expect(line, 'the README has its ACL line').toBeDefined();
    const redis = await redisWith();
    const admin = new Redis(redis.url);
    try {
      const words = line!.replace('>change-me', '>test-secret').split(' ');
      expect(await admin.call(words[0]!, ...words.slice(1))).toBe('OK');
      const url = `redis://procpool:test-secret@127.0.0.1:${redis.port}`;
      const worker = await startWorker(url);
      const pool = new ClusterPool<ClusterTasks>(tasksModule, { redis: url, pollInterval: 200, callerTtl: 2000 });
      pools.push(pool);
      expect(await pool.map('double', [1, 2, 3], { chunksize: 1 })).toEqual([2, 4, 6]);
      const controller = new AbortController();
      const stopped = pool.apply('sleep', [60_000], { signal: controller.signal }).catch((error: unknown) => error);
      await waitFor('the item running', () => pool.stats.busy > 0);
      controller.abort();
      expect(await stopped).toMatchObject({ name: 'AbortError' });
      expect(await pool.apply('add', [1, 2])).toBe(3);
      // Nothing was refused to the user (ACL LOG lists every denial).
      expect(await admin.call('ACL', 'LOG')).toEqual([]);
      expect(worker.output()).not.toMatch(/NOPERM/);
    } finally {
      admin.disconnect();
    }
  });

  it('a Redis that evicts keys: the worker and the caller warn, naming the fix', async () => {
    const redis = await redisWith(['--maxmemory-policy', 'allkeys-lru']);
    const warned = new Promise<Error>((resolve) => process.once('warning', resolve));
    const worker = await startWorker(redis.url);
    expect(worker.output()).toMatch(/warning: Redis evicts keys under memory pressure \(maxmemory-policy allkeys-lru\).*CONFIG SET maxmemory-policy noeviction/);
    const pool = new ClusterPool<ClusterTasks>(tasksModule, { redis: redis.url, pollInterval: 200, callerTtl: 2000 });
    pools.push(pool);
    expect(await pool.apply('add', [1, 2])).toBe(3);
    expect((await warned).message).toMatch(/maxmemory-policy allkeys-lru/);
  });

  it('Redis Cluster: the worker refuses to start and the caller rejects at once, both saying so', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'procpool-redis-cluster-'));
    const redis = await redisWith(['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf')]);
    await expect(startWorker(redis.url)).rejects.toThrow(/exited with 1.*Redis Cluster is not supported/s);
    const pool = new ClusterPool<ClusterTasks>(tasksModule, { redis: redis.url, pollInterval: 200, callerTtl: 2000 });
    pools.push(pool);
    const error = await pool.ready().catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(ClusterUnavailableError);
    expect((error as Error).message).toMatch(/Redis refused this client: Redis Cluster is not supported/);
    await expect(pool.apply('add', [1, 2])).rejects.toBeInstanceOf(ClusterUnavailableError);
  });
});
