// A bare BullMQ worker for the cluster bench: no-op jobs (x * 2), the baseline procpool's jobs are measured against.
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';

const [url, queue, concurrency] = process.argv.slice(2);
const connection = new Redis(url, { maxRetriesPerRequest: null });
const worker = new Worker(queue, async (job) => job.data.x * 2, { connection, prefix: 'bare', concurrency: Number(concurrency), removeOnComplete: { count: 0 } });
worker.on('error', () => undefined);
await worker.waitUntilReady();
process.stdout.write('ready\n');
process.on('SIGTERM', async () => {
  await worker.close();
  connection.disconnect();
  process.exit(0);
});
