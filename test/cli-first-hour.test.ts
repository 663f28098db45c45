/**
 * The command line as a new user meets it (issue 11, "The command line"),
 * run as real processes: results and the bar on one terminal, results JSON
 * cannot carry, blank lines at the end of the input, `| head -1`, and a
 * `.ts` module where tsx cannot be found.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { finished, type Finished } from './fixtures/cli-helpers.js';
import { countLines } from '../src/cli/input.js';
import { runOnTerminal, screenLines, terminalRunner } from './fixtures/cli-first-hour/terminal.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'dist/src/cli/main.js');
const fixtures = join(root, 'test/fixtures/cli-first-hour');
const tasks = join(fixtures, 'tasks.mjs');
const pidRecorder = join(fixtures, 'pid-recorder.mjs');
const timeout = 60_000;


/** Runs the command with `args`, `stdin` as its standard input. */
function procpool(args: string[], stdin = '', command = cli): Promise<Finished> {
  const child = spawn(process.execPath, [command, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const done = finished(child);
  child.stdin!.end(stdin);
  return done;
}

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'procpool-first-hour-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('results and the progress bar on one terminal', () => {
  const runner = terminalRunner();
  if (runner === undefined) {
    console.warn('\n*** SKIPPED: neither python3 (pty module) nor util-linux `script` is here: the progress bar is NOT tested under a terminal ***\n');
  }

  it.skipIf(runner === undefined)('result lines print whole above the bar; one bar line is left, never wider than the terminal', async () => {
    const columns = 60;
    const input = join(dir, 'input.jsonl');
    const items = Array.from({ length: 40 }, (_, i) => i + 1);
    writeFileSync(input, items.join('\n') + '\n');
    const { code, raw } = await runOnTerminal(runner!, [process.execPath, cli, 'map', tasks, 'squareSlowly', '-i', input, '-j', '2', '--chunksize', '1'], columns);
    expect(code).toBe(0);
    // The bar was live while results printed: drawn more than once, and before the last result.
    expect(raw.split('items/s').length - 1).toBeGreaterThan(1);
    expect(raw.indexOf('items/s')).toBeLessThan(raw.lastIndexOf('1600'));

    const screen = screenLines(raw, columns);
    const isBar = (line: string): boolean => line.startsWith('squareSlowly') || line.includes('█') || line.includes('░');
    const bars = screen.filter(isBar);
    expect(bars).toHaveLength(1);
    expect(bars[0]).toMatch(/^squareSlowly █{30} 40\/40 100%/);
    expect(bars[0]!.length).toBeLessThan(columns);
    expect(screen.filter((line) => /^\d+$/.test(line))).toEqual(items.map((x) => String(x * x)));
    // What tasks print (notes on stderr) lands above the bar too, whole.
    expect(screen.filter((line) => line.startsWith('note')).sort()).toEqual(['note 10', 'note 20', 'note 30', 'note 40']);
    expect(screen.at(-1)).toMatch(/^procpool: 40 items, 0 failed/);
    const others = screen.filter((line) => !isBar(line) && !/^\d+$/.test(line) && !/^note \d+$/.test(line) && !line.startsWith('procpool: 40 items'));
    expect(others).toEqual([]);
  }, timeout);
});

describe('results that JSON cannot carry fail their item, saying where', () => {
  // [kind, what the output line is (null: refused), what the error says]
  const rows: Array<[string, unknown, RegExp | undefined]> = [
    ['nestedMap', null, /result\.a\[2\] is a Map, which JSON cannot carry/],
    ['typedArray', null, /result is a Uint8Array/],
    ['nan', null, /result\.x is NaN/],
    ['infinity', null, /result\[0\] is Infinity/],
    ['undefinedResult', null, /result is undefined.*return null to write null/],
    ['undefinedInArray', null, /result\[1\] is undefined/],
    ['oddKeySet', null, /result\["odd key"\] is a Set/],
    ['cycle', null, /circular/i],
    // JSON's documented conversions stay: toJSON, and a property that is undefined is left out.
    ['date', { when: '1970-01-01T00:00:00.000Z' }, undefined],
    ['undefinedProperty', { a: 1 }, undefined],
    ['plain', { a: [1, 'x', null, true, { b: -2.5 }] }, undefined],
  ];

  it('each refusal is a failed item with its line, its path and a code; faithful results are written', async () => {
    const errors = join(dir, 'errors.jsonl');
    const input = rows.map(([kind]) => JSON.stringify(kind)).join('\n') + '\n';
    const { code, stdout, stderr } = await procpool(['map', tasks, 'result', '-j', '2', '-e', errors], input);
    expect(code).toBe(1);
    expect(stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as unknown)).toEqual(rows.map(([, output]) => output));
    const records = readFileSync(errors, 'utf8').trimEnd().split('\n').map((line) => JSON.parse(line) as { line: number; input: string; error: { name: string; code: string; message: string } });
    const refused = rows.flatMap(([kind, , message], i) => (message === undefined ? [] : [{ kind, line: i + 1, message }]));
    expect(records.map((record) => record.line).sort((a, b) => a - b)).toEqual(refused.map((row) => row.line));
    for (const { kind, line, message } of refused) {
      const record = records.find((candidate) => candidate.line === line)!;
      expect(record.input).toBe(kind);
      expect(record.error).toMatchObject({ name: 'UnwritableResultError', code: 'PROCPOOL_UNWRITABLE_RESULT' });
      expect(record.error.message).toContain(`The result of input line ${line} cannot be written as JSON`);
      expect(record.error.message).toMatch(message);
    }
    expect(stderr).toContain(`${rows.length} items, ${refused.length} failed`);
  }, timeout);
});

describe('blank lines at the end of the input are no items', () => {
  it('trailing blank and whitespace-only lines are skipped: exit 0', async () => {
    const { code, stdout, stderr } = await procpool(['map', tasks, 'square'], '1\n2\n\n  \t\n\r\n');
    expect(code).toBe(0);
    expect(stdout).toBe('1\n4\n');
    expect(stderr).toMatch(/^procpool: 2 items, 0 failed/);
  }, timeout);

  it('a blank line with input after it stays a malformed item, so output line i still answers input line i', async () => {
    const errors = join(dir, 'errors.jsonl');
    const { code, stdout } = await procpool(['map', tasks, 'square', '-e', errors], '1\n\n3\n\n\n');
    expect(code).toBe(1);
    expect(stdout).toBe('1\nnull\n9\n');
    expect(readFileSync(errors, 'utf8').trimEnd().split('\n').map((line) => JSON.parse(line) as unknown)).toMatchObject([{ line: 2, error: { code: 'PROCPOOL_MALFORMED_LINE' } }]);
  }, timeout);

  it("the bar's total leaves trailing blank lines out", async () => {
    const input = join(dir, 'input.jsonl');
    writeFileSync(input, '1\n2\n3\n\n \n');
    const { code, stderr } = await procpool(['map', tasks, 'square', '-i', input, '--progress']);
    expect(code).toBe(0);
    expect(stderr).toMatch(/ 3\/3 100%/);
  }, timeout);

  it.each([
    ['', 0],
    ['1', 1],
    ['1\n', 1],
    ['1\n\n \r\n\t', 1],
    ['\n\n1\n', 3],
    ['1\n\n3', 3],
    [' \n\n', 0],
  ])('countLines(%j) is %i', async (text, expected) => {
    const path = join(dir, 'count.jsonl');
    writeFileSync(path, text);
    expect(await countLines(path, new AbortController().signal)).toBe(expected);
  });
});

describe('a reader that closes early (`| head -1`)', () => {
  /** Whether process `pid` is gone (a zombie is as good as gone: it runs nothing). */
  function gone(pid: number): boolean {
    try {
      return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') ?? false;
    } catch {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    }
  }

  it('stops the pool, says nothing and exits with 141 (128 + SIGPIPE); no child outlives it', async () => {
    const pids = join(dir, 'pids');
    mkdirSync(pids);
    const child = spawn(process.execPath, [cli, 'map', pidRecorder, 'echoSlowly', '-j', '2'], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, PROCPOOL_TEST_PID_DIR: pids },
    });
    let stderr = '';
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    // A producer that never ends, as `yes 1 | procpool map … | head -1`.
    child.stdin.on('error', () => undefined);
    child.stdin.write(Array.from({ length: 5000 }, (_, i) => String(i)).join('\n') + '\n');
    let first = '';
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (code, signal) => resolve([code, signal])));
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (data: Buffer) => {
        first += data.toString();
        if (first.includes('\n')) {
          // The reader goes away with most of the input still to do.
          child.stdout.destroy();
          resolve();
        }
      });
    });
    const [code, signal] = await exited;
    expect(first.split('\n')[0]).toBe('0');
    expect(stderr).toBe('');
    expect({ code, signal }).toEqual({ code: 141, signal: null });
    const children = readdirSync(pids).map(Number);
    expect(children.length).toBeGreaterThan(0);
    expect(children.filter((pid) => !gone(pid))).toEqual([]);
  }, timeout);
});

describe('a .ts task module where tsx cannot be found', () => {
  it('says what to do (install tsx, or Node ≥ 22.18), or runs it natively where Node strips types', async () => {
    // A copy of the built command line whose node_modules has everything but tsx.
    const copy = join(dir, 'procpool');
    cpSync(join(root, 'dist'), join(copy, 'dist'), { recursive: true });
    cpSync(join(root, 'package.json'), join(copy, 'package.json'));
    mkdirSync(join(copy, 'node_modules'));
    for (const name of readdirSync(join(root, 'node_modules'))) {
      if (name !== 'tsx' && name !== '.bin') symlinkSync(join(root, 'node_modules', name), join(copy, 'node_modules', name));
    }
    const copiedCli = join(copy, 'dist/src/cli/main.js');
    for (const up of [dir, tmpdir(), '/']) expect(existsSync(join(up, 'node_modules/tsx'))).toBe(false);

    // The copy works: a JavaScript module runs.
    expect(await procpool(['map', join(root, 'test/fixtures/cli-tasks.mjs'), 'square'], '3\n', copiedCli)).toMatchObject({ code: 0, stdout: '9\n' });

    const typed = join(root, 'test/fixtures/cli-tasks.ts');
    const { code, stdout, stderr } = await procpool(['map', typed, 'greet'], '{"name": "Ada"}\n', copiedCli);
    const features = process.features as { typescript?: unknown };
    if (features.typescript === 'strip' || features.typescript === 'transform') {
      expect({ code, stdout }).toEqual({ code: 0, stdout: '"hello Ada"\n' });
    } else {
      expect(code).toBe(2);
      expect(stdout).toBe('');
      expect(stderr).toContain(`Cannot load TypeScript task module ${typed}: tsx is not installed`);
      expect(stderr).toContain('Install tsx (npm i -D tsx), or use Node ≥ 22.18, which runs .ts natively');
      expect(stderr).not.toMatch(/\n\s+at /);
    }
  }, timeout);
});
