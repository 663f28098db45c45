/**
 * The library as a new user meets it in the first hour, run with real
 * parents and real children: a parent started as `node -e`, with
 * `--inspect` or `--import`; a `.ts` task module with and without tsx; a
 * syntax error in a task module; errors with Date/Map/BigInt properties;
 * callbacks that throw; a same-named copy of an exported function.
 *
 * Each test names, in a comment, the bug it pins (what it saw before commit
 * 210ce61, or what it guards against).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Pool, PoolBrokenError, PoolError, type PoolOptions } from 'procpool';

const root = fileURLToPath(new URL('..', import.meta.url));
const fixtures = join(root, 'test/fixtures/first-hour');
const tasks = pathToFileURL(join(fixtures, 'tasks.mjs'));
const index = pathToFileURL(join(root, 'dist/src/index.js')).href;
/** Under vitest, process.execArgv carries vitest's own flags: never pass them on. */
const base = { nodeOptions: [] as string[] };
const timeout = 60_000;

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const running = new Set<ChildProcess>();

/** The end of a parent's stderr, for a failure message (a crash can print a whole minified bundle line). */
const tail = (text: string): string => text.slice(-2000);

/** Runs `node …args` as a parent of its own, collecting its output until it exits. */
function node(args: string[], cwd = root): Promise<Finished> {
  const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
  child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      running.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The JSON a parent printed as its last stdout line, with its output in the failure message if it has none. */
function printed<T>(run: Finished): T {
  const last = run.stdout.trimEnd().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(last) as T;
  } catch {
    throw new Error(`The parent printed no JSON (code ${String(run.code)}):\n${tail(run.stdout)}\n${tail(run.stderr)}`);
  }
}

/** What `new Pool(module, options)` throws; a pool it makes instead is terminated, and the result is undefined. */
async function constructionError(module: URL, options: PoolOptions): Promise<unknown> {
  try {
    await new Pool(module, options).terminate();
    return undefined;
  } catch (error) {
    return error;
  }
}

/** The error a pool's readiness rejects with (the pool is terminated). */
async function readyError(module: string | URL, options: PoolOptions): Promise<unknown> {
  await using pool = new Pool(module, { processes: 1, ...base, ...options });
  return pool.ready().then(() => undefined, (error: unknown) => error);
}

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'procpool-first-hour-lib-'));
});

afterEach(() => {
  // A parent left by a failed test must not go on starting children.
  for (const child of running) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('a parent started with flags of its own invocation', () => {
  /**
   * The parent's script appends a line to `marker`, then maps with default
   * nodeOptions. A child that ran the script again (bug: children inherited
   * `-e <script>` and ran it instead of the worker, each starting a pool of
   * its own) would append a second line; the script then exits before
   * starting a pool, so a regression breaks the pool instead of forking on.
   */
  const script = (marker: string, esm: boolean): string => {
    const guard =
      `appendFileSync(${JSON.stringify(marker)}, 'ran\\n');\n` +
      `if (readFileSync(${JSON.stringify(marker)}, 'utf8') !== 'ran\\n') process.exit(3);\n`;
    const body =
      `const pool = new Pool(${JSON.stringify(tasks.href)}, { processes: 2 });\n` +
      `const results = await pool.map('double', [1, 2, 3], { chunksize: 1 });\n` +
      `const execArgv = await pool.apply('execArgv');\n` +
      `await pool.terminate();\n` +
      `console.log(JSON.stringify({ results, execArgv }));\n`;
    return esm
      ? `import { appendFileSync, readFileSync } from 'node:fs';\nimport { Pool } from ${JSON.stringify(index)};\n${guard}${body}`
      : `const { appendFileSync, readFileSync } = require('node:fs');\n${guard}import(${JSON.stringify(index)}).then(async ({ Pool }) => {\n${body}});\n`;
  };

  it.each([
    ['node -e <script> (CommonJS)', [] as string[], false],
    ['node --input-type=module -e <script>', ['--input-type=module'], true],
  ])('%s: the pool works and no child runs the script again', async (_, flags, esm) => {
    const marker = join(dir, 'marker');
    const run = await node([...flags, '-e', script(marker, esm)]);
    expect(readFileSync(marker, 'utf8')).toBe('ran\n');
    expect(run.code, tail(run.stderr)).toBe(0);
    const { results, execArgv } = printed<{ results: number[]; execArgv: string[] }>(run);
    expect(results).toEqual([2, 4, 6]);
    expect(execArgv.filter((flag) => /^(-e|--eval|--input-type)/.test(flag))).toEqual([]);
  }, timeout);

  // Pins the new validation: these flags make a child run something other
  // than the worker (before, `['-e', 'x']` started children that ran `x`).
  it.each([
    [['-e', 'x'], '-e'],
    [['--eval=x'], '--eval=x'],
    [['-p', '1'], '-p'],
    [['--input-type=module'], '--input-type=module'],
    [['--max-old-space-size=64', '--test'], '--test'],
    [['--watch'], '--watch'],
  ])('explicit nodeOptions %j throw a RangeError naming %s', async (nodeOptions, flag) => {
    const error = await constructionError(tasks, { processes: 1, nodeOptions });
    expect(error).toBeInstanceOf(RangeError);
    expect((error as Error).message).toContain(`\`${flag}\``);
  });

  // Pins: children inherited `--inspect=0` (each opened a debugger port; with
  // `--inspect-brk` every child would wait for a debugger forever).
  it('a parent run with --inspect=0 does not pass --inspect to its children', async () => {
    const run = await node(['--inspect=0', join(fixtures, 'flags-parent.mjs')]);
    expect(run.code, tail(run.stderr)).toBe(0);
    const { parentExecArgv, execArgv } = printed<{ parentExecArgv: string[]; execArgv: string[] }>(run);
    expect(parentExecArgv).toContain('--inspect=0');
    expect(execArgv.filter((flag) => /^--(inspect|debug)/.test(flag))).toEqual([]);
  }, timeout);

  // Guards the other side of the filter: a loader or preload of the parent
  // still reaches its children (the fix must not drop every flag).
  it('a parent run with --import <module> passes it on: the task sees what the module set', async () => {
    const setGlobal = join(fixtures, 'set-global.mjs');
    const run = await node(['--import', setGlobal, '--inspect=0', join(fixtures, 'flags-parent.mjs')]);
    expect(run.code, tail(run.stderr)).toBe(0);
    const { execArgv, mark } = printed<{ execArgv: string[]; mark: unknown }>(run);
    expect(mark).toBe('set by --import');
    expect(execArgv).toEqual(['--import', setGlobal]);
  }, timeout);
});

describe("the child's command line", () => {
  // Pins: the pool passes the module, the orphan guard and its pid on the
  // child's command line; a task module that reads process.argv (at load or
  // later) must still see none of it, as before.
  it('a task module sees no arguments of the pool in process.argv, at load and after', async () => {
    await using pool = new Pool(tasks, { processes: 1, ...base });
    expect(await pool.apply('argvWhenLoaded')).toEqual([]);
    expect(await pool.apply('argv')).toEqual([]);
  });
});

describe('a .ts task module', () => {
  // Pins: a plain `node` parent (not under tsx) could not load a .ts module;
  // procpool now adds tsx's loader, resolved from its own location. The
  // module has an enum, which Node's type stripping cannot run, so only tsx
  // makes it load on every Node.
  it('loads from a plain node parent: tsx is found from where procpool is installed', async () => {
    const run = await node([join(fixtures, 'flags-parent.mjs'), pathToFileURL(join(fixtures, 'enum-tasks.ts')).href]);
    expect(run.code, tail(run.stderr)).toBe(0);
    const { parentExecArgv, execArgv, greeting } = printed<{ parentExecArgv: string[]; execArgv: string[]; greeting: string }>(run);
    expect(parentExecArgv).toEqual([]);
    expect(greeting).toBe('hello Ada');
    const loader = execArgv.indexOf('--import');
    expect(loader).toBeGreaterThanOrEqual(0);
    expect(execArgv[loader + 1]).toMatch(/[/\\]tsx[/\\]/);
  }, timeout);

  // Pins: any --import preload (dotenv, an APM agent) was taken for a
  // TypeScript loader, so tsx was not added and the .ts module failed.
  it('a parent with an unrelated --import preload still gets tsx for a .ts module', async () => {
    const setGlobal = join(fixtures, 'set-global.mjs');
    const run = await node(['--import', setGlobal, join(fixtures, 'flags-parent.mjs'), pathToFileURL(join(fixtures, 'enum-tasks.ts')).href]);
    expect(run.code, tail(run.stderr)).toBe(0);
    const { greeting, execArgv } = printed<{ greeting: string; execArgv: string[] }>(run);
    expect(greeting).toBe('hello Ada');
    expect(execArgv).toContain(setGlobal);
  }, timeout);

  // Pins: without tsx, Node < 22.18 failed with ERR_UNKNOWN_FILE_EXTENSION
  // and no hint; now the PoolBrokenError says to install tsx. On a Node that
  // strips types the module simply runs.
  it('without tsx: says "install tsx" on a Node without type stripping, runs natively where Node strips types', async () => {
    // A project in a temp folder whose node_modules holds procpool (package.json and dist/) and nothing else.
    const project = join(dir, 'project');
    const installed = join(project, 'node_modules/procpool');
    mkdirSync(installed, { recursive: true });
    cpSync(join(root, 'package.json'), join(installed, 'package.json'));
    cpSync(join(root, 'dist'), join(installed, 'dist'), { recursive: true });
    for (const up of [project, dir, tmpdir(), '/']) expect(existsSync(join(up, 'node_modules/tsx')), up).toBe(false);
    writeFileSync(join(project, 'package.json'), '{ "type": "module" }\n');
    writeFileSync(join(project, 'tasks.ts'), 'export function greet(name: string): string {\n  return `hello ${name}`;\n}\n');
    writeFileSync(join(project, 'tasks.mjs'), 'export const greet = (name) => `hello ${name}`;\n');
    writeFileSync(
      join(project, 'parent.mjs'),
      [
        "import { Pool, PoolBrokenError } from 'procpool';",
        'const pool = new Pool(new URL(process.argv[2], import.meta.url), { processes: 1 });',
        'try {',
        "  console.log(JSON.stringify({ value: await pool.apply('greet', ['Ada']) }));",
        '} catch (error) {',
        '  console.log(JSON.stringify({ broken: error instanceof PoolBrokenError, code: error.code, message: error.message }));',
        '} finally {',
        '  await pool.terminate();',
        '}',
      ].join('\n'),
    );
    // The copy works: a JavaScript module runs.
    expect(printed(await node(['parent.mjs', './tasks.mjs'], project))).toEqual({ value: 'hello Ada' });

    const run = await node(['parent.mjs', './tasks.ts'], project);
    expect(run.code, tail(run.stderr)).toBe(0);
    const outcome = printed<{ value?: string; broken?: boolean; code?: string; message?: string }>(run);
    const features = process.features as { typescript?: unknown };
    if (features.typescript === 'strip' || features.typescript === 'transform') {
      expect(outcome).toEqual({ value: 'hello Ada' });
    } else {
      expect(outcome).toMatchObject({ broken: true, code: 'PROCPOOL_BROKEN' });
      expect(outcome.message).toContain(`${join(project, 'tasks.ts')} is TypeScript`);
      expect(outcome.message).toContain('install tsx');
    }
  }, timeout);
});

describe('a syntax error in an ES module task file', () => {
  // Pins: Node's error for import() of an ES module with a syntax error has
  // no file, line or caret; the PoolBrokenError said only "Unexpected token".
  it('PoolBrokenError names file:line, shows the code line and a caret', async () => {
    const file = join(dir, 'bad.mjs');
    writeFileSync(file, 'export const ok = () => 1;\n\nconst broken = (1 + ;\nexport const later = () => 2;\n');
    const error = await readyError(pathToFileURL(file), {});
    expect(error).toBeInstanceOf(PoolBrokenError);
    const lines = (error as Error).message.split('\n');
    expect(lines[0]).toContain(`${file}:3`);
    expect(lines).toContain('const broken = (1 + ;');
    const caret = lines.find((line) => /^\s*\^+\s*$/.test(line));
    expect(caret).toBeDefined();
    // The caret points into the offending line.
    expect(caret!.indexOf('^')).toBeLessThan('const broken = (1 + ;'.length);
  }, timeout);

  // Pins: the module itself parses, so the error is in what it imports — said so.
  it('a syntax error in a module the task module imports says "(in a module that … imports)"', async () => {
    const file = join(dir, 'imports-bad.mjs');
    writeFileSync(join(dir, 'dependency.mjs'), 'export const x = {;\n');
    writeFileSync(file, "import { x } from './dependency.mjs';\nexport const task = () => x;\n");
    const error = await readyError(pathToFileURL(file), {});
    expect(error).toBeInstanceOf(PoolBrokenError);
    expect((error as Error).message).toContain(`(in a module that ${file} imports)`);
  }, timeout);

  // Guards the other side: a SyntaxError thrown by running code (JSON.parse)
  // is no parse error of the module; `node --check` passes on the module, so
  // a looser check would wrongly add "(in a module that … imports)".
  const parseError = ((): string => {
    try {
      JSON.parse('{');
    } catch (error) {
      return (error as Error).message;
    }
    throw new Error('JSON.parse accepted "{"');
  })();

  it.each([
    ['module top-level code', "JSON.parse('{');\nexport const task = () => 1;\n", {}],
    ['an initializer', "export function init() {\n  JSON.parse('{');\n}\nexport const task = () => 1;\n", { initializer: 'init' }],
  ])('a runtime SyntaxError thrown by %s keeps its message unchanged', async (_, source, options) => {
    const file = join(dir, 'runtime.mjs');
    writeFileSync(file, source);
    const error = await readyError(pathToFileURL(file), options);
    expect(error).toBeInstanceOf(PoolBrokenError);
    const { message, cause } = error as Error;
    expect(message).toContain(parseError);
    expect(message).not.toContain('in a module that');
    expect(message).not.toContain(`${file}:`);
    expect(cause).toBeInstanceOf(SyntaxError);
    expect((cause as Error).message).toBe(parseError);
  }, timeout);
});

describe('own properties of a task error', () => {
  // Pins: serialize-error turned a Date into a string, Set/Map/typed array into {} and failed on a BigInt.
  function expectRichProps(error: unknown): void {
    const rich = error as Record<string, unknown>;
    expect(rich.when).toBeInstanceOf(Date);
    expect((rich.when as Date).getTime()).toBe(5);
    expect(rich.tags).toBeInstanceOf(Set);
    expect([...(rich.tags as Set<string>)]).toEqual(['a']);
    expect(rich.m).toBeInstanceOf(Map);
    expect([...(rich.m as Map<number, number>)]).toEqual([[1, 2]]);
    expect(rich.bytes).toBeInstanceOf(Uint8Array);
    expect([...(rich.bytes as Uint8Array)]).toEqual([1, 2]);
    expect(rich.big).toBe(10n);
    expect((rich.nested as { d: unknown }).d).toBeInstanceOf(Date);
    expect(((rich.nested as { d: Date }).d).getTime()).toBe(1);
    expect(rich.code).toBe('E_RICH');
  }

  it('an Error keeps Date, Set, Map, Uint8Array, BigInt and nested Date properties, and its code', async () => {
    await using pool = new Pool(tasks, { processes: 1, ...base });
    const error = await pool.apply('throwRich').then(() => undefined, (thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ name: 'Error', message: 'rich' });
    expectRichProps(error);
  }, timeout);

  it('a subclass of TypeError keeps them too, and stays a TypeError with its own name', async () => {
    await using pool = new Pool(tasks, { processes: 1, ...base });
    const error = await pool.apply('throwRichTypeError').then(() => undefined, (thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(TypeError);
    expect(error).toMatchObject({ name: 'BadInputError', message: 'bad input' });
    expectRichProps(error);
  }, timeout);
});

describe('a callback that throws', () => {
  // Pins the documented behaviour (src/async-result.ts): the callback's error
  // is an uncaught exception, the AsyncResult keeps the task's outcome and
  // the pool goes on. A regression would swallow the error, make get()
  // reject with the callback's error, or leave the pool stuck.
  it('callback / errorCallback of applyAsync and mapAsync: uncaught exception, get() keeps the outcome, the pool works on', async () => {
    const run = await node([join(fixtures, 'callbacks-parent.mjs')]);
    expect(run.code, tail(run.stderr)).toBe(0);
    expect(printed(run)).toEqual({
      applyGet: 5,
      applySuccessful: true,
      mapGet: [2, 4],
      failedGet: 'task failed',
      failedSuccessful: false,
      failedMapGet: 'map task failed',
      after: 42,
      uncaught: ['callback of applyAsync', 'callback of mapAsync', 'errorCallback of applyAsync', 'errorCallback of mapAsync'],
    });
  }, timeout);
});

describe('a function named like an export that is not the export', () => {
  // Pins: a second instance of the module (a test runner's loader, two paths
  // to one file) gave "add is not an exported function … its exported
  // functions are: add, …", which contradicts itself; now it says why.
  it('a copy from a second instance of the module is refused with PROCPOOL_UNKNOWN_TASK: pass it by its export name', async () => {
    await using pool = new Pool(tasks, { processes: 1, ...base });
    const copy = (await import(`${tasks.href}?copy`)) as { add: (a: number, b: number) => number };
    const error = await pool.apply(copy.add, [1, 2]).then(() => undefined, (thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(PoolError);
    expect(error).toMatchObject({ code: 'PROCPOOL_UNKNOWN_TASK' });
    expect((error as Error).message).toContain('Pass the task by its export name instead: "add"');
    expect((error as Error).message).not.toContain('its exported functions are');
    // Named by its export name, the same task runs.
    expect(await pool.apply('add', [1, 2])).toBe(3);
  }, timeout);

  it('a function of another module whose name is no export gets the list of exported functions', async () => {
    await using pool = new Pool(tasks, { processes: 1, ...base });
    const triple = (x: number): number => x * 3;
    const error = await pool.apply(triple, [1]).then(() => undefined, (thrown: unknown) => thrown);
    expect(error).toMatchObject({ code: 'PROCPOOL_UNKNOWN_TASK' });
    expect((error as Error).message).toMatch(/^Function triple is not an exported function of .*tasks\.mjs; its exported functions are: .*\badd\b/);
    expect((error as Error).message).not.toContain('export name instead');
  }, timeout);
});
