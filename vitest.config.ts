import { defineConfig } from 'vitest/config';

// Tests spawn real child processes: few test files at once, generous timeouts
// so a slow shared machine fails a hang instead of a healthy test.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Says loudly when the cluster suite is skipped (no redis-server).
    globalSetup: ['test/cluster/global-setup.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    typecheck: {
      enabled: true,
      include: ['test/**/*.test-d.ts'],
      tsconfig: './tsconfig.json',
    },
  },
});
