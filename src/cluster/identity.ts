/**
 * Which code a queue stands for: the module's file name and a hash of its
 * content, so that a worker with another version of the module listens on
 * another queue and never takes the job. The keys of one queue, in one place.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The prefix of every key procpool writes, BullMQ's included. */
export const keyPrefix = 'procpool';

/** A module as the cluster names it. */
export interface ModuleIdentity {
  /** `file:` URL of the module on this machine. */
  readonly url: string;
  /** First 16 hex digits of the SHA-256 of the module file. */
  readonly hash: string;
  /** Where every version of the module meets: the explicit queue name, or the file name. Workers announce themselves here. */
  readonly family: string;
  /** The BullMQ queue: `<family>-<hash>`. Only workers of this version take its jobs. */
  readonly queue: string;
}

const queueName = /^[\w.-]{1,100}$/;

/** Reads the module file once; `queue` names the family instead of the file name (the hash still routes). */
export function moduleIdentity(url: string, queue: string | undefined): ModuleIdentity {
  let content: Buffer;
  try {
    content = readFileSync(fileURLToPath(url));
  } catch (error) {
    throw new Error(`The task module ${url} cannot be read to name its queue`, { cause: error });
  }
  const hash = createHash('sha256').update(content).digest('hex').slice(0, 16);
  const family = queue ?? basename(fileURLToPath(url)).replace(/[^\w.-]/g, '_');
  return { url, hash, family, queue: `${family}-${hash}` };
}

/** Checks an explicit queue name (letters, digits, `_`, `.`, `-`: it becomes part of Redis keys). */
export function checkQueueName(queue: unknown): string | undefined {
  if (queue === undefined) return undefined;
  if (typeof queue !== 'string' || !queueName.test(queue)) {
    throw new TypeError(`Expected \`queue\` to be 1-100 letters, digits, "_", "." or "-", got \`${String(queue)}\` (${typeof queue})`);
  }
  return queue;
}

/**
 * procpool's own keys beside BullMQ's (`procpool:<queue>:<job id>`): a `@`
 * never starts a job id. Announcements are the family's (every version's
 * workers, so that a caller can say which versions serve the file); the rest
 * is the version's queue.
 */
export class QueueKeys {
  readonly #base: string;
  readonly #family: string;

  constructor(identity: Pick<ModuleIdentity, 'family' | 'queue'>) {
    this.#base = `${keyPrefix}:${identity.queue}:@`;
    this.#family = `${keyPrefix}:${identity.family}:@`;
  }

  /** Set of the ids of workers that announced themselves, of every version. */
  get workers(): string {
    return `${this.#family}workers`;
  }

  /** A worker's announcement (JSON, with a TTL: gone when the worker is). */
  worker(id: string): string {
    return `${this.#family}worker:${id}`;
  }

  /** A caller's heartbeat (TTL): workers drop the jobs of a caller whose key is gone. */
  caller(id: string): string {
    return `${this.#base}caller:${id}`;
  }

  /** A caller's list of chunk results (TTL: left behind by a caller that died, it expires). */
  results(id: string): string {
    return `${this.#base}results:${id}`;
  }

  /** A caller's wake-up token: a result waits in its list (TTL, as the list). */
  resultToken(id: string): string {
    return `${this.#base}result-token:${id}`;
  }

  /** A job whose caller asked to stop it (TTL). */
  cancelled(jobId: string): string {
    return `${this.#base}cancelled:${jobId}`;
  }

  /** Pub/sub channel of stop requests (a job id): reaches the worker running it. */
  get cancelChannel(): string {
    return `${this.#base}cancel`;
  }
}
