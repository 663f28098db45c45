/**
 * Turns what a caller names as the task — an export name or the exported
 * function itself — into the export name sent to children, checked against
 * the module's exports.
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PoolError } from './errors.js';
import { isMainModule, writtenIn } from './one-file.js';

/** The `file:` URL of a task module given as a path, a `file:` URL string or a URL. */
export function moduleUrl(module: unknown): string {
  if (module instanceof URL) {
    if (module.protocol !== 'file:') throw new TypeError(`Expected \`module\` to be a file: URL, got \`${module.href}\``);
    return module.href;
  }
  if (typeof module !== 'string' || module === '') {
    throw new TypeError(`Expected \`module\` to be a path, a file: URL string or a URL, got \`${String(module)}\` (${typeof module})`);
  }
  if (module.startsWith('file:')) return new URL(module).href;
  return pathToFileURL(isAbsolute(module) ? module : resolve(process.cwd(), module)).href;
}

/** The error of a task that is not an exported function of the module. */
export function unknownTask(what: string, url: string, exports: readonly string[]): PoolError {
  return new PoolError(
    `${what} is not an exported function of ${url}; its exported functions are: ${exports.join(', ') || '(none)'}`,
    'PROCPOOL_UNKNOWN_TASK',
  );
}

/**
 * The error of a function named like an export that is not the export: a
 * copy of the module loaded another way (a test runner's own module loader,
 * two paths to one file) or a function of another module. Both look alike
 * from here, and running a function by name alone could run other code.
 */
function copyOfExport(name: string, url: string): PoolError {
  return new PoolError(
    `Function ${name} is not the function ${url} exports as "${name}", though it has its name. ` +
      `Either it comes from another module, or this process loaded the module a second time — ` +
      `a test runner's own module loader (vitest, jest) does, and so do two paths to one file. ` +
      `Pass the task by its export name instead: "${name}"`,
    'PROCPOOL_UNKNOWN_TASK',
  );
}

/** Resolves task references of one pool; the module is imported in the parent only when a function is passed. */
export class TaskResolver {
  readonly #url: string;
  readonly #exports: () => Promise<string[]>;
  #names: Promise<Map<unknown, string>> | undefined;
  #known: Set<string> | undefined;

  /** `exports()` asks for the names (a pool with no child starts one); `learned` resolves once they are known anyway. */
  constructor(url: string, exports: () => Promise<string[]>, learned: Promise<string[]>) {
    this.#url = url;
    this.#exports = exports;
    learned.then(
      (names) => (this.#known ??= new Set(names)),
      () => undefined,
    );
  }

  /**
   * `task` if it is a name that needs no waiting: one already checked, or —
   * while the children still start — any name, checked by the child (it
   * answers an unknown one with PROCPOOL_UNKNOWN_TASK). Saves start-up a round trip.
   */
  known(task: unknown): string | undefined {
    if (typeof task !== 'string') return undefined;
    if (this.#known === undefined) return task;
    return this.#known.has(task) ? task : undefined;
  }

  /** The module's `file:` URL. */
  get url(): string {
    return this.#url;
  }

  /** The export name of `task`, or a PROCPOOL_UNKNOWN_TASK rejection. */
  async resolve(task: unknown): Promise<string> {
    if (typeof task === 'string') {
      const exports = await this.#exports();
      this.#known ??= new Set(exports);
      if (!exports.includes(task)) throw unknownTask(`Task "${task}"`, this.#url, exports);
      return task;
    }
    if (typeof task !== 'function') {
      throw new TypeError(`Expected \`task\` to be an export name or an exported function, got \`${String(task)}\` (${task === null ? 'null' : typeof task})`);
    }
    // The main module (a one-file program) is not imported again: that import
    // would wait on its own top-level await. Its function is matched by name and source text.
    if (isMainModule(this.#url)) {
      const exports = await this.#exports();
      if (task.name !== '' && exports.includes(task.name) && writtenIn(task as (...args: never[]) => unknown, this.#url)) return task.name;
      if (task.name !== '' && exports.includes(task.name)) {
        throw new PoolError(
          `Function ${task.name} is passed from the main module ${this.#url}, which is not imported again to check it, ` +
            `and its source text is not in that file as written (a TypeScript main module is compiled on the way). ` +
            `Pass the task by its export name instead: "${task.name}"`,
          'PROCPOOL_UNKNOWN_TASK',
        );
      }
      throw unknownTask(`Function ${task.name || '(anonymous)'}`, this.#url, exports);
    }
    this.#names ??= this.#importNames();
    const name = (await this.#names).get(task);
    if (name !== undefined) return name;
    const exports = await this.#exports();
    // Identity only: a copy of the export (a test runner's own loader) could be another module's function of the same name and text.
    if (task.name !== '' && exports.includes(task.name)) throw copyOfExport(task.name, this.#url);
    throw unknownTask(`Function ${task.name || '(anonymous)'}`, this.#url, exports);
  }

  async #importNames(): Promise<Map<unknown, string>> {
    const names = new Map<unknown, string>();
    let mod: Record<string, unknown>;
    try {
      mod = (await import(this.#url)) as Record<string, unknown>;
    } catch (error) {
      throw new PoolError(
        `A task was passed as a function, but ${this.#url} cannot be imported in this process to find its name: pass the task by its export name instead`,
        'PROCPOOL_UNKNOWN_TASK',
        { cause: error },
      );
    }
    const commonjs = mod.default;
    if (typeof commonjs === 'object' && commonjs !== null) for (const [key, value] of Object.entries(commonjs)) names.set(value, key);
    for (const [key, value] of Object.entries(mod)) if (typeof value === 'function' && !names.has(value)) names.set(value, key);
    return names;
  }
}
