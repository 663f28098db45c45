/**
 * The cluster's figures beside the local pool's, in one run: Redis, the
 * caller and two workers of one child each on this machine. Run by
 * `npm run bench` after the local section (or alone: `tsx bench/cluster.ts`);
 * skipped with a message when redis-server is not installed.
 *
 *   tiny items/s     map('double', n items), default chunking
 *   jobs/s           map('double', n items, chunksize 1): one job per item, beside
 *                    bare BullMQ (two worker processes, no-op jobs added with addBulk)
 *   apply p50        one apply's round trip, sequential
 *   CPU speedup      starmap('countPrimes', ranges, chunksize 1) against serial
 *   worker loss → completion   a worker SIGKILLed mid-chunk; its chunk completes elsewhere (the failure test only bounds a hang)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { Pool } from 'procpool';
import { ClusterPool } from 'procpool/cluster';
import { countPrimes } from '../examples/tasks.ts';
import { startRedis } from '../test/cluster/redis.ts';

const quick = process.env.BENCH_QUICK === '1';
const tasks = fileURLToPath(new URL('./cluster-tasks.ts', import.meta.url));
const cli = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'NODE_OPTIONS' && name !== 'NODE_EXTRA_CA_CERTS'));
type Tasks = typeof import('./cluster-tasks.ts');

/** BENCH_CLUSTER=jobs: only the chunksize-1 row, alternated with bare BullMQ (BENCH_ROUNDS times); BENCH_PROF=<dir>: workers write CPU profiles there. */
const only = process.env.BENCH_CLUSTER;
const profiles = process.env.BENCH_PROF;

async function startWorker(redis: string): Promise<ChildProcess> {
  const flags = profiles === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profiles];
  const child = spawn(process.execPath, [...flags, cli, 'worker', tasks, '--redis', redis, '-j', '1'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  let seen = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes('procpool worker: serving')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`worker exited with ${code}: ${seen}`)));
  });
  return child;
}

async function tinyRate(pool: Pool<Tasks>, n: number): Promise<number> {
  const items = Array.from({ length: n }, (_, i) => i);
  await pool.map('double', items.slice(0, 1000));
  const started = performance.now();
  await pool.map('double', items);
  return n / ((performance.now() - started) / 1000);
}

async function jobRate(pool: Pool<Tasks>, n: number): Promise<number> {
  const items = Array.from({ length: n }, (_, i) => i);
  await pool.map('double', items.slice(0, 500), { chunksize: 1 });
  const started = performance.now();
  await pool.map('double', items, { chunksize: 1 });
  return n / ((performance.now() - started) / 1000);
}

/** Bare BullMQ on the same Redis: two worker processes of `concurrency`, n no-op jobs added 1,000 per addBulk; jobs/s until the queue is empty. */
async function bareBullmq(redis: string, n: number, concurrency: number): Promise<number> {
  const worker = fileURLToPath(new URL('./bare-bullmq-worker.mjs', import.meta.url));
  const children = [0, 1].map(() => spawn(process.execPath, [worker, redis, 'bare', String(concurrency)], { env, stdio: ['ignore', 'pipe', 'inherit'] }));
  await Promise.all(children.map((child) => once(child.stdout!, 'data')));
  const connection = new Redis(redis, { maxRetriesPerRequest: null });
  const queue = new Queue('bare', { connection, prefix: 'bare' });
  const drain = async (count: number): Promise<number> => {
    const started = performance.now();
    for (let i = 0; i < count; i += 1000) {
      await queue.addBulk(Array.from({ length: Math.min(1000, count - i) }, (_, j) => ({ name: 'double', data: { x: i + j }, opts: { removeOnComplete: true } })));
    }
    while (Object.values(await queue.getJobCounts('wait', 'active', 'prioritized', 'delayed')).some((count) => count > 0)) await new Promise((resolve) => setTimeout(resolve, 5));
    return count / ((performance.now() - started) / 1000);
  };
  try {
    await drain(500);
    return await drain(n);
  } finally {
    await queue.close();
    connection.disconnect();
    for (const child of children) child.kill('SIGTERM');
    await Promise.all(children.map((child) => once(child, 'exit')));
  }
}

async function applyP50(pool: Pool<Tasks>, n: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n + 20; i++) {
    const started = performance.now();
    await pool.apply('double', [i]);
    if (i >= 20) times.push(performance.now() - started);
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
}

const ranges = Array.from({ length: quick ? 4 : 8 }, (_, i): [number, number] => [i * 1_500_000, (i + 1) * 1_500_000]);

async function cpuSpeedup(pool: Pool<Tasks>): Promise<number> {
  let started = performance.now();
  for (const [from, to] of ranges) countPrimes(from, to);
  const serial = performance.now() - started;
  started = performance.now();
  await pool.starmap('countPrimes', ranges, { chunksize: 1 });
  const parallel = performance.now() - started;
  if (process.env.BENCH_DEBUG === '1') console.log({ serial, parallel, children: pool.stats.children });
  return serial / parallel;
}

if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status !== 0) {
  console.log('cluster bench skipped: redis-server is not installed (apt-get install -y redis-server).');
  process.exit(0);
}

const redis = await startRedis();
const workers = await Promise.all([startWorker(redis.url), startWorker(redis.url)]);
const rows: Array<[string, string, string, string]> = [];
try {
  if (only === 'jobs') {
    await using cluster = await ClusterPool.create<Tasks>(tasks, { redis: redis.url });
    const jobs = quick ? 3000 : 10_000;
    const ratios: number[] = [];
    for (let round = 0; round < Number(process.env.BENCH_ROUNDS ?? 3); round++) {
      const before = await bareBullmq(redis.url, jobs, 16);
      const ours = await jobRate(cluster, jobs);
      const after = await bareBullmq(redis.url, jobs, 16);
      ratios.push(ours / ((before + after) / 2));
      console.log(`round ${round}: bare ${before.toFixed(0)} / ${after.toFixed(0)}, ours ${ours.toFixed(0)}: ${ratios.at(-1)!.toFixed(2)} × bare`);
    }
    const sorted = [...ratios].sort((a, b) => a - b);
    console.log(`ratio × bare BullMQ: median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(2)}, range ${sorted[0]!.toFixed(2)}–${sorted.at(-1)!.toFixed(2)}`);
  } else {
    const n = quick ? 100_000 : 300_000;
    const latencyN = quick ? 200 : 1000;
    {
      await using local = new Pool<Tasks>(tasks, { processes: 2, nodeOptions: ['--import', import.meta.resolve('tsx')] });
      // The serial CPU run below blocks this caller's own event loop for seconds: not Redis being away.
      await using cluster = await ClusterPool.create<Tasks>(tasks, { redis: redis.url, unavailableTimeout: 120_000 });
      rows.push(['tiny items/s, map, default chunking', (await tinyRate(local, n)).toFixed(0), (await tinyRate(cluster, n)).toFixed(0), '≥ 1,000,000']);
      // Bare BullMQ at the most a procpool worker of one child takes at once (16 short jobs), before and after: the machine is shared.
      const jobs = quick ? 3000 : 10_000;
      const bareBefore = await bareBullmq(redis.url, jobs, 16);
      const ours = await jobRate(cluster, jobs);
      const bareAfter = await bareBullmq(redis.url, jobs, 16);
      const bare = (bareBefore + bareAfter) / 2;
      rows.push(['jobs/s, map, chunksize 1 (one job per item)', (await jobRate(local, jobs)).toFixed(0), `${ours.toFixed(0)} (${(ours / bare).toFixed(2)} × bare BullMQ)`, '≥ 0.8 × bare BullMQ']);
      rows.push(['bare BullMQ no-op jobs/s (2 workers × concurrency 16, addBulk), before / after', '—', `${bareBefore.toFixed(0)} / ${bareAfter.toFixed(0)}`, 'the baseline']);
      rows.push(['apply round trip p50 (ms)', (await applyP50(local, latencyN)).toFixed(3), (await applyP50(cluster, latencyN)).toFixed(3), '≤ 3']);
      rows.push(['CPU-bound speedup over serial', (await cpuSpeedup(local)).toFixed(2), (await cpuSpeedup(cluster)).toFixed(2), '≥ 1.7']);
    }
    {
      // A worker SIGKILLed while it runs a chunk: time until that chunk's call completes on the other (both serve already).
      await using cluster = await ClusterPool.create<Tasks>(tasks, { redis: redis.url });
      const note = join(mkdtempSync(join(tmpdir(), 'procpool-bench-')), 'worker');
      const call = cluster.apply('noteWorkerThenSleep', [note, 2500]);
      while (!existsSync(note) || readFileSync(note, 'utf8') === '') await new Promise((resolve) => setTimeout(resolve, 20));
      const victim = workers.find((worker) => worker.pid === Number(readFileSync(note, 'utf8')))!;
      const killedAt = performance.now();
      victim.kill('SIGKILL');
      await call;
      rows.push(['worker loss → completion: SIGKILLed mid-chunk, its chunk (2,500 ms of work) done elsewhere (ms)', '—', (performance.now() - killedAt).toFixed(0), '≤ 10,000']);
    }
  }
} finally {
  for (const worker of workers) if (worker.exitCode === null && worker.signalCode === null) worker.kill('SIGTERM');
  await Promise.all(workers.map((worker) => (worker.exitCode === null && worker.signalCode === null ? once(worker, 'exit') : undefined)));
  await redis.stop();
}
if (rows.length > 0) {
  console.log('\n### Across machines (procpool/cluster): Redis, caller and 2 workers × 1 child on this machine\n');
  console.log('| figure | local pool (2 children) | cluster | target |');
  console.log('|---|---:|---:|---|');
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
}
