// The per-topic history ring: bounded, overwrites its oldest entry, and only
// ever serves a base whose every later delta it still holds.

import { describe, expect, it } from 'vitest';
import { HistoryRing } from '../../src/engine/index.js';
import type { Changes } from '../../src/protocol/index.js';

const ch = (v: number): Changes => new Map([[`f${v % 3}`, v]]);

function filled(capacity: number, from: number, to: number): HistoryRing {
  const r = new HistoryRing(capacity);
  for (let v = from; v <= to; v++) r.push(v, ch(v));
  return r;
}

describe('HistoryRing', () => {
  it('starts empty', () => {
    const r = new HistoryRing(4);
    expect(r.size).toBe(0);
    expect(r.oldestBase()).toBe(-1);
    expect(r.newestVersion()).toBe(-1);
    for (const b of [-1, 0, 1]) expect(r.covers(b)).toBe(false);
    expect(r.mergeFrom(0)).toBeUndefined();
  });

  it('holds what fits before wrapping', () => {
    const r = filled(4, 1, 3);
    expect(r.size).toBe(3);
    expect(r.oldestBase()).toBe(0);
    expect(r.newestVersion()).toBe(3);
    expect([0, 1, 2, 3].map((b) => r.covers(b))).toEqual([true, true, true, true]);
    expect(r.covers(-1)).toBe(false);
    expect(r.covers(4)).toBe(false);
  });

  it('wraps around, dropping the oldest entries', () => {
    const r = filled(3, 1, 5);
    expect(r.size).toBe(3);
    expect(r.oldestBase()).toBe(2);
    expect(r.newestVersion()).toBe(5);
    expect([1, 2, 3, 4, 5, 6].map((b) => r.covers(b))).toEqual([false, true, true, true, true, false]);
    expect(r.mergeFrom(1)).toBeUndefined();
    expect(r.mergeFrom(2)).toEqual({ changes: new Map([['f0', 3], ['f1', 4], ['f2', 5]]), version: 5, updates: 3 });
    expect(r.mergeFrom(4)).toEqual({ changes: new Map([['f2', 5]]), version: 5, updates: 1 });
    expect(r.mergeFrom(5)).toEqual({ changes: new Map(), version: 5, updates: 0 });
  });

  it('stays exact through many laps at every capacity', () => {
    for (let capacity = 1; capacity <= 9; capacity++) {
      const r = new HistoryRing(capacity);
      for (let v = 1; v <= 100; v++) {
        r.push(v, new Map([['v', v], [`at${v}`, v]]));
        const held = Math.min(v, capacity);
        expect(r.size).toBe(held);
        expect(r.newestVersion()).toBe(v);
        expect(r.oldestBase()).toBe(v - held);
        const m = r.mergeFrom(v - held)!;
        expect(m.updates).toBe(held);
        expect(m.version).toBe(v);
        expect(m.changes.get('v')).toBe(v);
        // Exactly the held versions' own fields, no stale slot.
        const own = [...m.changes.keys()].filter((k) => k.startsWith('at')).sort();
        expect(own).toEqual(Array.from({ length: held }, (_, i) => `at${v - held + 1 + i}`).sort());
        expect(r.covers(v - held - 1)).toBe(false);
      }
    }
  });

  it('with capacity 0 holds nothing and covers nothing', () => {
    const r = filled(0, 1, 10);
    expect(r.capacity).toBe(0);
    expect(r.size).toBe(0);
    expect(r.oldestBase()).toBe(-1);
    expect(r.newestVersion()).toBe(-1);
    for (let b = -1; b <= 11; b++) expect(r.covers(b)).toBe(false);
    expect(r.mergeFrom(9)).toBeUndefined();
    expect(r.mergeFrom(10)).toBeUndefined();
  });

  it.each([-1, 1.5, NaN, Infinity])('refuses capacity %s', (c) => {
    expect(() => new HistoryRing(c)).toThrow(RangeError);
  });

  it('a version gap clears the ring: it never merges across a hole', () => {
    const r = filled(8, 1, 3);
    r.push(7, ch(7));
    expect(r.size).toBe(1);
    expect(r.oldestBase()).toBe(6);
    expect(r.newestVersion()).toBe(7);
    expect(r.covers(3)).toBe(false);
    expect(r.covers(6)).toBe(true);
    expect(r.mergeFrom(3)).toBeUndefined();
    expect(r.mergeFrom(6)).toEqual({ changes: ch(7), version: 7, updates: 1 });
    r.push(8, ch(8));
    expect(r.size).toBe(2);
    expect(r.oldestBase()).toBe(6);
  });

  it.each([
    ['a repeated version', 3],
    ['an older version', 1],
    ['version 0', 0],
  ])('%s clears the ring too', (_what, v) => {
    const r = filled(8, 1, 3);
    r.push(v, ch(v));
    expect(r.size).toBe(1);
    expect(r.newestVersion()).toBe(v);
    expect(r.oldestBase()).toBe(v - 1);
  });

  it('a gap after wrapping clears the ring', () => {
    const r = filled(3, 1, 10);
    r.push(20, ch(20));
    expect(r.size).toBe(1);
    expect(r.oldestBase()).toBe(19);
    expect(r.covers(9)).toBe(false);
    for (let v = 21; v <= 25; v++) r.push(v, ch(v));
    expect(r.size).toBe(3);
    expect(r.oldestBase()).toBe(22);
    expect(r.mergeFrom(22)!.updates).toBe(3);
  });

  it('may start at any version', () => {
    const r = filled(4, 1000, 1001);
    expect(r.oldestBase()).toBe(999);
    expect(r.covers(999)).toBe(true);
    expect(r.covers(998)).toBe(false);
    expect(r.mergeFrom(999)!.updates).toBe(2);
  });

  it.each([2.5, 0.5, NaN, Infinity, -Infinity])('does not cover a base that is not a version (%s)', (b) => {
    const r = filled(8, 1, 5);
    expect(r.covers(b)).toBe(false);
    expect(r.mergeFrom(b)).toBeUndefined();
  });

  it('clear() empties it', () => {
    const r = filled(4, 1, 6);
    r.clear();
    expect(r.size).toBe(0);
    expect(r.covers(5)).toBe(false);
    r.push(7, ch(7));
    expect(r.oldestBase()).toBe(6);
  });
});
