/** Types of tasks.mjs, for `Pool<typeof import('./tasks.mjs')>`. */
export declare function countPrimes(below: number): number;
