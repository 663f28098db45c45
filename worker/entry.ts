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
import { droppedByFailure, noteFailure } from './call-stops.js';
import { locateSyntaxError } from './syntax-error.js';
import { chunkStopped, enterItem, installTaskContext, leaveItem, stopChunk } from './task-context.js';
import { finalize, type Final } from './final.js';
import { collectTasks, exported, type TaskFn } from './exports.js';

// Loaded when first needed, off every child's start-up path.
type ErrorCodec = typeof import('../src/error-codec.js');
let codec: ErrorCodec | undefined;
const codecLoading = (): Promise<ErrorCodec> => import('../src/error-codec.js').then((loaded) => (codec = loaded));

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
/** The channel: open, or let go of by a task (process.disconnect) and closing once its last message is written. */
let channel: 'open' | 'letting go' = 'open';
/** The chunk running now (between its start and its done). */
let runningId: number | undefined;
/** The finalizer, once the module has loaded. */
let final: Final | undefined;
/** A chunk's outcomes not yet reported. */
let report: ItemsMessage | undefined;

function post(message: ChildMessage): void {
  if (channel === 'open') send!(message);
}
const context = installTaskContext(post);

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

/**
 * Sends the outcomes not yet reported; a value that cannot be cloned becomes
 * that item's failure. `timed`: see postOutcomes.
 */
function flush(timed = false): Promise<void> | undefined {
  const message = report;
  if (message === undefined || message.values.length === 0) return undefined;
  report = { type: 'procpool:items', id: message.id, from: message.from + message.values.length, values: [], failures: [] };
  return postOutcomes(message, timed);
}

/**
 * Sends outcomes. For a timed chunk (the parent times each item) the end of
 * its items is marked first, with a tiny message that the parent reads
 * before the outcomes cross: their transfer is never charged to an item.
 * The one rule for waiting on a write: the returned promise resolves once
 * the outcomes are written, and what comes next starts only then,
 * - for a chunk's done, always: a task of the next chunk that ends the
 *   process (process.exit) would drop a done still queued in the channel;
 * - for a timed item, when the channel could not take them at once (a big
 *   result): the next item is not charged for the transfer.
 */
function postOutcomes(message: ItemsMessage | Extract<ChildMessage, { type: 'procpool:done' }>, timed = false): Promise<void> | undefined {
  if (timed) post({ type: 'procpool:ended', id: message.id, count: message.from + message.values.length });
  const done = message.type === 'procpool:done';
  let written: Promise<void> | undefined;
  const sendOnce = (): void => {
    if (channel !== 'open') return;
    if (!timed && !done) return void send!(message);
    let resolve!: () => void;
    const pending = new Promise<void>((settle) => (resolve = settle));
    // A timed item's message the channel took at once (its backlog is small) is not waited for.
    if (!send!(message, undefined, undefined, () => resolve()) || done) written = pending;
  };
  try {
    sendOnce();
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
    sendOnce();
  }
  return written;
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

async function init(message: InitMessage): Promise<void> {
  try {
    const loading = (message.module === preloaded?.url ? preloaded.loading : import(message.module)).catch((error: unknown) => {
      throw locateSyntaxError(error, message.module);
    });
    if (message.module !== preloaded?.url) context.loading = message.module;
    const loaded = collectTasks((await loading.finally(() => (context.loading = undefined))) as Record<string, unknown>);
    memoryLimit = message.memoryLimit;
    moduleUrl = message.module;
    const finalizer = message.finalizer === undefined ? undefined : exported(loaded, 'Finalizer', message.finalizer, message.sources.finalizer, message.module);
    if (message.initializer !== undefined) {
      const initializer = exported(loaded, 'Initializer', message.initializer, message.sources.initializer, message.module);
      await initializer(...message.initArgs);
    }
    if (finalizer !== undefined) final = { fn: finalizer, args: message.finalArgs, timeout: message.finalTimeout, name: message.finalizer! };
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
    // Asked to stop (procpool/task's abortSignal): the items after the running one do not start.
    if (chunkStopped(id)) break;
    let failure: WireFailure | undefined;
    let value: unknown;
    if (fn === undefined) failure = { unknownTask: { task: message.task, module: moduleUrl, exports: [...tasks!.keys()] } };
    else {
      enterItem(id, index);
      try {
        value = spread ? fn(...(args[index] as unknown[])) : fn(args[index]);
        if (isThenable(value)) value = await value;
      } catch (error) {
        failure = await thrown(error);
      }
      leaveItem();
    }
    record(value, failure);
    // An item stopped through its signal is no failure of its call as the parent sees it (its loss may be uncertain and run again).
    if (failure !== undefined && !chunkStopped(id)) noteFailure(message, index);
    if (index === args.length - 1) break;
    if (failure !== undefined && stopAtError) break;
    // Past maxMemoryPerChild: stop here; the parent sends the rest elsewhere and replaces this child.
    if (memoryLimit !== Number.POSITIVE_INFINITY && residentMemory() > memoryLimit) {
      overLimit = true;
      break;
    }
    if (exact) await flush(timed);
    else if (timed || index + 1 >= nextCheck) {
      const now = performance.now();
      if (now - reportedAt >= reportEveryMs) {
        if (timed) await flush(true);
        else flush();
        reportedAt = performance.now();
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
  const next = head === undefined || skipped.has(head.id) || overLimit || droppedByFailure(head) ? undefined : head.id;
  const written = postOutcomes({ ...rest, type: 'procpool:done', skipped: false, ms: performance.now() - started, rss, next }, timed);
  if (written !== undefined) await written;
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
  if (running || tasks === undefined || stopping || channel !== 'open') return;
  running = true;
  let announced: number | undefined;
  try {
    for (let message = queue.shift(); message !== undefined && channel === 'open'; message = queue.shift()) {
      const skip = skipped.delete(message.id) || overLimit || droppedByFailure(message);
      if (message.id !== announced) {
        if (skip) {
          post({ type: 'procpool:done', id: message.id, from: 0, values: [], failures: [], skipped: true, ms: 0, rss: 0, next: undefined });
          continue;
        }
        post({ type: 'procpool:start', id: message.id });
      }
      runningId = message.id;
      announced = await runChunk(message);
      runningId = undefined;
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
  if (final !== undefined) {
    const failure = await finalize(final);
    if (failure !== undefined) {
      process.stderr.write(`procpool: the finalizer ${final.name} failed in child ${process.pid}: ${failure instanceof Error ? (failure.stack ?? failure.message) : String(failure)}\n`);
      try {
        const message: ChildMessage = { type: 'procpool:final-error', error: (codec ?? (await codecLoading())).serializeThrown(failure) };
        // Written before the exit: process.exit drops what the channel still queues.
        await new Promise<void>((resolve) => send!(message, undefined, undefined, () => resolve()));
      } catch {
        // The parent is gone: nothing to tell.
      }
    }
  }
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
    case 'procpool:abort':
      if (message.id === runningId) stopChunk(message.id, message.why);
      else if (queue.some((queued) => queued.id === message.id)) skipped.add(message.id);
      return;
    case 'procpool:init':
      return void init(message);
  }
});

// A task that ends the process itself (process.exit) or lets go of the
// channel still reports the items it finished: flushed synchronously here.
process.on('exit', () => {
  if (report !== undefined && process.connected) flush();
});
// A task letting go of the channel: what was sent before, then the parent's
// only sign that the channel closed by choice, not with the process. The
// channel closes once that is written: closing drops messages still queued.
const disconnect = process.disconnect.bind(process);
process.disconnect = () => {
  if (channel !== 'open') return;
  if (!process.connected) return disconnect();
  if (report !== undefined) flush();
  channel = 'letting go';
  send!({ type: 'procpool:disconnecting' }, undefined, undefined, () => {
    if (process.connected) disconnect();
  });
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

context.loading = process.argv[2];
const preloaded = boot(process.argv);
// Loaded (or failed): a pool of this module made from now on is no self-reproducing top level.
void preloaded?.loading.then(
  () => (context.loading = undefined),
  () => (context.loading = undefined),
);
