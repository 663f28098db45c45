/**
 * What the command line was asked to do, and the checks on its option
 * values: a bad value is a usage error (exit code 2) before any work starts.
 */
import { InvalidArgumentError } from 'commander';

/** One `procpool map|starmap` run. */
export interface CliOptions {
  /** Task module: a path (resolved against the working directory) or a `file:` URL. */
  module: string;
  /** Export name of the task. */
  task: string;
  /** Each input line is an argument tuple (starmap) rather than one argument (map). */
  spread: boolean;
  /** Input file; standard input when undefined. */
  input: string | undefined;
  /** Output file; standard output when undefined. */
  output: string | undefined;
  /** Errors file (JSON Lines); failures are only summarised on stderr when undefined. */
  errors: string | undefined;
  /** Write results in completion order, each as `{"index": i, "result": …}`. */
  unordered: boolean;
  processes: number | undefined;
  chunksize: number | undefined;
  timeout: number | undefined;
  retries: number | undefined;
  maxTasksPerChild: number | undefined;
  /** Extra Node flags of the children. */
  nodeOptions: string[];
  /** Stop at the first failed item. */
  failFast: boolean;
  /** `true`: draw the bar even off a terminal; `false`: never; `undefined`: when stderr is a terminal. */
  progress: boolean | undefined;
  /** Print the pool's statistics (per child, percentiles) after the summary. */
  stats: boolean;
  /** No summary line and no failure notes on stderr. */
  quiet: boolean;
}

/** A mistake in how the command was called: reported without a stack, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Parses an integer option value of at least `min`. */
export function integerFrom(min: number): (value: string) => number {
  return (value) => {
    const number = Number(value);
    if (value.trim() === '' || !Number.isInteger(number) || number < min) {
      throw new InvalidArgumentError(`Expected an integer from ${min} and up, got \`${value}\`.`);
    }
    return number;
  };
}

/** Parses a positive number of milliseconds. */
export function milliseconds(value: string): number {
  const number = Number(value);
  if (value.trim() === '' || !Number.isFinite(number) || number <= 0) {
    throw new InvalidArgumentError(`Expected a positive number of milliseconds, got \`${value}\`.`);
  }
  return number;
}

/** Collects a repeatable option's values. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}
