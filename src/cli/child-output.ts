/**
 * What tasks print. Standard output is the results' channel, so the
 * children's stdout and stderr both go to stderr, line by line, above the
 * progress bar instead of through it.
 */
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';

/** Forwards each line of `streams` to `log` (the status line's notes). */
export function forwardChildOutput(streams: ReadonlyArray<Readable | undefined>, log: (text: string) => void): void {
  for (const input of streams) {
    if (input === undefined) continue;
    createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) => log(`${line}\n`));
  }
}
