/**
 * Names of the pool's internal entry points, shared with the command line
 * but kept off the public surface.
 */

/** `pool[settleEach](task, items, options, { ordered, spread })`: every item's outcome, going on past failures. */
export const settleEach: unique symbol = Symbol('procpool.settleEach');
