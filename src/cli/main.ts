#!/usr/bin/env node
/**
 * The `procpool` command: `map` and `starmap` over a JSON Lines file with a
 * pool of child processes. Arguments are parsed here; run.ts does the work.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { collect, integerFrom, milliseconds, UsageError, type CliOptions } from './options.js';
import { exitCodes, run } from './run.js';
import { addWorkerCommand } from './worker.js';

interface ParsedFlags {
  input?: string;
  output?: string;
  errors?: string;
  unordered?: boolean;
  processes?: number;
  chunksize?: number;
  timeout?: number;
  retries?: number;
  maxTasksPerChild?: number;
  nodeOption?: string[];
  failFast?: boolean;
  progress?: boolean;
  stats?: boolean;
  quiet?: boolean;
}

/** procpool's version, from the package.json above this file (src/cli or dist/src/cli). */
function version(): string {
  for (const up of ['../../package.json', '../../../package.json']) {
    try {
      const manifest = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (manifest.name === 'procpool' && manifest.version !== undefined) return manifest.version;
    } catch {
      // Not at this depth: try the next.
    }
  }
  return 'unknown';
}

const examples = {
  map: `
Each input line is one JSON value, the task's argument. Output line i is the
result of input line i (null when it failed).

Examples:
  $ procpool map ./tasks.ts hashFile --input files.jsonl --output hashes.jsonl -j 8
  $ seq 1 100 | procpool map ./tasks.js square > squares.jsonl
  $ procpool map ./tasks.mjs fetchPage -i urls.jsonl --unordered --errors failed.jsonl`,
  starmap: `
Each input line is a JSON array, the task's arguments. Output line i is the
result of input line i (null when it failed).

Examples:
  $ procpool starmap ./tasks.ts add --input pairs.jsonl     # a line: [2, 3]
  $ echo '[1, 2]' | procpool starmap ./tasks.js add`,
};

const exitNote = `

Blank lines at the end of the input are no items. A result JSON cannot
carry as it is (a Map, a typed array, NaN, Infinity, undefined) fails its item.

Exit codes: 0 every item succeeded, 1 some failed, 2 usage error,
130 interrupted (Ctrl-C: running items finish; a second Ctrl-C kills them),
141 the reader of standard output went away (\`| head -1\`): the run stops quietly.`;

function addCommand(program: Command, name: 'map' | 'starmap'): void {
  const spread = name === 'starmap';
  program
    .command(name)
    .description(spread ? 'call task(...args) for each JSON array line of the input' : 'call task(item) for each JSON line of the input')
    .argument('<module>', 'task module: a .js, .mjs, .cjs or .ts file (TypeScript needs no build step)')
    .argument('<task>', 'name of the exported function to call')
    .option('-i, --input <file>', 'JSON Lines input (default: standard input)')
    .option('-o, --output <file>', 'JSON Lines output (default: standard output)')
    .option('-e, --errors <file>', 'write each failed item as a JSON line: line, index, input, error {name, message, code, stack}')
    .option('-u, --unordered', 'write results as they complete, each as {"index": i, "result": …} (i: input line number - 1); failed items left out')
    .option('-j, --processes <n>', 'child processes (default: the number of CPUs)', integerFrom(1))
    .option('--chunksize <n>', 'items sent to a child at once (default: adapted to the items’ run time)', integerFrom(1))
    .option('--timeout <ms>', 'an item running longer fails with TaskTimeoutError; its child is replaced', milliseconds)
    .option('--retries <n>', 're-run an item whose child died up to n times (idempotent tasks only)', integerFrom(0))
    .option('--max-tasks-per-child <n>', 'replace a child after n items', integerFrom(1))
    .option('--node-option <flag>', 'a Node flag for the children, e.g. --node-option=--max-old-space-size=4096 (repeatable)', collect)
    .option('--fail-fast', 'stop at the first failed item (exit code 1)')
    .addOption(new Option('--progress', 'draw the progress bar even when stderr is not a terminal'))
    .addOption(new Option('--no-progress', 'never draw the progress bar'))
    .option('--stats', 'after the summary, print per-child figures and timing percentiles')
    .option('-q, --quiet', 'no summary line and no failure notes on stderr')
    .addHelpText('after', examples[name] + exitNote)
    .action(async (module: string, task: string, flags: ParsedFlags) => {
      const options: CliOptions = {
        module,
        task,
        spread,
        input: flags.input,
        output: flags.output,
        errors: flags.errors,
        unordered: flags.unordered === true,
        processes: flags.processes,
        chunksize: flags.chunksize,
        timeout: flags.timeout,
        retries: flags.retries,
        maxTasksPerChild: flags.maxTasksPerChild,
        nodeOptions: flags.nodeOption ?? [],
        failFast: flags.failFast === true,
        progress: flags.progress,
        stats: flags.stats === true,
        quiet: flags.quiet === true,
      };
      process.exitCode = await run(options, { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });
    });
}

const program = new Command('procpool')
  .description("Python's multiprocessing.Pool for Node.js, as a command: apply an exported function to every line of a JSON Lines file on every core.")
  .version(version())
  // Usage errors exit with 2, as the exit codes promise; commander's own default is 1.
  .exitOverride()
  .showHelpAfterError('(add --help for usage)');
addCommand(program, 'map');
addCommand(program, 'starmap');
addWorkerCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode === 0 ? exitCodes.ok : exitCodes.usage;
  } else if (error instanceof UsageError) {
    process.stderr.write(`procpool: ${error.message}\n`);
    process.exitCode = exitCodes.usage;
  } else {
    process.stderr.write(`procpool: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = exitCodes.failed;
  }
}
// Everything written has been flushed by run(); leave even if a stray handle (stdin) would keep the process alive.
process.exit(process.exitCode);
