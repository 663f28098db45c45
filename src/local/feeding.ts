/**
 * How deep each child is kept fed, and the chunks that come back from a
 * pipe. Depth is measured per task: a task's chunks are timed (and their
 * argument bytes counted) apart from every other task's, and a task not
 * timed yet goes one chunk at a time. A child holds at most what the
 * shallowest task in its line allows; an idle child takes one.
 *
 * A chunk waiting in a child's pipe is recalled (skipped there, queued again
 * ahead of new work) when its task turns out slower than its depth assumed,
 * or when another child is idle with nothing queued while the chunk ahead
 * of it runs well past its task's usual time. Calls of a higher priority
 * recall lower ones through the scheduler (`Attempt.recall`).
 */
import type { ChunkJob } from '../engine/backend.js';
import type { ChildState } from './child.js';
import type { EntryPhase } from './ledger.js';
import { capacityOf, pickChild } from './placement.js';
import { approxBytes, depthFor } from './sizing.js';

/** The most chunks a child is kept fed with. */
const deepest = 16;
/** A running chunk is overdue past this many times its task's usual time (and at least 1 ms). */
const overdueFactor = 4;

/** What feeding reads of a chunk on a child. */
export interface FedEntry {
  readonly job: { readonly task: string };
  readonly phase: EntryPhase;
  readonly startedAt: number;
  recall(): void;
}

/** What feeding reads of a child. */
export interface FedChild {
  readonly state: ChildState;
  readonly load: number;
  readonly line: readonly FedEntry[];
}

interface Measured {
  /** Run time of its chunks (a moving average), once one was timed. */
  ms: number | undefined;
  /** Argument bytes of its chunks, roughly (a moving average). */
  bytes: number;
  depth: number;
}

/** One pool's feeding: depths by task, what capacity counts of each child, recalls. */
export class Feeding<C extends FedChild> {
  readonly #children: Iterable<C>;
  readonly #usable: (child: C) => boolean;
  /** Chunks waiting in the scheduler (then an idle child gets one of those instead). */
  readonly #waiting: () => number;
  readonly #changed: () => void;
  readonly #byTask = new Map<string, Measured>();
  /** What capacity counts of each child, as the scheduler last heard it. */
  readonly #allowed = new Map<C, number>();
  #changeSoon = false;
  #stealTimer: NodeJS.Timeout | undefined;
  /** Children whose waiting chunks were taken back because the one running is overdue: fed one at a time until it ends. */
  readonly #overdue = new Set<C>();
  readonly #allowance = (child: C): number => (this.#overdue.has(child) ? 1 : this.#lineDepth(child.line));

  constructor(children: Iterable<C>, usable: (child: C) => boolean, waiting: () => number, changed: () => void) {
    this.#children = children;
    this.#usable = usable;
    this.#waiting = waiting;
    this.#changed = changed;
  }

  /** Chunks that may be in flight. */
  get capacity(): number {
    return capacityOf(this.#children, this.#usable, this.#allowance);
  }

  /** A child with room for a chunk of `task`: below its line's depth and the task's own. */
  pick(task: string): C | undefined {
    const depth = this.#depthOf(task);
    return pickChild(this.#children, this.#usable, (child) => Math.min(depth, this.#allowance(child)));
  }

  /** `job` was sent to `child`. */
  sent(child: C, job: ChunkJob): void {
    const measured = this.#measured(job.task);
    measured.bytes = measured.bytes * 0.7 + approxBytes(job.args, job.spread) * 0.3;
    if (measured.ms !== undefined) measured.depth = depthFor(measured.ms, measured.bytes);
    this.#reallow(child);
  }

  /** A chunk left `child`'s line (`ran`: it ran, for `ms`). */
  settled(child: C, ran: { task: string; ms: number } | undefined): void {
    if (ran !== undefined) this.#overdue.delete(child);
    this.#reallow(child);
    if (ran !== undefined && this.#ran(ran.task, ran.ms)) this.#recallPastDepth();
    if (child.load === 0 && child.state === 'ready' && this.#waiting() === 0) this.#stealForIdle();
  }

  /** `child` became ready: idle, it may take chunks waiting in other pipes. */
  readied(child: C): void {
    if (child.load === 0 && this.#waiting() === 0) this.#stealForIdle();
  }

  /** `child` is gone. */
  exited(child: C): void {
    this.#allowed.delete(child);
    this.#overdue.delete(child);
  }

  #depthOf(task: string): number {
    return this.#byTask.get(task)?.depth ?? 1;
  }

  #lineDepth(line: readonly FedEntry[]): number {
    let depth = deepest + 1;
    for (const entry of line) depth = Math.min(depth, this.#depthOf(entry.job.task));
    return depth > deepest ? 1 : depth;
  }

  /** Records a run; whether the task's depth dropped. */
  #ran(task: string, ms: number): boolean {
    const measured = this.#measured(task);
    measured.ms = measured.ms === undefined ? ms : measured.ms * 0.7 + ms * 0.3;
    const before = measured.depth;
    measured.depth = depthFor(measured.ms, measured.bytes);
    return measured.depth < before;
  }

  #measured(task: string): Measured {
    let measured = this.#byTask.get(task);
    if (measured === undefined) this.#byTask.set(task, (measured = { ms: undefined, bytes: 0, depth: 1 }));
    return measured;
  }

  /**
   * What capacity counts of `child` (never less than it holds) changed: the
   * scheduler hears of it after this turn's placements (told at once,
   * p-queue would start jobs inside the one starting now).
   */
  #reallow(child: C): void {
    const allowed = child.state === 'exited' ? undefined : Math.max(child.load, this.#allowance(child));
    if (allowed === this.#allowed.get(child)) return;
    if (allowed === undefined) this.#allowed.delete(child);
    else this.#allowed.set(child, allowed);
    if (this.#changeSoon) return;
    this.#changeSoon = true;
    queueMicrotask(() => {
      this.#changeSoon = false;
      this.#changed();
    });
  }

  /** A task's depth dropped: chunks waiting past their child's depth go back to the queue. */
  #recallPastDepth(): void {
    for (const child of this.#children) {
      const line = child.line;
      for (let at = line.length - 1; at >= this.#allowance(child); at--) line[at]?.recall();
      this.#reallow(child);
    }
  }

  /**
   * A child is idle and nothing is queued: the chunks waiting behind an
   * overdue chunk on another child come back (and go to the idle one); a
   * chunk not yet overdue is looked at again when it would be.
   */
  #stealForIdle(): void {
    clearTimeout(this.#stealTimer);
    this.#stealTimer = undefined;
    const now = performance.now();
    let recheckAt = Number.POSITIVE_INFINITY;
    for (const child of this.#children) {
      const line = child.line;
      const running = line[0];
      if (line.length < 2 || running?.phase !== 'started') continue;
      const usual = this.#byTask.get(running.job.task)?.ms ?? 0;
      const overdueAt = running.startedAt + Math.max(1, overdueFactor * usual);
      if (now < overdueAt) {
        recheckAt = Math.min(recheckAt, overdueAt);
        continue;
      }
      // Not fed again behind it: the chunks taken back go to the idle child.
      this.#overdue.add(child);
      for (let at = line.length - 1; at >= 1; at--) line[at]?.recall();
      this.#reallow(child);
    }
    if (recheckAt === Number.POSITIVE_INFINITY) return;
    // Speed only (the chunks run either way): it never keeps the process alive.
    this.#stealTimer = setTimeout(() => {
      this.#stealTimer = undefined;
      if (this.#waiting() > 0) return;
      for (const child of this.#children) if (child.load === 0 && child.state === 'ready' && this.#usable(child)) return this.#stealForIdle();
    }, recheckAt - now);
    this.#stealTimer.unref();
  }
}
