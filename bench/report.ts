/**
 * From the raw samples of bench/run.ts to medians, ratios, the target
 * verdicts, the markdown table, the JSON and the two SVG charts.
 */
import { cpus, totalmem } from 'node:os';
import { barChart, lineChart } from './svg.js';

/** samples[workload][contender] = one result object per round. */
export type Samples = Record<string, Record<string, Array<Record<string, unknown>>>>;

export interface RunInfo {
  date: string;
  rounds: number;
  quick: boolean;
  processes: number;
  cores: number;
  node: string;
  python: string | undefined;
  cleared: string[];
  clearedHere: string[];
  seconds: number;
  /** 1-minute load average at the start and at the end of the run. */
  load: number[];
  /** BENCH_ONLY: the workloads run (the others' rows and targets are left out). */
  only?: string[];
  sizes: {
    tiny: number;
    mapDefault: number;
    mapTimeout: number;
    longLife: number;
    imap: number;
    pythonImap: number;
    echo: number;
    counts: number[];
    cpu: { node: number; python: number; items: number };
    signalApplies: number;
    imapPaused: number;
  };
}

const colors = { floor: '#7f7f7f', procpool: '#1f77b4', python: '#e3a21a', ideal: '#bbbbbb' };

function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function pick(result: Record<string, unknown>, path: string): number {
  let value: unknown = result;
  for (const key of path.split('.')) value = (value as Record<string, unknown> | undefined)?.[key];
  return typeof value === 'number' ? value : Number.NaN;
}

type Unit = 'ms' | 'µs' | 'items/s' | 'MiB/s' | 'MiB' | '×';

function fmt(value: number, unit: Unit): string {
  if (!Number.isFinite(value)) return '—';
  switch (unit) {
    case 'items/s':
      return value >= 1e6 ? `${(value / 1e6).toFixed(2)} M/s` : `${(value / 1e3).toFixed(1)} k/s`;
    case 'µs':
      return `${value.toFixed(0)} µs`;
    case 'ms':
      return `${value.toFixed(1)} ms`;
    case '×':
      return `${value.toFixed(2)}×`;
    default:
      return `${value.toFixed(1)} ${unit}`;
  }
}

const ratio = (a: number, b: number): number => a / b;
const fmtRatio = (r: number): string => (Number.isFinite(r) ? r.toFixed(2) : 'n/a (failed)');
const cellRatio = (r: number): string => (Number.isFinite(r) ? r.toFixed(2) : '—');

export function report(info: RunInfo, samples: Samples): { markdown: string; json: unknown; scalingSvg: string; throughputSvg: string } {
  const med = (workload: string, contender: string, path: string): number =>
    median((samples[workload]?.[contender] ?? []).map((r) => pick(r, path)).filter(Number.isFinite));
  const errors = Object.entries(samples).flatMap(([w, byContender]) =>
    Object.entries(byContender).flatMap(([c, results]) => results.filter((r) => r.error !== undefined).map((r) => `${w} / ${c}: ${String(r.error)}`)),
  );

  const serialNode = median(['floor', 'procpool'].flatMap((c) => (samples.cpu?.[c] ?? []).map((r) => pick(r, 'serialMs'))).filter(Number.isFinite));
  const serialPython = med('cpu', 'python', 'serialMs');
  /** Median over rounds of each run's own serial ÷ parallel time. */
  const speedup = (contender: string, p: number): number => med('cpu', contender, `speedup.${p}`);

  const contenders = ['floor', 'procpool', 'python'] as const;
  type Row = { label: string; unit: Unit; values: Record<(typeof contenders)[number], number> };
  const row = (label: string, unit: Unit, get: (c: (typeof contenders)[number]) => number): Row => ({
    label,
    unit,
    values: { floor: get('floor'), procpool: get('procpool'), python: get('python') },
  });
  const n = (count: number): string => count.toLocaleString('en-US');
  const rows: Row[] = [
    row('Fresh process: import, pool up, first result, closed ⁵', 'ms', (c) => med('fresh', c, 'ms')),
    row("of which the import (`import 'procpool'`; floor: `node:child_process`; Python: `multiprocessing`)", 'ms', (c) => med('fresh', c, 'importMs')),
    row('Start-up in a process that imported already: pool up, first result, closed', 'ms', (c) => med('startup', c, 'ms')),
    row('10 calls right after a child crashed mid-item', 'ms', (c) => med('after-crash', c, 'ms')),
    row(`\`map\` at the same chunksize, 2,500 (${n(info.sizes.mapDefault)} tiny items)`, 'items/s', (c) => med('map-chunk', c, 'itemsPerSec')),
    row('Round trip of one tiny call, p50', 'µs', (c) => med('latency', c, 'p50')),
    row('Round trip of one tiny call, p99', 'µs', (c) => med('latency', c, 'p99')),
    row(`Tiny items, one per message: ${n(info.sizes.tiny)} \`apply\` in flight ¹`, 'items/s', (c) => med('apply', c, 'itemsPerSec')),
    row(`Tiny items, \`map\` chunksize=1 (${n(info.sizes.tiny)})`, 'items/s', (c) => med('map-c1', c, 'itemsPerSec')),
    row(`Tiny items, default chunking \`map\` (${n(info.sizes.mapDefault)})`, 'items/s', (c) => med('map-default', c, 'itemsPerSec')),
    row(`CPU-bound speedup over serial, ${info.processes} processes ²`, '×', (c) => speedup(c, info.processes)),
    row('1 MiB `Uint8Array` echo', 'MiB/s', (c) => med('echo', c, 'mibPerSec')),
    row('Resident memory of one idle child', 'MiB', (c) => med('rss', c, 'mib')),
    row(`\`imap\` over ${n(info.sizes.imap)} tiny items from a generator ³`, 'items/s', (c) => med('imap', c, 'itemsPerSec')),
    row('`imap`: peak parent RSS ³', 'MiB', (c) => med('imap', c, 'peakRssMib')),
    row(`${n(info.sizes.signalApplies)} \`apply\` sharing one AbortSignal ÷ the same without a signal`, '×', (c) => med('signal-shared', c, 'ratio')),
    row(`\`imap\` from a slow source, consumer paused every 50,000: peak parent RSS (${n(info.sizes.imapPaused)} items)`, 'MiB', (c) => med('imap-paused-large', c, 'peakRssMib')),
    row('A `priority: 10` apply behind a flood of 50 ms chunks: its wait', 'ms', (c) => med('priority-wait', c, 'waitMs')),
  ];

  const pp = (workload: string, path: string): number => med(workload, 'procpool', path);
  const imapRatio = ratio(pp('imap', 'itemsPerSec'), pp('map-default', 'itemsPerSec'));
  const rssGrowth = ratio(pp('imap-large', 'peakRssMib'), pp('imap', 'peakRssMib'));
  const targets: Array<{ figure: string; target: string; measured: string; met: boolean }> = [];
  const target = (figure: string, text: string, measured: string, met: boolean): void => void targets.push({ figure, target: text, measured, met });
  {
    const fresh = ratio(med('fresh', 'procpool', 'ms'), med('fresh', 'floor', 'ms'));
    target('fresh process to first result and closed, import included', '≤ 1.5 × floor (moonshot 1.2 ×)', `${fmtRatio(fresh)} × floor`, fresh <= 1.5);
    const imported = pp('fresh', 'importMs');
    target("`import 'procpool'` in a fresh process", '≤ 15 ms', fmt(imported, 'ms'), imported <= 15);
    const crash = ratio(pp('after-crash', 'ms'), med('after-crash', 'floor', 'ms'));
    target('10 calls right after a crash', '≤ 2 × floor', `${fmtRatio(crash)} × floor`, crash <= 2);
    const chunk = ratio(pp('map-chunk', 'itemsPerSec'), med('map-chunk', 'floor', 'itemsPerSec'));
    target('`map` of tiny items at the same chunksize', '≥ 1.0 × floor', `${fmtRatio(chunk)} × floor`, chunk >= 1);
    const d = ratio(pp('map-default', 'itemsPerSec'), med('map-default', 'python', 'itemsPerSec'));
    target(`\`map\` of ${n(info.sizes.mapDefault)} tiny items, each side's default`, "≥ 1.0 × Python's `Pool.map`", `${fmtRatio(d)} × Python`, d >= 1);
    const tf = ratio(pp('apply', 'itemsPerSec'), med('apply', 'floor', 'itemsPerSec'));
    target('tiny items one per call, many in flight', '≥ 1.5 × floor', `${fmtRatio(tf)} × floor`, tf >= 1.5);
    const e = ratio(pp('echo', 'mibPerSec'), med('echo', 'floor', 'mibPerSec'));
    target('1 MiB echo', '≥ 0.95 × floor', `${fmtRatio(e)} × floor`, e >= 0.95);
    const m = ratio(pp('rss', 'mib'), med('rss', 'floor', 'mib'));
    target('idle child RSS', "≤ 1.05 × floor's child", `${fmtRatio(m)} × floor`, m <= 1.05);
    const f = ratio(med('latency', 'procpool', 'p50'), med('latency', 'floor', 'p50'));
    target('round trip p50', '≤ 1.10 × floor', `${fmtRatio(f)} × floor`, f <= 1.1);
    const s = ratio(speedup('procpool', info.processes), speedup('floor', info.processes));
    target('CPU-bound speedup', "≥ 0.97 × floor's", `${fmtRatio(s)} × floor's`, s >= 0.97);
    const cold = pp('cold', 'ms');
    const warm = med('startup', 'procpool', 'ms');
    target('first result on a `minProcesses: 0` pool (cold)', 'reported (pays one child start)', `${fmt(cold, 'ms')} (${fmtRatio(ratio(cold, warm))} × a fixed pool's start-up to first result)`, Number.isFinite(cold));
    const growth = pp('long-life', 'growthMib');
    target(
      `parent heap after ${n(info.sizes.longLife)} \`apply\` calls`,
      'flat: within a few MiB',
      `${fmt(growth, 'MiB')} growth (${fmt(pp('long-life', 'beforeMib'), 'MiB')} → ${fmt(pp('long-life', 'afterMib'), 'MiB')}, after a forced GC; ${fmt(pp('long-life', 'callsPerSec'), 'items/s')})`,
      growth < 8,
    );
    const t = pp('map-timeout', 'ratio');
    target('`map` with `timeout` vs without', '≥ 0.7 ×', `${fmtRatio(t)} × (${fmt(pp('map-timeout', 'timedMs'), 'ms')} vs ${fmt(pp('map-timeout', 'plainMs'), 'ms')} for ${n(info.sizes.mapTimeout)} items)`, t >= 0.7);
    target(
      'imap, tiny items',
      '≥ 0.5 × default `map`; parent RSS bounded ⁴',
      `${fmtRatio(imapRatio)} × map; peak RSS ${fmt(pp('imap', 'peakRssMib'), 'MiB')} at ${n(info.sizes.imap)}, ${fmt(pp('imap-large', 'peakRssMib'), 'MiB')} at ${n(3 * info.sizes.imap)} (${fmtRatio(rssGrowth)}×)`,
      imapRatio >= 0.5 && rssGrowth <= 1.1,
    );
    const shared = pp('signal-shared', 'ratio');
    target(`${n(info.sizes.signalApplies)} applies sharing one signal ÷ without`, '≤ 1.2 ×', `${fmtRatio(shared)} × (${fmt(pp('signal-shared', 'sharedMs'), 'ms')} vs ${fmt(pp('signal-shared', 'plainMs'), 'ms')})`, shared <= 1.2);
    const paused = ratio(pp('imap-paused-large', 'peakRssMib'), pp('imap-paused', 'peakRssMib'));
    target(
      '`imap`, slow source, paused consumer',
      `flat: peak parent RSS at ${n(info.sizes.imapPaused)} items within 1.10 × that at ${n(info.sizes.imapPaused / 10)}`,
      `${fmt(pp('imap-paused-large', 'peakRssMib'), 'MiB')} vs ${fmt(pp('imap-paused', 'peakRssMib'), 'MiB')} (${fmtRatio(paused)}×)`,
      paused <= 1.1,
    );
    const waited = pp('priority-wait', 'ratio');
    target('a priority call behind a flood', '≈ one running chunk (≤ 2 × a chunk)', `${fmt(pp('priority-wait', 'waitMs'), 'ms')} = ${fmtRatio(waited)} × a chunk of ${fmt(pp('priority-wait', 'chunkMs'), 'ms')}`, waited <= 2);
  }

  const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${info.cores} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${process.platform}`;
  const lines: string[] = [];
  lines.push(`### procpool benchmark — ${info.date.slice(0, 10)}${info.quick ? ' (BENCH_QUICK: smoke sizes, not figures)' : ''}`);
  lines.push('');
  lines.push(
    `${machine}; Node ${info.node}; ${info.python ?? 'Python: not found (skipped)'}. ` +
      `${info.processes} processes unless stated; medians of ${info.rounds} interleaved round(s) (starting contender rotated), each measurement in a fresh process. ` +
      `${info.cleared.join(' and ')} cleared for every contender${info.clearedHere.length > 0 ? ` (${info.clearedHere.join(', ')} set in this environment)` : ''}. ` +
      `Run took ${info.seconds.toFixed(0)} s; 1-minute load average ${info.load.map((l) => l.toFixed(2)).join(' at the start, ')} at the end` +
      `${Math.max(...info.load) > info.cores * 0.5 ? ' — other work shared the machine: expect noise, CPU-bound figures most of all' : ''}. ` +
      'Floor: a minimal `child_process.fork` pool (bench/floor.ts), one item per message, one in flight per child.',
  );
  lines.push('');
  lines.push('| figure | floor | procpool | Python | procpool ÷ floor | procpool ÷ Python |');
  lines.push('|---|--:|--:|--:|--:|--:|');
  const measured = (r: Row): boolean => Object.values(r.values).some(Number.isFinite);
  for (const r of info.only === undefined ? rows : rows.filter(measured)) {
    const v = r.values;
    lines.push(`| ${r.label} | ${fmt(v.floor, r.unit)} | ${fmt(v.procpool, r.unit)} | ${fmt(v.python, r.unit)} | ${cellRatio(ratio(v.procpool, v.floor))} | ${cellRatio(ratio(v.procpool, v.python))} |`);
  }
  lines.push('');
  lines.push(`¹ Python: \`apply_async\` × ${n(info.sizes.tiny)}. The floor has no chunking: its \`map\` rows are empty.`);
  lines.push(
    `² ${info.sizes.cpu.items} × fib(${info.sizes.cpu.node}) in Node (serial: ${fmt(serialNode, 'ms')}), ${info.sizes.cpu.items} × fib(${info.sizes.cpu.python}) in Python (serial: ${fmt(serialPython, 'ms')}); each side's default \`map\` chunking, the floor one item per message. Each run times serial work in its own process just before its pools; the speedup is the median of those pairs.`,
  );
  lines.push(`³ Python's \`imap\` (default chunksize 1) over ${n(info.sizes.pythonImap)} items: its own figures, not comparable item for item.`);
  lines.push(`⁴ Bounded: peak parent RSS at ${n(3 * info.sizes.imap)} items within 1.10 × that at ${n(info.sizes.imap)}.`);
  lines.push(
    "⁵ A script run by plain `node` (or `python3`), timed from its first line: the import, the pool's start, one result, the pool closed and its children gone (bench/fresh-*.mjs, bench/fresh.py). Node's own start, before the first line, is the same for procpool and the floor.",
  );
  lines.push('');
  lines.push('| target (issue 9) | wanted | measured | met |');
  lines.push('|---|---|---|:-:|');
  for (const t of info.only === undefined ? targets : targets.filter((t) => !/n\/a|—/.test(t.measured))) lines.push(`| ${t.figure} | ${t.target} | ${t.measured} | ${t.met ? 'yes' : '**no**'} |`);
  if (info.only === undefined) {
    lines.push('');
    lines.push(`Scaling: the CPU-bound job's speedup over serial by number of processes (${info.cores} cores).`);
    lines.push('');
    lines.push(`| processes | ${info.sizes.counts.join(' | ')} |`);
    lines.push(`|---|${info.sizes.counts.map(() => '--:').join('|')}|`);
    for (const c of contenders) lines.push(`| ${c} | ${info.sizes.counts.map((p) => fmt(speedup(c, p), '×')).join(' | ')} |`);
  }
  if (errors.length > 0) {
    lines.push('');
    lines.push('Failed measurements (left out of the medians):');
    lines.push('');
    for (const e of errors) lines.push(`- ${e}`);
  }
  lines.push('');

  const scalingSvg = lineChart({
    title: 'CPU-bound job: speedup over serial',
    subtitle: `${machine} — ${info.date.slice(0, 10)}, medians of ${info.rounds} round(s)`,
    xLabel: 'processes',
    yLabel: 'speedup (×)',
    series: [
      { name: 'ideal (cores)', color: colors.ideal, dashed: true, points: info.sizes.counts.map((p) => [p, Math.min(p, info.cores)]) },
      ...contenders.map((c) => ({ name: c === 'python' ? 'Python Pool' : c, color: colors[c], points: info.sizes.counts.map((p): [number, number] => [p, speedup(c, p)]) })),
    ],
  });
  const throughputSvg = barChart({
    title: `Tiny-item throughput, ${info.processes} processes`,
    subtitle: `${machine} — ${info.date.slice(0, 10)}, medians of ${info.rounds} round(s)`,
    unit: 'items/s',
    series: contenders.map((c) => ({ name: c === 'python' ? 'Python Pool' : c, color: colors[c] })),
    groups: [
      { label: 'one per message (apply)', values: contenders.map((c) => med('apply', c, 'itemsPerSec')) },
      { label: 'map, chunksize=1', values: contenders.map((c) => med('map-c1', c, 'itemsPerSec')) },
      { label: 'map, default chunking', values: contenders.map((c) => med('map-default', c, 'itemsPerSec')) },
      { label: 'imap from a generator', values: contenders.map((c) => med('imap', c, 'itemsPerSec')) },
    ],
  });

  const json = {
    info: { ...info, machine },
    medians: Object.fromEntries(rows.map((r) => [r.label, { unit: r.unit, ...r.values }])),
    scaling: Object.fromEntries(contenders.map((c) => [c, Object.fromEntries(info.sizes.counts.map((p) => [p, speedup(c, p)]))])),
    serialMs: { node: serialNode, python: serialPython },
    targets,
    errors,
    samples,
  };
  return { markdown: lines.join('\n'), json, scalingSvg, throughputSvg };
}
