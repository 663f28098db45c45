/** The seed's task module: every export is a task the pool can run. */

/** Prints `a + b = sum` from the child and returns the sum. */
export function demo(a: number, b: number): number {
  console.log(`${a} + ${b} = ${a + b}`);
  return a + b;
}

/** Counts the primes in [from, to): a real CPU-bound job. */
export function countPrimes(from: number, to: number): number {
  let count = 0;
  for (let n = Math.max(2, from); n < to; n++) {
    let prime = true;
    for (let d = 2; d * d <= n; d++) {
      if (n % d === 0) {
        prime = false;
        break;
      }
    }
    if (prime) count++;
  }
  return count;
}
