/**
 * Connections to Redis, on ioredis (the only home of ioredis). `redis://`
 * or `rediss://` (TLS) URLs, with a password when the server wants one.
 * Commands wait while the connection is down (no per-command retry limit,
 * as BullMQ needs): the cluster bounds how long a call waits, not ioredis.
 */
import { Redis } from 'ioredis';

export type { Redis };

/** Checks a Redis URL: `redis://[user:password@]host[:port][/db]` or `rediss://…`. */
export function checkRedisUrl(url: unknown): string {
  let parsed: URL | undefined;
  try {
    parsed = typeof url === 'string' ? new URL(url) : undefined;
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') || parsed.hostname === '') {
    // The URL itself is never shown: it may hold a password (`redis:/:s3cret@host` does not parse as one).
    const given = typeof url === 'string' ? `a string that is not one (${url.length} characters, not shown: it may hold a password)` : `\`${String(url)}\` (${typeof url})`;
    throw new TypeError(`Expected \`redis\` to be a redis:// or rediss:// URL, got ${given}`);
  }
  return parsed.href;
}

/** The URL with its password masked, for messages. */
export function showRedisUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.password !== '') parsed.password = '***';
  return parsed.href;
}

/** TCP keep-alive probes start after this long idle (ms): a host gone without a word is noticed by the system too. */
const keepAliveMs = 5000;

/**
 * A connection that reconnects for ever, at most a second apart; `name`
 * shows in CLIENT LIST. No command timeout: a payload may take long on a
 * slow link, so each caller bounds its own commands (by size, on the awake
 * clock). `atMostOnce`: a command is sent once, on a connection that is
 * up, or rejected — never sent again after a reconnection nor queued for
 * later (for commands that must not run twice); see `untilClosed`.
 */
export function connectRedis(url: string, name: string, options: { atMostOnce?: boolean } = {}): Redis {
  const once = options.atMostOnce === true;
  const redis = new Redis(url, {
    connectionName: name,
    maxRetriesPerRequest: null,
    keepAlive: keepAliveMs,
    autoResendUnfulfilledCommands: !once,
    enableOfflineQueue: !once,
    retryStrategy: (times) => Math.min(50 * times, 1000),
  });
  // Errors surface as the connection's state; an unhandled 'error' would end the process.
  redis.on('error', () => undefined);
  return redis;
}

/** Bytes per millisecond a command's payload is allowed at least (~1 MB/s): its bound grows with its size. */
const slowestBytesPerMs = 1024;
/** A small command's bound (ms): a silent host never hangs a call. */
export const commandBoundMs = 5000;

/** How long a command carrying `bytes` may take before it counts as unanswered (ms). */
export function boundFor(bytes: number): number {
  return commandBoundMs + Math.ceil(bytes / slowestBytesPerMs);
}

/**
 * A command on an `atMostOnce` connection: rejects when the connection
 * closes before the reply (ioredis would leave it pending for ever).
 */
export function untilClosed<T>(redis: Redis, command: () => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const closed = (): void => reject(new Error('The connection closed before the reply'));
    redis.once('close', closed);
    command()
      .then(resolve, reject)
      .finally(() => redis.off('close', closed));
  });
}

/** Drops the connection and opens a new one: for a connection that looks up but has stopped answering. */
export function reconnectRedis(redis: Redis): void {
  redis.disconnect(true);
}

/** Closes a connection: politely while it is up, at once otherwise or after `graceMs`. */
export async function closeRedis(redis: Redis, graceMs = 1000): Promise<void> {
  if (redis.status === 'ready') {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([redis.quit().catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
  }
  redis.disconnect();
}
