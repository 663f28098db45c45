/**
 * Where each input line ends up. Lines that parse go to the pool; their
 * outcomes come back by index and are matched to their input line again.
 * Every line — result, task failure or malformed — settles exactly once:
 * into the output (ordered: `null` for a failure), the errors file and the
 * failure notes.
 */
import type { Settled } from '../engine/imap-call.js';
import type { ErrorsFile } from './errors-file.js';
import { parseLine, type InputLine } from './input.js';
import type { ResultSink } from './output.js';
import type { FailureNotes } from './report.js';
import { encodeResult } from './result-json.js';

/** Where a batch sends what it settles. */
export interface BatchTargets {
  sink: ResultSink;
  errors: ErrorsFile | undefined;
  notes: FailureNotes | undefined;
  /** Each line is an argument tuple (starmap). */
  spread: boolean;
  /** Called once, at the first failure, with --fail-fast. */
  onFirstFailure: (() => void) | undefined;
}

interface Sent {
  line: number;
  /** The input's text, kept only while it may be needed for the errors file. */
  text: string;
}

/** One run's items: what is in the pool, and the tallies. */
export class Batch {
  readonly #targets: BatchTargets;
  /** Items in the pool, by the pool's index: bounded by the pool's read-ahead. */
  readonly #sent = new Map<number, Sent>();
  #nextIndex = 0;
  /** Items settled. */
  settled = 0;
  /** Items failed (task errors, malformed lines, results JSON cannot hold). */
  failed = 0;
  /** Failures the pool does not see: malformed lines and unwritable results. */
  failedHere = 0;
  /** Malformed lines, settled without the pool. */
  settledHere = 0;
  /** Set at the first failure with --fail-fast: take no more. */
  halted = false;

  constructor(targets: BatchTargets) {
    this.#targets = targets;
  }

  /** The pool's input: parsed lines; malformed ones are settled here and skipped. */
  async *feed(lines: AsyncIterable<InputLine>): AsyncGenerator<unknown, void, undefined> {
    for await (const input of lines) {
      const parsed = parseLine(input, this.#targets.spread);
      if (parsed.ok) {
        this.#sent.set(this.#nextIndex++, { line: input.line, text: this.#targets.errors === undefined ? '' : input.text });
        yield parsed.value;
      } else {
        this.settledHere++;
        this.failedHere++;
        await this.#fail(input.line, input.text, false, parsed.error);
      }
      if (this.halted) return;
    }
  }

  /** Settles one outcome from the pool. */
  async settle(record: Settled): Promise<void> {
    const sent = this.#sent.get(record.index)!;
    this.#sent.delete(record.index);
    if (!record.ok) return this.#fail(sent.line, sent.text, true, record.error);
    let json: string;
    try {
      json = encodeResult(record.value, sent.line);
    } catch (error) {
      this.failedHere++;
      return this.#fail(sent.line, sent.text, true, error);
    }
    this.settled++;
    await this.#targets.sink.result(sent.line, json);
  }

  async #fail(line: number, text: string, inputIsJson: boolean, error: unknown): Promise<void> {
    this.settled++;
    this.failed++;
    this.#targets.notes?.note(line, error);
    await this.#targets.sink.failure(line);
    await this.#targets.errors?.add(line, text, inputIsJson, error);
    if (this.#targets.onFirstFailure !== undefined && !this.halted) {
      this.halted = true;
      this.#targets.onFirstFailure();
    }
  }
}
