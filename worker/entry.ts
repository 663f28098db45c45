/**
 * The program each child runs: load the task module once, run the
 * initializer once, then run chunks one at a time, in the order received.
 * It announces each chunk's start and reports finished items every few ms
 * (every item in exact mode), and flushes what it has before any exit it
 * can see coming, so that a death loses at most the running item.
 * Imports nothing of the parent side but the protocol and transfer helpers:
 * its start-up cost is paid by every pool start and every replacement.
 */
import { performance } from 'node:perf_hooks';
import type { Writable } from 'node:stream';
import { DISCONNECTED_EXIT_CODE, isParentMessage, type ChildMessage, type InitMessage, type ItemsMessage, type RunMessage, type WireFailure } from '../src/protocol.js';
import { findUnsendable } from '../src/transfer.js';
import { boot } from './boot.js';
import { locateSyntaxError } from './syntax-error.js';

// Loaded when first needed, off every child's start-up path.
type ErrorCodec = typeof import('../src/error-codec.js');
let codec: ErrorCodec | undefined;
const codecLoading = (): Promise<ErrorCodec> => import('../src/error-codec.js').then((loaded) => (codec = loaded));

type TaskFn = (...args: unknown[]) => unknown;

/** Outcomes are reported at least this often while a chunk runs (and always when it ends). */
const reportEveryMs = 4;
/** The most items between two readings of the clock in a chunk without a time limit. */
const maxStride = 64;

const send = process.send?.bind(process);
if (send === undefined) {
  process.stderr.write('procpool: worker/entry is started by a Pool, not run directly\n');
  process.exit(2);
}

let tasks: Map<string, TaskFn> | undefined;
let moduleUrl = '';
let memoryLimit = Number.POSITIVE_INFINITY;
/** Past maxMemoryPerChild: every chunk not yet started is skipped. */
let overLimit = false;
const queue: RunMessage[] = [];
const skipped = new Set<number>();
let running = false;
let dying = false;
let stopping = false;
/** A chunk's outcomes not yet reported. */
let report: ItemsMessage | undefined;

function post(message: ChildMessage): void {
  send!(message);
}

let rss = 0;
let rssAt = Number.NEGATIVE_INFINITY;
/** The reading that first crossed maxMemoryPerChild. */
let rssOverLimit = 0;

/**
 * Resident memory: read after every chunk when maxMemoryPerChild needs it,
 * else at most every 100 ms (a read costs a /proc access, ~10 µs: most of a tiny call).
 */
function residentMemory(): number {
  const now = performance.now();
  if (memoryLimit !== Number.POSITIVE_INFINITY || now - rssAt > 100) {
    rss = process.memoryUsage.rss();
    rssAt = now;
    if (rss > memoryLimit && !overLimit) rssOverLimit = rss;
  }
  return rss;
}

/** Sends the outcomes not yet reported; a value that cannot be cloned becomes that item's failure. */
function flush(): void {
  const message = report;
  if (message === undefined || message.values.length === 0) return;
  report = { type: 'procpool:items', id: message.id, from: message.from + message.values.length, values: [], failures: [] };
  postOutcomes(message);
}

function postOutcomes(message: ItemsMessage | Extract<ChildMessage, { type: 'procpool:done' }>): void {
  try {
    post(message);
  } catch {
    // Something the walk let through cannot be cloned after all: find it with the clone itself.
    for (let i = 0; i < message.values.length; i++) {
      try {
        structuredClone(message.values[i]);
      } catch (error) {
        message.values[i] = undefined;
        message.failures.push([i, { unsendable: { path: 'result', detail: `not cloneable (${error instanceof Error ? error.message : String(error)})` } }]);
      }
    }
    post(message);
  }
}

async function thrown(error: unknown): Promise<WireFailure> {
  return { error: (codec ?? (await codecLoading())).serializeThrown(error) };
}

/** Reports a fatal error to the parent (after the outcomes it has), then exits once it is on its way. */
async function die(type: 'procpool:init-error' | 'procpool:fatal', error: unknown, code: number): Promise<void> {
  if (dying) return;
  dying = true;
  process.exitCode = code;
  const exit = (): never => process.exit(code);
  setTimeout(exit, 1000).unref();
  try {
    flush();
    const message: ChildMessage = { type, error: (codec ?? (await codecLoading())).serializeThrown(error) };
    send!(message, undefined, undefined, exit);
  } catch {
    exit();
  }
}

function collectTasks(mod: Record<string, unknown>): Map<string, TaskFn> {
  const found = new Map<string, TaskFn>();
  // A CommonJS module arrives as `default`; its properties are its exports.
  const commonjs = mod.default;
  if (typeof commonjs === 'object' && commonjs !== null) {
    for (const [name, value] of Object.entries(commonjs)) if (typeof value === 'function') found.set(name, value as TaskFn);
  }
  for (const [name, value] of Object.entries(mod)) if (typeof value === 'function') found.set(name, value as TaskFn);
  return found;
}

async function init(message: InitMessage): Promise<void> {
  try {
    const loading = (message.module === preloaded?.url ? preloaded.loading : import(message.module)).catch((error: unknown) => {
      throw locateSyntaxError(error, message.module);
    });
    const loaded = collectTasks((await loading) as Record<string, unknown>);
    memoryLimit = message.memoryLimit;
    moduleUrl = message.module;
    if (message.initializer !== undefined) {
      const initializer = loaded.get(message.initializer);
      if (initializer === undefined) {
        const names = [...loaded.keys()].join(', ') || 'none';
        throw new Error(`Initializer "${message.initializer}" is not an exported function of ${message.module} (exports: ${names})`);
      }
      await initializer(...message.initArgs);
    }
    tasks = loaded;
    post({ type: 'procpool:ready', tasks: [...loaded.keys()] });
    void runQueue();
  } catch (error) {
    void die('procpool:init-error', error, 1);
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/** Records one item's outcome in the report. */
function record(value: unknown, failure: WireFailure | undefined): void {
  const out = report!;
  if (failure !== undefined) {
    out.failures.push([out.values.length, failure]);
    out.values.push(undefined);
    return;
  }
  const unsendable = findUnsendable(value, 'result');
  if (unsendable !== undefined) {
    out.failures.push([out.values.length, { unsendable }]);
    out.values.push(undefined);
  } else out.values.push(value);
}

/**
 * Runs one chunk; returns the id of the chunk its done message announced as
 * starting next. A synchronous task is called directly (no promise per
 * item); only a thenable is awaited.
 */
async function runChunk(message: RunMessage): Promise<number | undefined> {
  const { id, args, spread, stopAtError, exact, timed } = message;
  const fn = tasks!.get(message.task);
  const started = performance.now();
  let reportedAt = started;
  // Reading the clock costs about as much as a tiny item: without a time limit it is read
  // every few items, about every 0.2 ms (a timed chunk reads it after every item).
  let nextCheck = 1;
  let checkedAt = started;
  let checkedIndex = 0;
  report = { type: 'procpool:items', id, from: 0, values: [], failures: [] };
  for (let index = 0; index < args.length; index++) {
    let failure: WireFailure | undefined;
    let value: unknown;
    if (fn === undefined) failure = { unknownTask: { task: message.task, module: moduleUrl, exports: [...tasks!.keys()] } };
    else {
      try {
        value = spread ? fn(...(args[index] as unknown[])) : fn(args[index]);
        if (isThenable(value)) value = await value;
      } catch (error) {
        failure = await thrown(error);
      }
    }
    record(value, failure);
    if (index === args.length - 1) break;
    if (failure !== undefined && stopAtError) break;
    // Past maxMemoryPerChild: stop here; the parent sends the rest elsewhere and replaces this child.
    if (memoryLimit !== Number.POSITIVE_INFINITY && residentMemory() > memoryLimit) {
      overLimit = true;
      break;
    }
    if (exact) flush();
    else if (timed || index + 1 >= nextCheck) {
      const now = performance.now();
      if (now - reportedAt >= reportEveryMs) {
        flush();
        reportedAt = now;
      }
      if (!timed) {
        const perItem = (now - checkedAt) / (index + 1 - checkedIndex);
        const stride = perItem > 0 ? Math.max(1, Math.min(maxStride, Math.floor(0.2 / perItem))) : maxStride;
        checkedAt = now;
        checkedIndex = index + 1;
        nextCheck = index + 1 + stride;
      }
    }
  }
  const rest = report;
  report = undefined;
  // Once past the limit, the reading that crossed it is the one reported: the
  // parent retires the child on the same figure that made it refuse work.
  const rss = overLimit ? rssOverLimit : residentMemory();
  if (rss > memoryLimit && !overLimit) {
    overLimit = true;
    rssOverLimit = rss;
  }
  const head = queue[0];
  // Whatever comes next starts as soon as this message is out: one message instead of two.
  const next = head === undefined || skipped.has(head.id) || overLimit ? undefined : head.id;
  postOutcomes({ ...rest, type: 'procpool:done', skipped: false, ms: performance.now() - started, rss, next });
  return next;
}

/**
 * Runs queued chunks in order until none is left. A chunk announced as
 * started (in the previous done message) runs even if a skip for it arrives
 * meanwhile: the parent already counts it as started. Messages read in one
 * turn are handled before this loop resumes, so the announcement is carried
 * over as a value, never recomputed.
 */
async function runQueue(): Promise<void> {
  if (running || tasks === undefined || stopping) return;
  running = true;
  let announced: number | undefined;
  try {
    for (let message = queue.shift(); message !== undefined; message = queue.shift()) {
      const skip = skipped.delete(message.id) || overLimit;
      if (message.id !== announced) {
        if (skip) {
          post({ type: 'procpool:done', id: message.id, from: 0, values: [], failures: [], skipped: true, ms: 0, rss: 0, next: undefined });
          continue;
        }
        post({ type: 'procpool:start', id: message.id });
      }
      announced = await runChunk(message);
    }
  } finally {
    running = false;
  }
}

/** Resolves once everything written to `stream` has been handed to the system. */
function drained(stream: Writable): Promise<void> {
  return new Promise((resolve) => {
    if (stream.writableLength === 0 || stream.destroyed) resolve();
    else stream.write('', () => resolve());
  });
}

/** Leaves once stdout and stderr are flushed: a slow reader still gets all of the output. */
async function leave(): Promise<void> {
  stopping = true;
  await Promise.all([drained(process.stdout), drained(process.stderr)]);
  process.exit(0);
}

process.on('message', (message: unknown) => {
  if (!isParentMessage(message)) return;
  switch (message.type) {
    case 'procpool:run':
      queue.push(message);
      return void runQueue();
    case 'procpool:batch':
      for (const run of message.messages) queue.push(run);
      return void runQueue();
    case 'procpool:skip':
      // Only a chunk still queued can be skipped; one that started runs on.
      if (queue.some((queued) => queued.id === message.id)) skipped.add(message.id);
      return;
    case 'procpool:stop':
      return void leave();
    case 'procpool:init':
      return void init(message);
  }
});

// A task that ends the process itself (process.exit) or lets go of the
// channel still reports the items it finished: flushed synchronously here.
process.on('exit', () => {
  if (report !== undefined && process.connected) flush();
});
const disconnect = process.disconnect.bind(process);
process.disconnect = () => {
  if (process.connected) {
    if (report !== undefined) flush();
    // The parent's only sign that the channel closed by choice, not with the process.
    post({ type: 'procpool:disconnecting' });
  }
  disconnect();
};

// The channel closed without a stop: the parent is gone or a task let go of
// it. Deferred, as exiting inside a message replay crashes Node 20.
process.on('disconnect', () => setImmediate(() => process.exit(stopping ? 0 : DISCONNECTED_EXIT_CODE)));

// Ctrl-C at a terminal reaches the whole process group: a child leaves it to
// its parent, which stops it (or, if the parent dies, the orphan guard
// ends it: the kernel's parent-death signal, or the watchdog). Running items are not cut short by a keypress.
process.on('SIGINT', () => undefined);

function fatal(error: unknown): void {
  void die('procpool:fatal', error, 1);
}
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);

const preloaded = boot(process.argv);
