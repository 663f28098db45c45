/**
 * Real `procpool worker` processes for the cluster tests, tracked so that
 * every test can check it left no process behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClusterPool } from 'procpool/cluster';

type ClusterPoolOptions = ConstructorParameters<typeof ClusterPool>[1];

export const cli = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));
export const tasksModule = fileURLToPath(new URL('../fixtures/cluster-tasks.mjs', import.meta.url));

/** The environment of spawned processes: without vitest's or the user's NODE_OPTIONS. */
export const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'NODE_OPTIONS'));

/** Whether `pid` runs (a zombie counts as gone: PID 1 here reaps nothing). */
export function alive(pid: number): boolean {
  const status = `/proc/${pid}/status`;
  if (!existsSync(status)) return false;
  try {
    return !/^State:\s+Z/m.test(readFileSync(status, 'utf8'));
  } catch {
    return false;
  }
}

/** The pids of `pid`'s children. */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Waits for `condition`, checking every 50 ms; fails naming `what` after `ms`. */
export async function waitFor(what: string, condition: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const until = performance.now() + ms;
  while (!(await condition())) {
    if (performance.now() > until) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** `pid`'s descendants now, walked through /proc (children, their children, …). */
export function descendantsOf(pid: number): number[] {
  const found: number[] = [];
  const visit = (parent: number): void => {
    for (const child of childrenOf(parent)) {
      found.push(child);
      visit(child);
    }
  };
  visit(pid);
  return found;
}

export interface WorkerProcess {
  readonly pid: number;
  /** Its children's pids, read when it started serving. */
  readonly children: number[];
  output(): string;
  readonly exited: Promise<unknown>;
  signal(signal: NodeJS.Signals): void;
}

const started: Array<{ child: ChildProcess; children: number[] }> = [];

/** Starts `procpool worker module --redis url …extra` (the URL in PROCPOOL_REDIS instead with `viaEnv`); resolves once it serves. */
export async function startWorker(redis: string, extra: string[] = [], module = tasksModule, { viaEnv = false } = {}): Promise<WorkerProcess> {
  const args = [cli, 'worker', module, ...(viaEnv ? [] : ['--redis', redis]), '-j', '1', ...extra];
  const child = spawn(process.execPath, args, { env: viaEnv ? { ...cleanEnv, PROCPOOL_REDIS: redis } : cleanEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(child, 'exit');
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const record = { child, children: [] as number[] };
  started.push(record);
  await waitFor(`a worker serving (output: ${output})`, () => {
    if (child.exitCode !== null) throw new Error(`The worker exited with ${child.exitCode}: ${output}`);
    return output.includes('procpool worker: serving');
  });
  record.children = childrenOf(child.pid!);
  return { pid: child.pid!, children: record.children, output: () => output, exited, signal: (signal) => child.kill(signal) };
}

/**
 * Stops every worker started (SIGTERM, then SIGKILL), and checks that none
 * of them or their descendants is left: those of the start and those found
 * now (a child replaced since the start is another process).
 */
export async function stopWorkers(): Promise<void> {
  const pids = started.flatMap(({ child, children }) => [child.pid!, ...children, ...descendantsOf(child.pid!)]);
  for (const { child } of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  for (const { child } of started) {
    if (child.exitCode === null && child.signalCode === null) {
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await once(child, 'exit');
      clearTimeout(timer);
    }
  }
  started.length = 0;
  await waitFor(`no worker or worker child left (${pids.join(', ')})`, () => pids.every((pid) => !alive(pid)), 15_000);
}

/** The cluster tests' task module, as a type. */
export type ClusterTasks = typeof import('../fixtures/cluster-tasks.mjs');

/** The pools a test file opens against the Redis at `url()`: quick polls, a short caller heartbeat; all terminated by `terminateAll` after each test. */
export function clusterPools(url: () => string): {
  open(options?: Partial<ClusterPoolOptions>): ClusterPool<ClusterTasks>;
  /** Pools the test made itself (of another module), terminated with the others. */
  track(...made: Array<{ terminate(): Promise<void> }>): void;
  terminateAll(): Promise<void>;
} {
  const pools: Array<{ terminate(): Promise<void> }> = [];
  return {
    open(options = {}) {
      const pool = new ClusterPool<ClusterTasks>(tasksModule, { redis: url(), pollInterval: 200, callerTtl: 2000, ...options });
      pools.push(pool);
      return pool;
    },
    track(...made) {
      pools.push(...made);
    },
    async terminateAll() {
      await Promise.all(pools.splice(0).map((pool) => pool.terminate()));
    },
  };
}

/** Lines of a task's runs log (`dir/runs.log`): `item pid ppid` per start. */
export function runs(dir: string): Array<{ item: number; pid: number; ppid: number }> {
  const log = join(dir, 'runs.log');
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((line) => {
    const [item, pid, ppid] = line.split(' ').map(Number);
    return { item: item!, pid: pid!, ppid: ppid! };
  });
}

/** Lines of `dir/done.log`: `item pid` per run that reached its end. */
export function finished(dir: string): Array<{ item: number; pid: number }> {
  const log = join(dir, 'done.log');
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((line) => {
    const [item, pid] = line.split(' ').map(Number);
    return { item: item!, pid: pid! };
  });
}
