/**
 * A real CPU-bound job — counting the primes below 3,000,000 in 60 ranges —
 * run serially in this process and then on a pool of cpu-count children,
 * printing both times and the speedup. Run with `npm run example:cpu`.
 */
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Pool } from 'procpool';
import { countPrimes } from './tasks.ts';

const limit = 3_000_000;
const pieces = 60;
const step = limit / pieces;
const ranges = Array.from({ length: pieces }, (_, i): [number, number] => [i * step, (i + 1) * step]);

let started = performance.now();
const serial = ranges.reduce((sum, [from, to]) => sum + countPrimes(from, to), 0);
const serialMs = performance.now() - started;
console.log(`serial: ${serial} primes below ${limit} in ${serialMs.toFixed(0)} ms`);

const processes = availableParallelism();
await using pool = await Pool.create<typeof import('./tasks.ts')>(new URL('./tasks.ts', import.meta.url), { processes });
started = performance.now();
// chunksize 1: the ranges differ in cost, so each idle child takes the next one.
const counts = await pool.starmap('countPrimes', ranges, { chunksize: 1 });
const poolMs = performance.now() - started;
const pooled = counts.reduce((sum, count) => sum + count, 0);
console.log(`pool of ${processes}: ${pooled} primes below ${limit} in ${poolMs.toFixed(0)} ms`);
console.log(`speedup: ${(serialMs / poolMs).toFixed(2)}x on ${processes} processes${pooled === serial ? '' : ' (MISMATCH!)'}`);
