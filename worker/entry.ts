/**
 * The program each child runs: load the task module once, run the
 * initializer once, then run chunks one at a time, in the order received.
 * Imports nothing of the parent side but the protocol and transfer helpers:
 * its start-up cost is paid by every pool start and every replacement.
 */
import { performance } from 'node:perf_hooks';
import { DISCONNECTED_EXIT_CODE, isParentMessage, type ChildMessage, type DoneMessage, type InitMessage, type Outcome, type RunMessage } from '../src/protocol.js';
import { findUnsendable } from '../src/transfer.js';
import { startWatchdog } from './watchdog.js';

// Loaded when first needed, off every child's start-up path.
type ErrorCodec = typeof import('../src/error-codec.js');
let codec: Promise<ErrorCodec> | undefined;
const loadCodec = (): Promise<ErrorCodec> => (codec ??= import('../src/error-codec.js'));

type TaskFn = (...args: unknown[]) => unknown;

const send = process.send?.bind(process);
if (send === undefined) {
  process.stderr.write('procpool: worker/entry is started by a Pool, not run directly\n');
  process.exit(2);
}

let tasks: Map<string, TaskFn> | undefined;
const pending: RunMessage[] = [];
const cancelled = new Set<number>();
let draining = false;
let dying = false;
let stopping = false;
let watchMemory = false;
let memoryLimit = Number.POSITIVE_INFINITY;
let moduleUrl = '';
let rss = 0;
let rssAt = -Infinity;
function post(message: ChildMessage): void {
  send!(message);
}

/** Resident memory, read at most every 100 ms unless maxMemoryPerChild needs it after every chunk. */
function residentMemory(): number {
  const now = performance.now();
  if (watchMemory || now - rssAt > 100) {
    rss = process.memoryUsage.rss();
    rssAt = now;
  }
  return rss;
}

/** Reports a fatal error to the parent, then exits once it is on its way. */
async function die(type: 'procpool:init-error' | 'procpool:fatal', thrown: unknown, code: number): Promise<void> {
  if (dying) return;
  dying = true;
  process.exitCode = code;
  const exit = (): never => process.exit(code);
  setTimeout(exit, 1000).unref();
  try {
    const message: ChildMessage = { type, error: (await loadCodec()).serializeThrown(thrown) };
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
    const loading = import(message.module);
    // While the module loads: a module stuck in a synchronous loop must not outlive the parent either.
    startWatchdog();
    const mod = (await loading) as Record<string, unknown>;
    const loaded = collectTasks(mod);
    memoryLimit = message.memoryLimit;
    watchMemory = Number.isFinite(memoryLimit);
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
    void drain();
  } catch (error) {
    void die('procpool:init-error', error, 1);
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/** Runs one item; never throws. */
async function runItem(fn: TaskFn | undefined, task: string, args: unknown, spread: boolean): Promise<Outcome> {
  if (fn === undefined) return { ok: false, unknownTask: { task, module: moduleUrl, exports: [...tasks!.keys()] } };
  try {
    let value = spread ? fn(...(args as unknown[])) : fn(args);
    if (isThenable(value)) value = await value;
    return { ok: true, value };
  } catch (error) {
    return { ok: false, error: (await loadCodec()).serializeThrown(error) };
  }
}

/** A result that cannot be cloned becomes that item's error, naming where. */
function sendable(outcome: Outcome): Outcome {
  if (!outcome.ok) return outcome;
  const unsendable = findUnsendable(outcome.value, 'result');
  return unsendable === undefined ? outcome : { ok: false, unsendable };
}

/** Posts a message carrying outcomes; if one cannot be cloned, posts it again with that outcome replaced. */
function postOutcomes<T extends ChildMessage>(message: T, fix: (message: T) => T): void {
  try {
    post(message);
  } catch {
    post(fix(message));
  }
}

async function runChunk(message: RunMessage, fn: TaskFn | undefined): Promise<Outcome[]> {
  const { id, args, timed, stream } = message;
  const outcomes: Outcome[] = stream ? [] : new Array<Outcome>(args.length);
  for (let index = 0; index < args.length; index++) {
    // A streamed item's outcome tells the parent the next one starts; others say so each time.
    if (timed && (index === 0 || !stream)) post({ type: 'procpool:start', id, index });
    const outcome = await runItem(fn, message.task, args[index], message.spread);
    if (!stream) outcomes[index] = outcome;
    else postOutcomes({ type: 'procpool:item', id, index, outcome }, (item) => ({ ...item, outcome: sendable(item.outcome) }));
    // Past maxMemoryPerChild: stop here; the parent sends the rest to another child and replaces this one.
    if (watchMemory && index < args.length - 1 && residentMemory() > memoryLimit) {
      outcomes.length = stream ? 0 : index + 1;
      break;
    }
  }
  return outcomes;
}

/**
 * Sends a finished chunk at once, never held back to share a message with
 * the next: if the child dies in the next chunk, the parent must know this
 * one finished, to blame the right item.
 */
function sendDone(id: number, outcomes: Outcome[], ms: number): void {
  // Built with push: a holey array would be cloned in V8's slower sparse form.
  const values: unknown[] = [];
  const failures: DoneMessage['failures'] = [];
  for (let i = 0; i < outcomes.length; i++) {
    const outcome = outcomes[i]!;
    values.push(outcome.ok ? outcome.value : undefined);
    if (!outcome.ok) failures.push([i, outcome]);
  }
  const done: DoneMessage = { type: 'procpool:done', id, values, failures, ms, rss: residentMemory() };
  postOutcomes(done, (message) => {
    // Some value cannot be cloned: that item becomes a SerializationError naming where.
    const fixed = { ...message, values: [...message.values], failures: [...message.failures] };
    outcomes.forEach((outcome, i) => {
      const checked = sendable(outcome);
      if (checked === outcome) return;
      fixed.values[i] = undefined;
      fixed.failures.push([i, checked]);
    });
    return fixed;
  });
}

async function drain(): Promise<void> {
  if (draining || tasks === undefined) return;
  draining = true;
  try {
    for (let message = pending.shift(); message !== undefined; message = pending.shift()) {
      if (cancelled.delete(message.id)) {
        post({ type: 'procpool:done', id: message.id, values: [], failures: [], ms: 0, rss: 0, cancelled: true });
        continue;
      }
      const started = performance.now();
      const outcomes = await runChunk(message, tasks.get(message.task));
      sendDone(message.id, outcomes, performance.now() - started);
    }
  } finally {
    draining = false;
  }
}

process.on('message', (message: unknown) => {
  if (!isParentMessage(message)) return;
  if (message.type === 'procpool:run') {
    pending.push(message);
    void drain();
  } else if (message.type === 'procpool:batch') {
    pending.push(...message.messages);
    void drain();
  } else if (message.type === 'procpool:cancel') {
    if (pending.some((queued) => queued.id === message.id)) cancelled.add(message.id);
  } else if (message.type === 'procpool:stop') {
    stopping = true;
    setImmediate(() => process.exit(0));
  } else {
    void init(message);
  }
});

// The channel closed without a stop: the parent is gone or a task let go of
// it. Deferred, as exiting inside a message replay crashes Node 20.
process.on('disconnect', () => setImmediate(() => process.exit(stopping ? 0 : DISCONNECTED_EXIT_CODE)));

// Ctrl-C at a terminal reaches the whole process group: a child leaves it to
// its parent, which stops it (or, if the parent dies, execa's clean-up and
// the watchdog end it). Running items are not cut short by a keypress.
process.on('SIGINT', () => undefined);

function fatal(error: unknown): void {
  void die('procpool:fatal', error, 1);
}
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);
