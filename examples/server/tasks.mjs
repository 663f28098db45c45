/**
 * The server example's task module: plain JavaScript, so that its children
 * start without a TypeScript loader.
 */

/** Primes below `below`, by trial division: real CPU work that grows with `below`. */
export function countPrimes(below) {
  let count = 0;
  for (let n = 2; n < below; n++) {
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
