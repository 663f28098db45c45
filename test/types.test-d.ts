import { describe, expectTypeOf, it } from 'vitest';
import { AsyncResult, Pool, sharedPool, type PoolOptions, type PoolStats, type WorkerExitError } from 'procpool';
import { abortSignal, emit, workerId } from 'procpool/task';
import { add, greet, label, norm, ping, type Point } from './fixtures/api-typed-tasks.js';

type Tasks = typeof import('./fixtures/api-typed-tasks.js');
const url = new URL('./fixtures/api-typed-tasks.ts', import.meta.url);
const pool = new Pool<Tasks>(url);
const untyped = new Pool(url);

describe('a pool typed by its module', () => {
  it('types results from the task name', () => {
    expectTypeOf(pool.apply('add', [1, 2])).toEqualTypeOf<Promise<number>>();
    expectTypeOf(pool.apply('greet', ['a'])).toEqualTypeOf<Promise<string>>();
    expectTypeOf(pool.apply('greet', ['a', true])).toEqualTypeOf<Promise<string>>();
    expectTypeOf(pool.apply('ping')).toEqualTypeOf<Promise<'pong'>>();
    expectTypeOf(pool.applyAsync('add', [1, 2])).toEqualTypeOf<AsyncResult<number>>();
    expectTypeOf(pool.map('norm', [{ x: 1, y: 2 }])).toEqualTypeOf<Promise<number[]>>();
    expectTypeOf(pool.mapAsync('greet', ['a', 'b'])).toEqualTypeOf<AsyncResult<string[]>>();
    expectTypeOf(pool.starmap('add', [[1, 2]])).toEqualTypeOf<Promise<number[]>>();
    expectTypeOf(pool.starmapAsync('greet', [['a', false]])).toEqualTypeOf<AsyncResult<string[]>>();
    expectTypeOf(pool.imap('greet', ['a'])).toEqualTypeOf<AsyncIterableIterator<string>>();
    expectTypeOf(pool.imapUnordered('norm', [{ x: 0, y: 0 }])).toEqualTypeOf<AsyncIterableIterator<number>>();
  });

  it('types the arguments of each task', () => {
    expectTypeOf(pool.apply<'add'>).parameter(1).toEqualTypeOf<[a: number, b: number]>();
    expectTypeOf(pool.map<'norm'>).parameter(1).toEqualTypeOf<Iterable<Point>>();
  });

  it('rejects wrong names and arguments at compile time', () => {
    // @ts-expect-error not an export
    void pool.apply('nope', []);
    // @ts-expect-error an export, but not a function
    void pool.apply('version', []);
    // @ts-expect-error wrong argument type
    void pool.apply('add', ['1', 2]);
    // @ts-expect-error too few arguments
    void pool.apply('add', [1]);
    // @ts-expect-error too many arguments
    void pool.apply('ping', [1]);
    // @ts-expect-error arguments are required
    void pool.apply('add');
    void pool.apply(
      'add',
      // @ts-expect-error spread arguments: the error is on them, not on the options after them
      1,
      2,
    );
    // @ts-expect-error an item of the wrong type
    void pool.map('norm', [{ x: 1 }]);
    // @ts-expect-error a tuple of the wrong type
    void pool.starmap('add', [[1, 'b']]);
    // @ts-expect-error an item of the wrong type
    void pool.imap('greet', [1]);
    // @ts-expect-error not an export
    void pool.imapUnordered('nope', [1]);
  });

  it('types callbacks and per-call options', () => {
    void pool.applyAsync('add', [1, 2], {
      callback: (value) => expectTypeOf(value).toEqualTypeOf<number>(),
      errorCallback: (error) => expectTypeOf(error).toEqualTypeOf<unknown>(),
    });
    void pool.mapAsync('greet', ['a'], { chunksize: 2, callback: (values) => expectTypeOf(values).toEqualTypeOf<string[]>() });
    void pool.map('greet', ['a'], { chunksize: 1, timeout: 10, signal: AbortSignal.timeout(10) });
    // @ts-expect-error chunksize is a number
    void pool.map('greet', ['a'], { chunksize: '1' });
    // @ts-expect-error apply takes no chunksize
    void pool.apply('add', [1, 2], { chunksize: 1 });
  });
});

describe('naming a task by the function itself', () => {
  it('types arguments and results from the function', () => {
    expectTypeOf(pool.apply(add, [1, 2])).toEqualTypeOf<Promise<number>>();
    expectTypeOf(pool.map(norm, [{ x: 1, y: 1 }])).toEqualTypeOf<Promise<number[]>>();
    expectTypeOf(untyped.apply(greet, ['a'])).toEqualTypeOf<Promise<string>>();
    expectTypeOf(untyped.starmap(add, [[1, 2]])).toEqualTypeOf<Promise<number[]>>();
    expectTypeOf(untyped.imap(norm, [{ x: 1, y: 1 }])).toEqualTypeOf<AsyncIterableIterator<number>>();
    // @ts-expect-error wrong argument type for add
    void untyped.apply(add, ['1', 2]);
    // @ts-expect-error wrong item type for norm
    void untyped.map(norm, [1]);
    // @ts-expect-error not a function of the typed module
    void pool.apply((s: symbol) => s, [Symbol('x')]);
  });
});

describe('an untyped pool', () => {
  it('accepts any task and arguments, and gives unknown results', () => {
    expectTypeOf(untyped.apply('anything', [1, 'two', { three: 3 }])).toEqualTypeOf<Promise<unknown>>();
    expectTypeOf(untyped.apply('noArgs')).toEqualTypeOf<Promise<unknown>>();
    expectTypeOf(untyped.map('x', [1, 'a', null])).toEqualTypeOf<Promise<unknown[]>>();
    expectTypeOf(untyped.starmap('x', [[1], ['a', 2]])).toEqualTypeOf<Promise<unknown[]>>();
    expectTypeOf(untyped.applyAsync('x')).toEqualTypeOf<AsyncResult<unknown>>();
    expectTypeOf(untyped.imap('x', [1])).toEqualTypeOf<AsyncIterableIterator<unknown>>();
  });
});

describe('the rest of the surface', () => {
  it('Pool.create carries the module type', () => {
    expectTypeOf(Pool.create<Tasks>(url)).toEqualTypeOf<Promise<Pool<Tasks>>>();
    expectTypeOf(Pool.create(url)).resolves.toEqualTypeOf<Pool>();
  });

  it('types stats, AsyncResult and the lifecycle', () => {
    expectTypeOf(pool.stats).toMatchTypeOf<PoolStats>();
    expectTypeOf(pool.stats.queued).toEqualTypeOf<number>();
    const result = pool.applyAsync('add', [1, 2]);
    expectTypeOf(result.get(10)).toEqualTypeOf<Promise<number>>();
    expectTypeOf(result.wait(10)).toEqualTypeOf<Promise<void>>();
    expectTypeOf(result.ready()).toEqualTypeOf<boolean>();
    expectTypeOf(result.successful()).toEqualTypeOf<boolean>();
    expectTypeOf(result).toMatchTypeOf<PromiseLike<number>>();
    expectTypeOf(pool.close()).toEqualTypeOf<void>();
    expectTypeOf(pool.join()).toEqualTypeOf<Promise<void>>();
    expectTypeOf(pool.terminate()).toEqualTypeOf<Promise<void>>();
    expectTypeOf<WorkerExitError['reason']>().toEqualTypeOf<'exit' | 'signal' | 'oom' | 'disconnect'>();
    // @ts-expect-error a pool takes a module path or URL
    void new Pool<Tasks>(42);
  });
});

describe('first hour: map of several arguments, typed initializer', () => {
  const typed = new Pool<Tasks>(url);

  it('map, imap and mapAsync refuse a task of two required parameters, even one whose first accepts anything', () => {
    // @ts-expect-error label needs two arguments: use starmap
    void typed.map('label', ['a']);
    // @ts-expect-error label needs two arguments: use starmap
    void typed.imap('label', ['a']);
    // @ts-expect-error label needs two arguments: use starmap
    void typed.imapUnordered('label', ['a']);
    // @ts-expect-error label needs two arguments: use starmap
    void typed.mapAsync('label', ['a']);
    // @ts-expect-error add needs two arguments: use starmap
    void typed.map('add', [1]);
    // @ts-expect-error passed as the function, on a typed pool
    void typed.map(label, ['a']);
    // @ts-expect-error passed as the function, on an untyped pool
    void untyped.mapAsync(label, ['a']);
    expectTypeOf(typed.starmap('label', [['a', 'b']])).toEqualTypeOf<Promise<string[]>>();
  });

  it('map still takes a task whose second parameter is optional', () => {
    expectTypeOf(typed.map('greet', ['a'])).toEqualTypeOf<Promise<string[]>>();
    expectTypeOf(typed.imap(greet, ['a'])).toEqualTypeOf<AsyncIterableIterator<string>>();
    expectTypeOf(untyped.map('anything', [1, 'a'])).toEqualTypeOf<Promise<unknown[]>>();
  });

  it('the initializer of a typed pool is one of its exported functions', () => {
    // @ts-expect-error not an export
    void new Pool<Tasks>(url, { initializer: 'nope' });
    // @ts-expect-error an export, but not a function
    void new Pool<Tasks>(url, { initializer: 'version' });
    // @ts-expect-error not an export
    void Pool.create<Tasks>(url, { initializer: 'nope' });
    // @ts-expect-error not an export
    void sharedPool<Tasks>(url, { initializer: 'nope' });
    expectTypeOf(new Pool<Tasks>(url, { initializer: 'ping' })).toEqualTypeOf<Pool<Tasks>>();
    expectTypeOf(sharedPool<Tasks>(url, { initializer: 'ping' })).toEqualTypeOf<Pool<Tasks>>();
  });

  it('an untyped pool takes any initializer name, and options never make it typed', () => {
    expectTypeOf(new Pool(url, { initializer: 'anything' })).toEqualTypeOf<Pool>();
    const someOptions: PoolOptions = { processes: 2, initializer: 'setup' };
    expectTypeOf(new Pool(url, { ...someOptions })).toEqualTypeOf<Pool>();
    expectTypeOf(new Pool(url, someOptions)).toEqualTypeOf<Pool>();
    expectTypeOf(Pool.create(url, { ...someOptions, initializer: 'other' })).toEqualTypeOf<Promise<Pool>>();
    expectTypeOf(sharedPool(url, someOptions)).toEqualTypeOf<Pool>();
  });
});

describe('procpool/task and the options around it', () => {
  it('abortSignal() is an AbortSignal, workerId a number, emit takes what it is typed with', () => {
    expectTypeOf(abortSignal()).toEqualTypeOf<AbortSignal>();
    expectTypeOf(workerId).toEqualTypeOf<number>();
    expectTypeOf(emit<{ done: number }>).parameter(0).toEqualTypeOf<{ done: number }>();
    // @ts-expect-error a message typed { done: number } cannot be a string
    emit<{ done: number }>('half');
  });

  it('onMessage: every call takes it; its value is unknown unless annotated, and its info is typed', () => {
    void pool.apply('add', [1, 2], {
      onMessage: (value, info) => {
        expectTypeOf(value).toEqualTypeOf<unknown>();
        expectTypeOf(info.index).toEqualTypeOf<number>();
        expectTypeOf(info.workerId).toEqualTypeOf<number>();
      },
    });
    void pool.map('norm', [{ x: 1, y: 2 }], { onMessage: (value: { done: number }) => expectTypeOf(value.done).toEqualTypeOf<number>() });
    void pool.imap('greet', ['a'], { onMessage: (value: string) => void value });
    void pool.starmapAsync('add', [[1, 2]], { onMessage: (value: number) => void value });
    // @ts-expect-error onMessage is a function
    void pool.apply('add', [1, 2], { onMessage: 'log' });
  });

  it('initializer and finalizer take an export name or the exported function; killGrace and finalTimeout are numbers', () => {
    expectTypeOf(new Pool<Tasks>(url, { initializer: ping, finalizer: 'ping', finalArgs: [], finalTimeout: 100, killGrace: 0 })).toEqualTypeOf<Pool<Tasks>>();
    // @ts-expect-error not an export
    void new Pool<Tasks>(url, { finalizer: 'nope' });
    // @ts-expect-error killGrace is milliseconds
    void new Pool<Tasks>(url, { killGrace: '1s' });
  });

  it('close() takes { cancel, timeout }; stats carry workerId and finalizerFailures', () => {
    pool.close({ cancel: true, timeout: 1000 });
    // @ts-expect-error cancel is a boolean
    pool.close({ cancel: 'yes' });
    expectTypeOf<PoolStats['children'][number]['workerId']>().toEqualTypeOf<number>();
    expectTypeOf<PoolStats['finalizerFailures']>().toEqualTypeOf<number>();
  });
});
