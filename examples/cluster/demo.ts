/**
 * `npm run demo:cluster`: the seed program (examples/seed-demo.ts) on the
 * cluster — a Redis started here on a free loopback port, two
 * `procpool worker` processes — with only the constructor changed. Prints
 * what the local demo prints.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { ClusterPool } from 'procpool/cluster';

if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status !== 0) {
  console.error('demo:cluster needs redis-server: apt-get install -y redis-server (Debian/Ubuntu) or brew install redis (macOS).');
  process.exit(1);
}

const tasks = new URL('../tasks.ts', import.meta.url);
const items = Array.from({ length: 10 }, (_, i): [number, number] => [i, i]);

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts `command` and resolves once its output contains `ready`. */
async function start(command: string, args: string[], ready: string): Promise<ChildProcess> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let seen = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      // The workers' children print the demo's lines: pass them on, once serving.
      if (seen.includes(ready) && command === process.execPath) process.stdout.write(text.split('\n').filter((line) => !line.startsWith('procpool worker:')).join('\n'));
      seen += text;
      if (seen.includes(ready)) resolve();
    });
    child.on('exit', (code) => reject(new Error(`${command} exited with ${code}: ${seen}`)));
  });
  return child;
}

const port = await freePort();
const redisUrl = `redis://127.0.0.1:${port}`;
const redis = await start('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'], 'Ready to accept connections');
const cli = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));
const workers = await Promise.all([1, 2].map(() => start(process.execPath, [cli, 'worker', fileURLToPath(tasks), '--redis', redisUrl, '-j', '1'], 'procpool worker: serving')));

try {
  {
    // The seed's poolSync, on the cluster: only the constructor differs.
    await using pool = new ClusterPool<typeof import('../tasks.ts')>(tasks, { redis: redisUrl });
    const sums = await pool.starmap('demo', items);
    console.log(`[${sums.join(', ')}]`);
  }
  {
    await using pool = new ClusterPool<typeof import('../tasks.ts')>(tasks, { redis: redisUrl });
    const result = pool.starmapAsync('demo', items);
    console.log(`[${(await result.get()).join(', ')}]`);
  }
} finally {
  for (const worker of workers) worker.kill('SIGTERM');
  await Promise.all(workers.map((worker) => (worker.exitCode === null ? once(worker, 'exit') : undefined)));
  redis.kill('SIGTERM');
  await once(redis, 'exit');
}
