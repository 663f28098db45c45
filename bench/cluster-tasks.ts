/** Tasks of the cluster bench: a tiny one and the CPU-bound one of the examples. */
export { countPrimes } from '../examples/tasks.ts';

export const double = (x: number): number => x * 2;

/** Sleeps `ms`: a chunk that is surely running when its worker is killed. */
export const sleep = (ms: number): Promise<number> => new Promise((resolve) => setTimeout(() => resolve(ms), ms));

/** Writes its worker's pid (its parent's) to `file`, then sleeps `ms`: the bench knows whom to kill. */
export async function noteWorkerThenSleep(file: string, ms: number): Promise<number> {
  const { writeFileSync } = await import('node:fs');
  writeFileSync(file, String(process.ppid));
  return sleep(ms);
}
