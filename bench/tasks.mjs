// The benchmark's task module, loaded as-is (no loader) by procpool's
// children, by the floor's children and, for the serial baseline, by the
// benchmark process itself. bench/py_bench.py holds the Python twins.

/** A tiny item: one addition. */
export function inc(x) {
  return x + 1;
}

/** Returns its argument (the 1 MiB echo). */
export function echo(value) {
  return value;
}

/** The CPU-bound job: naive recursive Fibonacci. */
export function fib(n) {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

/** Ends the child mid-item (the after-a-crash figure). */
export function crash() {
  process.exit(1);
}

/** Waits `ms`, then returns it (the flood behind which a priority call waits). */
export function sleepMs(ms) {
  return ms === 0 ? 0 : new Promise((resolve) => setTimeout(() => resolve(ms), ms));
}
