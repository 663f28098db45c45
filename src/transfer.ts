/**
 * What may cross the process boundary: whether a value survives V8's
 * structured clone, and where in it the part that cannot cross sits.
 * Shared by both sides.
 */

/**
 * Whether `value` survives V8's structured clone (what 'advanced' IPC uses).
 * The global `structuredClone`, not node:v8: the child would pay for that
 * import at every start.
 */
export function isCloneable(value: unknown): boolean {
  try {
    structuredClone(value);
    return true;
  } catch {
    return false;
  }
}

/** Where a value that cannot be cloned sits, and what it is. */
export interface Unsendable {
  path: string;
  detail: string;
}

const identifier = /^[A-Za-z_$][\w$]*$/;

function describe(value: unknown): string | undefined {
  if (typeof value === 'function') return `a function${value.name ? ` (${value.name})` : ''}`;
  if (typeof value === 'symbol') return `a symbol (${value.toString()})`;
  if (value instanceof Promise) return 'a Promise';
  if (value instanceof WeakMap || value instanceof WeakSet || value instanceof WeakRef) return `a ${value.constructor.name}`;
  return undefined;
}

function search(value: unknown, path: string, seen: Set<object>): Unsendable | undefined {
  const simple = describe(value);
  if (simple !== undefined) return { path, detail: simple };
  if (typeof value !== 'object' || value === null || seen.has(value) || ArrayBuffer.isView(value)) return undefined;
  seen.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = search(value[i], `${path}[${i}]`, seen);
      if (found) return found;
    }
  } else if (value instanceof Map) {
    for (const [key, entry] of value) {
      const label = JSON.stringify(typeof key === 'string' || typeof key === 'number' ? key : String(key));
      const found = search(key, `${path}.keys()[${label}]`, seen) ?? search(entry, `${path}.get(${label})`, seen);
      if (found) return found;
    }
  } else if (value instanceof Set) {
    let i = 0;
    for (const entry of value) {
      const found = search(entry, `${path}.values()[${i++}]`, seen);
      if (found) return found;
    }
  } else {
    for (const key of Object.keys(value)) {
      let entry: unknown;
      try {
        entry = (value as Record<string, unknown>)[key];
      } catch {
        return { path: identifier.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`, detail: 'a getter that throws' };
      }
      const found = search(entry, identifier.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`, seen);
      if (found) return found;
    }
  }
  return undefined;
}

/**
 * Finds the first part of `value` that cannot be cloned, with its path from
 * `root` (`args[0].callback`), or undefined when all of it can be cloned.
 */
export function findUnsendable(value: unknown, root: string): Unsendable | undefined {
  if (isCloneable(value)) return undefined;
  const found = search(value, root, new Set());
  if (found) return found;
  try {
    structuredClone(value);
  } catch (error) {
    return { path: root, detail: `not cloneable (${error instanceof Error ? error.message : String(error)})` };
  }
  return undefined;
}
