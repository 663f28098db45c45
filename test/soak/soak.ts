/**
 * The soak (issue 3, item 10): many items through `imap` from async
 * generators, 1% of them killing their child (exit, SIGKILL, uncaught throw),
 * 0.5% outliving the timeout, every item leaking a little under
 * maxTasksPerChild and maxMemoryPerChild. It checks that every item settles
 * exactly once — with its own result, or with the error its own fault calls
 * for — that parent and child memory stay bounded, and that no child is left
 * after join(). One summary line; exit code 1 on any breach.
 *
 * Then tasks end their child with every exit code from 1 to `exitCodes`:
 * each must be reported as that code, reason 'exit' (never taken for one of
 * the worker's own).
 *
 * imap stops at its first error, so the soak runs several "lanes", each a
 * loop of imap calls: when a call fails at position k, the error belongs to
 * the k-th item it read (items before it were yielded; streamed chunks lose
 * nothing), and the items read after it never settled: they go back in line.
 *
 *   npm run soak [-- items]      SOAK_ITEMS, SOAK_TIMEOUT_MS, … (see fromEnv)
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Pool, TaskTimeoutError, WorkerExitError } from 'procpool';
import { childEnv, leftOver, logStarts, loggedPids, readLines, tempDir } from '../fixtures/fault-helpers.js';

export interface SoakConfig {
  items: number;
  processes: number;
  /** imap calls running at once. */
  lanes: number;
  timeoutMs: number;
  maxTasksPerChild: number;
  maxMemoryPerChildMiB: number;
  /** Every `leakEvery`-th item keeps `leakBytes` for the child's lifetime. */
  leakBytes: number;
  leakEvery: number;
  seed: number;
  /** Items in 10,000 that kill their child, and that outlive the timeout. */
  killPer10k: number;
  slowPer10k: number;
  /** Bounds checked at the end. */
  maxParentGrowthMiB: number;
  childRssSlackMiB: number;
  /** A stall: no item settled for this long. */
  stallMs: number;
  /** Calls that end their child with each exit code from 1 to this. */
  exitCodes: number;
}

export interface SoakReport {
  config: SoakConfig;
  seconds: number;
  ok: number;
  failed: Record<string, number>;
  /** Deaths reported as TaskTimeoutError: the timeout ran out before the pool noticed the death. */
  misreported: number;
  restarts: number;
  /** Children replaced for recycling: restarts less the faults acted out. */
  recycled: number;
  childrenStarted: number;
  childrenLeft: number;
  parentPeakRssMiB: number;
  parentGrowthMiB: number;
  childPeakRssMiB: number;
  /** Exit codes reported as the task's own (reason 'exit', that code). */
  exitCodesRight: number;
  /** Every broken promise, described; empty when the soak passed. */
  breaches: string[];
  summary: string;
}

const kinds = ['ok', 'exit', 'sigkill', 'throw', 'timeout'] as const;
const MiB = 2 ** 20;

/** The fault of item `id`: 0 none; 1-3 kill the child (exit, SIGKILL, uncaught throw); 4 outlives the timeout. */
export function kindOf(id: number, config: SoakConfig): number {
  let h = Math.imul(id + Math.imul(config.seed, 0x632be5ab), 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 15), 0x85ebca77);
  const r = ((h ^ (h >>> 13)) >>> 0) % 10_000;
  return r < config.killPer10k ? 1 + (r % 3) : r < config.killPer10k + config.slowPer10k ? 4 : 0;
}

/** Whether `error` is what item `id`'s fault calls for: 'right', 'late' (a death seen only after the timeout), or a breach. */
function judge(id: number, kind: number, error: unknown, config: SoakConfig): 'right' | 'late' | string {
  const exit = error instanceof WorkerExitError ? error : undefined;
  const timedOut = error instanceof TaskTimeoutError && error.timeout === config.timeoutMs;
  if (kind === 0) return `innocent item ${id} failed with ${String(error)}`;
  if (
    (kind === 1 && exit?.reason === 'exit' && exit.exitCode === 3) ||
    (kind === 2 && exit?.reason === 'signal' && exit.signal === 'SIGKILL') ||
    (kind === 3 && exit?.reason === 'exit' && (exit.cause as Error | undefined)?.message === `soak ${id}`) ||
    (kind === 4 && timedOut)
  ) {
    return 'right';
  }
  return timedOut ? 'late' : `item ${id} (${kinds[kind]}) failed with ${String(error)} ${JSON.stringify(error)}`;
}

export async function runSoak(config: SoakConfig): Promise<SoakReport> {
  const dir = tempDir('procpool-soak-');
  const startsLog = join(dir, 'starts');
  const faultLog = join(dir, 'faults');
  const pool = new Pool(new URL('../fixtures/fault-soak.mjs', import.meta.url), {
    processes: config.processes,
    maxTasksPerChild: config.maxTasksPerChild,
    maxMemoryPerChild: config.maxMemoryPerChildMiB,
    nodeOptions: logStarts,
    env: childEnv(startsLog, { SOAK_LOG: faultLog, SOAK_LEAK_BYTES: String(config.leakBytes), SOAK_LEAK_EVERY: String(config.leakEvery) }),
  });
  const started = performance.now();
  const state = new Uint8Array(config.items); // 0 unsettled, 1 result, 2 error
  const failed: Record<string, number> = { exit: 0, sigkill: 0, throw: 0, timeout: 0 };
  const perChild = new Map<number, number>();
  const breaches: string[] = [];
  const breach = (what: string): void => void (breaches.length < 50 && breaches.push(what));
  let ok = 0;
  let misreported = 0;
  let childPeak = 0;
  const parentStart = process.memoryUsage.rss();
  let parentPeak = parentStart;
  const sampler = setInterval(() => (parentPeak = Math.max(parentPeak, process.memoryUsage.rss())), 100);
  // "No call ever hangs": when nothing settles for stallMs, say what is outstanding and stop.
  const outstanding: Array<() => string[]> = [];
  let lastSettled = performance.now();
  let stalled = false;
  const monitor = setInterval(() => {
    if (process.env.SOAK_DEBUG) console.error(JSON.stringify({ ok, failed, fresh, again: again.length, stats: pool.stats }));
    if (stalled || performance.now() - lastSettled < config.stallMs) return;
    stalled = true;
    const { busy, idle, queued, restarts } = pool.stats;
    breach(`nothing settled for ${config.stallMs} ms (busy ${busy}, idle ${idle}, queued ${queued}, restarts ${restarts}); first outstanding items per call: ${outstanding.map((peek) => peek().join(' ')).join(' | ')}`);
    void pool.terminate();
  }, 1000);

  // Items not yet read by any call: fresh ids, and ids a failed call read but never settled.
  const again: number[] = [];
  let fresh = 0;
  const take = (): number | undefined => again.pop() ?? (fresh < config.items ? fresh++ : undefined);
  const settle = (id: number, how: 1 | 2): void => {
    if (state[id] !== 0) breach(`item ${id} settled twice`);
    state[id] = how;
    lastSettled = performance.now();
  };

  const lane = async (_: unknown, index: number): Promise<void> => {
    while (!stalled && (again.length > 0 || fresh < config.items)) {
      const read: number[] = [];
      let at = 0;
      outstanding[index] = () => read.slice(at, at + 4).map((id) => `${id}:${kinds[kindOf(id, config)]}`);
      async function* source(): AsyncGenerator<number> {
        for (let id = take(); id !== undefined; id = take()) {
          read.push(id);
          yield id * 8 + kindOf(id, config);
        }
      }
      try {
        for await (const value of pool.imap('item', source(), { timeout: config.timeoutMs })) {
          const [id, child, rss] = value as [number, number, number];
          if (id !== read[at]) breach(`position ${at} expected the result of ${read[at]}, got ${id}`);
          // Forget what was yielded, so that a long call keeps little.
          if (++at > 4096) {
            read.splice(0, at);
            at = 0;
          }
          settle(id, 1);
          ok++;
          perChild.set(child, (perChild.get(child) ?? 0) + 1);
          childPeak = Math.max(childPeak, rss);
        }
      } catch (error) {
        if (stalled) return;
        const id = read[at++];
        if (id === undefined) {
          breach(`an imap call failed past its input: ${String(error)}`);
          continue;
        }
        const kind = kindOf(id, config);
        const verdict = judge(id, kind, error, config);
        if (verdict === 'late') misreported++;
        else if (verdict !== 'right') breach(verdict);
        if (kind !== 0) failed[kinds[kind]!]!++;
        settle(id, 2);
        again.push(...read.slice(at).reverse());
      }
    }
  };
  await Promise.all(Array.from({ length: config.lanes }, lane));
  const restarts = pool.stats.restarts;
  // Every exit code a task may use, each reported as its own.
  let exitCodesRight = 0;
  if (!stalled) {
    const codes = Array.from({ length: config.exitCodes }, (_, i) => i + 1);
    const exits = await Promise.all(codes.map((code) => pool.apply('exitWith', [code]).then(() => 'no error' as const, (error: unknown) => error)));
    exits.forEach((error, i) => {
      const code = i + 1;
      if (error instanceof WorkerExitError && error.reason === 'exit' && error.exitCode === code) exitCodesRight++;
      else breach(`a task's exit with code ${code} was reported as ${String(error)} ${JSON.stringify(error)}`);
    });
  }
  pool.close();
  await pool.join();
  clearInterval(sampler);
  clearInterval(monitor);
  const seconds = (performance.now() - started) / 1000;

  const unsettled = state.reduce((n, s) => n + (s === 0 ? 1 : 0), 0);
  if (unsettled > 0) breach(`${unsettled} items never settled`);
  // Every item that failed must have acted out its own fault (the child logged it first).
  const faults = readLines(faultLog);
  const acted = new Set(faults.map((line) => Number(line.split(' ')[1])));
  for (let id = 0; id < config.items; id++) if (state[id] === 2 && kindOf(id, config) !== 0 && !acted.has(id)) breach(`item ${id} failed without having run`);
  for (const n of perChild.values()) if (n > config.maxTasksPerChild) breach(`a child ran ${n} items, past maxTasksPerChild`);
  const pids = loggedPids(startsLog);
  const left = leftOver(startsLog);
  if (left.length > 0) breach(`children left after join(): ${left.join(', ')}`);
  if (parentPeak - parentStart > config.maxParentGrowthMiB * MiB) breach(`parent RSS grew by ${Math.round((parentPeak - parentStart) / MiB)} MiB`);
  if (childPeak > (config.maxMemoryPerChildMiB + config.childRssSlackMiB) * MiB) breach(`a child's RSS reached ${Math.round(childPeak / MiB)} MiB`);
  rmSync(dir, { recursive: true, force: true });

  const summary =
    `soak: ${config.items} items in ${seconds.toFixed(1)} s (${Math.round(config.items / seconds)} items/s): ${ok} ok, ` +
    `failed ${Object.entries(failed).map(([k, n]) => `${k}=${n}`).join(' ')} (deaths seen as timeouts ${misreported}); ` +
    `restarts ${restarts} (recycled ${restarts - faults.length}), children started ${pids.length}, left ${left.length}; ` +
    `peak RSS parent ${Math.round(parentPeak / MiB)} MiB (+${Math.round((parentPeak - parentStart) / MiB)}), child ${Math.round(childPeak / MiB)} MiB; ` +
    `exit codes 1-${config.exitCodes} reported as their own ${exitCodesRight}; breaches ${breaches.length}`;
  return {
    config,
    seconds,
    ok,
    failed,
    misreported,
    restarts,
    recycled: restarts - faults.length,
    childrenStarted: pids.length,
    childrenLeft: left.length,
    parentPeakRssMiB: parentPeak / MiB,
    parentGrowthMiB: (parentPeak - parentStart) / MiB,
    childPeakRssMiB: childPeak / MiB,
    exitCodesRight,
    breaches,
    summary,
  };
}

/** The configuration, from SOAK_* variables; `items` also from the first argument. */
export function fromEnv(env: NodeJS.ProcessEnv = process.env, items?: string): SoakConfig {
  const num = (name: string, fallback: number): number => (env[name] === undefined ? fallback : Number(env[name]));
  return {
    items: Number(items ?? env.SOAK_ITEMS ?? 200_000),
    processes: num('SOAK_PROCESSES', 2),
    lanes: num('SOAK_LANES', 4),
    timeoutMs: num('SOAK_TIMEOUT_MS', 300),
    maxTasksPerChild: num('SOAK_MAX_TASKS', 300),
    maxMemoryPerChildMiB: num('SOAK_MAX_MEMORY_MIB', 112),
    leakBytes: num('SOAK_LEAK_BYTES', 4 * MiB),
    leakEvery: num('SOAK_LEAK_EVERY', 16),
    seed: num('SOAK_SEED', 1),
    killPer10k: num('SOAK_KILL_PER_10K', 100),
    slowPer10k: num('SOAK_SLOW_PER_10K', 50),
    maxParentGrowthMiB: num('SOAK_MAX_PARENT_GROWTH_MIB', 150),
    childRssSlackMiB: num('SOAK_CHILD_RSS_SLACK_MIB', 64),
    stallMs: num('SOAK_STALL_MS', 30_000),
    exitCodes: num('SOAK_EXIT_CODES', 200),
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const report = await runSoak(fromEnv(process.env, process.argv[2]));
  console.log(report.summary);
  for (const breach of report.breaches) console.error(`breach: ${breach}`);
  process.exitCode = report.breaches.length > 0 ? 1 : 0;
}
