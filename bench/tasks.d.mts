/** Types of bench/tasks.mjs (plain JavaScript, so that children load it without a loader). */
export declare function inc(x: number): number;
export declare function echo<T>(value: T): T;
export declare function fib(n: number): number;
export declare function sleepMs(ms: number): number | Promise<number>;
