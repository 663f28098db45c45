/**
 * What the person watching sees on stderr while the run goes: a live bar
 * (items done / total, rate, ETA, failures) when stderr is a terminal or
 * `--progress` forces it. The bar owns the terminal's last line: anything
 * else written to that terminal — notes, and results when standard output
 * is the same terminal — erases it first and it is drawn again after, so no
 * line ever carries bar text and the scrollback keeps no stale bars.
 */
import { fstatSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { Writable } from 'node:stream';
import { formatCount, formatEta, formatRate } from './format.js';

/** The run's status on stderr. */
export interface StatusLine {
  /** Whether a bar is drawn (worth counting the input for its total). */
  readonly drawsBar: boolean;
  /** Items settled so far, and how many of them failed. */
  update(done: number, failed: number): void;
  /** The number of items, once known. */
  setTotal(total: number): void;
  /** A note, ending with a line break, printed above the bar. */
  log(text: string): void;
  /** Erases the bar before another stream writes to its terminal; it is drawn again once that write is done. */
  makeRoom(): void;
  /** Draws the final state and leaves the bar behind. */
  stop(): void;
  /** Erases the bar and leaves nothing behind. */
  discard(): void;
}

/** A bar when `progress` is true, or undefined and `stream` is a terminal; plain notes otherwise. */
export function startStatusLine(stream: NodeJS.WriteStream, progress: boolean | undefined, label: string): StatusLine {
  const tty = stream.isTTY === true;
  return progress === true || (progress === undefined && tty) ? new ProgressBar(stream, tty, label) : new PlainStatus(stream);
}

/** Whether `a` and `b` write to one terminal (stdout and stderr at an interactive shell). */
export function sameTerminal(a: Writable, b: Writable): boolean {
  const fdA = (a as { isTTY?: boolean; fd?: number }).isTTY === true ? (a as { fd?: number }).fd : undefined;
  const fdB = (b as { isTTY?: boolean; fd?: number }).isTTY === true ? (b as { fd?: number }).fd : undefined;
  if (fdA === undefined || fdB === undefined) return false;
  try {
    return fstatSync(fdA).rdev === fstatSync(fdB).rdev;
  } catch {
    return false;
  }
}

/** No bar: notes go straight through. */
class PlainStatus implements StatusLine {
  readonly drawsBar = false;
  readonly #stream: NodeJS.WriteStream;

  constructor(stream: NodeJS.WriteStream) {
    this.#stream = stream;
  }

  update(): void {}
  setTotal(): void {}
  makeRoom(): void {}
  stop(): void {}
  discard(): void {}

  log(text: string): void {
    this.#stream.write(text);
  }
}

const barWidth = 30;
const eraseLine = '\r\u001b[K';

/**
 * On a terminal: redrawn in place ten times a second, erased around other
 * output. Off one (forced with --progress): a fresh line each second.
 */
class ProgressBar implements StatusLine {
  readonly drawsBar = true;
  readonly #stream: NodeJS.WriteStream;
  readonly #tty: boolean;
  readonly #label: string;
  readonly #started = performance.now();
  readonly #timer: NodeJS.Timeout;
  #done = 0;
  #failed = 0;
  #total: number | undefined;
  /** The bar is on the screen now (the cursor is at the end of its line). */
  #drawn = false;
  #redraw: NodeJS.Immediate | undefined;
  #stopped = false;

  constructor(stream: NodeJS.WriteStream, tty: boolean, label: string) {
    this.#stream = stream;
    this.#tty = tty;
    this.#label = label;
    this.#timer = setInterval(() => this.#draw(), tty ? 100 : 1000).unref();
    if (tty) this.#draw();
  }

  update(done: number, failed: number): void {
    this.#done = done;
    this.#failed = failed;
  }

  setTotal(total: number): void {
    this.#total = total;
  }

  log(text: string): void {
    this.makeRoom();
    this.#stream.write(text);
  }

  makeRoom(): void {
    if (this.#stopped || !this.#tty) return;
    if (this.#drawn) this.#stream.write(eraseLine);
    this.#drawn = false;
    // Once per turn of the event loop, after the whole burst of output: the bar stays visible while results stream.
    this.#redraw ??= setImmediate(() => {
      this.#redraw = undefined;
      this.#draw();
    });
  }

  stop(): void {
    if (this.#stopped) return;
    this.#draw();
    if (this.#tty) this.#stream.write('\n');
    this.#end();
  }

  discard(): void {
    if (this.#stopped) return;
    if (this.#drawn) this.#stream.write(eraseLine);
    this.#end();
  }

  #end(): void {
    this.#stopped = true;
    this.#drawn = false;
    clearInterval(this.#timer);
    if (this.#redraw !== undefined) clearImmediate(this.#redraw);
  }

  #draw(): void {
    if (this.#stopped) return;
    if (!this.#tty) {
      this.#stream.write(`${this.#format()}\n`);
      return;
    }
    // Never wider than the terminal: a wrapped bar could not be erased from its first row.
    const columns = this.#stream.columns;
    const text = columns > 1 ? [...this.#format()].slice(0, columns - 1).join('') : this.#format();
    this.#stream.write(`${eraseLine}${text}`);
    this.#drawn = true;
  }

  #format(): string {
    const done = this.#done;
    const elapsed = performance.now() - this.#started;
    const parts = [`${formatRate(done, elapsed)} items/s`];
    let head: string;
    if (this.#total === undefined) {
      head = `${this.#label} ${formatCount(done)} items`;
    } else {
      const progress = this.#total === 0 ? 1 : Math.min(done / this.#total, 1);
      const filled = Math.round(progress * barWidth);
      head = `${this.#label} ${'█'.repeat(filled)}${'░'.repeat(barWidth - filled)} ${formatCount(done)}/${formatCount(this.#total)} ${Math.floor(progress * 100)}%`;
      const rate = done / elapsed;
      if (done < this.#total && rate > 0) parts.push(`ETA ${formatEta((this.#total - done) / rate)}`);
    }
    if (this.#failed > 0) parts.push(`${formatCount(this.#failed)} failed`);
    return `${head} | ${parts.join(' | ')}`;
  }
}
