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

describe('HistoryRing storage', () => {
  it('keeps every kind of value exactly, through growth and wrap-around', () => {
    const values = [0, -0, 1.5, -(2 ** 53), Number.MAX_VALUE, NaN, 12n, -9223372036854775808n, 'x', '', true, false, null, new Uint8Array([1, 2, 3])];
    const r = new HistoryRing(5);
    // Entries of 1 to 40 fields make the field log grow several times while it wraps.
    for (let v = 1; v <= 60; v++) {
      const c: Changes = new Map();
      for (let j = 0; j < 1 + ((v * 7) % 40); j++) c.set(`f${j}`, values[(v + j) % values.length]!);
      r.push(v, c);
      const last = r.mergeFrom(v - 1)!;
      expect(last.changes.size).toBe(c.size);
      for (const [k, x] of c) expect(Object.is(last.changes.get(k), x) || last.changes.get(k) === x).toBe(true);
    }
    expect(r.size).toBe(5);
  });

  it('a number written over a slot that held a string reads back as the number', () => {
    const r = new HistoryRing(2);
    for (let v = 1; v <= 10; v++) r.push(v, new Map([['a', v % 2 ? `s${v}` : v]]));
    expect(r.mergeFrom(9)!.changes).toEqual(new Map([['a', 10]]));
    expect(r.mergeFrom(8)!.changes).toEqual(new Map([['a', 10]]));
    r.push(11, new Map([['a', 's11']]));
    expect(r.mergeFrom(10)!.changes).toEqual(new Map([['a', 's11']]));
  });

  it('field names that never repeat do not pile up: the held ones stay right', () => {
    const r = new HistoryRing(3);
    for (let v = 1; v <= 5000; v++) r.push(v, new Map([[`level.${v}`, v], ['mid', v / 2]]));
    expect(r.mergeFrom(4997)!.changes).toEqual(new Map([['level.4998', 4998], ['mid', 2500], ['level.4999', 4999], ['level.5000', 5000]]));
    // The ring's own name table is bounded by what it holds (checked through its size: private, so via a cast).
    expect((r as unknown as { names: string[] }).names.length).toBeLessThanOrEqual(1024 + 6);
  });
});

describe('HistoryRing field numbers', () => {
  it('stay right when the same fields come in another order, fewer or more of them, and after renumbering', () => {
    const r = new HistoryRing(8);
    const pushes: Changes[] = [
      new Map([['bid', 1], ['ask', 2], ['last', 3]]),
      new Map([['ask', 4], ['bid', 5], ['last', 6]]),
      new Map([['last', 7]]),
      new Map([['bid', 8], ['ask', 9], ['last', 10], ['size', 11]]),
      new Map([['size', 12], ['bid', 13]]),
    ];
    pushes.forEach((c, i) => r.push(i + 1, c));
    pushes.forEach((c, i) => expect(r.mergeFrom(i)!.changes.get([...c.keys()][0]!)).toBe(pushes.slice(i).reduce<number | undefined>((acc, p) => (p.has([...c.keys()][0]!) ? (p.get([...c.keys()][0]!) as number) : acc), undefined)));
    expect(r.mergeFrom(3)!.changes).toEqual(new Map([['bid', 13], ['ask', 9], ['last', 10], ['size', 12]]));
    // Churning names force a renumbering; the usual fields keep reading back right.
    for (let v = 6; v <= 3000; v++) r.push(v, new Map([['bid', v], [`x${v}`, v]]));
    expect(r.mergeFrom(2998)!.changes).toEqual(new Map([['bid', 3000], ['x2999', 2999], ['x3000', 3000]]));
  });
});
