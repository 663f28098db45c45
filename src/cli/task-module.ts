/**
 * The task module as the children will load it: its URL, checked to exist
 * (a usage error otherwise, before any child starts), and checked to be
 * loadable: tsx is an optional peer, and without it an older Node cannot run
 * a `.ts` module (a usage error that says what to install).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { canLoadModule } from '../node-flags.js';
import { moduleUrl } from '../task-ref.js';
import { UsageError } from './options.js';

/** The module's `file:` URL; a usage error when there is no such file. */
export function resolveTaskModule(specifier: string): string {
  let url: string;
  try {
    url = moduleUrl(specifier);
  } catch (error) {
    throw new UsageError(`Invalid task module ${specifier}: ${(error as Error).message}`);
  }
  if (!existsSync(fileURLToPath(url))) throw new UsageError(`Cannot find task module ${specifier}`);
  return url;
}

/**
 * Node flags of the children: the user's own. The pool adds tsx's loader for
 * a TypeScript module (node-flags.ts); here a module no child could load is a
 * usage error before any work starts.
 */
export function childNodeOptions(url: string, extra: readonly string[]): string[] {
  if (!canLoadModule(url, extra)) {
    throw new UsageError(
      `Cannot load TypeScript task module ${fileURLToPath(url)}: tsx is not installed. ` + 'Install tsx (npm i -D tsx), or use Node ≥ 22.18, which runs .ts natively',
    );
  }
  return [...extra];
}
