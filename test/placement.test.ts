/**
 * Where chunks go among children, as pure functions: how deep a child is
 * kept fed (by chunk time and payload size), how many chunks may be in
 * flight, which child takes the next one.
 */
import { describe, expect, it } from 'vitest';
import { capacityOf, pickChild, startingEmpty, type Placed } from '../src/local/placement.js';
import { approxBytes, depthFor } from '../src/local/sizing.js';

const all = (): boolean => true;

describe('depth: chunks kept in flight on one child', () => {
  it('by chunk time: unknown or slow one at a time, tiny ones deep', () => {
    expect(depthFor(undefined)).toBe(1);
    expect(depthFor(10)).toBe(1);
    expect(depthFor(2)).toBe(2);
    expect(depthFor(0.5)).toBe(4);
    expect(depthFor(0.05)).toBe(16);
  });

  it('big payloads go one or two at a time however fast their chunks run', () => {
    expect(depthFor(0.05, 1024 * 1024)).toBe(1);
    expect(depthFor(0.05, 100 * 1024)).toBe(2);
    expect(depthFor(0.05, 1000)).toBe(16);
  });

  it('approxBytes counts binary data and strings at the top of items and tuples', () => {
    const mib = new Uint8Array(1024 * 1024);
    expect(approxBytes([mib], false)).toBe(1024 * 1024);
    expect(approxBytes([[mib, 'abcd']], true)).toBe(1024 * 1024 + 4);
    expect(approxBytes([new ArrayBuffer(100)], false)).toBe(100);
    expect(approxBytes([1, 2, 3], false)).toBe(24);
  });
});

describe('placement among children', () => {
  const child = (state: Placed['state'], load: number): Placed => ({ state, load });

  it('at start-up (no child ready) starting children take work', () => {
    expect(capacityOf([child('starting', 0), child('starting', 0)], all, 4)).toBe(8);
    expect(pickChild([child('starting', 1), child('starting', 0)], all, 4)?.load).toBe(0);
  });

  it('once one child is ready, a starting one counts only for what it holds', () => {
    const ready = child('ready', 0);
    expect(capacityOf([ready, child('starting', 0)], all, 4)).toBe(4);
    expect(capacityOf([ready, child('starting', 1)], all, 4)).toBe(5);
    expect(pickChild([child('starting', 0), ready], all, 4)).toBe(ready);
  });

  it('a ready child at depth yields to the least loaded usable one; unusable children never count', () => {
    const full = child('ready', 4);
    const starting = child('starting', 0);
    expect(pickChild([full, starting], all, 4)).toBe(starting);
    expect(capacityOf([full, child('ready', 0)], (c) => c !== full, 4)).toBe(4);
    expect(startingEmpty([starting, child('starting', 2), full], all)).toBe(1);
  });
});
