/**
 * The soak's short variant inside `npm test`: 20,000 items, the same faults
 * and limits as `npm run soak` (test/soak/soak.ts), every promise checked.
 */
import { expect, it } from 'vitest';
import { fromEnv, runSoak } from './soak/soak.js';

it('soak: 20,000 items through imap with deaths, timeouts and leaks settle exactly once', async () => {
  const report = await runSoak({ ...fromEnv({}), items: Number(process.env.SOAK_TEST_ITEMS ?? 20_000) });
  console.log(report.summary);
  expect(report.breaches).toEqual([]);
  expect(report.ok + Object.values(report.failed).reduce((a, b) => a + b, 0)).toBe(report.config.items);
  // Every kind of fault happened, and the limits recycled children.
  expect(Object.values(report.failed).every((n) => n > 0)).toBe(true);
  expect(report.recycled).toBeGreaterThan(0);
  expect(report.childrenLeft).toBe(0);
  // A hang guard: the run itself takes well under a minute on 2 cores.
}, 120_000);
