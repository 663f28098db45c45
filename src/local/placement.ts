/**
 * Where chunks go among the children: how many may be in flight, which
 * child takes the next, and which starting children will absorb waiting
 * work. Pure functions over the children, for the child set.
 */
import type { ChildState } from './child.js';

/** What placement reads of a child. */
export interface Placed {
  readonly state: ChildState;
  /** Chunks sent to it and not yet ended. */
  readonly load: number;
}

/** Chunks a child may hold: one number for every child, or each child's own (its line's depth). */
export type Depth<C> = number | ((child: C) => number);

const depthOf = <C>(depth: Depth<C>, child: C): number => (typeof depth === 'number' ? depth : depth(child));

/**
 * Chunks that may be in flight: what each child may hold (never less than
 * what it holds). Starting children take work only while none is ready (at
 * start-up, so that early calls wait in their pipes): once one is ready, an
 * item never waits behind a booting replacement while a ready child could
 * run it. What starting children already hold still counts, as p-queue
 * counts it.
 */
export function capacityOf<C extends Placed>(children: Iterable<C>, usable: (child: C) => boolean, depth: Depth<C>): number {
  let ready = 0;
  let starting = 0;
  let held = 0;
  for (const child of children) {
    if (!usable(child)) continue;
    const room = Math.max(child.load, depthOf(depth, child));
    if (child.state === 'ready') ready += room;
    else {
      starting += room;
      held += child.load;
    }
  }
  return ready === 0 ? starting : ready + held;
}

/**
 * A ready child below its depth, the least loaded; else the least loaded
 * usable one (a starting child takes work into its pipe, so calls made
 * during start-up save a round trip — but never while a ready one has room).
 */
export function pickChild<C extends Placed>(children: Iterable<C>, usable: (child: C) => boolean, depth: Depth<C>): C | undefined {
  let ready: C | undefined;
  let any: C | undefined;
  for (const child of children) {
    if (!usable(child)) continue;
    if (child.state === 'ready' && child.load < depthOf(depth, child) && (ready === undefined || child.load < ready.load)) ready = child;
    if (any === undefined || child.load < any.load) any = child;
  }
  return ready ?? any;
}

/** Starting children with nothing yet: each takes a waiting chunk once ready (capacity leaves them out until then). */
export function startingEmpty<C extends Placed>(children: Iterable<C>, usable: (child: C) => boolean): number {
  let empty = 0;
  for (const child of children) if (child.state === 'starting' && child.load === 0 && usable(child)) empty++;
  return empty;
}
