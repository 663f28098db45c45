/**
 * Connections to Redis, on ioredis (the only home of ioredis). `redis://`
 * or `rediss://` (TLS) URLs, with a password when the server wants one.
 * Commands wait while the connection is down (no per-command retry limit,
 * as BullMQ needs): the cluster bounds how long a call waits, not ioredis.
 */
import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';
import { loadPeer } from './peers.js';

export type { Redis };

const ioredis = loadPeer('ioredis', () => createRequire(import.meta.url)('ioredis') as typeof import('ioredis'));

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

/** `env` without PROCPOOL_REDIS and without any variable that holds the Redis URL or its password: for processes that must not reach Redis. */
export function withoutRedisSecret(env: Readonly<Record<string, string | undefined>>, redisUrl: string): Record<string, string | undefined> {
  const { password } = new URL(redisUrl);
  const secrets = [redisUrl, decodeURIComponent(password)].filter((secret) => secret !== '');
  return Object.fromEntries(Object.entries(env).filter(([name, value]) => name !== 'PROCPOOL_REDIS' && !secrets.some((secret) => value?.includes(secret))));
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
  const redis = new ioredis.Redis(url, {
    connectionName: name,
    maxRetriesPerRequest: null,
    keepAlive: keepAliveMs,
    autoResendUnfulfilledCommands: !once,
    enableOfflineQueue: !once,
    retryStrategy: (times) => Math.min(50 * times, 1000),
  });
  // Errors surface as the connection's state; an unhandled 'error' would end the process.
  redis.on('error', () => guardStream(redis));
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

const guarded = new WeakSet<object>();

/**
 * ioredis listens once for a socket's error: a TLS socket refused by its
 * peer can emit a second one (the server's alert) that would end the host
 * program. The failed socket gets a listener of its own.
 */
function guardStream(redis: Redis): void {
  const stream = redis.stream as Redis['stream'] | undefined;
  if (stream === undefined || guarded.has(stream)) return;
  guarded.add(stream);
  stream.on('error', () => undefined);
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

/** Why a connection cannot reach Redis (or cannot use it: `unsupported`): what a person would fix. */
export type ConnectionProblemKind = 'auth' | 'tls' | 'refused' | 'unreachable' | 'unsupported';

export interface ConnectionProblem {
  readonly kind: ConnectionProblemKind;
  /** One line: the kind in words, then the system's or the server's own message. */
  readonly message: string;
  readonly cause: Error;
}

/** Classifies a connection error: bad credentials and TLS trouble do not heal by waiting; refused or unreachable may. */
export function connectionProblem(error: Error): ConnectionProblem {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  const text = error.message;
  if (/^(WRONGPASS|NOAUTH|NOPERM)|invalid password|invalid username-password/i.test(text)) return { kind: 'auth', message: `authentication failed (${text})`, cause: error };
  if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_(VERIFY|GET)/.test(code) || /certificate|SSL routines|TLS/i.test(text)) return { kind: 'tls', message: `TLS failed (${text})`, cause: error };
  if (code === 'ECONNREFUSED') return { kind: 'refused', message: `connection refused (${text})`, cause: error };
  return { kind: 'unreachable', message: `unreachable (${text})`, cause: error };
}

/** A connection's ups and downs, each told once: `down` with the problem that took it down or kept it from coming up. */
export interface LinkEvents {
  up(first: boolean): void;
  down(problem: ConnectionProblem | undefined, wasUp: boolean): void;
}

/** Reports each change of `redis` between up and down once (ioredis retries every second, and says so each time). */
export function watchLink(redis: Redis, events: LinkEvents): { readonly problem: ConnectionProblem | undefined } {
  let state: 'connecting' | 'up' | 'down' = 'connecting';
  let everUp = false;
  let problem: ConnectionProblem | undefined;
  redis.on('error', (error: Error) => {
    problem = connectionProblem(error);
    // Never up yet: the first failure to connect is worth saying, once.
    if (state === 'connecting') {
      state = 'down';
      events.down(problem, false);
    }
  });
  redis.on('ready', () => {
    if (state === 'up') return;
    state = 'up';
    problem = undefined;
    events.up(!everUp);
    everUp = true;
  });
  redis.on('close', () => {
    if (state !== 'up') return;
    state = 'down';
    events.down(problem, true);
  });
  return {
    get problem() {
      return problem;
    },
  };
}

/** What procpool needs of the server, read once it answers: a refusal (Redis Cluster), or a warning (eviction). */
export async function checkServer(redis: Redis): Promise<{ refuse?: string; warn?: string }> {
  const info = await redis.info();
  const field = (name: string): string | undefined => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
  if (field('cluster_enabled') === '1') {
    return { refuse: 'Redis Cluster is not supported: procpool runs each queue\'s multi-key scripts on one node (its keys are not hash-tagged). Use a standalone Redis, with replicas or Sentinel for failover' };
  }
  const policy = field('maxmemory_policy');
  if (policy !== undefined && policy !== 'noeviction') {
    return { warn: `Redis evicts keys under memory pressure (maxmemory-policy ${policy}): jobs and results may vanish and run again or fail. Set it to noeviction: redis-cli CONFIG SET maxmemory-policy noeviction (and in redis.conf)` };
  }
  return {};
}
