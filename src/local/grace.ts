/**
 * Cooperative cancellation of one child's running chunk (procpool/task's
 * abortSignal): the child is asked to abort the running item's signal, and
 * killed only if the chunk has not ended `killGrace` ms later. Only an item
 * that asked for its signal gets the grace; any other is killed at once.
 */
import { TaskTimeoutError } from '../errors.js';
import type { AbortMessage } from '../protocol.js';
import type { KillReason } from './exit.js';
import type { Entry } from './ledger.js';

/** What the grace needs of its child. */
export interface GraceOwner {
  send(message: AbortMessage): void;
  kill(reason: KillReason): void;
  /** Whether `entry` is still on the child (its done, or the child's exit, not read yet). */
  holds(entry: Entry): boolean;
}

/** One child's cancellations. */
export class Grace {
  readonly #ms: number;
  readonly #owner: GraceOwner;

  constructor(ms: number, owner: GraceOwner) {
    this.#ms = ms;
    this.#owner = owner;
  }

  get ms(): number {
    return this.#ms;
  }

  /** Whether stopping `entry` waits: its running item holds its AbortSignal (the items before it were reported). */
  applies(entry: Entry): boolean {
    return this.#ms > 0 && entry.listening >= entry.values.length;
  }

  /** Asks the child to abort the running item's signal and end chunk `entry` after it (once). */
  signal(entry: Entry, why: AbortMessage['why']): void {
    if (entry.signalled) return;
    entry.signalled = true;
    this.#owner.send({ type: 'procpool:abort', id: entry.id, why });
  }

  /**
   * Stops a started chunk for its timeout or its caller's abort. The attempt
   * ends now (a timeout is charged as the kill would charge it); the entry
   * stays on the child until its done, or the kill after the grace.
   */
  stop(reason: Extract<KillReason, { kind: 'timeout' | 'abort' }>): void {
    const { entry } = reason;
    if (!this.applies(entry)) return this.#owner.kill(reason);
    if (entry.signalled && entry.ended) return;
    this.signal(entry, reason.kind === 'timeout' ? 'timeout' : 'signal');
    // With two or more items unreported, which one ran is unknown: no item is charged, an exact re-run tells.
    const uncertain = !entry.job.exact && entry.job.args.length - entry.values.length >= 2;
    if (reason.kind === 'timeout') entry.finish({ kind: 'lost', report: entry.report, error: new TaskTimeoutError(reason.timeout), uncertain });
    else entry.finish({ kind: 'aborted' });
    setTimeout(() => {
      if (this.#owner.holds(entry)) this.#owner.kill(reason);
    }, this.#ms).unref();
  }
}
