// Conflation properties (RELIABILITY.md item 19): a merged delta is exact —
// applying it equals applying each delta in order — merging is associative,
// and deletes stay deletes. The history ring's merge obeys the same law.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { HistoryRing, applyChanges, mergeAll, mergeChanges } from '../../src/engine/index.js';
import { sameValue, type Changes, type FieldValue, type State } from '../../src/protocol/index.js';

const key = fc.constantFrom('bid', 'ask', 'last', 'size', 'b.101.25', 'a.101.5');
const value: fc.Arbitrary<FieldValue> = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  fc.string({ maxLength: 6 }),
  fc.boolean(),
  fc.uint8Array({ maxLength: 4 }),
);
const change = fc.option(value, { freq: 3, nil: null });
const changes: fc.Arbitrary<Changes> = fc.array(fc.tuple(key, change), { maxLength: 6 }).map((e) => new Map(e));
const state: fc.Arbitrary<State> = fc.array(fc.tuple(key, value), { maxLength: 6 }).map((e) => new Map(e));
const sequence = fc.array(changes, { maxLength: 12 });

/** Same fields with the same values (order does not matter); deletes compare as null. */
function sameMap(a: ReadonlyMap<string, FieldValue | null>, b: ReadonlyMap<string, FieldValue | null>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (!b.has(k) || !sameValue(v, b.get(k))) return false;
  return true;
}

const copyState = (s: State): State => new Map(s);
const copyAll = (seq: readonly Changes[]): Changes[] => seq.map((c) => new Map(c));

function applyEach(s: State, seq: readonly Changes[]): State {
  for (const c of seq) applyChanges(s, c);
  return s;
}

const RUNS = { numRuns: 2000, seed: 1909 };

describe('conflation', () => {
  it('applying mergeAll(seq) equals applying each delta in order', () => {
    fc.assert(
      fc.property(state, sequence, (s0, seq) => {
        const stepwise = applyEach(copyState(s0), seq);
        const merged = applyChanges(copyState(s0), mergeAll(seq));
        return sameMap(stepwise, merged);
      }),
      RUNS,
    );
  });

  it('merging is associative, however the sequence is split', () => {
    fc.assert(
      fc.property(sequence, sequence, sequence, (a, b, c) => {
        const flat = mergeAll([...a, ...b, ...c]);
        const left = mergeAll([mergeAll([mergeAll(a), mergeAll(b)]), mergeAll(c)]);
        const right = mergeAll([mergeAll(a), mergeAll([mergeAll(b), mergeAll(c)])]);
        return sameMap(flat, left) && sameMap(flat, right);
      }),
      RUNS,
    );
  });

  it('mergeChanges is associative on single change sets', () => {
    fc.assert(
      fc.property(changes, changes, changes, (a, b, c) => {
        const left = mergeChanges(mergeChanges(new Map(a), b), c);
        const right = mergeChanges(new Map(a), mergeChanges(new Map(b), c));
        return sameMap(left, right);
      }),
      RUNS,
    );
  });

  it('the latest value of every field wins and deletes stay deletes', () => {
    fc.assert(
      fc.property(sequence, (seq) => {
        const merged = mergeAll(seq);
        const last = new Map<string, FieldValue | null>();
        for (const c of seq) for (const [k, v] of c) last.set(k, v);
        expect(sameMap(merged, last)).toBe(true);
        for (const [k, v] of last) {
          if (v === null) {
            // A delete is kept (not dropped), so it still removes the field downstream.
            expect(merged.has(k)).toBe(true);
            expect(merged.get(k)).toBeNull();
          }
        }
      }),
      RUNS,
    );
  });

  it('a merged delete removes a field the base state held', () => {
    const merged = mergeAll([new Map([['bid', 1]]), new Map([['bid', null]])]);
    expect(merged).toEqual(new Map([['bid', null]]));
    expect(applyChanges(new Map<string, FieldValue>([['bid', 0], ['ask', 2]]), merged)).toEqual(new Map([['ask', 2]]));
    // Set after delete: the set wins.
    expect(mergeAll([new Map([['bid', null]]), new Map([['bid', 3]])])).toEqual(new Map([['bid', 3]]));
  });

  it('mergeAll leaves its inputs alone', () => {
    fc.assert(
      fc.property(sequence, (seq) => {
        const before = copyAll(seq);
        mergeAll(seq);
        return seq.every((c, i) => sameMap(c, before[i]!));
      }),
      RUNS,
    );
  });

  it('merging nothing changes nothing', () => {
    fc.assert(
      fc.property(state, (s0) => sameMap(applyChanges(copyState(s0), mergeAll([])), s0)),
      { numRuns: 200, seed: 7 },
    );
  });
});

describe('HistoryRing.mergeFrom', () => {
  it('equals applying the individual deltas from any base it covers', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), state, fc.array(changes, { minLength: 1, maxLength: 24 }), (capacity, s0, seq) => {
        const ring = new HistoryRing(capacity);
        const states: State[] = [copyState(s0)];
        seq.forEach((c, i) => {
          ring.push(i + 1, c);
          states.push(applyChanges(copyState(states[i]!), c));
        });
        const newest = seq.length;
        for (let base = 0; base <= newest + 1; base++) {
          const m = ring.mergeFrom(base);
          const shouldCover = base >= Math.max(0, newest - capacity) && base <= newest;
          expect(ring.covers(base)).toBe(shouldCover);
          if (!shouldCover) {
            expect(m).toBeUndefined();
            continue;
          }
          expect(m).toBeDefined();
          expect(m!.version).toBe(newest);
          expect(m!.updates).toBe(newest - base);
          expect(sameMap(applyChanges(copyState(states[base]!), m!.changes), states[newest]!)).toBe(true);
          expect(sameMap(m!.changes, mergeAll(seq.slice(base)))).toBe(true);
        }
      }),
      { numRuns: 1000, seed: 4242 },
    );
  });

  it('does not hand out its stored change sets (mutating a merge leaves the ring intact)', () => {
    const ring = new HistoryRing(4);
    ring.push(1, new Map([['bid', 1]]));
    ring.push(2, new Map([['ask', 2]]));
    const first = ring.mergeFrom(0)!;
    first.changes.set('bid', 99);
    first.changes.delete('ask');
    expect(ring.mergeFrom(0)!.changes).toEqual(new Map([['bid', 1], ['ask', 2]]));
    expect(ring.mergeFrom(1)!.changes).toEqual(new Map([['ask', 2]]));
  });
});
