/**
 * The cluster soak (issue 18): 3 `procpool worker` processes and a caller
 * (this process), items of mixed sizes, while a driver at random SIGKILLs
 * and SIGSTOPs workers, restarts Redis without persistence (half the time
 * with a worker frozen across the restart), and slows and
 * cuts the links (TCP proxies between each side and Redis). It checks that
 * every item settles exactly once with ITS OWN value (the task echoes the
 * item's id), that no call hangs, that Redis ends with a bounded key count
 * and that no process is left. One summary line (JSON); exit code 1 on any
 * breach.
 *
 * Calls are `map`s of a few hundred items in "lanes": a call that fails
 * (a typed error: the cluster unavailable, a chunk lost too often) puts its
 * items back in line; the failure is counted, never hidden.
 *
 *   npm run soak:cluster [-- items]      CLUSTER_SOAK_ITEMS, CLUSTER_SOAK_SEED
 */
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { PoolError } from 'procpool';
import { ClusterPool } from 'procpool/cluster';
import { alive, descendantsOf, startWorker, stopWorkers, type WorkerProcess } from '../cluster/harness.ts';
import { TcpProxy } from '../cluster/proxy.ts';
import { startRedis, type RedisServer } from '../cluster/redis.ts';

const items = Number(process.argv[2] ?? process.env.CLUSTER_SOAK_ITEMS ?? 50_000);
const seed = Number(process.env.CLUSTER_SOAK_SEED ?? 18);
const workersWanted = 3;
const lanes = 4;
/** A call that has not settled after this long is a hang. */
const callBoundMs = 180_000;
/** Keys Redis may hold at the end: the queue's own (meta, id, events, …), failed jobs kept for a while, stop marks. */
const maxKeysLeft = 1200;
const tasks = fileURLToPath(new URL('./cluster-soak-tasks.mjs', import.meta.url));

/** A small seeded generator (mulberry32): a run can be replayed. */
function random(state: number): () => number {
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = random(seed);
const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)]!;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Mostly tiny, some 10 KB, a few 256 KB. */
const sizes = Array.from({ length: items }, () => {
  const r = rand();
  return r < 0.9 ? 8 : r < 0.99 ? 10_000 : 256_000;
});

const breaches: string[] = [];
const settled = new Uint8Array(items);
const failures: Record<string, number> = {};
const faults: Record<string, number> = {};
const started = performance.now();

let redis: RedisServer = await startRedis();
const workerLink = await TcpProxy.start({ port: redis.port });
const callerLink = await TcpProxy.start({ port: redis.port });
const workers: WorkerProcess[] = [];
const frozen = new Set<WorkerProcess>();

async function addWorker(): Promise<void> {
  try {
    workers.push(await startWorker(workerLink.url, ['-j', '2'], tasks));
  } catch (error) {
    // Redis may be down meanwhile: tried again at the next fault.
    faults['worker start failed'] = (faults['worker start failed'] ?? 0) + 1;
    void error;
  }
}
for (let i = 0; i < workersWanted; i++) await addWorker();

const pool = new ClusterPool<typeof import('./cluster-soak-tasks.mjs')>(tasks, { redis: callerLink.url, unavailableTimeout: 60_000, workerTimeout: 120_000 });

/** Items not yet settled with their own value, in line. */
const line = Array.from({ length: items }, (_, i) => i);
let chaos = true;

/** One loop of calls: each value must name its own item; a failed call's items go back in line. */
async function lane(): Promise<void> {
  while (line.length > 0) {
    const batch = line.splice(0, 50 + Math.floor(rand() * 400));
    const chunksize = pick([1, 4, 16, 64]);
    let timer: NodeJS.Timeout | undefined;
    const hang = new Promise<{ hang: true }>((resolve) => (timer = setTimeout(() => resolve({ hang: true }), callBoundMs)));
    const call = pool.starmap('soakEcho', batch.map((id) => [id, sizes[id]!] as [number, number]), { chunksize }).then(
      (values) => ({ values }),
      (error: unknown) => ({ error }),
    );
    const outcome = await Promise.race([call, hang]);
    clearTimeout(timer);
    if ('hang' in outcome) {
      breaches.push(`a call of ${batch.length} items (first ${batch[0]}) did not settle within ${callBoundMs} ms`);
      return;
    }
    if ('error' in outcome) {
      const code = outcome.error instanceof PoolError ? outcome.error.code : `untyped: ${String(outcome.error)}`;
      failures[code] = (failures[code] ?? 0) + 1;
      if (!(outcome.error instanceof PoolError)) breaches.push(`a call failed with an untyped error: ${String(outcome.error)}`);
      line.push(...batch);
      continue;
    }
    for (const [i, id] of batch.entries()) {
      const value = outcome.values[i];
      const own = typeof value === 'string' && value.startsWith(`${id}:`) && value.length === `${id}:`.length + sizes[id]!;
      if (!own) breaches.push(`item ${id} settled with another value: ${JSON.stringify(String(value).slice(0, 40))}`);
      if (settled[id]! > 0) breaches.push(`item ${id} settled twice`);
      settled[id]!++;
    }
  }
}

const count = (what: string): void => void (faults[what] = (faults[what] ?? 0) + 1);

/** The chaos: one fault every 1.5–4 s while the lanes run. */
async function driver(): Promise<void> {
  let lastRestart = 0;
  while (chaos) {
    await sleep(1500 + rand() * 2500);
    if (!chaos) break;
    const live = workers.filter((worker) => alive(worker.pid) && !frozen.has(worker));
    const r = rand();
    if (r < 0.2 && live.length > 0) {
      const victim = pick(live);
      victim.signal('SIGKILL');
      workers.splice(workers.indexOf(victim), 1);
      count('worker SIGKILL');
      void addWorker();
    } else if (r < 0.4 && live.length > 0) {
      const victim = pick(live);
      frozen.add(victim);
      victim.signal('SIGSTOP');
      count('worker SIGSTOP');
      const ms = 2000 + rand() * 6000;
      void sleep(ms).then(() => {
        victim.signal('SIGCONT');
        frozen.delete(victim);
      });
    } else if (r < 0.55 && performance.now() - lastRestart > 10_000) {
      lastRestart = performance.now();
      // Half the time with a worker frozen across it: it finishes chunks Redis has forgotten, while new ones get added.
      const victim = live.length > 0 && rand() < 0.5 ? pick(live) : undefined;
      if (victim !== undefined) {
        frozen.add(victim);
        victim.signal('SIGSTOP');
      }
      await redis.stop('SIGKILL');
      redis = await startRedis(redis.port);
      count(victim === undefined ? 'Redis restarted empty' : 'Redis restarted empty, a worker frozen across it');
      if (victim !== undefined) {
        await sleep(1000 + rand() * 2000);
        victim.signal('SIGCONT');
        frozen.delete(victim);
      }
    } else if (r < 0.75) {
      const link = pick([callerLink, workerLink]);
      link.set({ bytesPerSecond: 512 * 1024, delayMs: 20 });
      count(`${link === callerLink ? 'caller' : 'worker'} link slowed`);
      void sleep(3000).then(() => link.heal());
    } else if (r < 0.9) {
      const link = pick([callerLink, workerLink]);
      link.cut();
      count(`${link === callerLink ? 'caller' : 'worker'} link cut`);
    } else {
      callerLink.cutAfter(64 * 1024);
      count('caller link cut mid-reply');
    }
    // Never fewer than the workers wanted, less the frozen ones.
    while (workers.filter((worker) => alive(worker.pid)).length < workersWanted) await addWorker();
  }
}

const chaosDone = driver();
await Promise.all(Array.from({ length: lanes }, () => lane()));
chaos = false;
await chaosDone;
for (const worker of frozen) worker.signal('SIGCONT');
callerLink.heal();
workerLink.heal();
const seconds = (performance.now() - started) / 1000;
const restarts = pool.stats.restarts;
pool.close();
await pool.join();

const unsettled = settled.reduce((sum, times) => sum + (times === 0 ? 1 : 0), 0);
if (unsettled > 0 && breaches.length === 0) breaches.push(`${unsettled} items never settled`);
const pids = workers.flatMap((worker) => [worker.pid, ...descendantsOf(worker.pid)]);
await stopWorkers().catch((error: unknown) => breaches.push(`processes left: ${String(error)}`));
const connection = new Redis(redis.url);
const keys = (await connection.keys('procpool:*')).length;
connection.disconnect();
if (keys > maxKeysLeft) breaches.push(`Redis holds ${keys} procpool keys at the end (bound ${maxKeysLeft})`);
const left = pids.filter((pid) => alive(pid));
if (left.length > 0) breaches.push(`processes left: ${left.join(', ')}`);
await Promise.all([callerLink.close(), workerLink.close()]);
await redis.stop();

const report = { items, seed, seconds: Math.round(seconds), itemsPerSecond: Math.round(items / seconds), ok: items - unsettled, failedCalls: failures, faults, restarts, keysLeft: keys, breaches: breaches.slice(0, 20) };
console.log(JSON.stringify(report));
process.exitCode = breaches.length === 0 ? 0 : 1;
