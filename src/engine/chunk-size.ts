/**
 * Cutting items into chunks, and the chunk size `imap*` picks by itself:
 * grown toward a target run time per chunk from measured item times (as
 * joblib does), at most doubling per step, so tiny items get chunking's
 * speed without the caller choosing a number.
 */

/** Cuts `items` into consecutive chunks of `size` (the last may be shorter). */
export function chunkItems<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let start = 0; start < items.length; start += size) chunks.push(items.slice(start, start + size));
  return chunks;
}

/** Target time one chunk runs in a child: long beside an IPC round trip (~30 µs), short beside a human. */
const targetMs = 10;
/** The largest chunk default chunking makes (it also sizes `imap*`'s read-ahead in items). */
export const maxChunksize = 16384;

/** Chooses the next chunk size from how long the previous chunks took. */
export class AdaptiveChunksize {
  #size = 1;
  #itemMs = Number.NaN;

  /** The size of the next chunk. */
  get next(): number {
    return this.#size;
  }

  /** Records that a chunk of `items` items ran for `ms`. */
  observe(items: number, ms: number): void {
    if (items <= 0) return;
    const perItem = Math.max(ms / items, 1e-6);
    this.#itemMs = Number.isNaN(this.#itemMs) ? perItem : this.#itemMs * 0.5 + perItem * 0.5;
    const ideal = Math.max(1, Math.floor(targetMs / this.#itemMs));
    this.#size = Math.min(maxChunksize, ideal, this.#size * 2);
  }
}
