/**
 * The Pool: Python's multiprocessing.Pool for Node.
 *
 *   caller ──► pool.starmap('demo', items)      validate, resolve the task
 *                │  calls.ts / imap.ts           cut into chunks
 *                ▼
 *              Dispatcher (p-queue)              one job per chunk
 *                │  takes a child with room, sends, awaits
 *                ▼
 *              Child (execa, raw IPC) ──► worker/entry.ts runs the items
 *                │  {type:'procpool:done', id, outcomes}
 *                ▼
 *              results placed by index ──► Promise<R[]> / AsyncResult / async iterator
 */
import type { Readable } from 'node:stream';
import { AsyncResult } from './async-result.js';
import { runBatch, runOne, type CallContext } from './calls.js';
import { Children } from './children.js';
import { Dispatcher } from './dispatcher.js';
import { PoolClosedError, PoolStateError } from './errors.js';
import { runImap, type ImapLease, type ImapShape, type Settled } from './imap.js';
import { settleEach } from './internal.js';
import {
  defaultChunksize,
  resolveCallOptions,
  resolvePoolOptions,
  type AsyncCallbacks,
  type CallOptions,
  type CallShape,
  type ChunkOptions,
  type PoolOptions,
  type ResolvedCallOptions,
  type ResolvedPoolOptions,
} from './options.js';
import { Counters, type ChildStats, type PoolStats } from './stats.js';
import { TaskResolver, moduleUrl } from './task-ref.js';
import type { MaybeAsyncIterable, TaskArgs, TaskItem, TaskRef, TaskResult, UntypedModule } from './types.js';

/** `args` may be left out only when the task takes no required arguments. */
type ApplyRest<A extends unknown[], O> = [] extends A ? [args?: A, options?: O] : [args: A, options?: O];

type State = 'running' | 'closed' | 'terminated';

/** A pool of child processes running the exported functions of one task module. */
export class Pool<M = UntypedModule> {
  readonly #options: ResolvedPoolOptions;
  readonly #children: Children;
  readonly #dispatcher: Dispatcher;
  readonly #tasks: TaskResolver;
  readonly #counters = new Counters();
  readonly #active = new Set<(error: unknown) => void>();
  readonly #context: CallContext;
  #idle: Array<() => void> = [];
  #state: State = 'running';
  #finished: Promise<void> | undefined;

  /** Starts `processes` children that load `module` (a path, a `file:` URL string or a URL). */
  constructor(module: string | URL, options?: PoolOptions) {
    const url = moduleUrl(module);
    this.#options = resolvePoolOptions(options);
    this.#children = new Children(this.#options, url);
    this.#dispatcher = new Dispatcher(this.#children, this.#options.processes, this.#counters);
    this.#tasks = new TaskResolver(url, () => this.#children.tasks());
    this.#context = {
      dispatcher: this.#dispatcher,
      counters: this.#counters,
      processes: this.#options.processes,
      begin: (fail) => this.#begin(fail),
    };
  }

  /** `new Pool(module, options)`, resolved once every child is ready. */
  static async create<M = UntypedModule>(module: string | URL, options?: PoolOptions): Promise<Pool<M>> {
    const pool = new Pool<M>(module, options);
    try {
      await pool.ready();
    } catch (error) {
      await pool.terminate();
      throw error;
    }
    return pool;
  }

  /** Resolves when every child has loaded the module and run the initializer; rejects with PoolBrokenError if they cannot. */
  ready(): Promise<void> {
    return this.#children.ready();
  }

  /** Children's stdout, merged, when `stdio: 'pipe'`. */
  get stdout(): Readable | undefined {
    return this.#children.stdout;
  }

  /** Children's stderr, merged, when `stdio: 'pipe'`. */
  get stderr(): Readable | undefined {
    return this.#children.stderr;
  }

  /** A snapshot of the pool's state and counters. */
  get stats(): PoolStats {
    let busy = 0;
    let idle = 0;
    const children: Array<ChildStats & { slot: number }> = [];
    for (const child of this.#children.all) {
      if (child.inFlight > 0) busy++;
      else if (child.isReady && !child.retiring) idle++;
      // (During a hand-over, a child and its starting replacement share a slot.)
      if (!child.retiring) children.push({ slot: child.slot, pid: child.pid, items: child.finished, restarts: this.#children.slotRestarts(child.slot), rss: child.rss });
    }
    return Object.freeze({
      processes: this.#options.processes,
      busy,
      idle,
      queued: this.#dispatcher.queuedItems,
      completed: this.#counters.completed,
      failed: this.#counters.failed,
      restarts: this.#children.restarts,
      children: children.sort((a, b) => a.slot - b.slot).map(({ slot: _slot, ...figures }) => figures),
      queueWait: this.#counters.queueWait.percentiles(),
      runTime: this.#counters.runTime.percentiles(),
    });
  }

  /** `task(...args)` in a child. */
  apply<K extends TaskRef<M>>(task: K, ...rest: ApplyRest<TaskArgs<M, K>, CallOptions>): Promise<TaskResult<M, K>> {
    return this.#apply(task, rest[0], rest[1], { chunked: false, async: false }) as Promise<TaskResult<M, K>>;
  }

  /** `apply`, returning an AsyncResult. */
  applyAsync<K extends TaskRef<M>>(
    task: K,
    ...rest: ApplyRest<TaskArgs<M, K>, CallOptions & AsyncCallbacks<TaskResult<M, K>>>
  ): AsyncResult<TaskResult<M, K>> {
    const options = rest[1] as (CallOptions & AsyncCallbacks<TaskResult<M, K>>) | undefined;
    const work = this.#apply(task, rest[0], options, { chunked: false, async: true }) as Promise<TaskResult<M, K>>;
    return this.#asyncResult(work, options);
  }

  /** `task(item)` for each item; results in input order. */
  map<K extends TaskRef<M>>(task: K, items: Iterable<TaskItem<M, K>>, options?: ChunkOptions): Promise<Array<TaskResult<M, K>>> {
    return this.#batch(task, items, false, options, { chunked: true, async: false }) as Promise<Array<TaskResult<M, K>>>;
  }

  /** `map`, returning an AsyncResult. */
  mapAsync<K extends TaskRef<M>>(
    task: K,
    items: Iterable<TaskItem<M, K>>,
    options?: ChunkOptions & AsyncCallbacks<Array<TaskResult<M, K>>>,
  ): AsyncResult<Array<TaskResult<M, K>>> {
    const work = this.#batch(task, items, false, options, { chunked: true, async: true }) as Promise<Array<TaskResult<M, K>>>;
    return this.#asyncResult(work, options);
  }

  /** `task(...args)` for each argument tuple; results in input order. */
  starmap<K extends TaskRef<M>>(task: K, argTuples: Iterable<TaskArgs<M, K>>, options?: ChunkOptions): Promise<Array<TaskResult<M, K>>> {
    return this.#batch(task, argTuples, true, options, { chunked: true, async: false }) as Promise<Array<TaskResult<M, K>>>;
  }

  /** `starmap`, returning an AsyncResult. */
  starmapAsync<K extends TaskRef<M>>(
    task: K,
    argTuples: Iterable<TaskArgs<M, K>>,
    options?: ChunkOptions & AsyncCallbacks<Array<TaskResult<M, K>>>,
  ): AsyncResult<Array<TaskResult<M, K>>> {
    const work = this.#batch(task, argTuples, true, options, { chunked: true, async: true }) as Promise<Array<TaskResult<M, K>>>;
    return this.#asyncResult(work, options);
  }

  /** `task(item)` for each item, read lazily; yields in input order. */
  imap<K extends TaskRef<M>>(task: K, items: MaybeAsyncIterable<TaskItem<M, K>>, options?: ChunkOptions): AsyncIterableIterator<TaskResult<M, K>> {
    return this.#imap(task, items, options, true, false) as AsyncIterableIterator<TaskResult<M, K>>;
  }

  /** `task(item)` for each item, read lazily; yields in completion order. */
  imapUnordered<K extends TaskRef<M>>(
    task: K,
    items: MaybeAsyncIterable<TaskItem<M, K>>,
    options?: ChunkOptions,
  ): AsyncIterableIterator<TaskResult<M, K>> {
    return this.#imap(task, items, options, false, false) as AsyncIterableIterator<TaskResult<M, K>>;
  }

  /**
   * @internal For the command line: every item's outcome as a `Settled`
   * record, going on past failures; `spread` reads argument tuples.
   */
  [settleEach](task: unknown, items: MaybeAsyncIterable<unknown>, options: ChunkOptions | undefined, how: { ordered: boolean; spread: boolean }): AsyncIterableIterator<Settled> {
    return this.#imap(task, items, options, how.ordered, how.spread, true) as AsyncIterableIterator<Settled>;
  }

  /** No new work; queued work still runs, then the children leave. */
  close(): void {
    if (this.#state !== 'running') return;
    this.#state = 'closed';
    this.#finished = this.#whenIdle().then(async () => {
      await this.#children.stopAll();
      this.#endStreams();
    });
  }

  /** After close()/terminate(): resolves when all work is done and every child has exited. */
  join(): Promise<void> {
    if (this.#finished === undefined) return Promise.reject(new PoolStateError('join() was called before close() or terminate()'));
    return this.#finished;
  }

  /** Kills every child now; unfinished work rejects with PoolClosedError. */
  terminate(): Promise<void> {
    if (this.#state === 'terminated') return this.#finished!;
    this.#state = 'terminated';
    const error = new PoolClosedError('The pool was terminated before this work finished');
    for (const fail of [...this.#active]) fail(error);
    this.#finished = this.#children.killAll().then(() => this.#endStreams());
    return this.#finished;
  }

  /** `close()` then `join()`: graceful, unlike Python's `with`, which terminates. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.join();
  }

  #begin(fail: (error: unknown) => void): () => void {
    const entry = (error: unknown): void => fail(error);
    this.#active.add(entry);
    if (this.#active.size === 1) this.#release = this.#children.hold();
    return () => {
      if (!this.#active.delete(entry) || this.#active.size > 0) return;
      this.#release?.();
      for (const resolve of this.#idle.splice(0)) resolve();
    };
  }

  #release: (() => void) | undefined;
  #defaults: ResolvedCallOptions | undefined;

  #whenIdle(): Promise<void> {
    if (this.#active.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #endStreams(): void {
    this.#children.stdout?.end();
    this.#children.stderr?.end();
  }

  /** Rejects calls made in the wrong state, and invalid options, as the call's own rejection. */
  #open(options: unknown, shape: CallShape): ResolvedCallOptions {
    const failure = this.#children.failure;
    if (failure) throw failure;
    if (this.#state !== 'running') throw new PoolClosedError(`The pool is ${this.#state}: no new work is accepted`);
    if (options === undefined) return (this.#defaults ??= resolveCallOptions(undefined, this.#options.retries, shape));
    return resolveCallOptions(options, this.#options.retries, shape);
  }

  #apply(task: unknown, args: unknown, options: unknown, shape: CallShape): Promise<unknown> {
    try {
      const resolved = this.#open(options, shape);
      if (args !== undefined && !Array.isArray(args)) throw new TypeError(`Expected \`args\` to be an array of arguments, got \`${String(args)}\` (${typeof args})`);
      const tuple = (args ?? []) as unknown[];
      return this.#withTask(task, (name) => runOne(this.#context, name, tuple, resolved));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async #batch(task: unknown, items: unknown, spread: boolean, options: unknown, shape: CallShape): Promise<unknown[]> {
    const resolved = this.#open(options, shape);
    if (typeof (items as Iterable<unknown> | null)?.[Symbol.iterator] !== 'function') {
      throw new TypeError(`Expected \`${spread ? 'argTuples' : 'items'}\` to be an iterable, got \`${String(items)}\` (${items === null ? 'null' : typeof items})`);
    }
    const list = [...(items as Iterable<unknown>)];
    if (spread) {
      const bad = list.findIndex((tuple) => !Array.isArray(tuple));
      if (bad >= 0) throw new TypeError(`Expected \`argTuples[${bad}]\` to be an array of arguments, got \`${String(list[bad])}\` (${typeof list[bad]})`);
    }
    const chunksize = resolved.chunksize ?? defaultChunksize(list.length, this.#options.processes);
    return this.#withTask(task, (name) => runBatch(this.#context, name, { args: list, spread }, chunksize, resolved));
  }

  #imap(task: unknown, items: unknown, options: unknown, ordered: boolean, spread: boolean, settle = false): AsyncGenerator<unknown, void, undefined> {
    const lease: ImapLease = {};
    const shape: ImapShape = { ordered, spread, settle, window: 2 * this.#options.processes };
    const open = (): ResolvedCallOptions => this.#open(options, { chunked: true, async: false });
    const resolveTask = (): Promise<string> => this.#withTask(task, (name) => Promise.resolve(name));
    // The call's own generator, not one delegating to it: a yield* layer costs each item two more promises.
    const iterator = runImap(this.#context, resolveTask, items, open, shape, lease);
    // An iterator dropped mid-way would keep join() waiting for ever: end its call when it is collected.
    this.#dropped.register(iterator, lease);
    return iterator;
  }

  readonly #dropped = new FinalizationRegistry<ImapLease>((lease) => lease.end?.());

  /**
   * Runs `run` with the task's export name. While the name is looked up the
   * call counts as active (close() waits for it, the parent stays alive),
   * until the run has registered itself.
   */
  #withTask<T>(task: unknown, run: (name: string) => Promise<T>): Promise<T> {
    const known = this.#tasks.known(task);
    if (known !== undefined) return run(known);
    const end = this.#begin(() => undefined);
    return this.#tasks.resolve(task).then(run).finally(end);
  }

  #asyncResult<T>(work: Promise<T>, options: AsyncCallbacks<T> | undefined): AsyncResult<T> {
    // Callbacks that are not functions were refused by the call's validation: never call them.
    const { callback, errorCallback } = typeof options === 'object' && options !== null ? options : ({} as AsyncCallbacks<T>);
    return new AsyncResult(work, {
      callback: typeof callback === 'function' ? callback : undefined,
      errorCallback: typeof errorCallback === 'function' ? errorCallback : undefined,
    });
  }
}
