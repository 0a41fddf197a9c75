// One keyed table's storage and order: rows by rank through churn (deleted
// keys purged from the lookup map), the value order of sort fields across
// kinds, and key validation.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Table, compareValues, keyProblem, rowRank } from '../../src/engine/tables/index.js';
import type { FieldValue } from '../../src/protocol/index.js';

describe('Table', () => {
  it('stays sorted and exact while thousands of distinct keys churn through a small book (deleted keys purged)', () => {
    const t = new Table({ name: 'bids', key: 'int', order: { key: 'desc' } });
    const ref = new Map<number, number>();
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    for (let i = 0; i < 50_000; i++) {
      // A moving mid price: keys drift upward, so old ones die for good.
      const key = Math.floor(i / 10) + rnd(300);
      if (ref.has(key) && rnd(3) === 0) {
        t.delete(key);
        ref.delete(key);
      } else {
        t.set(key, new Map([['q', i]]));
        ref.set(key, i);
      }
      if (ref.size > 200) {
        const worst = Math.min(...ref.keys());
        expect(t.delete(worst)).toBe(true);
        ref.delete(worst);
      }
    }
    expect(t.size).toBe(ref.size);
    const keys = [...t.rows()].map((r) => r.key);
    expect(keys).toEqual([...ref.keys()].sort((a, b) => b - a));
    for (const [k, q] of ref) expect(t.get(k)?.fields.get('q')).toBe(q);
    expect(t.has(-1)).toBe(false);
    expect(t.delete(-1)).toBe(false);
    expect(t.rankOf(keys[3]!)).toBe(3);
    expect(t.top(2).map((r) => r.key)).toEqual(keys.slice(0, 2));
  });

  it('a field-sorted table moves a row when its sort field changes, and not otherwise', () => {
    const t = new Table({ name: 'o', key: 'string', order: { fields: [{ field: 'px', dir: 'desc' }, { field: 'seq', dir: 'asc' }], key: 'asc' } });
    t.set('a', new Map<string, FieldValue>([['px', 10], ['seq', 2]]));
    t.set('b', new Map<string, FieldValue>([['px', 10], ['seq', 1]]));
    t.set('c', new Map<string, FieldValue>([['px', 9.5], ['seq', 0]]));
    t.set('d', new Map<string, FieldValue>([['seq', 0]])); // no price: last in a desc order
    expect([...t.rows()].map((r) => r.key)).toEqual(['b', 'a', 'c', 'd']);
    t.set('c', new Map<string, FieldValue>([['px', 11n], ['seq', 9]]));
    expect([...t.rows()].map((r) => r.key)).toEqual(['c', 'b', 'a', 'd']);
    expect(t.keysIn({ from: 'b', to: 'c' }).sort()).toEqual(['b', 'c']);
  });
});

describe('orders', () => {
  it('sort values: missing < booleans < numbers (any type, by value, NaN last) < strings < bytes', () => {
    const ordered: (FieldValue | undefined)[] = [undefined, false, true, -Infinity, -2n, -1.5, 0, 1, 2n, 2.5, Infinity, NaN, '', 'a', 'b', new Uint8Array(), new Uint8Array([0]), new Uint8Array([1])];
    for (let i = 0; i < ordered.length; i++) {
      for (let j = 0; j < ordered.length; j++) expect(Math.sign(compareValues(ordered[i], ordered[j]))).toBe(Math.sign(i - j));
    }
    expect(compareValues(-0, 0)).toBe(0);
    expect(compareValues(3, 3n)).toBe(0);
  });

  it('a rank is a total order on keys in both directions', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -1e6, max: 1e6 }), { minLength: 1 }), fc.constantFrom<'asc' | 'desc'>('asc', 'desc'), (keys, dir) => {
        const rank = rowRank({ key: dir });
        const rows = [...new Set(keys)].map((key) => ({ key, fields: new Map() }));
        const sorted = [...rows].sort(rank).map((r) => r.key);
        expect(sorted).toEqual([...new Set(keys)].sort((a, b) => (dir === 'asc' ? a - b : b - a)));
      }),
    );
  });

  it('keys: safe integers or well-formed strings, never floats', () => {
    expect(keyProblem('int', 6500050)).toBeUndefined();
    expect(keyProblem('int', -42)).toBeUndefined();
    for (const bad of [1.5, NaN, 2 ** 53, -0, 5n, '5']) expect(keyProblem('int', bad)).toBeDefined();
    expect(keyProblem('string', 'ORD-1')).toBeUndefined();
    for (const bad of ['', 'x'.repeat(257), 'a\uD800b', 5]) expect(keyProblem('string', bad)).toBeDefined();
  });
});
