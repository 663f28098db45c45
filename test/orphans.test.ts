/**
 * Orphans (issue 3, item 7): a real parent script starts a pool; when the
 * parent is SIGKILLed every child exits promptly, also one busy in a
 * synchronous loop; SIGINT/SIGTERM end them too; and a script that never
 * calls close() exits by itself once its work is done.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { childEnv, leftOver, running, tempDir, until } from './fixtures/fault-helpers.js';

const script = fileURLToPath(new URL('./fixtures/fault-parent.mjs', import.meta.url));
// Run from the package root, so that the script's `import 'procpool'` resolves to dist/.
const root = fileURLToPath(new URL('..', import.meta.url));
/**
 * A bound for a child that never goes, not a timing: the guard acts at once
 * (pdeathsig) or within ~0.25 s (the watchdog's poll), and a loaded machine
 * (this suite runs beside others) may delay a thread's start by seconds.
 */
const BOUND_MS = 5000;

interface Parent {
  process: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

let dir = '';
const parents: ChildProcess[] = [];
beforeEach(() => {
  dir = tempDir('procpool-orphans-');
});
afterEach(() => {
  // Whatever a failing test left behind, end it: the parent, then the children it started.
  for (const parent of parents.splice(0)) if (parent.exitCode === null && parent.signalCode === null) parent.kill('SIGKILL');
  for (const pid of leftOver(join(dir, 'starts'))) process.kill(pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** How children are kept from outliving their parent: Linux's parent-death signal (through setpriv) where it exists, else a watchdog thread. */
let guard: 'pdeathsig' | 'watchdog' = 'pdeathsig';

function startParent(mode: string): Parent {
  const env = { ...childEnv(join(dir, 'starts')), PROCPOOL_ORPHAN_GUARD: guard === 'watchdog' ? 'watchdog' : '' };
  const parent = spawn(process.execPath, [script, mode, dir], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  parents.push(parent);
  let output = '';
  parent.stdout.on('data', (data: Buffer) => (output += data.toString()));
  parent.stderr.on('data', (data: Buffer) => (output += data.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => parent.once('exit', (code, signal) => resolve({ code, signal })));
  return { process: parent, exited, output: () => output };
}

/** Starts a parent and waits for the pids it prints once its children are in place. */
async function parentWithChildren(mode: string): Promise<{ parent: Parent; pids: number[] }> {
  const parent = startParent(mode);
  expect(await until(() => parent.output().includes('\n'), 15_000), `the parent printed: ${parent.output()}`).toBe(true);
  const { pids } = JSON.parse(parent.output().split('\n')[0]!) as { pids: number[] };
  expect(pids).toHaveLength(2);
  expect(running(pids)).toEqual(pids);
  if (process.platform === 'linux') {
    // The guard the children really have (argv[3] of the worker).
    const argv = readFileSync(`/proc/${pids[0]!}/cmdline`, 'utf8').split('\0');
    expect(argv).toContain(guard === 'watchdog' || !hasSetpriv ? 'watchdog' : 'pdeathsig');
  }
  return { parent, pids };
}

const hasSetpriv = process.platform === 'linux' && ['/usr/bin/setpriv', '/bin/setpriv'].some((path) => existsSync(path));

describe.each(['pdeathsig', 'watchdog'] as const)('orphans (%s)', (kind) => {
  beforeEach(() => {
    guard = kind;
  });

  it.each(['idle', 'busy'])('SIGKILL of the parent: %s children exit, promptly', async (mode) => {
    const { parent, pids } = await parentWithChildren(mode);
    parent.process.kill('SIGKILL');
    await parent.exited;
    expect(await until(() => running(pids).length === 0, BOUND_MS)).toBe(true);
  }, 30_000);

  it('SIGKILL of the parent: children stuck loading the module exit, promptly', async () => {
    const { parent, pids } = await parentWithChildren('loading');
    parent.process.kill('SIGKILL');
    await parent.exited;
    expect(await until(() => running(pids).length === 0, BOUND_MS), `still running: ${running(pids).join(', ')}`).toBe(true);
  }, 30_000);

  it.each(['SIGTERM', 'SIGINT'] as const)('%s to the parent ends its children, also one busy in a synchronous loop', async (signal) => {
    const { parent, pids } = await parentWithChildren('busy');
    parent.process.kill(signal);
    expect(await parent.exited).toMatchObject({ signal });
    expect(await until(() => running(pids).length === 0, BOUND_MS)).toBe(true);
  }, 30_000);

  it('a script that never calls close() exits once its work is done', async () => {
    const parent = startParent('forget');
    // A hang guard, not a timing: the script must exit on its own.
    expect(await Promise.race([parent.exited, until(() => false, 15_000).then(() => 'still running')])).toEqual({ code: 0, signal: null });
    expect(parent.output()).toContain('[2,4,6]');
    expect(await until(() => leftOver(join(dir, 'starts')).length === 0, BOUND_MS)).toBe(true);
  }, 30_000);

  it('a script that makes a pool and never uses it exits', async () => {
    const parent = startParent('unused');
    expect(await Promise.race([parent.exited, until(() => false, 15_000).then(() => 'still running')])).toEqual({ code: 0, signal: null });
    expect(await until(() => leftOver(join(dir, 'starts')).length === 0, BOUND_MS)).toBe(true);
  }, 30_000);
});
