/**
 * Time that passes only while this process runs. A caller whose event loop
 * was blocked (a long synchronous task) or that was stopped (SIGSTOP) has
 * not been waiting for Redis meanwhile: the replies may be in its socket,
 * unread. Every bound on Redis (how long it may stay silent, how long a
 * command may take) is measured on this clock, so that after a pause Redis
 * is judged by a fresh try, never by the pause.
 *
 * The clock advances by the real time between two readings, but by at most
 * `maxStep`: a gap longer than that was a pause. A ticker reads it every
 * `step` so that an idle process still counts its time.
 */

/** How often the clock is read while nothing else reads it (ms). */
const step = 100;
/** A gap between readings above this (ms) was a pause: it counts as this much. */
const maxStep = 250;

type State = 'ticking' | 'stopped';

export class AwakeClock {
  readonly #timer: NodeJS.Timeout;
  #state: State = 'ticking';
  #awake = 0;
  #readAt = performance.now();

  constructor() {
    this.#timer = setInterval(() => this.now(), step);
    this.#timer.unref();
  }

  /** Milliseconds this process has been running since the clock started. */
  now(): number {
    const at = performance.now();
    if (this.#state === 'ticking') this.#awake += Math.min(at - this.#readAt, maxStep);
    this.#readAt = at;
    return this.#awake;
  }

  stop(): void {
    this.#state = 'stopped';
    clearInterval(this.#timer);
  }

  /**
   * `promise`, or a rejection with `onLate()` once it has been pending for
   * `ms` of awake time. The timer holds no ref: the pending call holds one.
   */
  bound<T>(promise: Promise<T>, ms: number, onLate: () => Error): Promise<T> {
    const until = this.now() + ms;
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const check = (): void => {
        const left = until - this.now();
        if (left > 0) {
          timer = setTimeout(check, Math.max(left, 1));
          timer.unref();
        }
        // Rejected after the loop's next look at its sockets: a reply that waited there through a pause wins.
        else setImmediate(() => reject(onLate()));
      };
      check();
      promise.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error);
        },
      );
    });
  }
}
