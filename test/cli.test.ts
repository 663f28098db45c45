/**
 * The `procpool` command run as a real process (`node dist/src/cli/main.js`)
 * on real files: output order, errors file, exit codes, malformed lines,
 * pipes, TypeScript modules, Ctrl-C and the progress bar.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { finished, type Finished } from './fixtures/cli-helpers.js';

const cli = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
const tasks = fileURLToPath(new URL('./fixtures/cli-tasks.mjs', import.meta.url));
const typedTasks = fileURLToPath(new URL('./fixtures/cli-tasks.ts', import.meta.url));
const throwsOnLoad = fileURLToPath(new URL('./fixtures/cli-throws-on-load.mjs', import.meta.url));
const timeout = 30_000;


/** Runs the command with `args`, `stdin` as its standard input. */
function procpool(args: string[], stdin = ''): Promise<Finished> {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const done = finished(child);
  child.stdin!.end(stdin);
  return done;
}

/** Runs a shell command under a pseudo-terminal, as a person at a terminal would. */
function underTerminal(command: string): Promise<Finished> {
  return finished(spawn('script', ['-qec', command, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] }));
}

function lines(text: string): string[] {
  return text === '' ? [] : text.replace(/\n$/, '').split('\n');
}

function jsonLines(path: string): unknown[] {
  return lines(readFileSync(path, 'utf8')).map((line) => JSON.parse(line) as unknown);
}

async function waitFor(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 25));
}

let dir: string;
let input: string;
let output: string;
let errors: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'procpool-cli-'));
  input = join(dir, 'input.jsonl');
  output = join(dir, 'output.jsonl');
  errors = join(dir, 'errors.jsonl');
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function writeInput(items: unknown[]): void {
  writeFileSync(input, items.map((item) => JSON.stringify(item)).join('\n') + '\n');
}

const oneToNine = [1, 2, 3, 4, 5, 6, 7, 8, 9];

describe('procpool map / starmap', () => {
  it('map: output line i is the result of input line i; no bar and a summary line in a pipe', async () => {
    writeInput(oneToNine);
    const { code, stdout, stderr } = await procpool(['map', tasks, 'square', '-i', input, '-o', output, '-j', '2']);
    expect(code).toBe(0);
    expect(stdout).toBe('');
    expect(jsonLines(output)).toEqual(oneToNine.map((x) => x * x));
    expect(stderr).toMatch(/^procpool: 9 items, 0 failed, [\d.]+ s, [\d.,]+ items\/s\n$/);
    expect(stderr).not.toContain('█');
    expect(stderr).not.toContain('\u001b[');
  }, timeout);

  it('reads standard input and writes standard output; what tasks print goes to stderr', async () => {
    const { code, stdout, stderr } = await procpool(['map', tasks, 'shout', '-j', '2'], '1\n2\n3\n');
    expect(code).toBe(0);
    expect(stdout).toBe('1\n2\n3\n');
    expect(stderr).toContain('shout 1');
    expect(stderr).toContain('shout 3');
  }, timeout);

  it('starmap: each line is an argument tuple', async () => {
    const { code, stdout } = await procpool(['starmap', tasks, 'add', '-j', '2'], '[1, 2]\n[3, 4]\n["a", "b"]\n');
    expect(code).toBe(0);
    expect(lines(stdout).map((line) => JSON.parse(line) as unknown)).toEqual([3, 7, 'ab']);
  }, timeout);

  it('streams a larger input through pipes in order', async () => {
    const count = 5000;
    const text = Array.from({ length: count }, (_, i) => String(i)).join('\n');
    const { code, stdout } = await procpool(['map', tasks, 'square', '-j', '2'], text);
    expect(code).toBe(0);
    const results = lines(stdout);
    expect(results).toHaveLength(count);
    results.forEach((line, i) => expect(Number(line)).toBe(i * i));
  }, timeout);

  it('a failed item is null in ordered output, a record in the errors file, and exit code 1', async () => {
    writeInput(oneToNine);
    const { code, stderr } = await procpool(['map', tasks, 'failOnMultipleOf3', '-i', input, '-o', output, '--errors', errors, '-j', '2']);
    expect(code).toBe(1);
    expect(jsonLines(output)).toEqual([1, 2, null, 4, 5, null, 7, 8, null]);
    const records = jsonLines(errors) as Array<{ line: number; index: number; input: unknown; error: Record<string, unknown> }>;
    expect(records.map((record) => record.line).sort()).toEqual([3, 6, 9]);
    const third = records.find((record) => record.line === 3)!;
    expect(third).toMatchObject({ index: 2, input: 3, error: { name: 'RangeError', message: 'multiple of 3: 3', code: 'E_THREE' } });
    expect(third.error.stack).toContain('failOnMultipleOf3');
    expect(stderr).toContain('line 3: RangeError: multiple of 3: 3');
    expect(stderr).toContain(`9 items, 3 failed (see ${errors})`);
  }, timeout);

  it('--unordered: {"index", "result"} lines in completion order, failed items left out', async () => {
    writeInput(oneToNine);
    const { code } = await procpool(['map', tasks, 'failOnMultipleOf3', '-i', input, '-o', output, '-e', errors, '--unordered', '-j', '2']);
    expect(code).toBe(1);
    const records = (jsonLines(output) as Array<{ index: number; result: number }>).sort((a, b) => a.index - b.index);
    expect(records).toEqual([0, 1, 3, 4, 6, 7].map((index) => ({ index, result: index + 1 })));
    expect(jsonLines(errors)).toHaveLength(3);
  }, timeout);

  it('--unordered writes in completion order, not input order: item 0 ends only after item 2 has', async () => {
    writeInput([0, 1, 2].map((index) => ({ dir, index, after: 2 })));
    const { code } = await procpool(['map', tasks, 'waitsForLater', '-i', input, '-o', output, '--unordered', '-j', '2', '--chunksize', '1']);
    expect(code).toBe(0);
    // Not sorted: the order written is the order of completion.
    expect(jsonLines(output)).toEqual([1, 2, 0].map((index) => ({ index, result: index })));
  }, timeout);

  it('a malformed line is reported with its line number and counts as a failed item', async () => {
    writeFileSync(input, '1\nnot json\n\n4\n');
    const { code, stderr } = await procpool(['map', tasks, 'square', '-i', input, '-o', output, '-e', errors]);
    expect(code).toBe(1);
    expect(jsonLines(output)).toEqual([1, null, null, 16]);
    expect(jsonLines(errors)).toMatchObject([
      { line: 2, input: 'not json', error: { name: 'MalformedLineError', code: 'PROCPOOL_MALFORMED_LINE' } },
      { line: 3, input: '', error: { name: 'MalformedLineError', code: 'PROCPOOL_MALFORMED_LINE' } },
    ]);
    expect(stderr).toContain('line 2: MalformedLineError');
  }, timeout);

  it('starmap: a line that is not an array is malformed', async () => {
    const { code, stdout } = await procpool(['starmap', tasks, 'add'], '[1, 2]\n5\n');
    expect(code).toBe(1);
    expect(stdout).toBe('3\nnull\n');
  }, timeout);

  it('a result JSON cannot hold is a failed item', async () => {
    const { code, stdout, stderr } = await procpool(['map', tasks, 'bigint'], '1\n');
    expect(code).toBe(1);
    expect(stdout).toBe('null\n');
    expect(stderr).toContain('cannot be written as JSON');
  }, timeout);

  it('--fail-fast stops at the first failure', async () => {
    writeInput(Array.from({ length: 60 }, (_, i) => i + 1));
    const { code, stderr } = await procpool(['map', tasks, 'failOnMultipleOf3', '-i', input, '-o', output, '-e', errors, '--fail-fast', '--chunksize', '1', '-j', '2']);
    expect(code).toBe(1);
    expect(jsonLines(output)).toEqual([1, 2, null]);
    expect(jsonLines(errors)).toMatchObject([{ line: 3 }]);
    expect(stderr).toContain('stopped at the first failure');
  }, timeout);

  it('loads a .ts task module with no build step', async () => {
    const { code, stdout } = await procpool(['map', typedTasks, 'greet', '-j', '1'], '{"name": "Ada"}\n{"name": "Alan"}\n');
    expect(code).toBe(0);
    expect(stdout).toBe('"hello Ada"\n"hello Alan"\n');
  }, timeout);

  it.each(['map', 'starmap'])('%s --help documents its options and exit codes', async (command) => {
    const { code, stdout } = await procpool([command, '--help']);
    expect(code).toBe(0);
    for (const option of ['--input', '--output', '--errors', '--unordered', '--processes', '--chunksize', '--timeout', '--retries', '--max-tasks-per-child', '--node-option', '--fail-fast', '--no-progress']) {
      expect(stdout).toContain(option);
    }
    expect(stdout).toContain('Exit codes');
  }, timeout);
});

describe('usage errors: exit code 2 before any work starts', () => {
  const rows: Array<[string, string[], RegExp]> = [
    ['unknown task', ['map', tasks, 'nope'], /"nope" is not an exported function.*square/],
    ['missing module', ['map', 'no-such-module.mjs', 'square'], /Cannot find task module no-such-module\.mjs/],
    ['module that throws on load', ['map', throwsOnLoad, 'square'], /Cannot load task module .*broken on purpose/],
    ['missing input file', ['map', tasks, 'square', '-i', 'no-such-input.jsonl'], /Cannot read input no-such-input\.jsonl/],
    ['invalid option value', ['map', tasks, 'square', '-j', '0'], /integer from 1/],
    ['unknown option', ['map', tasks, 'square', '--frobnicate'], /unknown option/],
    ['unknown command', ['frobnicate'], /unknown command/],
    ['missing task argument', ['map', tasks], /missing required argument/],
    ['errors file is the input file', ['map', tasks, 'square', '-i', 'same.jsonl', '-e', 'same.jsonl'], /--input and --errors name the same file/],
  ];
  it.each(rows)('%s', async (_, args, message) => {
    const { code, stderr } = await procpool([...args, '-o', output], '1\n');
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
    expect(existsSync(output)).toBe(false);
  }, timeout);
});

describe('Ctrl-C', () => {
  /** Starts a run in its own process group, so that a signal can reach all of it, as Ctrl-C at a terminal does. */
  function startDetached(args: string[]): { child: ChildProcess; done: Promise<Finished>; interrupt(): void } {
    const child = spawn(process.execPath, [cli, ...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    return { child, done: finished(child), interrupt: () => process.kill(-child.pid!, 'SIGINT') };
  }

  function outputLines(): number {
    return existsSync(output) ? lines(readFileSync(output, 'utf8')).length : 0;
  }

  it('the first stops reading input, lets items already read finish, flushes a consistent output and exits 130', async () => {
    writeInput(Array.from({ length: 300 }, (_, value) => ({ ms: 60, value })));
    const run = startDetached(['map', tasks, 'delayedDouble', '-i', input, '-o', output, '-e', errors, '-j', '2', '--chunksize', '1']);
    try {
      await waitFor(() => outputLines() >= 3);
      run.interrupt();
      const { code, stderr } = await run.done;
      expect(code).toBe(130);
      const results = jsonLines(output);
      expect(results.length).toBeGreaterThanOrEqual(3);
      expect(results.length).toBeLessThan(300);
      // Every line whole and matching its input line: children ignored the Ctrl-C and finished their items.
      results.forEach((result, i) => expect(result).toBe(i * 2));
      expect(jsonLines(errors)).toEqual([]);
      expect(stderr).toContain(`interrupted: ${results.length} items, 0 failed`);
    } finally {
      if (run.child.exitCode === null) process.kill(-run.child.pid!, 'SIGKILL');
    }
  }, timeout);

  it('the second kills running items; what finished before is kept', async () => {
    writeInput(Array.from({ length: 40 }, (_, value) => ({ ms: value < 4 ? 10 : 60_000, value })));
    const run = startDetached(['map', tasks, 'delayedDouble', '-i', input, '-o', output, '-j', '2', '--chunksize', '1']);
    try {
      await waitFor(() => outputLines() >= 4);
      run.interrupt();
      await new Promise((resolve) => setTimeout(resolve, 200));
      run.interrupt();
      const { code, stderr } = await run.done;
      expect(code).toBe(130);
      expect(jsonLines(output)).toEqual([0, 2, 4, 6]);
      expect(stderr).toContain('killing running items');
    } finally {
      if (run.child.exitCode === null) process.kill(-run.child.pid!, 'SIGKILL');
    }
  }, timeout);
});

describe('progress bar', () => {
  const command = (extra: string): string => `${process.execPath} ${cli} map ${tasks} delayedDouble -i ${input} -o ${output} -j 2 ${extra}`;

  beforeEach(() => writeInput(Array.from({ length: 20 }, (_, value) => ({ ms: 20, value }))));

  it('is drawn on a terminal: items done/total, rate, then the summary line', async () => {
    const { code, stdout } = await underTerminal(command(''));
    expect(code).toBe(0);
    expect(stdout).toContain('█');
    expect(stdout).toMatch(/20\/20 100% \| [\d.,]+ items\/s/);
    expect(stdout).toMatch(/procpool: 20 items, 0 failed/);
    expect(jsonLines(output)).toHaveLength(20);
  }, timeout);

  it('is left out on a terminal with --no-progress', async () => {
    const { code, stdout } = await underTerminal(command('--no-progress'));
    expect(code).toBe(0);
    expect(stdout).not.toContain('█');
    expect(stdout).toMatch(/procpool: 20 items, 0 failed/);
  }, timeout);

  it('is drawn in a pipe with --progress', async () => {
    const { code, stderr } = await procpool(['map', tasks, 'delayedDouble', '-i', input, '-o', output, '-j', '2', '--progress']);
    expect(code).toBe(0);
    expect(stderr).toMatch(/20\/20 100%/);
  }, timeout);
});
