// A Python user's one-file program, run with `node` as such a user would:
// the task module is the main module. Each program runs in its own process
// group, under a hard bound, and the group is killed afterwards: the
// unguarded case was a fork bomb.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Pool } from 'procpool';
import { base, fixture, tempDir } from './fixtures/api-helpers.js';

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Processes that loaded the program's module (each writes its pid to the log). */
  processes: number;
  ms: number;
}

/** Runs `node program` in a process group of its own; kills the group after `boundMs` and when done. */
function runProgram(program: URL, boundMs = 20_000): Promise<Run> {
  const log = join(tempDir(), 'loads');
  const started = performance.now();
  const child = spawn(process.execPath, [fileURLToPath(program)], { detached: true, env: { ...process.env, ONE_FILE_LOG: log }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const killGroup = (): void => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // Already gone.
    }
  };
  const bound = setTimeout(killGroup, boundMs);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(bound);
      const ms = performance.now() - started;
      killGroup();
      let processes = 0;
      try {
        processes = readFileSync(log, 'utf8').split('\n').filter(Boolean).length;
      } catch {
        // No process wrote: none loaded the module.
      }
      resolve({ code, signal, stdout, stderr, processes, ms });
    });
  });
}

describe('a one-file program', () => {
  it('with the main guard and the function passed itself: runs and prints the results (it exited 0 silently: the parent waited on its own module)', async () => {
    const run = await runProgram(fixture('one-file/guarded.mjs'));
    expect(run.stderr).toBe('');
    expect(run.stdout.trim()).toBe('[2,12]');
    expect(run.code).toBe(0);
  }, 30_000);

  it('without the guard: the child refuses to make a pool of the module it loads, the parent’s pool breaks with the guard idiom, the program exits non-zero; two processes in all', async () => {
    const run = await runProgram(fixture('one-file/unguarded.mjs'));
    expect(run.signal).toBeNull();
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('PoolBrokenError');
    expect(run.stderr).toContain("if __name__ == '__main__'");
    expect(run.stderr).toContain('if (process.argv[1] === fileURLToPath(import.meta.url))');
    // The parent and its one child: no child made a pool of its own.
    expect(run.processes).toBe(2);
    expect(run.stdout).toBe('');
  }, 30_000);

  it('a task module may still make a pool of another module at its top level (nested pools)', async () => {
    await using pool = new Pool(fixture('one-file/nested.mjs'), { processes: 1, ...base });
    expect(await pool.apply('viaInner', [2, 3])).toBe(5);
  }, 30_000);
});
