/**
 * A worker runs the one-item jobs waiting for its child as one local chunk
 * (one message for all): each job still settles alone, with its own item's
 * outcome — a value, its own error, or the death of the child charged to
 * that job only.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Pool, WorkerExitError } from 'procpool';
import type { JobData, RemoteReport } from '../../src/cluster/codec.js';
import { runMerged, type Member } from '../../src/cluster/run-chunk.js';
import { settleEach } from '../../src/internal.js';
import type { Pool as SourcePool } from '../../src/pool.js';
import { describeCluster } from './gate.js';
import { clusterPools, startWorker, stopWorkers, tasksModule } from './harness.js';
import { startRedis, type RedisServer } from './redis.js';

describeCluster('cluster: one-item jobs merged into one local chunk', () => {
  let redis: RedisServer;
  const { open, terminateAll } = clusterPools(() => redis.url);

  beforeEach(async () => {
    redis = await startRedis();
  });
  afterEach(async () => {
    await terminateAll();
    await stopWorkers();
    await redis.stop();
  });

  it('each call gets its own item’s outcome: values, its own error, its own child death; the jobs ran merged', async () => {
    await startWorker(redis.url, ['-j', '1']);
    const pool = open();
    // Short chunks: the worker takes jobs deeper, so several wait for its one child.
    await pool.map('double', Array.from({ length: 300 }, (_, i) => i), { chunksize: 1 });
    let merged = false;
    // Rounds until two jobs shared a chunk (a generous bound: this never happens one job per message).
    for (let round = 0; round < 15 && !merged; round++) {
      const items = Array.from({ length: 200 }, (_, i) => (i === 50 ? -1 : i === 120 && round < 2 ? -2 : i));
      const outcomes = await Promise.allSettled(items.map((x) => pool.apply('turn', [x])));
      const turns = new Map<string, number>();
      outcomes.forEach((outcome, i) => {
        const x = items[i]!;
        if (x === -1) {
          expect(outcome.status).toBe('rejected');
          expect((outcome as PromiseRejectedResult).reason).toMatchObject({ name: 'RangeError', message: 'refused item -1' });
        } else if (x === -2) {
          expect(outcome.status).toBe('rejected');
          expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(WorkerExitError);
        } else {
          expect(outcome).toMatchObject({ status: 'fulfilled' });
          const [value, pid, turn] = (outcome as PromiseFulfilledResult<[number, number, number]>).value;
          expect(value).toBe(x);
          const key = `${pid}:${turn}`;
          turns.set(key, (turns.get(key) ?? 0) + 1);
        }
      });
      merged = [...turns.values()].some((count) => count > 1);
    }
    expect(merged).toBe(true);
  });
});

describe('cluster: a merged chunk on a real local pool, stopped', () => {
  type Outcome = { report: RemoteReport; ms: number } | undefined;
  /** A member for `task(x)`; `stop()` marks it stopped, as a worker does for a stop message or a lost lock. */
  /** Members of one chunk share their task (the worker merges only jobs of the same task). */
  const member = (task: string, x: unknown): Member & { outcome: Promise<Outcome>; stop(): void } => {
    const controller = new AbortController();
    let state: 'running' | 'stopped' = 'running';
    let settle!: (outcome: Outcome) => void;
    const outcome = new Promise<Outcome>((resolve) => (settle = resolve));
    const data: JobData = { v: 1, module: 'm', caller: 'c', task, spread: false, stopAtError: false, timeout: null, args: '' };
    return {
      data,
      args: [x],
      signal: controller.signal,
      state: () => state,
      settle,
      outcome,
      stop: () => {
        state = 'stopped';
        controller.abort();
      },
    };
  };

  it('a stopped member that has not started is dropped and the others run; stopping the running one stops the chunk, and the rest run again', async () => {
    await using built = new Pool(tasksModule, { processes: 1 });
    await built.ready();
    // The built pool's own key for settleEach (the source's symbol is another one): a real pool, real children.
    const key = Object.getOwnPropertySymbols(Object.getPrototypeOf(built)).find((symbol) => symbol.description === 'procpool.settleEach')!;
    const pool = { [settleEach]: (...args: unknown[]) => (built as unknown as Record<symbol, (...args: unknown[]) => unknown>)[key]!(...args) } as unknown as SourcePool;
    const values = async (members: Array<{ outcome: Promise<Outcome> }>): Promise<unknown[]> => Promise.all(members.map(async (m) => (await m.outcome)?.report.values));
    // Not started yet when stopped: dropped; the chunk goes on with the others.
    const first = [member('sleep', 300), member('sleep', 2), member('sleep', 3)];
    const running = runMerged(pool, first);
    first[1]!.stop();
    await running;
    expect(await values(first)).toEqual([[300], undefined, [3]]);
    // The running one (an hour's sleep) stopped: the chunk stops, the two after it run in a chunk of their own.
    const second = [member('sleep', 3_600_000), member('sleep', 4), member('sleep', 5)];
    const again = runMerged(pool, second);
    second[0]!.stop();
    await again;
    expect(await values(second)).toEqual([undefined, [4], [5]]);
  }, 60_000);
});
