/**
 * The server example: an HTTP server (node:http, no framework) that offloads
 * a CPU-bound task — counting the primes below `n` — to an elastic pool.
 * The pool's queue is bounded (`maxQueue`): past it a request is answered
 * at once with 503 and a Retry-After header instead of piling up. SIGTERM or
 * SIGINT stops taking connections, lets the admitted work finish, and exits.
 *
 *   npm run build && npx tsx examples/server/server.ts
 *   curl 'http://127.0.0.1:8080/primes?n=100000'   # {"n":100000,"primes":9592}
 *
 * Environment: PORT (8080; 0 = any free port), HOST (127.0.0.1),
 * MAX_QUEUE (8), MAX_PROCESSES (os.availableParallelism()).
 * The first line on stdout is the port it listens on.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { availableParallelism } from 'node:os';
import { Pool, QueueFullError } from 'procpool';

type Tasks = typeof import('./tasks.mjs');

const port = Number(process.env.PORT ?? 8080);
const host = process.env.HOST ?? '127.0.0.1';
const maxQueue = Number(process.env.MAX_QUEUE ?? 8);
const maxProcesses = Number(process.env.MAX_PROCESSES ?? availableParallelism());
/** Largest `n` accepted: a request is a bounded amount of work. */
const maxN = 20_000_000;

// One child while idle, up to maxProcesses under load; at most maxQueue
// requests wait for a child. The task module is plain JavaScript, so the
// children need none of this process's loader flags (tsx's): nodeOptions [].
const pool = new Pool<Tasks>(new URL('./tasks.mjs', import.meta.url), { minProcesses: 1, maxProcesses, idleTimeout: 10_000, maxQueue, nodeOptions: [] });

function send(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': 'application/json', ...headers });
  response.end(`${JSON.stringify(body)}\n`);
}

async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://localhost');
  if (request.method !== 'GET' || url.pathname !== '/primes') return send(response, 404, { error: 'try GET /primes?n=100000' });
  const n = Number(url.searchParams.get('n'));
  if (!Number.isInteger(n) || n < 0 || n > maxN) return send(response, 400, { error: `n must be an integer from 0 to ${maxN}` });
  try {
    send(response, 200, { n, primes: await pool.apply('countPrimes', [n]) });
  } catch (error) {
    // Back-pressure: the queue is full, so the client is told to come back later.
    if (error instanceof QueueFullError) return send(response, 503, { error: 'busy, retry later', queued: error.queued }, { 'retry-after': '1' });
    send(response, 500, { error: error instanceof Error ? error.message : String(error) });
  }
}

const server = createServer((request, response) => void handle(request, response));

server.listen(port, host, () => {
  const address = server.address();
  const chosen = typeof address === 'object' && address !== null ? address.port : port;
  console.log(chosen);
  console.log(`listening on http://${host}:${chosen}/primes?n=100000 (pool: 1 to ${maxProcesses} children, maxQueue ${maxQueue})`);
});

let stopping = false;
async function stop(signal: NodeJS.Signals): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: closing`);
  // No new connections; idle keep-alive ones are dropped, open requests still get their answer.
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  pool.close();
  await Promise.all([closed, pool.join()]);
  console.log('closed');
}
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    stop(signal).then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  });
}
