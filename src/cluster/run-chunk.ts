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

/** A one-item job run inside another's chunk: its outcome settles alone, as its record comes. */
export interface Member {
  readonly data: JobData;
  /** Its one item's arguments. */
  readonly args: unknown[];
  /** Not `running` once its job is stopped or released (`abort` is dispatched on `signal` then). */
  readonly state: () => 'running' | 'stopped' | 'released';
  readonly signal: AbortSignal;
  /** Its report and run time; undefined: stopped before it ran. */
  settle(outcome: { report: RemoteReport; ms: number } | undefined): void;
}

/**
 * Jobs of one item that can share a local chunk: same task and argument form,
 * and no time limit (a timed item that is not the last of its local chunk is
 * lost uncertainly when it times out, and would run once more).
 */
export function mergeable(a: JobData, b: JobData): boolean {
  return a.task === b.task && a.spread === b.spread && a.timeout === null && b.timeout === null;
}

/**
 * Several one-item jobs as one local chunk: one message to a child for all
 * of them, each member settled with its own item's outcome as it comes. The
 * child runs the items in order, so only the first member not yet settled is
 * running: once that one is stopped, the chunk stops; the members after it
 * had not started and run again in a chunk of their own (those stopped
 * meanwhile are settled empty).
 */
export async function runMerged(pool: Pool, members: readonly Member[]): Promise<void> {
  let left = members;
  while (left.length > 0) left = await mergedRound(pool, left);
}

/** One round: returns the members that had not started when the chunk stopped. */
async function mergedRound(pool: Pool, members: readonly Member[]): Promise<Member[]> {
  const controller = new AbortController();
  let next = 0;
  const check = (): void => {
    if (next < members.length && members[next]!.state() !== 'running') controller.abort();
  };
  for (const member of members) member.signal.addEventListener('abort', check);
  check();
  const { data } = members[0]!;
  let since = performance.now();
  const settleNext = (report: RemoteReport): void => {
    const now = performance.now();
    members[next++]!.settle({ report, ms: now - since });
    since = now;
    check();
  };
  try {
    const options = { signal: controller.signal, retries: 0, chunksize: members.length, ...(data.timeout === null ? {} : { timeout: data.timeout }) };
    const args = members.map((member) => member.args[0]);
    for await (const record of pool[settleEach](data.task, args, options, { ordered: true, spread: data.spread })) {
      if (controller.signal.aborted) break;
      if (record.ok) settleNext({ values: [record.value], failures: [] });
      else if (record.error instanceof WorkerExitError || record.error instanceof TaskTimeoutError) settleNext({ values: [], failures: [], lost: serializeThrown(record.error) });
      else settleNext({ values: [undefined], failures: [[0, remoteFailure(record.error)]] });
    }
  } catch (error) {
    // The pool's own refusal (an unknown task): every member not settled fails with it.
    if (!controller.signal.aborted) while (next < members.length) settleNext({ values: [undefined], failures: [[0, remoteFailure(error)]] });
  } finally {
    for (const member of members) member.signal.removeEventListener('abort', check);
  }
  const rest = members.slice(next);
  // Stopped or released: settled empty (their jobs say which); the others had not started and run again.
  const again = controller.signal.aborted ? rest.filter((member) => member.state() === 'running') : [];
  for (const member of rest) if (!again.includes(member)) member.settle(undefined);
  return again;
}
