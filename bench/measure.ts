/**
 * One measurement in a fresh process: `measure.ts CONTENDER WORKLOAD 'JSON params'`
 * prints one JSON line. Contenders: floor, procpool; the serial baseline runs
 * inside the cpu workload (bench/run.ts drives it; bench/py_bench.py is the Python twin). A fresh parent per
 * measurement keeps one workload's heap and JIT state out of the next.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Pool } from 'procpool';
import { FloorPool } from './floor.js';
import { fib } from './tasks.mjs';

const tasksUrl = new URL('./tasks.mjs', import.meta.url);

interface Params {
  processes: number;
  n: number;
  samples: number;
  warmup: number;
  fib: number;
  items: number;
  bytes: number;
  settleMs: number;
  counts: number[];
  chunksize: number;
  chunkMs: number;
}

/** What the workloads need of a pool; both contenders are driven through it. */
interface Contender {
  ready(): Promise<void>;
  call(task: string, args: unknown[]): Promise<unknown>;
  /** `task(item)` for each item with the contender's own default (the floor: one per message). */
  map(task: string, items: unknown[], chunksize?: number): Promise<unknown[]>;
  close(): Promise<void>;
}

function open(name: string, processes: number): Contender {
  if (name === 'floor') {
    const pool = new FloorPool(processes);
    return {
      ready: () => pool.ready(),
      call: (task, args) => pool.call(task, args),
      map: (task, items, chunksize) => (chunksize === undefined ? Promise.all(items.map((item) => pool.call(task, [item]))) : pool.mapChunked(task, items, chunksize)),
      close: () => pool.close(),
    };
  }
  if (name === 'procpool') {
    const pool = new Pool(tasksUrl, { processes, nodeOptions: [] });
    return {
      ready: () => pool.ready(),
      call: (task, args) => pool.apply(task, args),
      map: (task, items, chunksize) => pool.map(task, items, chunksize === undefined ? {} : { chunksize }),
      close: async () => {
        pool.close();
        await pool.join();
      },
    };
  }
  throw new Error(`unknown contender ${name}`);
}

async function withPool<T>(name: string, processes: number, body: (pool: Contender) => Promise<T>): Promise<T> {
  const pool = open(name, processes);
  try {
    await pool.ready();
    await pool.call('inc', [0]);
    return await body(pool);
  } finally {
    await pool.close();
  }
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`wrong result: ${what}`);
}

const sumTo = (n: number): number => (n * (n + 1)) / 2;

/** A field of /proc/PID/status, in MiB. */
function statusMib(pid: number | 'self', field: 'VmRSS' | 'VmHWM'): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
  return line === undefined ? Number.NaN : Number.parseInt(line.split(/\s+/)[1]!, 10) / 1024;
}

/** Pids whose parent is this process (the pool's children, for both contenders). */
function childPids(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

type Workload = (name: string, p: Params) => Promise<Record<string, unknown>>;

const workloads: Record<string, Workload> = {
  async startup(name, p) {
    const samples: number[] = [];
    for (let i = 0; i < p.samples; i++) {
      const t0 = performance.now();
      const pool = open(name, p.processes);
      check((await pool.call('inc', [1])) === 2, 'startup');
      await pool.close();
      samples.push(performance.now() - t0);
    }
    return { ms: median(samples), samples };
  },

  latency: (name, p) =>
    withPool(name, p.processes, async (pool) => {
      for (let i = 0; i < p.warmup; i++) await pool.call('inc', [i]);
      const times: number[] = [];
      for (let i = 0; i < p.n; i++) {
        const t0 = performance.now();
        await pool.call('inc', [i]);
        times.push((performance.now() - t0) * 1000);
      }
      times.sort((a, b) => a - b);
      return { p50: times[times.length >> 1], p99: times[Math.min(times.length - 1, Math.floor(times.length * 0.99))] };
    }),

  apply: (name, p) =>
    withPool(name, p.processes, async (pool) => {
      const t0 = performance.now();
      const results = await Promise.all(Array.from({ length: p.n }, (_, i) => pool.call('inc', [i])));
      const elapsed = performance.now() - t0;
      check((results as number[]).reduce((a, b) => a + b, 0) === sumTo(p.n), 'apply');
      return { itemsPerSec: p.n / (elapsed / 1000) };
    }),

  /** A pool that costs nothing while idle: its first call pays a child's start-up. */
  async cold(name, p) {
    if (name !== 'procpool') throw new Error('cold: procpool only');
    const t0 = performance.now();
    const pool = new Pool(tasksUrl, { minProcesses: 0, maxProcesses: p.processes, nodeOptions: [] });
    const result = await pool.apply('inc', [1]);
    const ms = performance.now() - t0;
    check(result === 2, 'cold');
    pool.close();
    await pool.join();
    return { ms };
  },

  /** A server's life: a million tiny calls through one pool; the parent's heap after a forced GC, before and after. */
  async 'long-life'(name, p) {
    if (name !== 'procpool') throw new Error('long-life: procpool only');
    const { setFlagsFromString } = await import('node:v8');
    const { runInNewContext } = await import('node:vm');
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const pool = new Pool(tasksUrl, { processes: p.processes, nodeOptions: [] });
    const heap = (): number => {
      gc();
      return process.memoryUsage().heapUsed / 2 ** 20;
    };
    const batch = async (count: number): Promise<void> => {
      for (let done = 0; done < count; done += 10_000) await Promise.all(Array.from({ length: 10_000 }, (_, i) => pool.apply('inc', [i])));
    };
    await batch(50_000);
    const before = heap();
    const t0 = performance.now();
    await batch(p.n);
    const seconds = (performance.now() - t0) / 1000;
    const after = heap();
    pool.close();
    await pool.join();
    return { beforeMib: before, afterMib: after, growthMib: after - before, callsPerSec: p.n / seconds };
  },

  /** The cost of the safety knobs: the same map with and without `timeout`, alternated in one pool. */
  async 'map-timeout'(name, p) {
    if (name !== 'procpool') throw new Error('map-timeout: procpool only');
    const pool = new Pool(tasksUrl, { processes: p.processes, nodeOptions: [] });
    await pool.ready();
    const items = Array.from({ length: p.n }, (_, i) => i);
    const plain: number[] = [];
    const timed: number[] = [];
    for (let round = 0; round < 5; round++) {
      for (const [options, into] of [[{}, plain], [{ timeout: 60_000 }, timed]] as const) {
        const t0 = performance.now();
        const results = (await pool.map('inc', items, options)) as number[];
        into.push(performance.now() - t0);
        check(results.length === p.n, 'map-timeout');
      }
    }
    pool.close();
    await pool.join();
    const plainMs = median(plain);
    const timedMs = median(timed);
    return { plainMs, timedMs, ratio: plainMs / timedMs };
  },

  /** Ten calls right after a child died mid-item: none should wait for its replacement while the other child is free. */
  'after-crash': (name, p) =>
    withPool(name, p.processes, async (pool) => {
      await pool.call('crash', []).catch(() => undefined);
      const t0 = performance.now();
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => pool.call('inc', [i])));
      const ms = performance.now() - t0;
      check((results as number[]).reduce((a, b) => a + b, 0) === sumTo(10), 'after-crash');
      return { ms };
    }),

  /** The same explicit chunksize on both sides: the per-chunk and per-item cost, without chunking policy. */
  'map-chunk': (name, p) =>
    withPool(name, p.processes, async (pool) => {
      const items = Array.from({ length: p.n }, (_, i) => i);
      const t0 = performance.now();
      const results = (await pool.map('inc', items, p.chunksize)) as number[];
      const elapsed = performance.now() - t0;
      let sum = 0;
      for (const r of results) sum += r;
      check(sum === sumTo(p.n), 'map-chunk');
      return { itemsPerSec: p.n / (elapsed / 1000) };
    }),

  'map-c1': (name, p) => mapWorkload(name, p, 1),
  'map-default': (name, p) => mapWorkload(name, p, undefined),

  /** Serial first, in this process, then the pools: each speedup pairs runs made moments apart. */
  async cpu(name, p) {
    const items = Array.from({ length: p.items }, () => p.fib);
    const s0 = performance.now();
    let sum = 0;
    for (const n of items) sum += fib(n);
    const serialMs = performance.now() - s0;
    const expected = sum / p.items;
    const ms: Record<string, number> = {};
    const speedup: Record<string, number> = {};
    for (const processes of p.counts) {
      ms[processes] = await withPool(name, processes, async (pool) => {
        const t0 = performance.now();
        const results = await pool.map('fib', items);
        const elapsed = performance.now() - t0;
        check(results.every((r) => r === expected), 'cpu');
        return elapsed;
      });
      speedup[processes] = serialMs / ms[processes]!;
    }
    return { serialMs, ms, speedup };
  },

  echo: (name, p) =>
    withPool(name, p.processes, async (pool) => {
      // A distinct array per call: one message holding the same array twice would carry it once.
      const arrays = Array.from({ length: p.n }, (_, k) => {
        const data = new Uint8Array(p.bytes);
        for (let i = 0; i < data.length; i += 4096) data[i] = (i + k) & 0xff;
        return data;
      });
      const t0 = performance.now();
      await Promise.all(
        arrays.map((data) =>
          pool.call('echo', [data]).then((back) => check(back instanceof Uint8Array && back.length === data.length && back[4096] === data[4096], 'echo')),
        ),
      );
      const elapsed = performance.now() - t0;
      return { mibPerSec: (p.n * p.bytes) / 2 ** 20 / (elapsed / 1000) };
    }),

  rss: (name, p) =>
    withPool(name, p.processes, async (pool) => {
      await Promise.all(Array.from({ length: 4 * p.processes }, (_, i) => pool.call('inc', [i])));
      await sleep(p.settleMs);
      const values = childPids().map((pid) => statusMib(pid, 'VmRSS'));
      check(values.length === p.processes, `rss: ${values.length} children`);
      return { mib: median(values), each: values };
    }),

  async imap(name, p) {
    if (name !== 'procpool') throw new Error('imap: procpool only');
    const pool = await Pool.create(tasksUrl, { processes: p.processes, nodeOptions: [] });
    try {
      await pool.apply('inc', [0]);
      const baseRssMib = statusMib('self', 'VmRSS');
      function* items(n: number): Generator<number> {
        for (let i = 0; i < n; i++) yield i;
      }
      const t0 = performance.now();
      let total = 0;
      for await (const value of pool.imap('inc', items(p.n))) total += value as number;
      const elapsed = performance.now() - t0;
      check(total === sumTo(p.n), 'imap');
      return { itemsPerSec: p.n / (elapsed / 1000), peakRssMib: statusMib('self', 'VmHWM'), baseRssMib };
    } finally {
      pool.close();
      await pool.join();
    }
  },
};

/** `applies` tiny applies in flight, each with `signal` (or none): milliseconds until all resolved. */
async function timedApplies(pool: Pool, applies: number, signal: AbortSignal | undefined): Promise<number> {
  const t0 = performance.now();
  const results = await Promise.all(Array.from({ length: applies }, (_, i) => pool.apply('inc', [i], signal === undefined ? {} : { signal })));
  const ms = performance.now() - t0;
  check((results as number[]).reduce((a, b) => a + b, 0) === sumTo(applies), 'applies');
  return ms;
}

const edgeWorkloads: Record<string, Workload> = {
  /** Calls sharing one AbortSignal: the same applies with one shared signal and without, alternated in one pool. */
  async 'signal-shared'(name, p) {
    if (name !== 'procpool') throw new Error('signal-shared: procpool only');
    const pool = new Pool(tasksUrl, { processes: p.processes, nodeOptions: [] });
    await pool.ready();
    await timedApplies(pool, p.n, undefined);
    const shared: number[] = [];
    const plain: number[] = [];
    for (let round = 0; round < 5; round++) {
      shared.push(await timedApplies(pool, p.n, new AbortController().signal));
      plain.push(await timedApplies(pool, p.n, undefined));
    }
    pool.close();
    await pool.join();
    const sharedMs = median(shared);
    const plainMs = median(plain);
    return { sharedMs, plainMs, ratio: sharedMs / plainMs };
  },

  /**
   * imap over a slow source (each item answered in a later turn: chunks go
   * out before they fill) whose consumer pauses 50 ms every 50,000 items:
   * the parent's peak RSS stays flat however long the input.
   */
  async 'imap-paused'(name, p) {
    if (name !== 'procpool') throw new Error('imap-paused: procpool only');
    const pool = await Pool.create(tasksUrl, { processes: p.processes, nodeOptions: [] });
    try {
      await pool.apply('inc', [0]);
      const baseRssMib = statusMib('self', 'VmRSS');
      async function* slow(n: number): AsyncGenerator<number> {
        for (let i = 0; i < n; i++) {
          await new Promise((resolve) => setImmediate(resolve));
          yield i;
        }
      }
      const t0 = performance.now();
      let total = 0;
      let seen = 0;
      for await (const value of pool.imap('inc', slow(p.n), { chunksize: 100 })) {
        total += value as number;
        if (++seen % 50_000 === 0) await sleep(50);
      }
      const elapsed = performance.now() - t0;
      check(total === sumTo(p.n), 'imap-paused');
      return { itemsPerSec: p.n / (elapsed / 1000), peakRssMib: statusMib('self', 'VmHWM'), baseRssMib };
    } finally {
      pool.close();
      await pool.join();
    }
  },

  /**
   * A priority call behind a flood: after fast items (chunks measured tiny,
   * children kept fed), 40 items of `chunkMs` each per child; a `priority: 10`
   * apply made while they run waits about one running chunk.
   */
  async 'priority-wait'(name, p) {
    if (name !== 'procpool') throw new Error('priority-wait: procpool only');
    const pool = new Pool(tasksUrl, { processes: p.processes, nodeOptions: [] });
    await pool.ready();
    const waits: number[] = [];
    for (let round = 0; round < 5; round++) {
      await pool.map('sleepMs', Array.from({ length: 2000 }, () => 0), { chunksize: 1 });
      const flood = pool.map('sleepMs', Array.from({ length: 40 * p.processes }, () => p.chunkMs), { chunksize: 1 });
      await sleep(p.chunkMs / 2);
      const t0 = performance.now();
      await pool.apply('sleepMs', [0], { priority: 10 });
      waits.push(performance.now() - t0);
      await flood;
    }
    pool.close();
    await pool.join();
    const waitMs = median(waits);
    return { waitMs, chunkMs: p.chunkMs, ratio: waitMs / p.chunkMs };
  },
};
Object.assign(workloads, edgeWorkloads);

function mapWorkload(name: string, p: Params, chunksize: number | undefined): Promise<Record<string, unknown>> {
  if (name !== 'procpool') throw new Error('map: procpool only (the floor has no chunking)');
  return withPool(name, p.processes, async (pool) => {
    const items = Array.from({ length: p.n }, (_, i) => i);
    const t0 = performance.now();
    const results = (await pool.map('inc', items, chunksize)) as number[];
    const elapsed = performance.now() - t0;
    let sum = 0;
    for (const r of results) sum += r;
    check(sum === sumTo(p.n), 'map');
    return { itemsPerSec: p.n / (elapsed / 1000) };
  });
}

const [contender, workload, json] = process.argv.slice(2);
const run = workloads[workload ?? ''];
if (contender === undefined || run === undefined) {
  console.error(`usage: measure.ts floor|procpool ${Object.keys(workloads).join('|')} 'JSON params'`);
  process.exit(2);
}
const result = await run(contender, JSON.parse(json ?? '{}') as Params);
console.log(JSON.stringify(result));
