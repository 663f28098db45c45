/**
 * `npm run bench`: procpool against the floor (a minimal fork pool, see
 * floor.ts), Python's multiprocessing.Pool (py_bench.py) and serial work.
 *
 * Every measurement runs in a fresh process (measure.ts / py_bench.py),
 * spawned with NODE_EXTRA_CA_CERTS and NODE_OPTIONS removed from the
 * environment, for every contender alike. Rounds are interleaved: in each
 * round every workload runs once per contender, the starting contender
 * rotated from round to round; figures are medians over rounds.
 *
 * BENCH_QUICK=1: one round, small sizes (a smoke test). BENCH_ROUNDS=n
 * overrides the number of rounds. BENCH_ONLY=id,id runs only those
 * workloads (e.g. `BENCH_ONLY=signal-shared,imap-paused,imap-paused-large,priority-wait`);
 * the report then shows only their rows' figures.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { report, type Samples, type RunInfo } from './report.js';

const quick = process.env.BENCH_QUICK === '1';
const only = process.env.BENCH_ONLY?.split(',').map((id) => id.trim());
const rounds = Number(process.env.BENCH_ROUNDS ?? (quick ? 1 : 5));
const cores = availableParallelism();
const processes = 2;
const here = new URL('.', import.meta.url);
const resultsDir = fileURLToPath(new URL('./results/', here));

/** Variables that slow every Node start; cleared for every contender. */
const slowVars = ['NODE_EXTRA_CA_CERTS', 'NODE_OPTIONS'];
const cleared = slowVars.filter((name) => process.env[name] !== undefined);
const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !slowVars.includes(name)));

const size = {
  startupSamples: quick ? 1 : 3,
  latency: quick ? { warmup: 50, n: 300 } : { warmup: 300, n: 2000 },
  tiny: quick ? 2000 : 20_000,
  mapDefault: quick ? 100_000 : 1_000_000,
  mapTimeout: quick ? 20_000 : 100_000,
  longLife: quick ? 50_000 : 1_000_000,
  cpu: quick ? { node: 27, python: 21, items: 8 } : { node: 32, python: 26, items: 24 },
  echo: quick ? 20 : 200,
  imap: quick ? 100_000 : 1_000_000,
  pythonImap: quick ? 10_000 : 100_000,
  signalApplies: quick ? 2000 : 20_000,
  imapPaused: quick ? 100_000 : 1_000_000,
};
const counts = quick ? [1, 2] : Array.from({ length: 2 * cores }, (_, i) => i + 1);

type Contender = 'floor' | 'procpool' | 'python';

interface Workload {
  /** Key in the samples. */
  id: string;
  /** Name in measure.ts / py_bench.py. */
  run: string;
  contenders: Contender[];
  params: Record<string, unknown>;
  /** Python's own parameters, where they differ. */
  python?: Record<string, unknown>;
  /** Measured in the first round only (long). */
  once?: boolean;
}

const both: Contender[] = ['floor', 'procpool', 'python'];
const workloads: Workload[] = ([
  { id: 'fresh', run: 'fresh', contenders: both, params: { processes } },
  { id: 'startup', run: 'startup', contenders: both, params: { processes, samples: size.startupSamples } },
  { id: 'after-crash', run: 'after-crash', contenders: both, params: { processes } },
  { id: 'map-chunk', run: 'map-chunk', contenders: both, params: { processes, n: size.mapDefault, chunksize: 2500 } },
  { id: 'latency', run: 'latency', contenders: both, params: { processes, ...size.latency } },
  { id: 'apply', run: 'apply', contenders: both, params: { processes, n: size.tiny } },
  { id: 'map-c1', run: 'map-c1', contenders: ['procpool', 'python'], params: { processes, n: size.tiny } },
  { id: 'map-default', run: 'map-default', contenders: ['procpool', 'python'], params: { processes, n: size.mapDefault } },
  { id: 'cold', run: 'cold', contenders: ['procpool'], params: { processes } },
  { id: 'long-life', run: 'long-life', contenders: ['procpool'], params: { processes, n: size.longLife }, once: true },
  { id: 'map-timeout', run: 'map-timeout', contenders: ['procpool'], params: { processes, n: size.mapTimeout } },
  { id: 'cpu', run: 'cpu', contenders: both, params: { counts, fib: size.cpu.node, items: size.cpu.items }, python: { processes: counts, fib: size.cpu.python, items: size.cpu.items } },
  { id: 'echo', run: 'echo', contenders: both, params: { processes, n: size.echo, bytes: 2 ** 20 } },
  { id: 'rss', run: 'rss', contenders: both, params: { processes, settleMs: 300 } },
  { id: 'imap', run: 'imap', contenders: ['procpool', 'python'], params: { processes, n: size.imap }, python: { processes, n: size.pythonImap } },
  { id: 'imap-large', run: 'imap', contenders: ['procpool'], params: { processes, n: 3 * size.imap } },
  { id: 'signal-shared', run: 'signal-shared', contenders: ['procpool'], params: { processes, n: size.signalApplies } },
  { id: 'imap-paused', run: 'imap-paused', contenders: ['procpool'], params: { processes, n: size.imapPaused / 10 } },
  { id: 'imap-paused-large', run: 'imap-paused', contenders: ['procpool'], params: { processes, n: size.imapPaused }, once: true },
  { id: 'priority-wait', run: 'priority-wait', contenders: ['procpool'], params: { processes, chunkMs: 50 } },
] satisfies Workload[]).filter((workload) => only === undefined || only.includes(workload.id));

function pythonVersion(): string | undefined {
  const probe = spawnSync('python3', ['--version'], { encoding: 'utf8', env });
  return probe.status === 0 ? (probe.stdout || probe.stderr).trim() : undefined;
}

/** Loader flags for the measuring processes (tsx), never for the pools' children. */
const tsxArgs = process.execArgv.some((arg) => arg.includes('tsx')) ? process.execArgv : ['--import', 'tsx'];

function measure(contender: Contender, workload: Workload): Promise<Record<string, unknown>> {
  const params = contender === 'python' ? (workload.python ?? workload.params) : workload.params;
  const script = (name: string): string => fileURLToPath(new URL(name, here));
  // `fresh`: a user's script in a fresh process, run by plain node (no loader), its import included.
  const [command, args] =
    workload.run === 'fresh'
      ? contender === 'python'
        ? ['python3', [script('./fresh.py'), String(params.processes)]]
        : [process.execPath, [script(`./fresh-${contender}.mjs`), String(params.processes)]]
      : contender === 'python'
        ? ['python3', [script('./py_bench.py'), workload.run, JSON.stringify(params)]]
        : [process.execPath, [...tsxArgs, script('./measure.ts'), contender, workload.run, JSON.stringify(params)]];
  return new Promise((resolve) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (data: Buffer) => (out += data.toString()));
    child.stderr.on('data', (data: Buffer) => (err += data.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').at(-1) ?? '';
      try {
        if (code !== 0) throw new Error();
        resolve(JSON.parse(line) as Record<string, unknown>);
      } catch {
        const why = err.trim().split('\n').find((l) => /Error|error:/.test(l)) ?? err.trim().split('\n').at(-1) ?? '';
        resolve({ error: `${signal ?? `exit ${code}`}: ${why.slice(0, 160)}` });
      }
    });
  });
}

const python = pythonVersion();
if (python === undefined) console.log('note: python3 not found — the Python contender is skipped.');
console.log(
  `procpool bench: ${rounds} round(s)${quick ? ' (BENCH_QUICK)' : ''}, ${processes} processes, ${cores} cores; ` +
    `cleared for every contender: ${slowVars.join(', ')}${cleared.length > 0 ? ` (set here: ${cleared.join(', ')})` : ''}`,
);

const samples: Samples = {};
const started = Date.now();
const loadBefore = loadavg()[0]!;
for (let round = 0; round < rounds; round++) {
  for (const workload of workloads) {
    if (workload.once === true && round > 0) continue;
    const list = workload.contenders.filter((c) => c !== 'python' || python !== undefined);
    const order = list.map((_, i) => list[(i + round) % list.length]!);
    for (const contender of order) {
      const result = await measure(contender, workload);
      ((samples[workload.id] ??= {})[contender] ??= []).push(result);
      if (result.error !== undefined) console.log(`  ! ${workload.id} / ${contender}: ${String(result.error)}`);
    }
  }
  console.log(`round ${round + 1}/${rounds} done (${((Date.now() - started) / 1000).toFixed(0)} s)`);
}

const info: RunInfo = {
  date: new Date().toISOString(),
  rounds,
  quick,
  processes,
  cores,
  node: process.version,
  python,
  cleared: slowVars,
  clearedHere: cleared,
  seconds: (Date.now() - started) / 1000,
  load: [loadBefore, loadavg()[0]!],
  sizes: { ...size, counts },
  ...(only === undefined ? {} : { only }),
};
const out = report(info, samples);
mkdirSync(resultsDir, { recursive: true });
// A run of some workloads only never overwrites the full run's figures.
const name = only === undefined ? 'latest' : 'only';
writeFileSync(`${resultsDir}${name}.md`, out.markdown);
writeFileSync(`${resultsDir}${name}.json`, `${JSON.stringify(out.json, null, 2)}\n`);
if (only === undefined) {
  writeFileSync(`${resultsDir}scaling.svg`, out.scalingSvg);
  writeFileSync(`${resultsDir}throughput.svg`, out.throughputSvg);
}
console.log(`\n${out.markdown}`);
console.log(`written: bench/results/${name}.md, ${name}.json${only === undefined ? ', scaling.svg, throughput.svg' : ''} (${info.seconds.toFixed(0)} s)`);

// The cluster's figures beside these (skipped with a message without redis-server).
if (only === undefined) spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./cluster.ts', here))], { stdio: 'inherit', env: process.env });
