/**
 * Ends the child when its parent is gone, even while the main thread is
 * stuck in a synchronous loop (when no 'disconnect' event can run): a tiny
 * thread polls the parent pid. execa's cleanup cannot cover a SIGKILLed
 * parent, and Linux offers no parent-death signal to Node.
 */
import { Worker } from 'node:worker_threads';

const source = `
const { workerData } = require('node:worker_threads');
setInterval(() => {
  if (process.ppid !== workerData.ppid) process.kill(workerData.pid, 'SIGKILL');
}, workerData.every);
`;

/** Starts the watchdog thread; it never keeps the child alive. */
export function startWatchdog(every = 250): void {
  const worker = new Worker(source, {
    eval: true,
    workerData: { ppid: process.ppid, pid: process.pid, every },
    resourceLimits: { maxOldGenerationSizeMb: 4, maxYoungGenerationSizeMb: 1, stackSizeMb: 1 },
    stdout: false,
    stderr: false,
  });
  worker.unref();
  worker.on('error', () => {
    // Losing the watchdog only loses orphan protection; the child works on.
  });
}
