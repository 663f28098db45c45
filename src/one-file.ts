/**
 * A Python user's one-file program: the task module is also the main
 * module. Two rules live here.
 * - A function of the main module passed as a task is matched by name and
 *   source text, not by importing the module again: that import would wait
 *   on the main module's own top-level await (a silent deadlock). The same
 *   match accepts a test runner's second copy of an export.
 * - A child that is still loading its task module must not make a pool of
 *   that module: without a main guard every child would do the same, without end.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { childGlobal } from './task-global.js';
import { PoolError } from './errors.js';

function realFile(url: string): string | undefined {
  try {
    return realpathSync(url.startsWith('file:') ? fileURLToPath(url) : url);
  } catch {
    return undefined;
  }
}

/** Whether `url` is this process's main module (`node file.mjs`). */
export function isMainModule(url: string): boolean {
  const main = process.argv[1];
  if (main === undefined || childGlobal() !== undefined) return false;
  const file = realFile(url);
  return file !== undefined && file === realFile(main);
}

/**
 * Whether `fn`'s source text occurs in the module's file: a function of that
 * file, as written (a module compiled on the way, as TypeScript, does not match).
 */
export function writtenIn(fn: (...args: never[]) => unknown, url: string): boolean {
  const file = realFile(url);
  if (file === undefined) return false;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return false;
  }
  return text.includes(Function.prototype.toString.call(fn));
}

/** Throws when this process is a child loading `url` and is asked to make a pool of it. */
export function refuseSelfPool(url: string): void {
  const loading = childGlobal()?.loading;
  if (loading === undefined) return;
  if (loading !== url && realFile(loading) !== realFile(url)) return;
  const file = realFile(url) ?? url;
  throw new PoolError(
    `A child process loading ${file} was asked to make a Pool of that same module while it loads: ` +
      `the module makes its pool at its top level, so every child would make one again, without end. ` +
      `Put the code that makes the pool behind a main guard, as Python's \`if __name__ == '__main__':\` — ` +
      `\`if (process.argv[1] === fileURLToPath(import.meta.url)) { … }\` (fileURLToPath from 'node:url') — ` +
      `or move the tasks to a module of their own`,
    'PROCPOOL_BROKEN',
  );
}
