/**
 * A worker's results on their way to the callers' lists: the ones ready in
 * one turn of the event loop go to Redis together, one script call per
 * caller, instead of a round trip each.
 */
import type { QueueKeys } from './identity.js';
import type { Redis } from './redis.js';

/** How long a superseded job's stop mark stays for other copies to see (ms). */
const cancelTtlMs = 60_000;

/**
 * Pushes n results to a caller's list (KEYS[2]) and its wake-up token
 * (KEYS[3]) while its heartbeat (KEYS[1]) lives, for as long as it lives.
 * Result i is ARGV[3i-2], its run's lock token ARGV[3i-1] and its job id
 * ARGV[3i]; its job's lock is KEYS[2+2i] and its stop mark KEYS[3+2i]. When
 * a lock no longer holds its run's token, another copy may run: its stop
 * mark is set (ARGV[3n+2] ms) and its job id published on ARGV[3n+1].
 */
const pushResults = `
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return 0 end
local n = (#KEYS - 3) / 2
for i = 1, n do redis.call('RPUSH', KEYS[2], ARGV[3 * i - 2]) end
redis.call('PEXPIRE', KEYS[2], ttl)
if redis.call('LLEN', KEYS[3]) == 0 then redis.call('RPUSH', KEYS[3], '1') end
redis.call('PEXPIRE', KEYS[3], ttl)
for i = 1, n do
  if redis.call('GET', KEYS[2 + 2 * i]) ~= ARGV[3 * i - 1] then
    redis.call('SET', KEYS[3 + 2 * i], '1', 'PX', ARGV[3 * n + 2])
    redis.call('PUBLISH', ARGV[3 * n + 1], ARGV[3 * i])
  end
end
return 1`;

/** Results per script call. */
const perCall = 200;

/** One job's result and the lock its run held. */
export interface Pushed {
  readonly jobId: string;
  readonly text: string;
  readonly lock: { readonly key: string; readonly token: string };
}

interface Pending extends Pushed {
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
  push(caller: string, result: Pushed): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#pending.size === 0) setImmediate(() => this.#flush());
      const list = this.#pending.get(caller) ?? [];
      list.push({ ...result, resolve, reject });
      this.#pending.set(caller, list);
    });
  }

  #flush(): void {
    const pending = this.#pending;
    this.#pending = new Map();
    for (const [caller, results] of pending) {
      for (let from = 0; from < results.length; from += perCall) {
        const batch = results.slice(from, from + perCall);
        const keys = [this.#keys.caller(caller), this.#keys.results(caller), this.#keys.resultToken(caller), ...batch.flatMap(({ lock, jobId }) => [lock.key, this.#keys.cancelled(jobId)])];
        const args = [...batch.flatMap(({ text, lock, jobId }) => [text, lock.token, jobId]), this.#keys.cancelChannel, cancelTtlMs];
        this.#redis.eval(pushResults, keys.length, ...keys, ...args).then(
          () => batch.forEach(({ resolve }) => resolve()),
          (error: unknown) => batch.forEach(({ reject }) => reject(error)),
        );
      }
    }
  }
}
