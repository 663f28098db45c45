/**
 * What a worker says: its own lines for everyone, BullMQ's internal
 * messages only when asked (`procpool worker --verbose`).
 */

/** Where a worker's lines go: `info` for everyone, `internal` for BullMQ's own errors (shown with `verbose`, else only those that say something). */
export interface Logs {
  info(line: string): void;
  internal(error: Error): void;
}

/** The worker's logs over `log`. */
export function workerLogs(log: (line: string) => void, verbose: boolean): Logs {
  return { info: log, internal: (error) => internalError(error, verbose, log) };
}

/**
 * BullMQ's own errors. Connection errors are already told once by the
 * link's watch; a lock BullMQ could not renew or a job gone when it came to
 * finish it (Redis slow, restarted, or the job taken back) are what a
 * healthy cluster recovers from: shown with `verbose` only.
 */
function internalError(error: Error, verbose: boolean, log: (line: string) => void): void {
  const routine = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|Connection is closed|WRONGPASS|NOAUTH|Missing lock for job|Missing key for job|could not renew lock|Lock mismatch/i.test(error.message);
  if (verbose) log(`procpool worker: (bullmq) ${error.message}`);
  else if (!routine) log(`procpool worker: queue error: ${error.message}`);
}
