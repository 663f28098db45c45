/**
 * The errors file: one JSON line per failed item — input line number, the
 * input, and the error's name, message, code and stack (and its causes) —
 * so a run can be inspected and its failures re-run.
 */
import type { LineWriter } from './output.js';

/** An error as plain JSON. */
export interface ErrorRecord {
  name: string;
  message: string;
  code?: string | number;
  stack?: string;
  cause?: ErrorRecord;
}

const causeDepth = 5;

/** Describes any thrown value; a non-Error (`throw 'x'`) gets serialize-error's name, `NonError`. */
export function describeError(error: unknown, depth = 0): ErrorRecord {
  if (typeof error !== 'object' || error === null) return { name: 'NonError', message: String(error) };
  const { name, message, code, stack, cause } = error as Partial<Record<'name' | 'message' | 'stack', unknown>> & { code?: unknown; cause?: unknown };
  const record: ErrorRecord = { name: typeof name === 'string' ? name : 'Error', message: typeof message === 'string' ? message : String(error) };
  // Codes are strings or numbers; anything else as text, so the line is always valid JSON.
  if (code !== undefined) record.code = typeof code === 'string' || typeof code === 'number' ? code : String(code);
  if (typeof stack === 'string') record.stack = stack;
  if (cause !== undefined && depth < causeDepth) record.cause = describeError(cause, depth + 1);
  return record;
}

/** Appends failures to the errors file. */
export class ErrorsFile {
  readonly #writer: LineWriter;

  constructor(writer: LineWriter) {
    this.#writer = writer;
  }

  /**
   * `input`: the line's text. A line that parsed is already JSON and is
   * written as is; a malformed one is written as a JSON string.
   */
  add(line: number, input: string, inputIsJson: boolean, error: unknown): Promise<void> {
    const described = JSON.stringify(describeError(error));
    return this.#writer.write(`{"line":${line},"index":${line - 1},"input":${inputIsJson ? input : JSON.stringify(input)},"error":${described}}`);
  }
}
