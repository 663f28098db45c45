/**
 * The program procpool was born from, ported from Python:
 *
 *   def demo(a, b): print(f"{a} + {b} = {a + b}"); return a + b
 *   with Pool(cpu_count()) as p: print(p.starmap(demo, [(i, i) for i in range(10)]))
 *   with Pool(cpu_count()) as p: print(p.starmap_async(demo, [(i, i) ...]).get())
 *
 * Run it with `npm run demo`. The children's prints interleave; both lists
 * print [0, 2, 4, …, 18].
 */
import { availableParallelism } from 'node:os';
import { Pool } from 'procpool';

const tasks = new URL('./tasks.ts', import.meta.url);
const items = Array.from({ length: 10 }, (_, i): [number, number] => [i, i]);

/** starmap: blocks (awaits) until every result is in, in input order. */
async function poolSync(): Promise<void> {
  await using pool = new Pool<typeof import('./tasks.ts')>(tasks, { processes: availableParallelism() });
  const sums = await pool.starmap('demo', items);
  console.log(`[${sums.join(', ')}]`);
}

/** starmapAsync: returns an AsyncResult at once; `.get()` waits for the list. */
async function poolAsync(): Promise<void> {
  await using pool = new Pool<typeof import('./tasks.ts')>(tasks, { processes: availableParallelism() });
  const result = pool.starmapAsync('demo', items);
  console.log(`[${(await result.get()).join(', ')}]`);
}

await poolSync();
await poolAsync();
