/**
 * Where a task module's syntax error is. Node reports a SyntaxError of an
 * ES module loaded by `import()` without file, line or caret (it prints them
 * only for an uncaught one); `node --check` prints all three without running
 * anything. Paid only when the module failed to load.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** `error` with the location `node --check` finds in the module, when it has none. */
export function locateSyntaxError(error: unknown, moduleUrl: string): unknown {
  if (!(error instanceof SyntaxError) || !moduleUrl.startsWith('file:')) return error;
  // A parse error has only Node's own frames; a CommonJS module's (and a
  // loader's) names its file first; a SyntaxError thrown by running code
  // (JSON.parse) has the code's frames.
  const stack = typeof error.stack === 'string' ? error.stack : '';
  const frames = stack.split('\n').slice(1);
  if (!stack.startsWith('SyntaxError:') || frames.some((frame) => !/^\s+at .*\(?node:/.test(frame))) return error;
  const file = fileURLToPath(moduleUrl);
  let location: string;
  try {
    execFileSync(process.execPath, ['--check', file], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
    // The module itself parses: the error is in a module it imports.
    error.message = `${error.message} (in a module that ${file} imports)`;
    return error;
  } catch (checked) {
    const stderr = String((checked as { stderr?: unknown }).stderr ?? '');
    // "file:line\n<code>\n<caret>\n\nSyntaxError: …"
    const [where, code, caret] = stderr.split('\n');
    if (where === undefined || !where.startsWith(file)) return error;
    location = [where, code, caret].filter((line) => line !== undefined).join('\n');
  }
  const [where, ...pointer] = location.split('\n');
  error.message = `${error.message} at ${where}\n${pointer.join('\n')}`;
  error.stack = `${location}\n\n${error.stack}`;
  return error;
}
