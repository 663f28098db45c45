/**
 * `imap` / `imapUnordered`: a lazy call over an iterable or async iterable.
 *
 *   source ──► pump ──► chunks ──► scheduler        (a window of chunks and of items unconsumed)
 *                                      │ reports
 *   consumer ◄── next() ◄── parts ◄────┘            (input order, or completion order)
 *
 * The pump reads input on its own, apart from what the consumer yields: a
 * finished result is yielded even while the source is slow, and when the
 * source does not answer within the current turn of the event loop the
 * items already read go out as a smaller chunk. On a failure the iterator
 * yields every result before it (input order: every earlier position),
 * then throws; after an abort, `terminate()` or a broken pool it yields
 * nothing more. After `close()` it yields what was computed, then ends — or
 * throws PoolClosedError if input was left that can no longer run.
 */
import { PoolClosedError } from '../errors.js';
import type { ResolvedCallOptions } from '../options.js';
import { ProgressReporter } from '../progress.js';
import type { Attempt, Failure, Report } from './backend.js';
import { unsendableItem, type CallContext } from './batch-call.js';
import { AdaptiveChunksize, maxChunksize } from './chunk-size.js';
import { closeQuietly, isThenable, iterate } from './input.js';
import { Results, type Part, type Sent } from './imap-results.js';
import { countReport, failureError } from './outcome.js';
import { deliver, dropAttempt } from './messages.js';
import type { ChunkOwner } from './scheduler.js';
import type { SignalFollower } from './signals.js';

/** How an imap call reads and yields. */
export interface ImapShape {
  /** Yield in input order (imap) or completion order (imapUnordered). */
  ordered: boolean;
  /** Each input is an argument tuple rather than one argument. */
  spread: boolean;
  /** Yield every item's outcome as a `Settled` record and go on past failures (the command line). */
  settle: boolean;
}

/** One item's outcome, with its input position (settle mode). */
export type Settled = { index: number; ok: true; value: unknown } | { index: number; ok: false; error: unknown };

type State = 'new' | 'running' | 'ended';

const done: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/** A lazy call, and its own async iterator. */
export class ImapCall implements ChunkOwner, SignalFollower, AsyncIterableIterator<unknown> {
  task = '';
  readonly spread: boolean;
  timeout: number | undefined;
  retries = 0;
  priority = 0;
  onMessage: ((index: number, value: unknown, workerId: number) => void) | undefined;
  readonly stopAtError: boolean;
  readonly #context: CallContext;
  readonly #shape: ImapShape;
  readonly #begin: () => Promise<{ task: string; options: ResolvedCallOptions }>;
  readonly #items: unknown;
  readonly #attempts = new Set<Attempt>();
  readonly #sizes = new AdaptiveChunksize();
  #state: State = 'new';
  #starting: Promise<void> | undefined;
  #options: ResolvedCallOptions | undefined;
  #progress: ProgressReporter | undefined;
  #source: Iterator<unknown> | AsyncIterator<unknown> | undefined;
  #close: () => void = () => undefined;
  #unfollow: () => void = () => undefined;
  // The pump's side.
  #read = 0;
  #partial: unknown[] = [];
  #reading = false;
  #tick = false;
  #exhausted = false;
  #pumping = false;
  #unconsumedChunks = 0;
  /** Items of the chunks submitted and not all consumed. */
  #unconsumedItems = 0;
  #room: (() => void) | undefined;
  #poolClosed = false;
  // The consumer's side.
  readonly #results: Results;
  /** Pending next() calls waiting for a result (woken in the order they came). */
  #wake: Array<() => void> = [];
  /** The failure the call ends with, at its input position (ordered: the lowest). */
  #failure: { index: number; error: unknown } | undefined;
  /** Abort, terminate(), a broken pool: thrown at once, nothing more yielded. */
  #stopped: { error: unknown } | undefined;

  /** A chunk all of whose results were handed out: room for another. */
  readonly #consumed = (sent: Sent): void => {
    this.#unconsumedChunks--;
    this.#unconsumedItems -= sent.items;
    const room = this.#room;
    this.#room = undefined;
    room?.();
  };

  constructor(context: CallContext, items: unknown, shape: ImapShape, begin: () => Promise<{ task: string; options: ResolvedCallOptions }>) {
    this.#context = context;
    this.#items = items;
    this.#shape = shape;
    this.#begin = begin;
    this.spread = shape.spread;
    this.stopAtError = !shape.settle;
    this.#results = new Results(shape.ordered);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<unknown>> {
    if (this.#state === 'new') await (this.#starting ??= this.#start());
    for (;;) {
      if (this.#state === 'ended') return done;
      if (this.#stopped !== undefined) throw this.#end(this.#stopped.error);
      const taken = this.#results.take(this.#failure?.index ?? Number.POSITIVE_INFINITY, this.#consumed);
      if (taken !== undefined) {
        const { index, value, failure } = taken;
        this.#progress!.add(1, failure === undefined ? 0 : 1);
        if (!this.#shape.settle) return { done: false, value };
        const record: Settled = failure === undefined ? { index, ok: true, value } : { index, ok: false, error: failureError(failure) };
        return { done: false, value: record };
      }
      if (this.#failure !== undefined && (!this.#shape.ordered || this.#results.next >= this.#failure.index)) throw this.#end(this.#failure.error);
      // Closed: what was queued is all there will be, even while the input is slow.
      if ((!this.#pumping || this.#poolClosed) && this.#unconsumedChunks === 0) {
        if (this.#exhausted && this.#partial.length === 0) {
          this.#end(undefined);
          return done;
        }
        if (this.#poolClosed) throw this.#end(new PoolClosedError('The pool was closed before this imap call had read all of its input'));
      }
      await new Promise<void>((resolve) => this.#wake.push(resolve));
    }
  }

  /** Leaving the loop early: no more input is read, queued chunks are skipped. */
  async return(): Promise<IteratorResult<unknown>> {
    this.#end(undefined);
    return done;
  }

  async throw(error?: unknown): Promise<IteratorResult<unknown>> {
    throw this.#end(error);
  }

  // ChunkOwner

  wants(index: number): boolean {
    if (this.#state !== 'running' || this.#stopped !== undefined) return false;
    return this.#failure === undefined || (this.#shape.ordered && index < this.#failure.index);
  }

  attach(attempt: Attempt): void {
    this.#attempts.add(attempt);
  }

  detach(attempt: Attempt): void {
    this.#attempts.delete(attempt);
  }

  accept(tag: unknown, start: number, report: Report, ms: number): void {
    countReport(this.#context.counters, report);
    if (ms > 0) this.#sizes.observe(report.values.length, ms);
    if (!this.wants(start)) return;
    let values = report.values;
    let failed: Map<number, Failure> | undefined;
    if (report.failures.length > 0) {
      failed = new Map(report.failures);
      if (!this.#shape.settle) {
        const at = Math.min(...failed.keys());
        this.#fail(start + at, failureError(failed.get(at)!));
        // Unordered: what finished before the failure is still yielded.
        values = values.slice(0, at);
      }
    }
    if (this.#failure !== undefined && start + values.length > this.#failure.index) values = values.slice(0, Math.max(0, this.#failure.index - start));
    const part: Part = { start, values, failed, sent: tag as Sent };
    if (values.length > 0) this.#results.add(part);
    this.#poke();
  }

  /** The call's signal aborted: nothing more is yielded, running chunks are stopped. */
  signalAborted(reason: unknown): void {
    this.#stop(reason, true);
  }

  // OpenCall

  /** terminate() or a broken pool: nothing more is yielded. */
  fail(error: unknown): void {
    this.#stop(error, false);
  }

  /** close(): no new chunks; what was submitted still runs. */
  poolClosed(): void {
    this.#poolClosed = true;
    this.#poke();
  }

  async #start(): Promise<void> {
    try {
      const { task, options } = await this.#begin();
      // return() came while the task was looked up: the call never starts, its input is never opened.
      if (this.#state !== 'new') return;
      options.signal?.throwIfAborted();
      this.#source = iterate(this.#items);
      this.task = task;
      this.timeout = options.timeout;
      this.retries = options.retries;
      this.priority = options.priority;
      const { onMessage } = options;
      if (onMessage !== undefined) this.onMessage = (index, value, workerId) => this.#state === 'running' && this.#stopped === undefined && deliver(onMessage, value, { index, workerId }, { fail: (error) => this.#stop(error, false) });
      this.#options = options;
    } catch (error) {
      this.#state = 'ended';
      throw error;
    }
    this.#progress = new ProgressReporter(this.#options.onProgress, undefined);
    this.#state = 'running';
    // Opened after close() or terminate(): halted at once (the pump then reads nothing).
    this.#close = this.#context.registry.open(this, 'may be dropped');
    if (this.#stopped !== undefined) this.#close();
    const { signal } = this.#options;
    // Held weakly: an iterator dropped half-way is collected, its signal still alive.
    if (signal !== undefined) this.#unfollow = this.#context.signals.follow(signal, this, 'may be dropped');
    void this.#pump();
  }

  /**
   * Reads input into chunks while the read-ahead has room: the one path
   * from the source to the scheduler, the window checked before every read.
   */
  async #pump(): Promise<void> {
    this.#pumping = true;
    const source = this.#source!;
    try {
      while (!this.#halted() && !this.#exhausted) {
        if (!this.#hasRoom()) {
          // What was read goes out before the pump waits: its results make the room.
          this.#submitPartial();
          await new Promise<void>((resolve) => (this.#room = resolve));
          continue;
        }
        if (this.#partial.length >= (this.#options!.chunksize ?? this.#sizes.next)) {
          this.#submitPartial();
          continue;
        }
        let next = source.next();
        if (isThenable(next)) {
          this.#reading = true;
          this.#armTick();
          next = await next;
          this.#reading = false;
        }
        if (this.#halted()) return;
        if (typeof next !== 'object' || next === null) throw new TypeError(`Expected the input iterator's next() to return an object, got \`${String(next)}\` (${next === null ? 'null' : typeof next})`);
        if (next.done) {
          this.#exhausted = true;
          this.#submitPartial();
          break;
        }
        this.#push(next.value);
      }
    } catch (error) {
      this.#reading = false;
      this.#submitPartial();
      this.#fail(this.#read, error);
    } finally {
      this.#pumping = false;
      this.#poke();
    }
  }

  /**
   * Whether one more item may be read: at most `2 × processes` chunks (the
   * one being filled counts) and `2 × processes × chunksize` items read and
   * not yet consumed, however the chunk size changes and however slowly the
   * input answers.
   */
  #hasRoom(): boolean {
    const chunks = 2 * this.#context.processes;
    const items = chunks * (this.#options!.chunksize ?? maxChunksize);
    return this.#unconsumedChunks < chunks && this.#unconsumedItems + this.#partial.length < items;
  }

  /** An item read: into the chunk being filled, or — if it cannot cross — a failure at its place. */
  #push(value: unknown): void {
    const error = unsendableItem(value, this.spread);
    if (error === undefined) {
      this.#partial.push(value);
      this.#read++;
      return;
    }
    this.#submitPartial();
    const sent: Sent = { unconsumed: 1, items: 1 };
    this.#unconsumedChunks++;
    this.#unconsumedItems++;
    this.accept(sent, this.#read++, { values: [undefined], failures: [[0, { local: error }]] }, 0);
  }

  /** When the source does not answer within this turn, the items already read go out. */
  #armTick(): void {
    if (this.#tick) return;
    this.#tick = true;
    setImmediate(() => {
      this.#tick = false;
      if (this.#reading && this.#partial.length > 0) this.#submitPartial();
    });
  }

  #submitPartial(): void {
    const args = this.#partial;
    if (args.length === 0 || this.#halted()) return;
    this.#partial = [];
    const sent: Sent = { unconsumed: args.length, items: args.length };
    this.#unconsumedChunks++;
    this.#unconsumedItems += args.length;
    this.#context.scheduler.submit(this, sent, this.#read - args.length, args);
  }

  cancelPending(error: unknown): void {
    if (this.#state !== 'running') return;
    const waiting = !this.#exhausted || this.#partial.length > 0 || this.#context.scheduler.hasQueued(this) || [...this.#attempts].some((attempt) => attempt.started === false);
    if (waiting) this.#stop(error, false);
  }

  #halted(): boolean {
    return this.#state !== 'running' || this.#stopped !== undefined || this.#failure !== undefined || this.#poolClosed;
  }

  #fail(index: number, error: unknown): void {
    if (this.#failure !== undefined && this.#failure.index <= index) return;
    this.#failure = { index, error };
    for (const attempt of this.#attempts) attempt.skip();
    this.#poke();
  }

  #stop(error: unknown, abort: boolean): void {
    if (this.#state === 'ended' || this.#stopped !== undefined) return;
    this.#stopped = { error };
    this.#context.scheduler.forget(this);
    for (const attempt of this.#attempts) {
      if (abort) attempt.abort(error);
      else attempt.skip();
    }
    this.#poke();
  }

  #poke(): void {
    const wake = this.#wake;
    this.#wake = [];
    for (const resolve of wake) resolve();
    const room = this.#room;
    this.#room = undefined;
    room?.();
  }

  /** Ends the call: skips what has not started, closes the input. Returns `error` for throwing. */
  #end(error: unknown): unknown {
    if (this.#state === 'ended') return error;
    const started = this.#state === 'running';
    this.#state = 'ended';
    if (!started) return error;
    this.#close();
    this.#unfollow();
    this.#context.scheduler.forget(this);
    this.#progress?.finish();
    for (const attempt of this.#attempts) dropAttempt(attempt);
    this.#poke();
    if (!this.#exhausted) void closeQuietly(this.#source!);
    return error;
  }
}
