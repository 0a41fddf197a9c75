// FieldState: a topic's state as a Map whose numbers live unboxed. It must be
// a Map in every way a reader sees — values, order, size, iteration — through
// any mix of sets, deletes, re-adds and clears, for every kind of value.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FieldState } from '../../src/engine/index.js';
import type { FieldValue } from '../../src/protocol/index.js';

const value: fc.Arbitrary<FieldValue> = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(0, -0, NaN, Infinity, -Infinity, Number.MAX_VALUE, 100.25),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  fc.string(),
  fc.boolean(),
  fc.uint8Array({ maxLength: 4 }),
);
const op = fc.oneof(
  fc.record({ k: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'), v: value }),
  fc.record({ del: fc.constantFrom('a', 'b', 'c', 'd', 'e') }),
  fc.constant({ clear: true as const }),
);

const same = (a: unknown, b: unknown) => Object.is(a, b) || (a instanceof Uint8Array && a === b);

describe('FieldState', () => {
  it('property: reads exactly like a Map fed the same operations', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const m = new Map<string, FieldValue>();
        const s = new FieldState();
        for (const o of ops) {
          if ('clear' in o) (m.clear(), s.clear());
          else if ('del' in o) expect(s.delete(o.del)).toBe(m.delete(o.del));
          else (m.set(o.k, o.v), s.set(o.k, o.v));
        }
        expect(s.size).toBe(m.size);
        expect([...s.keys()]).toEqual([...m.keys()]);
        const got = [...s];
        const want = [...m];
        expect(got.length).toBe(want.length);
        got.forEach(([k, v], i) => {
          expect(k).toBe(want[i]![0]);
          expect(same(v, want[i]![1])).toBe(true);
          expect(same(s.get(k), v)).toBe(true);
          expect(s.has(k)).toBe(true);
        });
        const each: [string, FieldValue][] = [];
        s.forEach((v, k, map) => (expect(map).toBe(s), each.push([k, v])));
        expect(each.map(([k]) => k)).toEqual([...m.keys()]);
        expect([...s.values()].length).toBe(m.size);
        expect(s.get('zz')).toBeUndefined();
      }),
      { numRuns: 500, seed: 13 },
    );
  });

  it('grows past its first slots and keeps every value', () => {
    const s = new FieldState();
    for (let i = 0; i < 1000; i++) s.set(`f${i}`, i % 3 === 0 ? `s${i}` : i + 0.5);
    for (let i = 0; i < 1000; i++) expect(s.get(`f${i}`)).toBe(i % 3 === 0 ? `s${i}` : i + 0.5);
    expect(new FieldState(s)).toEqual(s);
    expect(Object.fromEntries(s).f1).toBe(1.5);
  });

  it('is an instance of Map (everything typed State takes it)', () => {
    expect(new FieldState([['a', 1]])).toBeInstanceOf(Map);
    expect(new Map(new FieldState([['a', 1], ['b', 'x']]))).toEqual(new Map<string, FieldValue>([['a', 1], ['b', 'x']]));
  });
});
