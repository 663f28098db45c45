/**
 * Notes on stderr: the first few failures as they happen, the summary line
 * at the end (items, failures, wall time, items/s) and, with `--stats`, the
 * pool's own figures.
 */
import type { PoolStats } from '../stats.js';
import { describeError } from './errors-file.js';
import { formatCount, formatDuration, formatMiB, formatRate } from './format.js';

const shownFailures = 10;

/** Prints the first failures with their input line number, then only counts them. */
export class FailureNotes {
  readonly #log: (text: string) => void;
  readonly #details: string | undefined;
  #count = 0;

  /** `errorsPath`: where the full records are, if anywhere. */
  constructor(log: (text: string) => void, errorsPath: string | undefined) {
    this.#log = log;
    this.#details = errorsPath;
  }

  note(line: number, error: unknown): void {
    this.#count++;
    if (this.#count > shownFailures) return;
    const { name, message } = describeError(error);
    this.#log(`procpool: line ${line}: ${name}: ${message}\n`);
    if (this.#count === shownFailures) {
      this.#log(`procpool: further failures are not shown here${this.#details === undefined ? ' (use --errors FILE to keep them all)' : ` (all are in ${this.#details})`}\n`);
    }
  }
}

function plural(count: number, one: string, many: string): string {
  return `${formatCount(count)} ${count === 1 ? one : many}`;
}

/** What the summary line reports. */
export interface RunTotals {
  items: number;
  failed: number;
  ms: number;
  /** 'interrupted' (Ctrl-C) or 'stopped at the first failure' (--fail-fast). */
  ending: string | undefined;
  errorsPath: string | undefined;
}

/** `procpool: 5,000 items, 3 failed (see errors.jsonl), 12.3 s, 406 items/s`. */
export function formatSummary({ items, failed, ms, ending, errorsPath }: RunTotals): string {
  const failures = `${formatCount(failed)} failed${failed > 0 && errorsPath !== undefined ? ` (see ${errorsPath})` : ''}`;
  const head = ending === undefined ? 'procpool' : `procpool: ${ending}`;
  return `${head}: ${plural(items, 'item', 'items')}, ${failures}, ${formatDuration(ms)}, ${formatRate(items, ms)} items/s\n`;
}

/** The pool's figures: restarts, timing percentiles, then one line per child. */
export function formatStats(stats: PoolStats): string {
  const ms = (value: number): string => `${value.toFixed(value < 10 ? 2 : 0)} ms`;
  const lines = [
    `procpool: ${plural(stats.processes, 'process', 'processes')}, ${plural(stats.restarts, 'restart', 'restarts')}`,
    `  queue wait p50 ${ms(stats.queueWait.p50)}, p90 ${ms(stats.queueWait.p90)}, p99 ${ms(stats.queueWait.p99)}`,
    `  run time per item p50 ${ms(stats.runTime.p50)}, p90 ${ms(stats.runTime.p90)}, p99 ${ms(stats.runTime.p99)}`,
    ...stats.children.map((child) => `  pid ${String(child.pid)}: ${plural(child.items, 'item', 'items')}, ${plural(child.restarts, 'restart', 'restarts')}, ${formatMiB(child.rss)}`),
  ];
  return `${lines.join('\n')}\n`;
}
