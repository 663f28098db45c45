/**
 * The input: JSON Lines from a file or standard input, streamed one line at
 * a time with its line number (memory stays flat however large the file),
 * each line parsed into one item; and a cheap line count of a file for the
 * progress bar's total.
 *
 * Blank lines at the end of the input (an editor's or `echo`'s extra line
 * break) are no items. A blank line with more input after it stays an item
 * — a malformed one — so that output line i still answers input line i.
 */
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { UsageError } from './options.js';

/** One input line, numbered from 1, without its line break. */
export interface InputLine {
  line: number;
  text: string;
}

/** A line that is not one JSON value (map) or one JSON array (starmap). */
export class MalformedLineError extends Error {
  override readonly name = 'MalformedLineError';
  readonly code = 'PROCPOOL_MALFORMED_LINE';
  readonly line: number;

  constructor(line: number, why: string, options?: ErrorOptions) {
    super(`Input line ${line} ${why}`, options);
    this.line = line;
  }
}

/** An input line as the task's argument(s), or why it cannot be. */
export type ParsedLine = { ok: true; value: unknown } | { ok: false; error: MalformedLineError };

/** Parses one line: any JSON value for `map`, a JSON array of arguments for `starmap`. */
export function parseLine({ line, text }: InputLine, spread: boolean): ParsedLine {
  if (text.trim() === '') return { ok: false, error: new MalformedLineError(line, 'is empty') };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, error: new MalformedLineError(line, `is not valid JSON: ${(error as Error).message}`, { cause: error }) };
  }
  if (spread && !Array.isArray(value)) {
    return { ok: false, error: new MalformedLineError(line, `is not a JSON array of arguments (starmap), got ${value === null ? 'null' : typeof value}`) };
  }
  return { ok: true, value };
}

/** The input stream: the file, checked now so that a bad path is a usage error; standard input otherwise. */
export async function openInput(path: string | undefined, stdin: Readable): Promise<Readable> {
  if (path === undefined) return stdin;
  try {
    if ((await stat(path)).isDirectory()) throw new UsageError(`Cannot read input ${path}: it is a directory`);
    return (await open(path, 'r')).createReadStream();
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`Cannot read input ${path}: ${(error as Error).message}`);
  }
}

/** Lines of `stream`, numbered from 1; ends quietly, reading no further, once `stop` aborts. */
export async function* readLines(stream: Readable, stop: AbortSignal): AsyncGenerator<InputLine, void, undefined> {
  if (stop.aborted) return;
  // A read blocked on a silent stdin must end too.
  const onStop = (): void => void stream.destroy();
  stop.addEventListener('abort', onStop, { once: true });
  stream.setEncoding('utf8');
  let carry = '';
  let line = 0;
  try {
    for await (const chunk of stream as AsyncIterable<string>) {
      let start = 0;
      for (let end = chunk.indexOf('\n', start); end >= 0; end = chunk.indexOf('\n', start)) {
        const text = carry + chunk.slice(start, end);
        carry = '';
        start = end + 1;
        yield { line: ++line, text: text.endsWith('\r') ? text.slice(0, -1) : text };
        if (stop.aborted) return;
      }
      carry += chunk.slice(start);
    }
    if (carry !== '') yield { line: ++line, text: carry.endsWith('\r') ? carry.slice(0, -1) : carry };
  } catch (error) {
    if (!stop.aborted) throw error;
  } finally {
    stop.removeEventListener('abort', onStop);
  }
}

/** `lines` without the blank (whitespace-only) lines at the end; blank lines followed by more input pass through. */
export async function* withoutTrailingBlankLines(lines: AsyncIterable<InputLine>): AsyncGenerator<InputLine, void, undefined> {
  const held: InputLine[] = [];
  for await (const input of lines) {
    if (input.text.trim() === '') {
      held.push(input);
      continue;
    }
    yield* held;
    held.length = 0;
    yield input;
  }
}

/** Space, tab, line feed, vertical tab, form feed, carriage return. */
const blankBytes = new Set([0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d]);

/** Lines in the file at `path` up to its last one that is not blank, counted on raw bytes (no decoding, no parsing). */
export async function countLines(path: string, signal: AbortSignal): Promise<number> {
  let lineBreaks = 0;
  let lines = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20, signal }) as AsyncIterable<Buffer>) {
    let content = chunk.length - 1;
    while (content >= 0 && blankBytes.has(chunk[content]!)) content--;
    let before = lineBreaks;
    for (let at = chunk.indexOf(0x0a); at >= 0; at = chunk.indexOf(0x0a, at + 1)) {
      if (at < content) before++;
      lineBreaks++;
    }
    // The line holding the chunk's last non-blank byte is the last item so far.
    if (content >= 0) lines = before + 1;
  }
  return lines;
}
