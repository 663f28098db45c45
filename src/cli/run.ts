/**
 * One `procpool map|starmap` run, wired together:
 *
 *   --input | stdin ─► readLines ─► Batch.feed ─► pool[settleEach] ─► Batch.settle ─► output
 *                                     │ malformed lines                    │ failures
 *                                     └──────────────► errors file, notes ◄┘
 *   countLines(--input) ─► bar total          onProgress ─► bar          Ctrl-C ─► signals
 *
 * Everything that can be a usage error (exit code 2) is checked before any
 * input is read: the module, the task, the files. When the reader of
 * standard output goes away (`… | head -1`), the run stops as a Unix tool
 * does: quietly, with the status of one that SIGPIPE killed.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Readable, Writable } from 'node:stream';
import { PoolError } from '../errors.js';
import { settleEach } from '../internal.js';
import { Pool } from '../pool.js';
import type { PoolStats } from '../stats.js';
import { Batch } from './batch.js';
import { forwardChildOutput } from './child-output.js';
import { ErrorsFile } from './errors-file.js';
import { countLines, openInput, readLines, withoutTrailingBlankLines } from './input.js';
import { UsageError, type CliOptions } from './options.js';
import { LineWriter, OrderedResults, UnorderedResults, isReaderGone, openOutput } from './output.js';
import { sameTerminal, startStatusLine } from './progress-bar.js';
import { FailureNotes, formatStats, formatSummary } from './report.js';
import { onInterrupt } from './signals.js';
import { childNodeOptions, resolveTaskModule } from './task-module.js';

/** The process's standard streams (tests and embedders may pass others). */
export interface Io {
  stdin: Readable;
  stdout: Writable;
  stderr: NodeJS.WriteStream;
}

/** Exit codes. `readerGone`: 128 + SIGPIPE, what a shell reports for a tool that a closed pipe stopped. */
export const exitCodes = { ok: 0, failed: 1, usage: 2, interrupted: 130, readerGone: 141 } as const;

/** Runs the batch; resolves with the exit code. Usage errors are thrown as UsageError. */
export async function run(options: CliOptions, io: Io): Promise<number> {
  const started = performance.now();
  const url = resolveTaskModule(options.module);
  checkDistinctFiles(options);
  const input = await openInput(options.input, io.stdin);
  // Children's output is forwarded from the start: a module that fails to load may say why.
  const notes = { log: (text: string): void => void io.stderr.write(text) };
  const log = (text: string): void => notes.log(text);
  const pool = await startPool(url, options, log);
  let output: LineWriter | undefined;
  let errorsWriter: LineWriter | undefined;
  try {
    output = await openOutput(options.output, io.stdout, 'output');
    errorsWriter = options.errors === undefined ? undefined : await openOutput(options.errors, io.stdout, 'errors file');
  } catch (error) {
    input.destroy();
    await pool.terminate();
    throw error;
  }

  const bar = startStatusLine(io.stderr, options.progress, options.task);
  notes.log = (text) => bar.log(text);
  // Results on the bar's own terminal: erased first, drawn again below them.
  if (options.output === undefined && bar.drawsBar && sameTerminal(io.stdout, io.stderr)) output.beforeEachWrite(() => bar.makeRoom());
  const batch = new Batch({
    sink: options.unordered ? new UnorderedResults(output) : new OrderedResults(output),
    errors: errorsWriter === undefined ? undefined : new ErrorsFile(errorsWriter),
    notes: options.quiet ? undefined : new FailureNotes(log, options.errors),
    spread: options.spread,
    onFirstFailure: options.failFast ? () => halt() : undefined,
  });
  const stopInput = new AbortController();
  const cancel = new AbortController();
  const failFast = new Error('Stopped at the first failure (--fail-fast)');
  const halt = (): void => {
    stopInput.abort();
    cancel.abort(failFast);
  };
  let interrupted = false;
  let readerGone = false;
  const onOutputError = (error: Error): void => {
    if (readerGone || !isReaderGone(error)) return;
    // Nobody reads the results any more: stop now, children included (terminate awaits their exit).
    readerGone = true;
    stopInput.abort();
    pool.terminate().catch(() => undefined);
  };
  if (options.output === undefined) io.stdout.on('error', onOutputError);
  const release = onInterrupt({
    stop: () => {
      interrupted = true;
      log('procpool: stopping: no more input is read; items already read finish (Ctrl-C again to kill them)\n');
      stopInput.abort();
    },
    kill: () => {
      log('procpool: killing running items\n');
      pool.terminate().catch(() => undefined);
    },
  });
  const counting = new AbortController();
  const counted = options.input !== undefined && bar.drawsBar && (await stat(options.input)).isFile();
  if (counted) countLines(options.input!, counting.signal).then((total) => bar.setTotal(total), () => undefined);

  let failure: unknown;
  let stats: PoolStats;
  try {
    const outcomes = pool[settleEach](
      options.task,
      batch.feed(withoutTrailingBlankLines(readLines(input, stopInput.signal))),
      {
        chunksize: options.chunksize,
        timeout: options.timeout,
        retries: options.retries,
        // Only with --fail-fast: a call signal costs the pool a combined signal per chunk.
        signal: options.failFast ? cancel.signal : undefined,
        onProgress: ({ done, failed }) => bar.update(done + batch.settledHere, failed + batch.failedHere),
      },
      { ordered: !options.unordered, spread: options.spread },
    );
    for await (const record of outcomes) {
      await batch.settle(record);
      if (batch.halted) break;
    }
  } catch (error) {
    const closed = error instanceof PoolError && error.code === 'PROCPOOL_CLOSED';
    const expected = error === failFast || ((interrupted || readerGone) && closed) || isReaderGone(error);
    if (!expected) failure = error;
    if (isReaderGone(error)) readerGone = true;
  } finally {
    counting.abort();
    stats = pool.stats;
    if (failure !== undefined || batch.halted || readerGone) await pool.terminate();
    else {
      pool.close();
      await pool.join();
    }
  }
  bar.update(batch.settled, batch.failed);
  // Every line read: the total is known now, even if the count (a race with a short run) has not come back.
  if (counted && failure === undefined && !batch.halted && !interrupted && !readerGone) bar.setTotal(batch.settled);
  for (const writer of [output, errorsWriter]) {
    try {
      await writer?.close();
    } catch (error) {
      if (isReaderGone(error)) readerGone = true;
      else failure ??= error;
    }
  }
  // Ctrl-C stays ours until everything is flushed.
  release();
  io.stdout.off('error', onOutputError);
  if (readerGone) {
    // As `seq 1 1000000 | head -1`: nothing more to say, the pipe's reader asked for no more.
    bar.discard();
    return exitCodes.readerGone;
  }
  bar.stop();

  if (failure !== undefined) io.stderr.write(`procpool: ${failure instanceof Error ? failure.message : String(failure)}\n`);
  if (!options.quiet) {
    const ending = interrupted ? 'interrupted' : batch.halted ? 'stopped at the first failure' : undefined;
    io.stderr.write(formatSummary({ items: batch.settled, failed: batch.failed, ms: performance.now() - started, ending, errorsPath: options.errors }));
  }
  if (options.stats) io.stderr.write(formatStats(stats));
  if (interrupted) return exitCodes.interrupted;
  return failure !== undefined || batch.failed > 0 ? exitCodes.failed : exitCodes.ok;
}

/** A ready pool whose children have loaded the module and export the task; a usage error otherwise. */
async function startPool(url: string, options: CliOptions, log: (text: string) => void): Promise<Pool> {
  const pool = new Pool(url, {
    processes: options.processes,
    maxTasksPerChild: options.maxTasksPerChild,
    nodeOptions: childNodeOptions(url, options.nodeOptions),
    // Standard output carries the results: what tasks print goes to stderr.
    stdio: 'pipe',
  });
  forwardChildOutput([pool.stdout, pool.stderr], log);
  try {
    await pool.ready();
    // An empty call resolves the task name against the module's exports.
    for await (const _ of pool[settleEach](options.task, [], undefined, { ordered: true, spread: options.spread })) {
      // None: the call has no items.
    }
    return pool;
  } catch (error) {
    await pool.terminate();
    if (!(error instanceof PoolError)) throw error;
    if (error.code === 'PROCPOOL_BROKEN') {
      const cause = error.cause instanceof Error ? error.cause.message : error.message;
      throw new UsageError(`Cannot load task module ${options.module}: ${cause}`);
    }
    if (error.code === 'PROCPOOL_UNKNOWN_TASK') throw new UsageError(error.message);
    throw error;
  }
}

/** Refuses an output or errors file that is the input, or each other: one would overwrite the other. */
function checkDistinctFiles({ input, output, errors }: CliOptions): void {
  const named: Array<[flag: string, path: string]> = [];
  for (const [flag, path] of [['--input', input], ['--output', output], ['--errors', errors]] as const) {
    if (path === undefined) continue;
    const twin = named.find(([, other]) => resolve(other) === resolve(path));
    if (twin !== undefined) throw new UsageError(`${twin[0]} and ${flag} name the same file, ${path}: it would be overwritten`);
    named.push([flag, path]);
  }
}
