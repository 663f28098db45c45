/**
 * The Node flags children inherit. `process.execArgv` also holds flags that
 * belong to the parent's own invocation: `node -e script` would make every
 * child run the script again instead of the worker (and its pool would
 * start children of its own), `--inspect-brk` would stop every child for a
 * debugger, `--test`/`--watch` would run the test runner or a watcher.
 * Loaders, memory limits and conditions pass on.
 */
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Flags that take the next argument as their value when not written `--flag=value`. */
const withValue = new Set(['-e', '--eval', '-p', '--print', '--input-type', '--test-name-pattern', '--test-skip-pattern', '--test-reporter', '--test-reporter-destination', '--test-concurrency', '--test-shard', '--test-timeout', '--watch-path', '--run']);

/** Flags that choose what the process runs: a child runs the worker, never these. */
function changesEntry(name: string): boolean {
  return /^-(e|p|pe|ep|c|i)$/.test(name) || ['--eval', '--print', '--input-type', '--check', '--interactive', '--test', '--watch', '--run'].includes(name) || /^--(test|watch)-/.test(name);
}

/** Flags for the parent's own debugging: every child would wait for a debugger or fight for its port. */
function debugsParent(name: string): boolean {
  return name === '--inspect' || name === '--debug' || /^--(inspect|debug)-/.test(name);
}

const flagName = (flag: string): string => (flag.includes('=') ? flag.slice(0, flag.indexOf('=')) : flag);

/** The flags of `execArgv` that children should have too. */
export function inheritedFlags(execArgv: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const flag = execArgv[i]!;
    const name = flagName(flag);
    if (!changesEntry(name) && !debugsParent(name)) kept.push(flag);
    else if (!flag.includes('=') && (withValue.has(name) || /^-(e|p|pe|ep)$/.test(name))) i++;
  }
  return kept;
}

/** The first of `flags` that would make a child run something other than the worker. */
export function entryFlag(flags: readonly string[]): string | undefined {
  return flags.find((flag) => changesEntry(flagName(flag)));
}

const typeScript = new Set(['.ts', '.mts', '.cts', '.tsx']);

/** Whether the flags already load TypeScript (tsx, or another known transpiler); a preload such as dotenv does not. */
function hasTypeScriptLoader(flags: readonly string[]): boolean {
  return flags.some((flag) => /tsx|ts-node|@swc-node|esbuild-register|@esbuild-kit|--experimental-(strip|transform)-types/.test(flag));
}

/** Whether this Node runs .ts files by itself (type stripping: Node 22.18, 23.6 and later). */
export function nodeStripsTypes(): boolean {
  const features = process.features as { typescript?: unknown };
  return features.typescript === 'strip' || features.typescript === 'transform';
}

/**
 * Flags that let children load a TypeScript module: tsx's loader when tsx is
 * installed (it handles what type stripping does not: enums, `./x.js`
 * naming `./x.ts`), none when the flags already load TypeScript or the
 * module is not TypeScript.
 */
export function typeScriptFlags(moduleUrl: string, flags: readonly string[]): string[] {
  if (!typeScript.has(extname(fileURLToPath(moduleUrl))) || hasTypeScriptLoader(flags)) return [];
  try {
    return ['--import', import.meta.resolve('tsx')];
  } catch {
    return [];
  }
}

/**
 * Whether children could load the module with these flags: not TypeScript,
 * a TypeScript loader named or found (tsx), or a Node that strips types
 * itself (.ts, .mts, .cts; not .tsx, whose JSX needs a transform).
 */
export function canLoadModule(moduleUrl: string, flags: readonly string[]): boolean {
  const extension = extname(fileURLToPath(moduleUrl));
  if (!typeScript.has(extension) || hasTypeScriptLoader(flags) || typeScriptFlags(moduleUrl, flags).length > 0) return true;
  return nodeStripsTypes() && extension !== '.tsx';
}

/** What to do when a child could not load a TypeScript module. */
export function typeScriptHint(moduleUrl: string): string {
  return (
    `${fileURLToPath(moduleUrl)} is TypeScript and this Node (${process.version}) cannot load it by itself: ` +
    'install tsx (npm i -D tsx), which procpool then uses for .ts task modules; or name a loader in `nodeOptions`; or use Node 22.18 or later'
  );
}
