/**
 * Item outcomes, parent side: the error a failure stands for, and the
 * counting every call does.
 */
import { deserializeThrown } from '../error-codec.js';
import { SerializationError } from '../errors.js';
import type { Counters } from '../stats.js';
import { unknownTask } from '../task-ref.js';
import type { Failure, Report } from './backend.js';

/** The error a failed item stands for, re-created. */
export function failureError(failure: Failure): unknown {
  if ('local' in failure) return failure.local;
  if ('unknownTask' in failure) {
    const { task, module, exports } = failure.unknownTask;
    return unknownTask(`Task "${task}"`, module, exports);
  }
  if ('unsendable' in failure) {
    const { path, detail } = failure.unsendable;
    return new SerializationError({ direction: path.startsWith('result') ? 'result' : 'args', path, detail });
  }
  return deserializeThrown(failure.error);
}

/** Counts the items of `report` that ran: with a result, or with an error. */
export function countReport(counters: Counters, report: Report): void {
  counters.failed += report.failures.length;
  counters.completed += report.values.length - report.failures.length;
}

/** The first failure of `report` (lowest position), if any. */
export function firstFailure(report: Report): [index: number, failure: Failure] | undefined {
  let first: [number, Failure] | undefined;
  for (const entry of report.failures) if (first === undefined || entry[0] < first[0]) first = entry;
  return first;
}
