/**
 * The set of live children: starts them, hands out one with room for another
 * chunk, recycles the ones past their item or memory limit (the replacement
 * starts before the old one leaves), replaces the ones that die, and breaks
 * the pool — once, never a respawn loop — when children cannot start.
 */
import { PassThrough } from 'node:stream';
import { Child, type ChildHooks } from './child.js';
import type { ChildExit } from './chunk.js';
import { PoolBrokenError, PoolClosedError } from './errors.js';
import type { ResolvedPoolOptions } from './options.js';

/**
 * Chunks kept in flight on one child, by how long the task's chunks take:
 * tiny ones need feeding; long or unknown ones go one at a time, so that an
 * idle child always takes the next (no chunk waits behind a slow one).
 */
function allowance(chunkMs: number | undefined): number {
  if (chunkMs === undefined || chunkMs > 5) return 1;
  if (chunkMs > 1) return 2;
  return chunkMs > 0.2 ? 4 : maxInFlightPerChild;
}

/** Most chunks ever in flight on one child. */
export const maxInFlightPerChild = 16;

interface Waiter {
  task: string;
  resolve(child: Child): void;
  reject(error: unknown): void;
}

type State = 'running' | 'stopping' | 'broken' | 'terminated';

/** The pool's children. */
export class Children {
  readonly #options: ResolvedPoolOptions;
  readonly #moduleUrl: string;
  readonly #live = new Set<Child>();
  readonly #waiters: Waiter[] = [];
  readonly #hooks: ChildHooks;
  #state: State = 'running';
  #failure: PoolBrokenError | undefined;
  #restarts = 0;
  /** Smoothed run time of a chunk, per task: how many chunks a child is kept fed with. */
  readonly #taskMs = new Map<string, number>();
  #slotRestarts: number[];
  #readyCount = 0;
  #tasks: string[] | undefined;
  #whenTasks: Array<{ resolve(tasks: string[]): void; reject(error: unknown): void }> = [];
  #whenReady: Array<{ resolve(): void; reject(error: unknown): void }> = [];
  #whenGone: Array<() => void> = [];
  /** Children's stdout / stderr, when stdio is 'pipe'. */
  readonly stdout: PassThrough | undefined;
  readonly stderr: PassThrough | undefined;

  constructor(options: ResolvedPoolOptions, moduleUrl: string) {
    this.#options = options;
    this.#moduleUrl = moduleUrl;
    const piped = options.stdio === 'pipe';
    this.stdout = piped ? new PassThrough() : undefined;
    this.stderr = piped ? new PassThrough() : undefined;
    this.#hooks = {
      ready: (child, tasks) => this.#onReady(child, tasks),
      settled: (child) => this.#onSettled(child),
      timed: (task, ms) => this.#taskMs.set(task, ms * 0.3 + (this.#taskMs.get(task) ?? ms) * 0.7),
      exited: (child, exit) => this.#onExited(child, exit),
      stdout: this.stdout,
      stderr: this.stderr ?? process.stderr,
    };
    this.#slotRestarts = new Array<number>(options.processes).fill(0);
    for (let slot = 0; slot < options.processes; slot++) this.#spawn(slot);
  }

  /** Live children (starting, working or leaving). */
  get all(): ReadonlySet<Child> {
    return this.#live;
  }

  get restarts(): number {
    return this.#restarts;
  }

  /** Why the pool is broken, if it is. */
  get failure(): PoolBrokenError | undefined {
    return this.#failure;
  }

  /** Resolves once every first child is ready. */
  ready(): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#readyCount >= this.#options.processes || this.#state !== 'running') return Promise.resolve();
    const release = this.hold();
    return new Promise<void>((resolve, reject) => this.#whenReady.push({ resolve, reject })).finally(release);
  }

  /** The exported function names, known once a child is ready. */
  tasks(): Promise<string[]> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#tasks) return Promise.resolve(this.#tasks);
    return new Promise((resolve, reject) => this.#whenTasks.push({ resolve, reject }));
  }

  /** A child below its in-flight allowance, with a slot reserved; waits while none has one. */
  acquire(task: string, signal?: AbortSignal): Promise<Child> {
    const closed = this.#closedError();
    if (closed) return Promise.reject(closed);
    const child = this.#pick(task);
    if (child) {
      child.reserved++;
      return Promise.resolve(child);
    }
    return new Promise<Child>((resolve, reject) => {
      const waiter: Waiter = {
        task,
        resolve: (picked) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(picked);
        },
        reject: (error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      const onAbort = (): void => {
        const at = this.#waiters.indexOf(waiter);
        if (at >= 0) this.#waiters.splice(at, 1);
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /** Items `child` may still take before it is recycled. */
  room(child: Child): number {
    return this.#options.maxTasksPerChild - child.assigned;
  }

  /** Counts items handed to `child`; past maxTasksPerChild it is recycled. */
  assign(child: Child, items: number): void {
    child.assigned += items;
    if (child.assigned >= this.#options.maxTasksPerChild) this.#retire(child);
  }

  /** Stops every child once its work is done; resolves when all have exited. */
  stopAll(): Promise<void> {
    if (this.#state === 'running') this.#state = 'stopping';
    this.#rejectWaiters(new PoolClosedError());
    this.#rejectStarts(new PoolClosedError('The pool was closed before its children were ready'));
    for (const child of this.#live) child.stop();
    return this.#gone();
  }

  /** Kills every child now; resolves when all have exited. */
  killAll(): Promise<void> {
    if (this.#state !== 'broken') this.#state = 'terminated';
    this.#rejectWaiters(new PoolClosedError('The pool was terminated'));
    this.#rejectStarts(new PoolClosedError('The pool was terminated before its children were ready'));
    for (const child of this.#live) child.terminate();
    return this.#gone();
  }

  #gone(): Promise<void> {
    if (this.#live.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#whenGone.push(resolve));
  }

  #closedError(): Error | undefined {
    if (this.#failure) return this.#failure;
    if (this.#state === 'terminated') return new PoolClosedError('The pool was terminated');
    if (this.#state === 'stopping') return new PoolClosedError('The pool was closed and its children have left');
    return undefined;
  }

  /** Starts a child in `slot` (a replacement takes its predecessor's slot). */
  #spawn(slot: number): Child {
    const child = new Child(this.#options, this.#moduleUrl, this.#hooks, slot);
    child.awaited = this.#demand > 0;
    this.#live.add(child);
    return child;
  }

  #demand = 0;

  /** Work (or a `ready()`) waits: starting children keep the parent alive until it ends. */
  hold(): () => void {
    if (this.#demand++ === 0) for (const child of this.#live) child.awaited = true;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.#demand === 0) for (const child of this.#live) child.awaited = false;
    };
  }

  /** The least loaded child that can take another chunk of `task`. */
  #pick(task: string): Child | undefined {
    const limit = allowance(this.#taskMs.get(task));
    let best: Child | undefined;
    for (const child of this.#live) {
      if (child.retiring || child.isGone || child.load >= limit) continue;
      if (best === undefined || child.load < best.load || (child.isReady && !best.isReady && child.load === best.load)) best = child;
    }
    return best;
  }

  #wake(): void {
    while (this.#waiters.length > 0) {
      const child = this.#pick(this.#waiters[0]!.task);
      if (child === undefined) return;
      child.reserved++;
      this.#waiters.shift()!.resolve(child);
    }
  }

  /** ready() and the exports list, still awaited when the pool stops: they will not come. */
  #rejectStarts(error: unknown): void {
    for (const waiter of this.#whenReady.splice(0)) waiter.reject(error);
    for (const waiter of this.#whenTasks.splice(0)) waiter.reject(error);
  }

  #rejectWaiters(error: unknown): void {
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error);
  }

  /** Takes `child` out of rotation; its replacement starts now so capacity never dips. */
  #retire(child: Child): void {
    if (child.retiring) return;
    child.retiring = true;
    if (this.#state === 'running') this.#replace(child);
    child.stop();
  }

  /**
   * Past maxMemoryPerChild: the child serves on until its replacement is
   * ready, then leaves — so the pool never has fewer children to give work to.
   */
  #retireWhenReplaced(child: Child): void {
    if (child.retiring || this.#isBeingReplaced(child)) return;
    if (this.#state !== 'running') return this.#retire(child);
    this.#successors.set(this.#replace(child), child);
  }

  /** Replacements started for a child that serves on until they are ready. */
  readonly #successors = new Map<Child, Child>();

  #isBeingReplaced(child: Child): boolean {
    for (const predecessor of this.#successors.values()) if (predecessor === child) return true;
    return false;
  }

  #replace(child: Child): Child {
    this.#restarts++;
    this.#slotRestarts[child.slot]!++;
    return this.#spawn(child.slot);
  }

  /** Children replaced, per slot. */
  slotRestarts(slot: number): number {
    return this.#slotRestarts[slot] ?? 0;
  }

  #onReady(child: Child, tasks: string[]): void {
    this.#readyCount++;
    if (this.#tasks === undefined) {
      this.#tasks = tasks;
      for (const waiter of this.#whenTasks.splice(0)) waiter.resolve(tasks);
    }
    if (this.#readyCount >= this.#options.processes) for (const waiter of this.#whenReady.splice(0)) waiter.resolve();
    const predecessor = this.#successors.get(child);
    if (predecessor !== undefined) {
      this.#successors.delete(child);
      predecessor.stop();
    }
    this.#wake();
  }

  #onSettled(child: Child): void {
    if (child.rss > this.#options.maxMemoryPerChild * 1024 * 1024) this.#retireWhenReplaced(child);
    this.#wake();
  }

  #onExited(child: Child, exit: ChildExit): void {
    this.#live.delete(child);
    // One whose replacement is already starting needs no other.
    const replaced = this.#isBeingReplaced(child);
    for (const [successor, predecessor] of this.#successors) if (predecessor === child || successor === child) this.#successors.delete(successor);
    if (!exit.requested && !child.retiring && !replaced && this.#state === 'running') {
      if (!exit.wasReady && !exit.killed) this.#break(exit);
      else this.#replace(child);
    }
    this.#wake();
    if (this.#live.size === 0) for (const resolve of this.#whenGone.splice(0)) resolve();
  }

  /** Children cannot start: report it once and start no more. */
  #break(exit: ChildExit): void {
    const why = exit.cause instanceof Error ? exit.cause.message : exit.signal ? `it was killed by ${exit.signal}` : `it exited with code ${String(exit.exitCode)}`;
    this.#failure = new PoolBrokenError(`Child processes cannot start: ${why}`, {
      ...(exit.cause === undefined ? {} : { cause: exit.cause }),
      stderr: exit.stderr,
    });
    this.#state = 'broken';
    for (const waiter of this.#whenReady.splice(0)) waiter.reject(this.#failure);
    for (const waiter of this.#whenTasks.splice(0)) waiter.reject(this.#failure);
    this.#rejectWaiters(this.#failure);
    for (const other of this.#live) other.terminate();
  }
}
