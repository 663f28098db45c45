/**
 * How deep each child is kept fed, measured per task: a task's chunks are
 * timed (and their argument bytes counted) apart from every other task's,
 * and a task not timed yet goes one chunk at a time. A child holds at most
 * as many chunks as the shallowest task in its line allows; an idle child
 * takes one (the next task may be unmeasured).
 */
import { approxBytes, depthFor } from './sizing.js';

/** The most chunks a child is kept fed with. */
const deepest = 16;

interface Measured {
  /** Run time of its chunks (a moving average), once one was timed. */
  ms: number | undefined;
  /** Argument bytes of its chunks, roughly (a moving average). */
  bytes: number;
  depth: number;
}

/** The depths of one pool's tasks. */
export class Depths {
  readonly #byTask = new Map<string, Measured>();

  /** The depth of `task`'s chunks: 1 until one of them was timed. */
  of(task: string): number {
    return this.#byTask.get(task)?.depth ?? 1;
  }

  /** What a child whose line holds `line` may hold: the shallowest of its tasks; 1 when idle. */
  ofLine(line: Iterable<{ readonly job: { readonly task: string } }>): number {
    let depth = deepest + 1;
    for (const entry of line) depth = Math.min(depth, this.of(entry.job.task));
    return depth > deepest ? 1 : depth;
  }

  /** A chunk of `task` is sent: its argument bytes count. */
  sent(task: string, args: readonly unknown[], spread: boolean): void {
    const measured = this.#measured(task);
    measured.bytes = measured.bytes * 0.7 + approxBytes(args, spread) * 0.3;
    if (measured.ms !== undefined) measured.depth = depthFor(measured.ms, measured.bytes);
  }

  /** A chunk of `task` ran for `ms`; whether the task's depth dropped (its chunks in pipes past it are to be recalled). */
  ran(task: string, ms: number): boolean {
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
}
