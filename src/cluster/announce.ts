/**
 * Workers announce themselves: each keeps a key with a short TTL (gone
 * within that TTL of the worker) and its id in the module family's worker
 * set (every version's). Callers read the set to know the capacity and the
 * task names of their version's workers, and which other versions serve.
 */
import type { QueueKeys } from './identity.js';
import type { Redis } from './redis.js';

/** What a worker says of itself. */
export interface Announcement {
  id: string;
  host: string;
  pid: number;
  /** Its local pool's children. */
  processes: number;
  /** Chunks it takes at once. */
  capacity: number;
  /** Hash of its module. */
  module: string;
  tasks: string[];
  /** Items it has run. */
  items: number;
  /** Chunks it is running now. */
  running: number;
  rss: number;
}

/** Writes `me` for `ttlMs`. */
export async function announce(redis: Redis, keys: QueueKeys, me: Announcement, ttlMs: number): Promise<void> {
  await redis.multi().sadd(keys.workers, me.id).set(keys.worker(me.id), JSON.stringify(me), 'PX', ttlMs).exec();
}

/** Takes `id` out at once (a worker that leaves). */
export async function withdraw(redis: Redis, keys: QueueKeys, id: string): Promise<void> {
  await redis.multi().srem(keys.workers, id).del(keys.worker(id)).exec();
}

/** The workers alive now: those of module `hash`, and those of other versions; the ids of those gone are taken out of the set. */
export async function readWorkers(redis: Redis, keys: QueueKeys, hash: string): Promise<{ serving: Announcement[]; others: Announcement[] }> {
  const alive = await readAll(redis, keys);
  return { serving: alive.filter((worker) => worker.module === hash), others: alive.filter((worker) => worker.module !== hash) };
}

/** Other versions' workers, in words: `hash abc… (2 workers, exports: f, g)`. */
export function describeVersions(others: readonly Announcement[]): string {
  const byHash = new Map<string, Announcement[]>();
  for (const worker of others) byHash.set(worker.module, [...(byHash.get(worker.module) ?? []), worker]);
  return [...byHash].map(([hash, workers]) => `${hash} (${workers.length} worker${workers.length === 1 ? '' : 's'})`).join(', ');
}

async function readAll(redis: Redis, keys: QueueKeys): Promise<Announcement[]> {
  const ids = await redis.smembers(keys.workers);
  if (ids.length === 0) return [];
  const values = await redis.mget(ids.map((id) => keys.worker(id)));
  const alive: Announcement[] = [];
  const gone: string[] = [];
  values.forEach((value, i) => {
    if (value === null) gone.push(ids[i]!);
    else {
      try {
        alive.push(JSON.parse(value) as Announcement);
      } catch {
        gone.push(ids[i]!);
      }
    }
  });
  if (gone.length > 0) await redis.srem(keys.workers, ...gone);
  return alive.sort((a, b) => a.id.localeCompare(b.id));
}
