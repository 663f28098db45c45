/**
 * The Pool: Python's multiprocessing.Pool for Node.
 *
 *   caller ──► pool.starmap('demo', items)        validate, resolve the task
 *                │  engine/batch-call, imap-call    a Call per call: settles once
 *                ▼
 *              Scheduler (p-queue)                  pending chunks, FIFO; a job is a lease
 *                │  Backend.run(chunk)              on the backend's capacity
 *                ▼
 *              local/ChildSet ──► Child (execa, raw IPC) ──► worker/entry.ts
 *                │  start, items…, done              outcomes by position
 *                ▼
 *              results placed by index ──► Promise<R[]> / AsyncResult / async iterator
 *
 * src/ARCHITECTURE.md says who owns what.
 */
import type { Readable } from 'node:stream';
import { AsyncResult } from './async-result.js';
import { BatchCall, type CallContext } from './engine/batch-call.js';
import { Signals } from './engine/signals.js';
import { ImapCall, type Settled } from './engine/imap-call.js';
import { Registry } from './engine/registry.js';
import { Room, type Reservation } from './engine/room.js';
import { Scheduler } from './engine/scheduler.js';
import { PoolClosedError, PoolStateError } from './errors.js';
import { growTo, lifecycle, settleEach, taskNames } from './internal.js';
import type { BackendFactory, PoolBackend } from './engine/backend.js';
import { ChildSet } from './local/child-set.js';
import { typeScriptFlags } from './node-flags.js';
import type { SpawnPort } from './local/spawn.js';
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
import { Counters, type PoolStats } from './stats.js';
import { TaskResolver, moduleUrl } from './task-ref.js';
import { refuseSelfPool } from './one-file.js';
import { resolveCloseOptions, type CloseOptions } from './close-options.js';
import type { MaybeAsyncIterable, TaskArgs, TaskItem, TaskRef, TaskResult, UntypedModule } from './types.js';

/** `args` may be left out only when the task takes no required arguments. */
type ApplyRest<A extends unknown[], O> = [] extends A ? [args?: A, options?: O] : [args: A, options?: O];

type State = 'running' | 'closed' | 'terminated';

/** A pool of child processes running the exported functions of one task module. */
export class Pool<M = UntypedModule> {
  readonly #options: ResolvedPoolOptions;
  readonly #backend: PoolBackend;
  readonly #scheduler: Scheduler;
  readonly #room: Room;
  readonly #registry: Registry;
  readonly #tasks: TaskResolver;
  readonly #counters = new Counters();
  readonly #context: CallContext;
  #state: State = 'running';
  #finished: Promise<void> | undefined;
  #defaults: ResolvedCallOptions | undefined;
  #broken = false;

  /** Starts `processes` children that load `module` (a path, a `file:` URL string or a URL). */
  constructor(module: string | URL, options?: PoolOptions<M>);
  /** @internal Tests start scripted fake children through `spawn`; `{ backend }` runs chunks elsewhere (procpool/cluster). */
  constructor(module: string | URL, options: PoolOptions<M> | undefined, spawn: SpawnPort | { backend: BackendFactory });
  constructor(module: string | URL, options?: PoolOptions<M>, spawn?: SpawnPort | { backend: BackendFactory }) {
    const url = moduleUrl(module);
    // A child loading `url` that makes a pool of it: a one-file program without a main guard.
    refuseSelfPool(url);
    const resolved = resolvePoolOptions(options);
    const loader = typeScriptFlags(url, resolved.nodeOptions);
    this.#options = loader.length === 0 ? resolved : Object.freeze({ ...resolved, nodeOptions: Object.freeze([...loader, ...resolved.nodeOptions]) });
    this.#backend = typeof spawn === 'object' ? spawn.backend(this.#options, url) : new ChildSet(this.#options, url, spawn);
    this.#registry = new Registry((on) => this.#backend.setDemand(on));
    // Work in flight holds the registry: close() waits for it, and it keeps the parent alive.
    let release: (() => void) | undefined;
    this.#scheduler = new Scheduler(this.#backend, this.#counters, (busy) => {
      if (busy) release = this.#registry.hold();
      else release?.();
    });
    this.#room = new Room(this.#scheduler, this.#options.maxQueue);
    this.#scheduler.onRoom(() => this.#room.changed());
    this.#backend.onChange(() => this.#checkBroken());
    this.#tasks = new TaskResolver(url, () => this.#backend.tasks(), this.#backend.tasks(false));
    const backend = this.#backend;
    this.#context = {
      scheduler: this.#scheduler,
      registry: this.#registry,
      counters: this.#counters,
      signals: new Signals(),
      // The most children now: a shared pool may have grown.
      get processes() {
        return backend.max;
      },
    };
  }

  /** `new Pool(module, options)`, resolved once every child is ready. */
  static async create<M = UntypedModule>(module: string | URL, options?: PoolOptions<M>): Promise<Pool<M>> {
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
    // Waiting for the children is work in flight: it keeps the parent alive.
    const release = this.#registry.hold();
    const ready = this.#backend.ready();
    ready.then(release, release);
    return ready;
  }

  /** Children's stdout, merged, when `stdio: 'pipe'`. */
  get stdout(): Readable | undefined {
    return this.#backend.stdout;
  }

  /** Children's stderr, merged, when `stdio: 'pipe'`. */
  get stderr(): Readable | undefined {
    return this.#backend.stderr;
  }

  /** A snapshot of the pool's state and counters. */
  get stats(): PoolStats {
    const children = this.#backend.children();
    return Object.freeze({
      processes: this.#backend.max,
      size: this.#backend.size,
      busy: this.#backend.busy,
      idle: children.filter((child) => child.idle).length,
      queued: this.#room.waiting,
      completed: this.#counters.completed,
      failed: this.#counters.failed,
      restarts: this.#backend.restarts,
      finalizerFailures: this.#backend.finalizerFailures ?? 0,
      children: children.map(({ workerId = 0, pid, items, restarts, rss }) => ({ workerId, pid, items, restarts, rss })),
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

  /**
   * Resolves once `items` more items could wait without passing `maxQueue`
   * (at once when there is room, or no limit): a server's way to slow its intake.
   */
  waitForRoom(items = 1): Promise<void> {
    if (typeof items !== 'number' || !Number.isInteger(items) || items < 0) return Promise.reject(new TypeError(`Expected \`items\` to be an integer from 0 and up, got \`${String(items)}\` (${typeof items})`));
    return this.#room.whenRoom(items);
  }

  /** @internal Whether the pool takes work, for the shared-pool registry. */
  [lifecycle](): State | 'broken' {
    return this.#backend.failure === undefined ? this.#state : 'broken';
  }

  /** @internal The module's exported functions, as the children found them. */
  [taskNames](): Promise<string[]> {
    return this.#backend.tasks();
  }

  /** @internal Raises the most children. */
  [growTo](max: number): void {
    this.#backend.growTo(max);
  }

  /**
   * No new work; queued work still runs, then the children leave.
   * `cancel`: items not yet started reject with PoolClosedError instead (a
   * call with any such item rejects); running ones finish. `timeout` (ms):
   * what still runs then is terminated.
   */
  close(options?: CloseOptions): void {
    const { cancel, timeout } = resolveCloseOptions(options);
    if (this.#state !== 'running') return;
    this.#state = 'closed';
    this.#registry.closeAll();
    if (cancel) this.#registry.cancelAll(new PoolClosedError('The pool was closed with { cancel: true } before this work started'));
    const finished = this.#registry.whenIdle().then(() => this.#backend.stop());
    this.#finished = finished;
    if (timeout !== undefined) {
      const timer = setTimeout(() => void this.terminate(), timeout);
      const clear = (): void => clearTimeout(timer);
      finished.then(clear, clear);
    }
  }

  /** After close()/terminate(): resolves when all work is done and every child has exited. */
  join(): Promise<void> {
    if (this.#finished === undefined) return Promise.reject(new PoolStateError('join() was called before close() or terminate()'));
    // Waiting for it keeps the parent alive (the registry's one ref'd handle).
    return this.#registry.join(this.#finished);
  }

  /** Kills every child now; unfinished work rejects with PoolClosedError. */
  terminate(): Promise<void> {
    if (this.#state === 'terminated') return this.#registry.join(this.#finished!);
    this.#state = 'terminated';
    // Told first: the running items' signals then say the pool was terminated, not that their calls failed.
    this.#backend.terminating?.();
    this.#registry.failAll(new PoolClosedError('The pool was terminated before this work finished'));
    this.#scheduler.drain();
    this.#finished = this.#backend.kill();
    return this.#registry.join(this.#finished);
  }

  /** `close()` then `join()`: graceful, unlike Python's `with`, which terminates. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.join();
  }

  /** A broken pool fails every open call once, and no queued chunk waits for it. */
  #checkBroken(): void {
    const failure = this.#backend.failure;
    if (failure === undefined || this.#broken) return;
    this.#broken = true;
    this.#registry.failAll(failure);
    this.#scheduler.drain();
  }

  /** Rejects calls made in the wrong state, and invalid options, as the call's own rejection. */
  #open(options: unknown, shape: CallShape): ResolvedCallOptions {
    const failure = this.#backend.failure;
    if (failure) throw failure;
    if (this.#state !== 'running') throw new PoolClosedError(`The pool is ${this.#state}: no new work is accepted`);
    if (options === undefined) return (this.#defaults ??= resolveCallOptions(undefined, this.#options.retries, shape));
    const resolved = resolveCallOptions(options, this.#options.retries, shape);
    if (resolved.onMessage !== undefined && this.#backend.messages !== true) {
      throw new TypeError('This pool does not support `onMessage`: a ClusterPool does not carry procpool/task messages from its workers yet (they would need a channel through Redis)');
    }
    return resolved;
  }

  #apply(task: unknown, args: unknown, options: unknown, shape: CallShape): Promise<unknown> {
    try {
      const resolved = this.#open(options, shape);
      if (args !== undefined && !Array.isArray(args)) throw new TypeError(`Expected \`args\` to be an array of arguments, got \`${String(args)}\` (${typeof args})`);
      const tuple = (args ?? []) as unknown[];
      return this.#withTask(task, { items: 1, chunksize: 1 }, (name) => new BatchCall(this.#context, name, [tuple], { spread: true, single: true, chunksize: 1 }, resolved).promise);
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
    if (resolved.chunksize === undefined) {
      const sizing = this.#backend.sized?.();
      if (sizing !== undefined) await sizing;
    }
    const chunksize = resolved.chunksize ?? defaultChunksize(list.length, this.#backend.max);
    return this.#withTask(task, { items: list.length, chunksize }, (name) => new BatchCall(this.#context, name, list, { spread, single: false, chunksize }, resolved).promise as Promise<unknown[]>);
  }

  #imap(task: unknown, items: unknown, options: unknown, ordered: boolean, spread: boolean, settle = false): AsyncIterableIterator<unknown> {
    const begin = async (): Promise<{ task: string; options: ResolvedCallOptions }> => {
      // Checked when iteration starts: a bad call rejects the first next().
      const resolved = this.#open(options, { chunked: true, async: false });
      return { task: await this.#withTask(task, undefined, (name) => Promise.resolve(name)), options: resolved };
    };
    return new ImapCall(this.#context, items, { ordered, spread, settle }, begin);
  }

  /**
   * Admits the call (`room`: its items, for maxQueue; nothing of a refused
   * call is queued) and runs `run` with the task's export name. While the
   * name is looked up the call holds its place in the queue (a reservation)
   * and counts as work in flight (close() waits for it, the parent stays
   * alive), until the run has queued its chunks.
   */
  #withTask<T>(task: unknown, room: { items: number; chunksize: number } | undefined, run: (name: string) => Promise<T>): Promise<T> {
    const known = this.#tasks.known(task);
    const reservation: Reservation | undefined = room && this.#room.admit(room.items, room.chunksize, known === undefined);
    if (known !== undefined) return run(known);
    const release = this.#registry.hold();
    return this.#tasks
      .resolve(task)
      .then((name) => {
        try {
          return run(name);
        } finally {
          // After the run queued its chunks: they count from now on.
          reservation?.();
        }
      })
      .finally(() => {
        reservation?.();
        release();
      });
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
