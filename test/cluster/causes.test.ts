/**
 * Errors that carry their cause: a wrong password, a server whose
 * certificate the caller cannot verify, a refused connection reach the
 * caller named (auth, TLS, refused), and ready() says so soon, not after
 * workerTimeout. The worker tells a lost connection once and its return.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { ClusterPool, ClusterUnavailableError } from 'procpool/cluster';
import { describeCluster } from './gate.js';
import { startWorker, stopWorkers, tasksModule, waitFor } from './harness.js';
import { freePort, startRedis, type RedisServer } from './redis.js';

/** What a caller gets from ready() and from a call, and how long ready() took. */
async function failures(pool: ClusterPool): Promise<{ ready: unknown; call: unknown; readyMs: number }> {
  const at = performance.now();
  const ready = await pool.ready().then(() => 'ready', (error: unknown) => error);
  const readyMs = performance.now() - at;
  const call = await pool.apply('add', [1, 2]).catch((error: unknown) => error);
  return { ready, call, readyMs };
}

describeCluster('cluster: errors name their cause', () => {
  const servers: RedisServer[] = [];
  const pools: ClusterPool[] = [];

  afterEach(async () => {
    await Promise.all(pools.splice(0).map((pool) => pool.terminate()));
    await stopWorkers();
    await Promise.all(servers.splice(0).map((server) => server.stop()));
  });

  const open = (redis: string, options: Partial<ConstructorParameters<typeof ClusterPool>[1]> = {}): ClusterPool => {
    const pool = new ClusterPool(tasksModule, { redis, pollInterval: 200, callerTtl: 2000, ...options });
    pools.push(pool);
    return pool;
  };

  it('a wrong password: ready() and calls reject at once with ClusterUnavailableError naming authentication, its cause attached', async () => {
    const redis = await startRedis(undefined, ['--requirepass', 'right']);
    servers.push(redis);
    const { ready, call, readyMs } = await failures(open(`redis://:wrong@127.0.0.1:${redis.port}`));
    for (const error of [ready, call]) {
      expect(error).toBeInstanceOf(ClusterUnavailableError);
      expect((error as Error).message).toMatch(/Redis refused this client: authentication failed \(WRONGPASS/);
      expect((error as Error).cause).toBeInstanceOf(Error);
      expect((error as Error).message).not.toContain('wrong@');
    }
    // Long before workerTimeout (60 s) or unavailableTimeout (10 s): a hang bound on a loaded machine.
    expect(readyMs).toBeLessThan(8000);
  });

  it("a TLS server whose certificate the caller cannot verify (no CA given): rejects at once naming TLS", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'procpool-tls-'));
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    expect(made.status).toBe(0);
    const port = await freePort();
    const redis = await startRedis(undefined, ['--port', '0', '--tls-port', String(port), '--tls-cert-file', join(dir, 'cert.pem'), '--tls-key-file', join(dir, 'key.pem'), '--tls-ca-cert-file', join(dir, 'cert.pem'), '--tls-auth-clients', 'no']);
    servers.push(redis);
    const { ready, call, readyMs } = await failures(open(`rediss://127.0.0.1:${port}`));
    for (const error of [ready, call]) {
      expect(error).toBeInstanceOf(ClusterUnavailableError);
      expect((error as Error).message).toMatch(/Redis refused this client: TLS failed \(self[- ]signed certificate/i);
    }
    expect(readyMs).toBeLessThan(8000);
  });

  it('a refused connection: ready() rejects after unavailableTimeout (not workerTimeout), naming it', async () => {
    const port = await freePort();
    const { ready, call, readyMs } = await failures(open(`redis://127.0.0.1:${port}`, { unavailableTimeout: 1000 }));
    for (const error of [ready, call]) {
      expect(error).toBeInstanceOf(ClusterUnavailableError);
      expect((error as Error).message).toMatch(/Redis was unreachable for \d+ ms: connection refused \(connect ECONNREFUSED/);
    }
    expect(readyMs).toBeLessThan(20_000);
  });

  it('the worker says "serving" once connected, tells a lost connection once and then its return; no BullMQ internals without --verbose', async () => {
    let redis = await startRedis();
    const worker = await startWorker(redis.url);
    const before = worker.output();
    expect(before).toMatch(/serving .* at redis:\/\/127\.0\.0\.1/);
    await redis.stop('SIGKILL');
    await waitFor('the worker telling the lost connection', () => /lost its connection to Redis/.test(worker.output()));
    // Several reconnection attempts (one a second) pass while Redis is away.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    redis = await startRedis(redis.port);
    servers.push(redis);
    await waitFor('the worker telling its return', () => /connected to Redis again/.test(worker.output()));
    const after = worker.output().slice(before.length);
    expect(after.match(/lost its connection/g)).toHaveLength(1);
    expect(after.split('\n').filter(Boolean)).toHaveLength(2);
    expect(after).not.toMatch(/queue error|ECONNREFUSED|bullmq/i);
  });
});
