/**
 * The soak's short variant inside `npm test` (test/soak/soak.ts is the full
 * one, `npm run soak`): 20,000 items, the same checks and limits. Faults are
 * at half the full rates (0.5% kill their child, 0.25% outlive the timeout):
 * each one costs a child start, and this must stay well under a minute on 2
 * cores while other test files run beside it.
 */
import { expect, it } from 'vitest';
import { fromEnv, runSoak } from './soak/soak.js';

it('soak: 20,000 items through imap with deaths, timeouts and leaks settle exactly once', async () => {
  const items = Number(process.env.SOAK_TEST_ITEMS ?? 20_000);
  // Exit codes 1-80 (75 among them: the worker's own for a closed channel); `npm run soak` goes to 200.
  const report = await runSoak({ ...fromEnv({}), items, killPer10k: 50, slowPer10k: 25, stallMs: 20_000, exitCodes: 80 });
  console.log(report.summary);
  for (const breach of report.breaches) console.error(`breach: ${breach}`);
  expect(report.breaches).toEqual([]);
  expect(report.ok + Object.values(report.failed).reduce((a, b) => a + b, 0)).toBe(items);
  // Every kind of fault happened, and the limits recycled children.
  expect(Object.values(report.failed).every((n) => n > 0)).toBe(true);
  expect(report.recycled).toBeGreaterThan(0);
  expect(report.childrenLeft).toBe(0);
  expect(report.exitCodesRight).toBe(report.config.exitCodes);
}, 120_000);
