/**
 * The cluster suite needs `redis-server`. Without it the suite is skipped,
 * loudly (global-setup.ts prints why and how to enable it) — except under
 * CI (`CI=true`), where a skipped cluster suite fails.
 */
import { describe, it, type TestFunction } from 'vitest';
import { hasRedisServer } from './redis.js';

export const redisAvailable = hasRedisServer();

export const skipNotice =
  'procpool: the CLUSTER test suite was SKIPPED: redis-server is not installed.\n' +
  '  Enable it with: apt-get install -y redis-server (Debian/Ubuntu) or brew install redis (macOS); the tests start their own servers.';

/** `describe`, when redis-server is there. */
export function describeCluster(name: string, body: () => void): void {
  if (redisAvailable) describe(name, body);
  else if (process.env.CI === 'true') {
    describe(name, () => {
      it('needs redis-server (under CI a skipped cluster suite is a failure)', () => {
        throw new Error(skipNotice);
      });
    });
  } else describe.skip(name, body);
}

/** One test that needs redis-server, on the same rule as `describeCluster`: skipped without it, a failure under CI. */
export function itCluster(name: string, body: TestFunction, timeout?: number): void {
  if (redisAvailable) it(name, body, timeout);
  else if (process.env.CI === 'true') {
    it(`${name}: needs redis-server (under CI a skipped cluster test is a failure)`, () => {
      throw new Error(skipNotice);
    });
  } else it.skip(name, body, timeout);
}
