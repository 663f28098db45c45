// Says once, loudly, that the cluster suite is skipped and how to enable it.
import { hasRedisServer } from './redis.js';
import { skipNotice } from './gate.js';

export default function setup(): void {
  if (hasRedisServer()) return;
  const bar = '!'.repeat(78);
  process.stderr.write(`\n${bar}\n${skipNotice}\n${process.env.CI === 'true' ? '  CI=true: this is a failure.\n' : ''}${bar}\n\n`);
}
