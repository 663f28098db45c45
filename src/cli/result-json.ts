/**
 * A task's result as one JSON line, or a refusal. Results arrive through
 * structured clone, so they can hold what JSON would change without a word:
 * a Map becomes `{}`, a typed array `{"0":…}`, NaN, ±Infinity and undefined
 * become `null` — the marker of a failed item. Such a result fails its item
 * instead, naming where in the value the problem is. What JSON documents
 * stays as JSON does it: `toJSON` (a Date becomes its ISO string), and an
 * object property that is undefined is left out (reading it back gives
 * undefined again).
 */

/** A result that JSON cannot carry as it is. */
export class UnwritableResultError extends TypeError {
  override readonly name = 'UnwritableResultError';
  readonly code = 'PROCPOOL_UNWRITABLE_RESULT';
  /** Input line of the item. */
  readonly line: number;
  /** Where in the result, e.g. `result.a[2]`; undefined when JSON itself refused the whole value (a cycle). */
  readonly path: string | undefined;

  constructor(line: number, path: string | undefined, why: string, options?: ErrorOptions) {
    super(`The result of input line ${line} cannot be written as JSON: ${why}`, options);
    this.line = line;
    this.path = path;
  }
}

/** The result of input line `line` as JSON text; throws UnwritableResultError for anything JSON would change. */
export function encodeResult(value: unknown, line: number): string {
  try {
    // The fast pass only checks; a refusal is located by a second, slower pass that tracks paths.
    let root = true;
    return JSON.stringify(value, function (this: unknown, _key: string, current: unknown): unknown {
      const inObject = !root && !Array.isArray(this);
      root = false;
      const problem = whyNotJson(current, inObject);
      if (problem === undefined) return current;
      locate(value, line);
      // Not found again (a toJSON that answers differently each time): refused all the same.
      throw new UnwritableResultError(line, undefined, `a part of the result is ${problem}, which JSON cannot carry`);
    })!;
  } catch (error) {
    if (error instanceof UnwritableResultError) throw error;
    // JSON's own refusal: a cycle.
    throw new UnwritableResultError(line, undefined, (error as Error).message, { cause: error });
  }
}

/** Throws the UnwritableResultError for the first part of `value` that JSON cannot carry, with its path. */
function locate(value: unknown, line: number): void {
  const paths = new WeakMap<object, string>();
  let root = true;
  // A replacer sees each value after toJSON, with its holder as `this`: the holder's path plus the key is the value's path.
  JSON.stringify(value, function (this: unknown, key: string, current: unknown): unknown {
    const path = root ? 'result' : childPath(paths.get(this as object) ?? 'result', this, key);
    const inObject = !root && !Array.isArray(this);
    root = false;
    const problem = whyNotJson(current, inObject);
    if (problem !== undefined) {
      const hint = path === 'result' && current === undefined ? ' (return null to write null)' : '';
      throw new UnwritableResultError(line, path, `${path} is ${problem}, which JSON cannot carry${hint}`);
    }
    if (typeof current === 'object' && current !== null) paths.set(current, path);
    return current;
  });
}

/** What is wrong with `value` for JSON, or undefined when JSON writes it faithfully. */
function whyNotJson(value: unknown, inObject: boolean): string | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : String(value);
    case 'bigint':
      return `a BigInt (${String(value)}n)`;
    case 'undefined':
      // JSON leaves the property out, and reading it back gives undefined: nothing is lost.
      return inObject ? undefined : 'undefined';
    case 'function':
    case 'symbol':
      return `a ${typeof value}`;
  }
  if (value === null || Array.isArray(value)) return undefined;
  const prototype = Object.getPrototypeOf(value) as unknown;
  if (prototype === Object.prototype || prototype === null) return undefined;
  // Boxed primitives: JSON writes the primitive.
  if (value instanceof Number) return whyNotJson(value.valueOf(), inObject);
  if (value instanceof String || value instanceof Boolean) return undefined;
  return article(typeName(value as object));
}

/** `Map`, `Uint8Array`, `RegExp`, `TypeError`… */
function typeName(value: object): string {
  const constructorName = (value.constructor as { name?: unknown } | undefined)?.name;
  return typeof constructorName === 'string' && constructorName !== '' ? constructorName : Object.prototype.toString.call(value).slice(8, -1);
}

function article(name: string): string {
  return `${/^[AEIO]/i.test(name) ? 'an' : 'a'} ${name}`;
}

/** `result.a`, `result[2]`, `result["odd key"]`. */
function childPath(parent: string, holder: unknown, key: string): string {
  if (Array.isArray(holder)) return `${parent}[${key}]`;
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${parent}.${key}` : `${parent}[${JSON.stringify(key)}]`;
}
