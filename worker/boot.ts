/**
 * What the parent put on the child's command line (local/spawn.ts): the
 * module, so that it loads while the init message is on its way; how the
 * child is kept from outliving its parent; the parent's pid.
 */
import { DISCONNECTED_EXIT_CODE } from '../src/protocol.js';
import { startWatchdog } from './watchdog.js';

/** The task module, loading since the child started. */
export interface Preloaded {
  readonly url: string;
  readonly loading: Promise<unknown>;
}

/** Sets up the orphan guard and starts loading the module named on the command line. */
export function boot(argv: string[]): Preloaded | undefined {
  // Taken off process.argv: a task module that reads its arguments sees the worker's own, as before.
  const [url, guard, parentPid] = argv.splice(2);
  if (guard === 'pdeathsig') {
    // The kernel kills this child when its parent dies, from the moment setpriv
    // asked for it: a parent that died before that is gone already.
    if (process.ppid !== Number(parentPid)) process.exit(DISCONNECTED_EXIT_CODE);
  } else {
    // A module stuck in a synchronous loop while loading must not outlive the parent either.
    startWatchdog();
  }
  if (url === undefined) return undefined;
  const loading = import(url) as Promise<unknown>;
  // A load error is reported when the init message asks for the module, never as an unhandled rejection.
  loading.catch(() => undefined);
  return { url, loading };
}
