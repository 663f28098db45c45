/**
 * The task module as the children will load it: its URL, checked to exist
 * (a usage error otherwise, before any child starts), and the Node flags
 * the children need — tsx's loader for TypeScript.
 */
import { existsSync } from 'node:fs';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { moduleUrl } from '../task-ref.js';
import { UsageError } from './options.js';

const typeScript = new Set(['.ts', '.mts', '.cts', '.tsx']);

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

/** Node flags of the children: tsx's loader for a TypeScript module, then the user's own. */
export function childNodeOptions(url: string, extra: readonly string[]): string[] {
  const flags: string[] = [];
  // Resolved from procpool's own dependencies, so the user's project needs no tsx.
  if (typeScript.has(extname(fileURLToPath(url)))) flags.push('--import', import.meta.resolve('tsx'));
  return [...flags, ...extra];
}
