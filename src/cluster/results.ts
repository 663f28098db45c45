/**
 * The caller's results list, read on a connection of its own (BLPOP
 * blocks it). Workers push each chunk's outcome there; a list left behind by
 * a caller that died expires.
 */
import type { ChunkResult } from './codec.js';
import type { Redis } from './redis.js';

/** Results taken per round trip after the first one arrives. */
const batch = 256;

type State = 'reading' | 'stopped';

/** Reads results until stopped; each goes to `onResult` once. */
export class ResultReader {
  readonly #redis: Redis;
  readonly #key: string;
  readonly #onResult: (result: ChunkResult) => void;
  #state: State = 'reading';
  readonly done: Promise<void>;

  constructor(redis: Redis, key: string, onResult: (result: ChunkResult) => void) {
    this.#redis = redis;
    this.#key = key;
    this.#onResult = onResult;
    this.done = this.#read();
  }

  stop(): void {
    this.#state = 'stopped';
  }

  async #read(): Promise<void> {
    while (this.#state === 'reading') {
      try {
        // A one-second block: a stop is seen within a second.
        const first = await this.#redis.blpop(this.#key, 1);
        if (first === null) continue;
        // Taken before the next command: BLPOP already removed it from Redis, a failing LPOP must not lose it.
        this.#take(first[1]);
        const more = (await this.#redis.lpop(this.#key, batch)) ?? [];
        for (const text of more) this.#take(text);
      } catch {
        // Down: ioredis reconnects; the results wait in Redis meanwhile.
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
