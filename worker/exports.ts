/**
 * The task module's exported functions, and the lookup of the initializer
 * and finalizer among them (by name, and by source text when the parent
 * passed the function itself).
 */

export type TaskFn = (...args: unknown[]) => unknown;

export function collectTasks(mod: Record<string, unknown>): Map<string, TaskFn> {
  const found = new Map<string, TaskFn>();
  // A CommonJS module arrives as `default`; its properties are its exports.
  const commonjs = mod.default;
  if (typeof commonjs === 'object' && commonjs !== null) {
    for (const [name, value] of Object.entries(commonjs)) if (typeof value === 'function') found.set(name, value as TaskFn);
  }
  for (const [name, value] of Object.entries(mod)) if (typeof value === 'function') found.set(name, value as TaskFn);
  return found;
}

/** The export `name` — the very function passed, when the parent sent its source text. */
export function exported(loaded: Map<string, TaskFn>, what: string, name: string, source: string | undefined, module: string): TaskFn {
  const fn = loaded.get(name);
  if (fn === undefined) {
    const names = [...loaded.keys()].join(', ') || 'none';
    throw new Error(`${what} "${name}" is not an exported function of ${module} (exports: ${names})`);
  }
  if (source !== undefined && Function.prototype.toString.call(fn) !== source) {
    throw new Error(`${what} function ${name} is not the function ${module} exports as "${name}", though it has its name: pass the export itself, or its name`);
  }
  return fn;
}
