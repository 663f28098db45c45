/**
 * Ends the child when its parent is gone, even while the main thread is
 * stuck in a synchronous loop (when no 'disconnect' event can run): a tiny
 * thread polls the parent pid. execa's cleanup cannot cover a SIGKILLed
 * parent, and Linux offers no parent-death signal to Node.
 */
import { createRequire } from 'node:module';

// Required when started, while the task module loads, rather than before.
const load = createRequire(import.meta.url);

const source = `
const { workerData } = require('node:worker_threads');
setInterval(() => {
  if (process.ppid !== workerData.ppid) process.kill(workerData.pid, 'SIGKILL');
}, workerData.every);
`;

let started = false;

/**
 * Starts the watchdog thread (once); it never keeps the child alive. It
 * costs ~9 MiB of resident memory: the price of a child that cannot outlive
 * its parent, even stuck in a synchronous loop while loading its module.
 */
export function startWatchdog(every = 250): void {
  if (started) return;
  started = true;
  const { Worker } = load('node:worker_threads') as typeof import('node:worker_threads');
  const worker = new Worker(source, {
    eval: true,
    workerData: { ppid: process.ppid, pid: process.pid, every },
    // Tighter limits (4 MiB) make the thread itself run out of memory at start.
    resourceLimits: { maxOldGenerationSizeMb: 16 },
    stdout: false,
    stderr: false,
  });
  worker.unref();
  worker.on('error', (error) => {
    // Losing the watchdog only loses orphan protection: say so, work on.
    process.stderr.write(`procpool: child ${process.pid} lost its orphan watchdog: ${error.message}\n`);
  });
}
