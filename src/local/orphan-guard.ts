/**
 * Whether children can get Linux's parent-death signal through util-linux's
 * setpriv. Probed by running it once (a sandbox may refuse the prctl), in
 * the background while the spawner loads: the probe runs on another core
 * while this one compiles execa, so it costs the first child nothing.
 */
import { execFile } from 'node:child_process';

const candidates = ['/usr/bin/setpriv', '/bin/setpriv'];

function works(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(path, ['--pdeathsig', 'KILL', '--', 'true'], { timeout: 5000 }, (error) => resolve(error === null));
  });
}

/** The setpriv to start children through, or undefined: they start their watchdog thread instead. */
export async function probeSetpriv(): Promise<string | undefined> {
  // PROCPOOL_ORPHAN_GUARD=watchdog: the thread even where setpriv exists.
  if (process.platform !== 'linux' || process.env.PROCPOOL_ORPHAN_GUARD === 'watchdog') return undefined;
  for (const path of candidates) if (await works(path)) return path;
  return undefined;
}
