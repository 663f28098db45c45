/**
 * The task module as the children will load it: its URL, checked to exist
 * (a usage error otherwise, before any child starts), and the Node flags
 * the children need — tsx's loader for TypeScript. tsx is an optional peer:
 * without it, Node's own type stripping (22.18 and later) loads `.ts`, and
 * older Nodes get a usage error that says what to install.
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
  const extension = extname(fileURLToPath(url));
  if (!typeScript.has(extension)) return [...extra];
  return [...typeScriptLoader(url, extension), ...extra];
}

/** `--import tsx` when tsx can be found (beside procpool or in the user's project); none when Node strips types itself. */
function typeScriptLoader(url: string, extension: string): string[] {
  try {
    return ['--import', import.meta.resolve('tsx')];
  } catch (error) {
    // Node's type stripping takes .ts, .mts and .cts, not .tsx (JSX needs a transform).
    if (nodeStripsTypes() && extension !== '.tsx') return [];
    throw new UsageError(
      `Cannot load TypeScript task module ${fileURLToPath(url)}: tsx is not installed. ` +
        `Install tsx (npm i -D tsx), or use Node ≥ 22.18, which runs .ts natively (${String((error as Error).message).split('\n')[0]})`,
    );
  }
}

/** Whether this Node runs .ts files without a loader (`process.features.typescript`, Node 22.18 and 23.6 on). */
function nodeStripsTypes(): boolean {
  const features = process.features as { typescript?: unknown };
  return features.typescript === 'strip' || features.typescript === 'transform';
}
