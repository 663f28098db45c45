/**
 * One job's chunk on a worker's local pool, item by item, into the report
 * the caller reads: values, failures at their positions, and the item whose
 * child died (charged there; the caller's retries decide).
 */
import { serializeThrown } from '../error-codec.js';
import { TaskTimeoutError, WorkerExitError } from '../errors.js';
import { settleEach } from '../internal.js';
import type { Pool } from '../pool.js';
import { remoteFailure, type JobData, type RemoteReport } from './codec.js';

/** The chunk on the local pool; undefined when it was stopped. A child's death ends it there, charged to that item (the caller's retries decide). */
export async function runChunk(pool: Pool, data: JobData, args: unknown[], signal: AbortSignal): Promise<RemoteReport | undefined> {
  const report: RemoteReport = { values: [], failures: [] };
  try {
    const options = { signal, retries: 0, ...(data.timeout === null ? {} : { timeout: data.timeout }) };
    for await (const record of pool[settleEach](data.task, args, options, { ordered: true, spread: data.spread })) {
      if (record.ok) {
        report.values.push(record.value);
        continue;
      }
      if (record.error instanceof WorkerExitError || record.error instanceof TaskTimeoutError) {
        report.lost = serializeThrown(record.error);
        break;
      }
      report.failures.push([report.values.length, remoteFailure(record.error)]);
      report.values.push(undefined);
      if (data.stopAtError) break;
    }
  } catch (error) {
    if (signal.aborted) return undefined;
    // The pool's own refusal (an unknown task): the next item fails with it.
    report.failures.push([report.values.length, remoteFailure(error)]);
    report.values.push(undefined);
  }
  return signal.aborted ? undefined : report;
}
