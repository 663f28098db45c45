/**
 * Names of the pool's internal entry points, shared with the command line
 * but kept off the public surface.
 */

/** `pool[settleEach](task, items, options, { ordered, spread })`: every item's outcome, going on past failures. */
export const settleEach: unique symbol = Symbol('procpool.settleEach');

/** `pool[lifecycle]()`: whether the pool still takes work ('running'), or why not. */
export const lifecycle: unique symbol = Symbol('procpool.lifecycle');

/** `pool[growTo](n)`: raises the pool's most children to `n` (a shared pool asked for more). */
export const growTo: unique symbol = Symbol('procpool.growTo');

/** `pool[taskNames]()`: the names of the module's exported functions, once a runner has loaded it. */
export const taskNames: unique symbol = Symbol('procpool.taskNames');
