// A user's script, as it feels it: from its first line — `import 'procpool'`
// included — to the pool up, its first result, and the pool closed. Run by
// plain `node` (no loader) in a fresh process; prints one JSON line.
const t0 = performance.now();
const { Pool } = await import('procpool');
const imported = performance.now();
const pool = new Pool(new URL('./tasks.mjs', import.meta.url), { processes: Number(process.argv[2] ?? 2), nodeOptions: [] });
if ((await pool.apply('inc', [1])) !== 2) throw new Error('wrong result');
pool.close();
await pool.join();
console.log(JSON.stringify({ ms: performance.now() - t0, importMs: imported - t0 }));
