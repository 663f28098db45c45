// The floor's twin of fresh-procpool.mjs: from the first line to a first
// result and every child gone, with child_process.fork and nothing else.
const t0 = performance.now();
const { fork } = await import('node:child_process');
const imported = performance.now();
const script = new URL('./floor-child.mjs', import.meta.url);
const children = Array.from({ length: Number(process.argv[2] ?? 2) }, () =>
  fork(script, [], { serialization: 'advanced', execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
);
const ready = children.map((child) => new Promise((resolve) => child.once('message', resolve)));
await ready[0];
const value = await new Promise((resolve) => {
  children[0].once('message', (reply) => resolve(reply.value));
  children[0].send({ id: 0, task: 'inc', args: [1] });
});
if (value !== 2) throw new Error('wrong result');
await Promise.all(ready);
await Promise.all(children.map((child) => new Promise((resolve) => (child.once('exit', resolve), child.disconnect()))));
console.log(JSON.stringify({ ms: performance.now() - t0, importMs: imported - t0 }));
