/**
 * The process's shared pools (like loky's `get_reusable_executor`): a part of
 * a program gets the pool for a module without the pool being threaded
 * through it. Same module and options: the same pool. A larger size asked
 * for grows it. A closed, terminated or broken pool is replaced by a new one.
 */
import { serialize } from 'node:v8';
import { availableParallelism } from 'node:os';
import { growTo, lifecycle } from './internal.js';
import { resolvePoolOptions, type PoolOptions } from './options.js';
import { Pool } from './pool.js';
import { moduleUrl } from './task-ref.js';
import type { UntypedModule } from './types.js';

const pools = new Map<string, Pool<unknown>>();

/** What tells two requests for a shared pool apart: every option but the most children. */
function keyOf(url: string, options: PoolOptions<unknown>): string {
  const { processes: _max, minProcesses: min, ...rest } = resolvePoolOptions(options);
  const { initArgs, finalArgs, env, cwd, ...plain } = rest;
  const sortedEnv = env === undefined ? undefined : Object.entries(env).sort(([a], [b]) => (a < b ? -1 : 1));
  // The most children is left out (a larger one grows the pool); whether it is elastic, and its minimum, are not.
  const fields = { ...plain, env: sortedEnv, cwd: cwd instanceof URL ? cwd.href : cwd, size: options.processes === undefined ? `elastic from ${min}` : 'fixed' };
  const sorted = Object.fromEntries(Object.entries(fields).sort(([a], [b]) => (a < b ? -1 : 1)));
  return `${url}\0${JSON.stringify(sorted)}\0${serialize([initArgs, finalArgs]).toString('base64')}`;
}

/**
 * The shared pool for `module` and `options`. Unless the options give a
 * size, it is elastic from 0 to `os.availableParallelism()` children: it
 * costs nothing while idle and never keeps the process alive.
 */
export function sharedPool<M = UntypedModule>(module: string | URL, options: PoolOptions<M> = {}): Pool<M> {
  const url = moduleUrl(module);
  const sized = options.processes !== undefined || options.minProcesses !== undefined || options.maxProcesses !== undefined;
  const wanted: PoolOptions<M> = sized ? options : { ...options, minProcesses: 0, maxProcesses: availableParallelism() };
  const key = keyOf(url, wanted as PoolOptions<unknown>);
  const existing = pools.get(key);
  if (existing !== undefined && existing[lifecycle]() === 'running') {
    existing[growTo](resolvePoolOptions(wanted).processes);
    return existing as Pool<M>;
  }
  const pool = new Pool<M>(url, wanted);
  pools.set(key, pool as Pool<unknown>);
  return pool;
}
