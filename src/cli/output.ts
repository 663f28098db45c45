/**
 * The output: JSON Lines written with back-pressure (a slow disk or a slow
 * reader of a pipe holds the run back instead of filling memory).
 * `OrderedResults`: line i of the output is the result of input line i
 * (`null` for a failed item); `UnorderedResults`: completion order, each line
 * `{"index": i, "result": …}`, failed items left out.
 */
import { once } from 'node:events';
import { open } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { UsageError } from './options.js';

/** Whole lines to a stream; a line is always written in one piece. */
export class LineWriter {
  readonly #stream: Writable;
  readonly #owned: boolean;
  readonly #name: string;
  #error: Error | undefined;
  #beforeEachWrite: (() => void) | undefined;

  /** `owned`: ended on close (a file); otherwise only flushed (stdout). `name` is for error messages. */
  constructor(stream: Writable, owned: boolean, name: string) {
    this.#stream = stream;
    this.#owned = owned;
    this.#name = name;
    // Kept, and rethrown by the next write: an 'error' with no listener would crash the process.
    stream.on('error', (error: Error) => (this.#error ??= error));
  }

  /** Calls `hook` before each line is written (the bar makes room when this stream shares its terminal). */
  beforeEachWrite(hook: () => void): void {
    this.#beforeEachWrite = hook;
  }

  async write(line: string): Promise<void> {
    this.#throwIfFailed();
    this.#beforeEachWrite?.();
    if (this.#stream.write(`${line}\n`)) return;
    await once(this.#stream, 'drain').catch(() => this.#throwIfFailed());
  }

  /** Waits until everything written has reached the file or the pipe. */
  async close(): Promise<void> {
    this.#throwIfFailed();
    try {
      if (this.#owned) {
        this.#stream.end();
        await once(this.#stream, 'close');
      } else {
        await new Promise<void>((resolve, reject) => this.#stream.write('', (error) => (error ? reject(error) : resolve())));
      }
    } catch (error) {
      this.#error ??= error as Error;
    }
    this.#throwIfFailed();
  }

  #throwIfFailed(): void {
    if (this.#error) throw new Error(`Cannot write ${this.#name}: ${this.#error.message}`, { cause: this.#error });
  }
}

/** A writer for `path` (created or truncated now, so a bad path is a usage error), or for `fallback`. */
export async function openOutput(path: string | undefined, fallback: Writable, what: string): Promise<LineWriter> {
  if (path === undefined) return new LineWriter(fallback, false, `standard output`);
  try {
    return new LineWriter((await open(path, 'w')).createWriteStream(), true, `${what} ${path}`);
  } catch (error) {
    throw new UsageError(`Cannot write ${what} ${path}: ${(error as Error).message}`);
  }
}

/** Whether `error` (or its cause) says that the reader of a pipe has gone: `… | head -1` read what it wanted. */
export function isReaderGone(error: unknown): boolean {
  for (let at = error, depth = 0; at instanceof Error && depth < 3; at = at.cause, depth++) {
    if ((at as NodeJS.ErrnoException).code === 'EPIPE') return true;
  }
  return false;
}

/** Where each item's outcome goes, by input line number. */
export interface ResultSink {
  /** `json`: the result, already encoded. */
  result(line: number, json: string): Promise<void>;
  failure(line: number): Promise<void>;
}

/** Output line i is input line i: outcomes that arrive early wait for the ones before them. */
export class OrderedResults implements ResultSink {
  readonly #writer: LineWriter;
  readonly #held = new Map<number, string>();
  #next = 1;

  constructor(writer: LineWriter) {
    this.#writer = writer;
  }

  result(line: number, json: string): Promise<void> {
    return this.#put(line, json);
  }

  failure(line: number): Promise<void> {
    return this.#put(line, 'null');
  }

  async #put(line: number, text: string): Promise<void> {
    this.#held.set(line, text);
    for (let held = this.#held.get(this.#next); held !== undefined; held = this.#held.get(this.#next)) {
      this.#held.delete(this.#next++);
      await this.#writer.write(held);
    }
  }
}

/** Completion order; failed items are left out (they are in the errors file). */
export class UnorderedResults implements ResultSink {
  readonly #writer: LineWriter;

  constructor(writer: LineWriter) {
    this.#writer = writer;
  }

  result(line: number, json: string): Promise<void> {
    return this.#writer.write(`{"index":${line - 1},"result":${json}}`);
  }

  failure(): Promise<void> {
    return Promise.resolve();
  }
}
