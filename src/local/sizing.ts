/**
 * How many children a pool should have: a fixed size, or an elastic one that
 * grows toward `maxProcesses` while work waits (never by more children than
 * there is waiting work) and shrinks toward `minProcesses` as children stay
 * idle for `idleTimeout`. Also how many chunks a child is kept fed with.
 */

/**
 * Chunks kept in flight on one child, by how long chunks take: tiny ones
 * need feeding; long or unknown ones go one at a time, so that an idle
 * child always takes the next (no chunk waits behind a slow one).
 */
export function depthFor(chunkMs: number | undefined, chunkBytes = 0): number {
  if (chunkMs === undefined || chunkMs > 5) return 1;
  // Big payloads gain nothing from queueing in a pipe: the copies only pile up
  // (a 1 MiB echo ran ~30 % faster one at a time than four deep).
  if (chunkBytes >= 256 * 1024) return 1;
  if (chunkMs > 1 || chunkBytes >= 64 * 1024) return 2;
  return chunkMs > 0.2 ? 4 : 16;
}

/**
 * The bytes a chunk's arguments take on the wire, roughly: binary data and
 * strings at the top of each item (a tuple's elements too), a few bytes for
 * anything else. Enough to tell a chunk of big payloads from tiny items.
 */
export function approxBytes(args: readonly unknown[], spread: boolean): number {
  let bytes = 0;
  for (const item of args) {
    if (spread && Array.isArray(item)) for (const arg of item) bytes += sizeOf(arg);
    else bytes += sizeOf(item);
  }
  return bytes;
}

function sizeOf(value: unknown): number {
  if (typeof value === 'string') return value.length;
  if (ArrayBuffer.isView(value)) return value.byteLength;
  if (value instanceof ArrayBuffer) return value.byteLength;
  return 8;
}

/** The size policy of one pool, and its idle timers. */
export class Sizing {
  #min: number;
  #max: number;
  readonly #idleTimeout: number;
  readonly #timers = new Map<object, NodeJS.Timeout>();

  constructor(min: number, max: number, idleTimeout: number) {
    this.#min = min;
    this.#max = max;
    this.#idleTimeout = idleTimeout;
  }

  get min(): number {
    return this.#min;
  }

  get max(): number {
    return this.#max;
  }

  /** Whether the pool ever changes size by itself. */
  get elastic(): boolean {
    return this.#min < this.#max;
  }

  /** Raises the most children (a shared pool asked for a larger size); a fixed size stays fixed. */
  grow(max: number): void {
    if (max <= this.#max) return;
    if (!this.elastic) this.#min = max;
    this.#max = max;
  }

  /**
   * Children to start now, given the children there are and the chunks
   * waiting (those already handed to starting children wait no more): up to
   * the minimum, and one per waiting chunk up to the maximum.
   */
  toStart(members: number, waiting: number): number {
    const below = this.#min - members;
    if (below > 0) return below;
    return Math.max(0, Math.min(this.#max - members, waiting));
  }

  /** `child` has nothing to do: past `idleTimeout` it may leave, if the pool is above its minimum. */
  idle(child: object, leave: () => void): void {
    if (!this.elastic || this.#timers.has(child)) return;
    const timer = setTimeout(() => {
      this.#timers.delete(child);
      leave();
    }, this.#idleTimeout);
    // An idle child never keeps the parent alive, nor does its timer.
    timer.unref();
    this.#timers.set(child, timer);
  }

  /** `child` has work again, or is gone. */
  busy(child: object): void {
    const timer = this.#timers.get(child);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#timers.delete(child);
  }
}
