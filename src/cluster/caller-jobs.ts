/**
 * The caller's jobs, by id. Ids are this caller's own (its random id and a
 * sequence, never Redis' counter, which starts again at 1 when Redis loses
 * its data) and are registered before the add: a result is taken only by
 * the attempt that registered the id it was made for. An attempt added
 * again keeps its earlier ids (a late result of the first add is still
 * its chunk's) until it ends.
 *
 * An add is bounded by its size on the awake clock; unanswered, its
 * connection is opened again and the add sent again, its bound doubled —
 * a second add of one id is a no-op. Whether Redis is unreachable is the
 * watch's judgement, not the add's.
 */
import type { AwakeClock } from './awake.js';
import type { JobQueue } from './queue.js';
import { boundFor, reconnectRedis, type Redis } from './redis.js';
import type { RemoteAttempt } from './remote-attempt.js';

/** An add whose bound ran out (it is sent again). */
class Unanswered extends Error {}

export class CallerJobs {
  readonly #caller: string;
  readonly #queue: JobQueue;
  /** The connection the queue adds on. */
  readonly #connection: Redis;
  readonly #clock: AwakeClock;
  readonly #byId = new Map<string, RemoteAttempt>();
  /** The last id's sequence number. */
  #sequence = 0;

  constructor(caller: string, queue: JobQueue, connection: Redis, clock: AwakeClock) {
    this.#caller = caller;
    this.#queue = queue;
    this.#connection = connection;
    this.#clock = clock;
  }

  /** A new id for `attempt`, never used before; forgotten when the attempt ends. */
  register(attempt: RemoteAttempt): string {
    const id = `${this.#caller}-${++this.#sequence}`;
    if (attempt.ids.length === 0) void attempt.end.then(() => attempt.ids.forEach((one) => this.#byId.delete(one)));
    attempt.ids.push(id);
    this.#byId.set(id, attempt);
    return id;
  }

  /** The attempt a result made for job `id` belongs to, while it runs. */
  attemptOf(id: string): RemoteAttempt | undefined {
    return this.#byId.get(id);
  }

  /** Adds `attempt`'s job under `id`; rejects only with Redis' own refusal. */
  async add(attempt: RemoteAttempt, id: string): Promise<void> {
    const adding = this.#queue.add(attempt.data.task, attempt.data, { jobId: id });
    let bound = boundFor(attempt.data.args.length);
    for (;;) {
      const answered = await this.#clock.bound(adding.then(() => true), bound, () => new Unanswered()).catch((error: unknown) => {
        if (error instanceof Unanswered) return false;
        throw error;
      });
      if (answered) return;
      // Nobody waits for it any more (or the pool has closed): its add lands (and is stopped) or not.
      if (attempt.phase === 'ended' || this.#connection.status === 'end') return void (await adding);
      reconnectRedis(this.#connection);
      bound *= 2;
    }
  }
}
