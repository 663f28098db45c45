/**
 * What the person watching sees on stderr while the run goes: a live bar
 * (items done / total, rate, ETA, failures) when stderr is a terminal or
 * `--progress` forces it, and notes printed above it. The only home of
 * cli-progress.
 */
import { MultiBar, Presets, type Options, type Params, type SingleBar } from 'cli-progress';
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
  /** Draws the final state and leaves the bar behind. */
  stop(): void;
}

/** A bar when `progress` is true, or undefined and `stream` is a terminal; plain notes otherwise. */
export function startStatusLine(stream: NodeJS.WriteStream, progress: boolean | undefined, label: string): StatusLine {
  const tty = stream.isTTY === true;
  return progress === true || (progress === undefined && tty) ? new ProgressBar(stream, tty, label) : new PlainStatus(stream);
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
  stop(): void {}

  log(text: string): void {
    this.#stream.write(text);
  }
}

class ProgressBar implements StatusLine {
  readonly drawsBar = true;
  readonly #bars: MultiBar;
  readonly #bar: SingleBar;
  readonly #label: string;
  readonly #stream: NodeJS.WriteStream;
  #total: number | undefined;
  #failed = 0;
  #stopped = false;

  constructor(stream: NodeJS.WriteStream, tty: boolean, label: string) {
    this.#label = label;
    this.#stream = stream;
    const options: Options = {
      stream,
      format: (barOptions, params) => this.#format(barOptions, params),
      fps: 10,
      barsize: 30,
      // Off a terminal (forced with --progress) a fresh line each second, not one per frame.
      noTTYOutput: !tty,
      notTTYSchedule: 1000,
      // Ctrl-C is the run's to handle (signals.ts): the bar must not take SIGINT listeners.
      gracefulExit: false,
      hideCursor: null,
      emptyOnZero: true,
    };
    this.#bars = new MultiBar(options, Presets.shades_classic);
    this.#bar = this.#bars.create(0, 0);
  }

  update(done: number, failed: number): void {
    this.#failed = failed;
    this.#bar.update(done);
  }

  setTotal(total: number): void {
    this.#total = total;
    this.#bar.setTotal(total);
  }

  log(text: string): void {
    if (this.#stopped) this.#stream.write(text);
    else this.#bars.log(text);
  }

  stop(): void {
    if (this.#stopped) return;
    // Notes still buffered are written before the final frame.
    this.#bars.update();
    this.#bars.stop();
    this.#stopped = true;
  }

  #format(options: Options, params: Params): string {
    const done = params.value;
    const elapsed = (params.stopTime ?? Date.now()) - params.startTime;
    const parts = [`${formatRate(done, elapsed)} items/s`];
    let head: string;
    if (this.#total === undefined) {
      head = `${this.#label} ${formatCount(done)} items`;
    } else {
      const bar = options.barCompleteString!.slice(0, Math.round(params.progress * options.barsize!)).padEnd(options.barsize!, options.barIncompleteChar);
      head = `${this.#label} ${bar} ${formatCount(done)}/${formatCount(this.#total)} ${Math.floor(params.progress * 100)}%`;
      const rate = done / elapsed;
      if (done < this.#total && rate > 0) parts.push(`ETA ${formatEta((this.#total - done) / rate)}`);
    }
    if (this.#failed > 0) parts.push(`${formatCount(this.#failed)} failed`);
    return `${head} | ${parts.join(' | ')}`;
  }
}
