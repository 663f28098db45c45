/**
 * What a newcomer gets: the tarball `npm pack` makes from a clean copy, its
 * contents, its install into a fresh project outside the repository, and
 * every example of the README run there as written — ESM, CommonJS,
 * TypeScript, the server and the command line — so that none can rot.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { itCluster } from './cluster/gate.js';
import { startRedis } from './cluster/redis.js';
import { installProject, outsideTemp, packCleanCopy, repo, type Packed } from './fixtures/package/packed.js';
import { exampleFiles, readmeBlocks, sectionBlocks, type Block } from './fixtures/package/readme.js';

const temp = outsideTemp();
let packed: Packed;
let root: string;
let installOutput: string;
const blocks = readmeBlocks();

beforeAll(() => {
  packed = packCleanCopy(temp);
  ({ root, output: installOutput } = installProject(packed.tarball, temp));
}, 180_000);

afterAll(() => rmSync(temp, { recursive: true, force: true }));

/** Runs a program in `dir` with a clean Node environment; its stdout. */
function run(command: string, args: string[], dir: string, env: NodeJS.ProcessEnv = {}): string {
  return execFileSync(command, args, { cwd: dir, encoding: 'utf8', timeout: 120_000, env: { ...process.env, NODE_OPTIONS: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Writes a README section's files into a folder of the project. */
function writeExample(section: string, folder: string): string {
  const dir = join(root, folder);
  mkdirSync(dir, { recursive: true });
  const files = exampleFiles(blocks, section);
  expect([...files.keys()].length, `README section "${section}" has its files`).toBeGreaterThan(0);
  for (const [name, code] of files) writeFileSync(join(dir, name), code);
  return dir;
}

describe('the packed tarball', () => {
  it('holds the entry points, the types, the license and the notes, and no sources, tests or maps', () => {
    for (const file of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/task.js', 'dist/src/task.d.ts', 'dist/src/cli/main.js', 'dist/worker/entry.js', 'dist/THIRD-PARTY-NOTICES.md']) {
      expect(packed.files, file).toContain(file);
    }
    expect(packed.files.filter((file) => /\.map$|^(src|test|bench|examples|worker)\/|\.test\./.test(file))).toEqual([]);
    expect(packed.files.filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))).toEqual([]);
  });

  it("the public types carry no internal member (the command line's settleEach, the test seam)", () => {
    const types = readFileSync(join(root, 'node_modules/procpool/dist/src/pool.d.ts'), 'utf8');
    expect(types).toContain('class Pool');
    expect(types).not.toMatch(/settleEach|SpawnPort|lifecycle|growTo/);
  });

  it('installs as one package with no install scripts, and its manifest says where it comes from', () => {
    expect(installOutput).toMatch(/added 1 package/);
    expect(installOutput).not.toMatch(/install-scripts|deprecated/);
    const manifest = JSON.parse(readFileSync(join(root, 'node_modules/procpool/package.json'), 'utf8')) as Record<string, unknown>;
    expect(manifest.dependencies ?? {}).toEqual({});
    expect(manifest).toMatchObject({ license: 'MIT', repository: expect.anything(), homepage: expect.any(String), bugs: expect.anything() });
  });

  it('the command line runs from the install: --version', () => {
    const version = (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string }).version;
    expect(run(join(root, 'node_modules/.bin/procpool'), ['--version'], root).trim()).toBe(version);
  });
});

describe('the README, run as written in a fresh project', () => {
  const quickStartOutput = (): string => {
    const [output] = sectionBlocks(blocks, 'JavaScript (ES modules)', 'text');
    expect(output, 'the quick start shows what it prints').toBeDefined();
    return output!;
  };

  it('quick start, JavaScript (ES modules): node main.mjs', () => {
    const dir = writeExample('JavaScript (ES modules)', 'esm');
    expect(run(process.execPath, ['main.mjs'], dir)).toBe(quickStartOutput());
  });

  it('Inside a task (procpool/task, finalizer): node main.mjs', () => {
    const dir = writeExample('Inside a task', 'inside-a-task');
    const [output] = sectionBlocks(blocks, 'Inside a task', 'text');
    expect(run(process.execPath, ['main.mjs'], dir)).toBe(output);
  });

  it('A one-file program: node one-file.mjs', () => {
    const dir = writeExample('A one-file program', 'one-file');
    const [output] = sectionBlocks(blocks, 'A one-file program', 'text');
    expect(run(process.execPath, ['one-file.mjs'], dir)).toBe(output);
  });

  it('quick start, CommonJS: node main.cjs (require of the ES module package)', () => {
    const dir = writeExample('CommonJS', 'cjs');
    const stderr = join(dir, 'stderr.txt');
    const out = execFileSync('sh', ['-c', `"${process.execPath}" main.cjs 2>"${stderr}"`], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    expect(out).toBe(quickStartOutput());
    // No experimental warning or other noise on the user's terminal.
    expect(readFileSync(stderr, 'utf8')).toBe('');
  });

  it('quick start, TypeScript: tsc, then node main.js; and tsx main.ts', () => {
    const dir = writeExample('TypeScript', 'ts');
    expect(existsSync(join(dir, 'tsconfig.json'))).toBe(true);
    run(process.execPath, [join(repo, 'node_modules/typescript/bin/tsc'), '-p', dir], dir);
    expect(run(process.execPath, ['main.js'], dir)).toBe(quickStartOutput());
    rmSync(join(dir, 'main.js'));
    rmSync(join(dir, 'tasks.js'));
    expect(run(process.execPath, [join(repo, 'node_modules/tsx/dist/cli.mjs'), 'main.ts'], dir)).toBe(quickStartOutput());
  });

  it('quick start, TypeScript: a wrong argument or a map over a two-argument task does not compile', () => {
    const dir = join(root, 'ts');
    writeFileSync(
      join(dir, 'wrong.ts'),
      "import { Pool } from 'procpool';\nconst pool = new Pool<typeof import('./tasks.js')>('./tasks.js');\nvoid pool.apply('add', [1, '2']);\nvoid pool.map('add', [1, 2]);\n",
    );
    let output = '';
    try {
      run(process.execPath, [join(repo, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', dir], dir);
    } catch (error) {
      output = String((error as { stdout?: unknown }).stdout);
    }
    expect(output).toMatch(/wrong\.ts\(3,/);
    expect(output).toMatch(/wrong\.ts\(4,.*UseStarmapForTasksOfSeveralArguments/);
    rmSync(join(dir, 'wrong.ts'));
  });

  it('inside a server: answers a request from the pool', async () => {
    const dir = writeExample('Inside a server', 'server');
    const server = spawn(process.execPath, ['server.mjs'], { cwd: dir, env: { ...process.env, PORT: '0', NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const lines = createInterface({ input: server.stdout });
      const url = await new Promise<string>((resolve, reject) => {
        lines.once('line', (line) => {
          const listening = /listening on (\S+)/.exec(line)?.[1];
          if (listening === undefined) reject(new Error(`unexpected first line: ${line}`));
          else resolve(listening);
        });
        server.once('exit', (code) => reject(new Error(`server exited with ${String(code)}`)));
      });
      const response = await fetch(`${url}/?n=100000`);
      expect(await response.text()).toBe('9592\n');
    } finally {
      server.kill('SIGTERM');
    }
  });

  it('batch scripts: the command line over a file of inputs', () => {
    const dir = writeExample('Batch scripts', 'batch');
    const [commands] = sectionBlocks(blocks, 'Batch scripts', 'sh');
    const [expected] = sectionBlocks(blocks, 'Batch scripts', 'text');
    expect(run('bash', ['-euo', 'pipefail', '-c', commands!], dir, { npm_config_offline: 'true' })).toBe(expected);
  });

  // The cluster section on one machine: a Redis of its own, two workers started as the README says, the caller.
  // Without redis-server it is skipped as the cluster suite is (test/cluster/gate.ts): under CI that fails.
  itCluster(
    'across machines: two workers and the caller, with bullmq and ioredis installed beside procpool',
    async () => {
      const dir = writeExample('Across machines', 'cluster');
      const [commands] = sectionBlocks(blocks, 'Across machines', 'sh');
      const [install, worker] = commands!.trim().split('\n') as [string, string];
      expect(install).toMatch(/^npm install procpool bullmq@6 ioredis@5$/);
      // The peers as the repository installed them (the versions its lock file pins), linked in rather
      // than fetched: the test needs no network. procpool itself is the tarball's install.
      for (const peer of ['bullmq', 'ioredis']) {
        if (!existsSync(join(root, 'node_modules', peer))) symlinkSync(join(repo, 'node_modules', peer), join(root, 'node_modules', peer));
      }
      const redis = await startRedis();
      const workers: ChildProcess[] = [];
      try {
        const [command, ...args] = worker.replaceAll('redis://10.0.0.5:6379', redis.url).split(' ') as [string, ...string[]];
        expect(command).toBe('npx');
        for (let i = 0; i < 2; i++) {
          const child = spawn(join(root, 'node_modules/.bin', args[0]!), args.slice(1), { cwd: dir, env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'inherit'] });
          workers.push(child);
          const lines = createInterface({ input: child.stdout! });
          await new Promise<void>((resolve, reject) => {
            lines.on('line', (line) => line.includes('procpool worker: serving') && resolve());
            child.once('exit', (code) => reject(new Error(`worker exited with ${String(code)}`)));
          });
        }
        const caller = readFileSync(join(dir, 'caller.mjs'), 'utf8').replaceAll('redis://10.0.0.5:6379', redis.url);
        writeFileSync(join(dir, 'caller.mjs'), caller);
        const [expected] = sectionBlocks(blocks, 'Across machines', 'text');
        expect(run(process.execPath, ['caller.mjs'], dir)).toBe(expected);
      } finally {
        await Promise.all(workers.map((child) => new Promise((resolve) => (child.exitCode !== null ? resolve(undefined) : (child.once('exit', resolve), child.kill('SIGTERM'))))));
        await redis.stop();
      }
    },
    120_000,
  );

  it('every code block is run above, or is one the test names with the reason it is not', () => {
    const run = new Set(['JavaScript (ES modules)', 'CommonJS', 'TypeScript', 'Inside a task', 'A one-file program', 'Inside a server', 'Batch scripts', 'Across machines']);
    // Not examples of the package: what CI's own steps run, and screens that only show what a terminal looks like.
    const notRun: Array<[section: string, starts: string, why: string]> = [
      ['Install', 'npm install procpool', 'what the test itself does, from the tarball'],
      ['Try it: the two set-up commands', 'npm install && npm run demo', 'a clone\'s set-up: .ci/run runs both'],
      ['Try it: the two set-up commands', '0 + 0 = 0', 'the demo\'s output, which interleaves differently each run'],
      ['Batch scripts', 'compressAndHash ', 'a picture of the live bar'],
      ['Development', 'npm install', 'a clone\'s commands: .ci/run runs them'],
    ];
    const unclaimed = blocks.filter(
      (block: Block) =>
        !(run.has(block.section) && (block.file !== undefined || block.lang === 'text' || block.lang === 'sh')) &&
        !notRun.some(([section, starts]) => block.section === section && block.code.startsWith(starts)),
    );
    expect(unclaimed.map((block) => `README.md:${block.line} (${block.section}): ${block.code.split('\n')[0]}`)).toEqual([]);
  });
});
