/**
 * The caller's results list, read on a connection of its own (it blocks).
 * Workers push each chunk's outcome there and leave a wake-up token beside
 * it. A result leaves Redis only after the caller has it: it is read (a
 * script that also takes the token, bounded in bytes), handed on, and only
 * then trimmed off. A reply that is slow or cut on its way is read again,
 * never lost; a result read twice is ignored by its attempt, which has
 * ended. A list left behind by a caller that died expires.
 *
 *   worker ─RPUSH result, token─► list ─read (no removal)─► onResult ─► LTRIM what was read
 *                                       └─ none: BLPOP token (1 s) ─┘
 */
import type { ChunkResult } from './codec.js';
import { untilClosed, type Redis } from './redis.js';

/** Results taken per read at most, and bytes (at least one result, whatever its size). */
const batch = 256;
const batchBytes = 8 << 20;

/**
 * KEYS: results list, token list; ARGV: count, bytes. Takes the token and
 * returns the first results (none removed): a token taken here belongs to a
 * result this read returns, or to one a read already returned.
 */
const readResults = `
redis.call('DEL', KEYS[2])
local out, size = {}, 0
for i = 0, tonumber(ARGV[1]) - 1 do
  local item = redis.call('LINDEX', KEYS[1], i)
  if not item then break end
  out[#out + 1] = item
  size = size + #item
  if size >= tonumber(ARGV[2]) then break end
end
return out`;

type State = 'reading' | 'stopped';

/** Reads results until stopped; each goes to `onResult` at least once (its attempt keeps the first). */
export class ResultReader {
  readonly #redis: Redis;
  readonly #key: string;
  readonly #token: string;
  readonly #onResult: (result: ChunkResult) => void;
  #state: State = 'reading';
  readonly done: Promise<void>;

  /** `redis` must be `atMostOnce` (redis.ts): a trim sent again after a reconnection would remove results not yet read. */
  constructor(redis: Redis, key: string, token: string, onResult: (result: ChunkResult) => void) {
    this.#redis = redis;
    this.#key = key;
    this.#token = token;
    this.#onResult = onResult;
    this.done = this.#read();
  }

  stop(): void {
    this.#state = 'stopped';
  }

  async #read(): Promise<void> {
    while (this.#state === 'reading') {
      try {
        const redis = this.#redis;
        const texts = (await untilClosed(redis, () => redis.eval(readResults, 2, this.#key, this.#token, batch, batchBytes))) as string[];
        if (texts.length === 0) {
          // A one-second block: a stop is seen within a second, and a token lost with a cut reply costs at most that.
          await untilClosed(redis, () => redis.blpop(this.#token, 1));
          continue;
        }
        for (const text of texts) this.#take(text);
        // Trimmed once handed on. Cut, it ran or it did not: either way the next read starts from the head again.
        await untilClosed(redis, () => redis.ltrim(this.#key, texts.length, -1));
      } catch {
        // Down or cut: ioredis reconnects; the results wait in Redis meanwhile.
        if (this.#state === 'reading') await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  #take(text: string): void {
    let result: ChunkResult;
    try {
      result = JSON.parse(text) as ChunkResult;
    } catch {
      return;
    }
    if (this.#state === 'reading') this.#onResult(result);
  }
}
