/**
 * A worker's results on their way to the callers' lists: the ones ready in
 * one turn of the event loop go to Redis together, one script call per
 * caller, instead of a round trip each.
 */
import type { QueueKeys } from './identity.js';
import type { Redis } from './redis.js';

/** Pushes results (ARGV) to a caller's list (KEYS[2]) while its heartbeat (KEYS[1]) lives, for as long as it lives. */
const pushIfCaller = `
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return 0 end
redis.call('RPUSH', KEYS[2], unpack(ARGV))
redis.call('PEXPIRE', KEYS[2], ttl)
return 1`;

/** Results per script call (Lua's unpack has a stack limit). */
const perCall = 500;

interface Pending {
  readonly text: string;
  resolve(): void;
  reject(error: unknown): void;
}

export class ResultPush {
  readonly #redis: Redis;
  readonly #keys: QueueKeys;
  /** Results waiting for the next flush, by caller. */
  #pending = new Map<string, Pending[]>();

  constructor(redis: Redis, keys: QueueKeys) {
    this.#redis = redis;
    this.#keys = keys;
  }

  /** Resolves once Redis took it (or the caller was gone); rejects with Redis's error. */
  push(caller: string, text: string): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#pending.size === 0) setImmediate(() => this.#flush());
      const list = this.#pending.get(caller) ?? [];
      list.push({ text, resolve, reject });
      this.#pending.set(caller, list);
    });
  }

  #flush(): void {
    const pending = this.#pending;
    this.#pending = new Map();
    for (const [caller, results] of pending) {
      for (let from = 0; from < results.length; from += perCall) {
        const batch = results.slice(from, from + perCall);
        this.#redis.eval(pushIfCaller, 2, this.#keys.caller(caller), this.#keys.results(caller), ...batch.map(({ text }) => text)).then(
          () => batch.forEach(({ resolve }) => resolve()),
          (error: unknown) => batch.forEach(({ reject }) => reject(error)),
        );
      }
    }
  }
}
