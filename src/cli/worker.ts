/**
 * `procpool worker <module> --redis <url>`: serves the module's queue with
 * a local pool of children, until SIGTERM or Ctrl-C (running chunks finish;
 * a second signal stops at once — their chunks then run again elsewhere).
 * bullmq and ioredis are loaded only by this command.
 */
import { availableParallelism } from 'node:os';
import { Option, type Command } from 'commander';
import { integerFrom, milliseconds, collect, UsageError } from './options.js';
import { exitCodes } from './run.js';
import { childNodeOptions, resolveTaskModule } from './task-module.js';

interface WorkerFlags {
  redis?: string;
  processes?: number;
  queue?: string;
  nodeOption?: string[];
  lockDuration?: number;
  stalledInterval?: number;
  verbose?: boolean;
}

const help = `
Each worker runs a pool of children for the module and takes chunks of
work from the module's queue on Redis (a ClusterPool from procpool/cluster
puts them there). Any number of workers, on any number of machines.

Examples:
  $ procpool worker ./tasks.ts --redis redis://10.0.0.5:6379 -j 8
  $ PROCPOOL_REDIS=rediss://:secret@redis.internal:6380 procpool worker ./tasks.js

Whoever can write to the Redis can make workers run the module's exported
functions with arguments of their choosing: keep it private (a password,
TLS, a private network). SIGTERM or Ctrl-C: running chunks finish, then the
worker leaves; a second one stops at once.`;

/** Adds the `worker` command to `program`. */
export function addWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description("serve a module's chunks from a Redis queue (procpool/cluster) with a local pool of children")
    .argument('<module>', 'task module: the same file the callers use (its content names the queue)')
    .addOption(new Option('--redis <url>', 'redis:// or rediss:// URL (a password in it: prefer the environment variable)').env('PROCPOOL_REDIS'))
    .option('-j, --processes <n>', 'child processes (default: the number of CPUs)', integerFrom(1))
    .option('--queue <name>', 'serve <name>-<content hash> instead of <file name>-<content hash> (jobs still go only to workers of the same module content)')
    .option('--node-option <flag>', 'a Node flag for the children (repeatable)', collect)
    .option('--lock-duration <ms>', "a chunk's lock; a lost worker's chunks run elsewhere within about lock + stalled interval (default 5000)", milliseconds)
    .option('--stalled-interval <ms>', 'how often to look for chunks of lost workers (default 1500)', milliseconds)
    .option('--verbose', "also log BullMQ's own messages (locks it could not renew, jobs gone when it came to finish them)")
    .addHelpText('after', help)
    .action(async (module: string, flags: WorkerFlags) => {
      if (flags.redis === undefined) throw new UsageError('--redis <url> (or PROCPOOL_REDIS) is required');
      const url = resolveTaskModule(module);
      // Loaded here: the map and starmap commands never load bullmq or ioredis.
      let serve: typeof import('../cluster/serve.js').serve;
      try {
        ({ serve } = await import('../cluster/serve.js'));
      } catch (error) {
        // A missing peer (bullmq, ioredis): its install line, without a stack.
        if (!(error instanceof Error && /^procpool\/cluster needs/.test(error.message))) throw error;
        process.stderr.write(`procpool: ${error.message}\n`);
        process.exitCode = exitCodes.failed;
        return;
      }
      const log = (line: string): void => void process.stdout.write(`${line}\n`);
      // Signals count from the start: one while the worker waits for Redis ends it there.
      const starting = new AbortController();
      let server: Awaited<ReturnType<typeof serve>> | undefined;
      let signals = 0;
      let stop!: () => void;
      const stopped = new Promise<void>((resolve) => (stop = resolve));
      const onSignal = (): void => {
        signals++;
        if (server === undefined) {
          starting.abort();
          stop();
        } else if (signals === 1) {
          log('procpool worker: stopping (running chunks finish; signal again to stop now)');
          void server.stop().then(stop);
        } else if (signals === 2) {
          log('procpool worker: stopping now (running chunks go back to the queue)');
          void server.kill().then(stop);
        } else process.exit(130);
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        server = await serve({
          module: url,
          redis: flags.redis,
          processes: flags.processes ?? availableParallelism(),
          queue: flags.queue,
          nodeOptions: childNodeOptions(url, flags.nodeOption ?? []),
          timing: { ...(flags.lockDuration === undefined ? {} : { lockDuration: flags.lockDuration }), ...(flags.stalledInterval === undefined ? {} : { stalledInterval: flags.stalledInterval }) },
          log,
          verbose: flags.verbose === true,
          signal: starting.signal,
        });
      } catch (error) {
        if (starting.signal.aborted) return log('procpool worker: stopped before it served');
        if (error instanceof TypeError) throw new UsageError(error.message);
        // Redis it cannot use (Redis Cluster): the reason, without a stack.
        if (error instanceof Error && error.message.startsWith('procpool worker: ')) {
          process.stderr.write(`${error.message}\n`);
          process.exitCode = exitCodes.failed;
          return;
        }
        throw error;
      }
      await stopped;
      if (server === undefined) return;
      log(`procpool worker: stopped after ${server.served.chunks} chunks (${server.served.items} items, ${server.served.reruns} run again after a lost worker)`);
    });
}
