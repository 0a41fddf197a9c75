// Net deltas and catch-ups of keyed tables (issue 19, "catch-up"): the merge
// of any window of consecutive batch changes, applied to the state at its
// base, gives the state at its end; catchUp(from) is such a merge (or a
// snapshot when that is smaller); past the tombstone horizon it is always a
// snapshot. Plus the cancellation rules, one by one.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { KeyedTables, applyToRows, mergeKeyedChanges, rowEntries, type KeyedChange, type TableSpec } from '../../src/engine/tables/index.js';
import { BIDS, ORDERS, applyModel, batchesArb, copyModel, sameRows, type Model } from './keyed-model.js';

const specs = new Map<string, TableSpec>([
  [BIDS.name, BIDS],
  [ORDERS.name, ORDERS],
]);
const shape = { intKeys: fc.integer({ min: 0, max: 12 }), strKeys: fc.constantFrom('o1', 'o2', 'o3', 'o4', 'o5'), bad: false, tables: [BIDS, ORDERS] };

/** Runs batches from an empty model; returns the engine, the state at each version and each version's change. */
function run(batches: { ops: readonly unknown[] }[], history = {}): { tables: KeyedTables; states: Model[]; changes: KeyedChange[]; copies: KeyedChange[] } {
  const tables = new KeyedTables({}, history);
  const states: Model[] = [new Map()];
  const changes: KeyedChange[] = [];
  const copies: KeyedChange[] = [];
  let model: Model = new Map();
  [{ ops: [] }, ...batches].forEach((b, i) => {
    const batch = (i === 0 ? { ...b, declare: [BIDS, ORDERS] } : b) as Parameters<KeyedTables['apply']>[0];
    const next = applyModel(specs, model, batch);
    if (typeof next === 'string') throw new Error(`generator made a refused batch: ${next}`);
    model = next;
    changes.push(tables.apply(batch, i + 1));
    copies.push(structuredClone(changes[changes.length - 1]!));
    states.push(copyModel(model));
  });
  return { tables, states, changes, copies };
}

function applyKeyed(state: Model, change: KeyedChange): Model {
  const out = copyModel(state);
  for (const s of change.declared) if (!out.has(s.name)) out.set(s.name, new Map());
  for (const [name, c] of change.tables) applyToRows(out.get(name)!, c);
  return out;
}

function sameModel(a: Model, b: Model): boolean {
  const names = new Set([...a.keys(), ...b.keys()]);
  for (const n of names) if (!sameRows(a.get(n) ?? new Map(), b.get(n) ?? new Map())) return false;
  return true;
}

const up = (table: string, key: number, fields: Record<string, number>) => ({ op: 'upsert' as const, table, key, fields: new Map(Object.entries(fields)) });
const del = (table: string, key: number) => ({ op: 'delete' as const, table, key });

describe('merged net deltas', () => {
  it('merged over any window, applied to the base state, give the end state', () => {
    // Guards are left out: every generated batch must be accepted.
    const noGuards = batchesArb(shape, 30, 5).map((bs) => bs.map((b) => ({ ops: b.ops.map((o) => ('guard' in o ? { ...o, guard: undefined } : o)) })));
    fc.assert(
      fc.property(noGuards, fc.nat(), fc.nat(), (batches, x, y) => {
        const { states, changes, copies } = run(batches);
        // Versions 1..n; a window (a, b] with 0 ≤ a ≤ b ≤ n.
        const n = changes.length;
        const a = x % (n + 1);
        const b = a + (y % (n + 1 - a));
        const merged = mergeKeyedChanges(changes.slice(a, b));
        expect(sameModel(applyKeyed(states[a]!, merged), states[b]!)).toBe(true);
        // Changes share field maps with the tables: no later batch (or merge) may have changed one.
        expect(changes).toEqual(copies);
      }),
      { numRuns: 400, seed: 1919 },
    );
  });

  it('catchUp from every version is exact, a delta only when smaller than the snapshot', () => {
    const noGuards = batchesArb(shape, 30, 5).map((bs) => bs.map((b) => ({ ops: b.ops.map((o) => ('guard' in o ? { ...o, guard: undefined } : o)) })));
    fc.assert(
      fc.property(noGuards, fc.integer({ min: 1, max: 12 }), (batches, maxVersions) => {
        const { tables, states } = run(batches, { maxVersions });
        const now = states.length - 1;
        for (let from = 0; from <= now; from++) {
          const plan = tables.catchUp(from);
          if (from === now) expect(plan.kind).toBe('current');
          else if (from < tables.history.horizon) expect(plan).toEqual({ kind: 'snapshot', reason: 'horizon' });
          else if (plan.kind === 'delta') {
            expect(plan.bytes).toBeLessThan(tables.snapshotBytes);
            expect(sameModel(applyKeyed(states[from]!, plan.change), states[now]!)).toBe(true);
          } else expect(plan).toMatchObject({ kind: 'snapshot', reason: 'smaller' });
        }
      }),
      { numRuns: 200, seed: 7 },
    );
  });

  it('cancellation rules relative to the base: add+delete is nothing, a base row deleted stays deleted, delete+re-add is a replace', () => {
    const t = new KeyedTables();
    t.apply({ declare: [BIDS], ops: [up('bids', 1, { q: 1 }), up('bids', 2, { q: 2, n: 1 })] }, 1);
    t.apply({ ops: [up('bids', 3, { q: 3 })] }, 2); // added…
    t.apply({ ops: [del('bids', 3), del('bids', 1)] }, 3); // …and deleted; 1 existed at base
    t.apply({ ops: [del('bids', 2)] }, 4);
    t.apply({ ops: [up('bids', 2, { q: 5 })] }, 5); // re-added: n must not survive
    t.apply({ ops: [up('bids', 4, { q: 4 }), up('bids', 4, { n: 9 })] }, 6);
    t.apply({ ops: [up('bids', 4, { q: 7 })] }, 7); // upsert after upsert
    const plan = t.catchUp(1);
    expect(plan.kind).toBe('delta');
    const rows = (plan as { change: KeyedChange }).change.tables.get('bids')!.rows;
    expect([...rows.keys()].sort()).toEqual([1, 2, 4]);
    expect(rows.get(1)).toEqual({ op: 'delete' });
    expect(rows.get(2)).toEqual({ op: 'replace', fields: new Map([['q', 5]]), existed: true });
    expect(rows.get(4)).toEqual({ op: 'replace', fields: new Map([['q', 7], ['n', 9]]), existed: false });
    // Within the window 5..7 row 2 was only upserted: an upsert of what changed.
    t.apply({ ops: [up('bids', 2, { q: 6 })] }, 8);
    expect((t.catchUp(5) as { change: KeyedChange }).change.tables.get('bids')!.rows.get(2)).toEqual({ op: 'upsert', fields: new Map([['q', 6]]) });
  });

  it('clear then upserts: clear + the rows, or per-row changes, whichever is exact and smaller', () => {
    const t = new KeyedTables();
    const book = Array.from({ length: 50 }, (_, i) => up('bids', 1000 - i, { q: i, n: 1 }));
    t.apply({ declare: [BIDS], ops: book }, 1);
    // A publisher restating its book (clear + all levels, one changed): per-row diff wins.
    const restated = t.apply({ ops: [{ op: 'clear', table: 'bids' }, ...book.map((o) => (o.key === 990 ? up('bids', 990, { q: 77, n: 1 }) : o))] }, 2);
    const r = restated.tables.get('bids')!;
    expect(r.clear).toBe(false);
    expect([...r.rows]).toEqual([[990, { op: 'upsert', fields: new Map([['q', 77]]) }]]);
    // Clearing a big book for two new levels: one clear beats 50 deletes.
    const cleared = t.apply({ ops: [{ op: 'clear', table: 'bids' }, up('bids', 5, { q: 1 })] }, 3);
    expect(cleared.tables.get('bids')!.clear).toBe(true);
    expect(rowEntries(cleared.tables.get('bids')!)).toBe(2);
    // A window across the clear keeps it: the delta from version 1 has no per-row deletes.
    const plan = t.catchUp(1);
    expect(plan.kind).toBe('delta');
    const c = (plan as { change: KeyedChange }).change.tables.get('bids')!;
    expect(c.clear).toBe(true);
    expect([...c.rows.keys()]).toEqual([5]);
    // And a batch that changes nothing costs nothing.
    const none = t.apply({ ops: [del('bids', 12345), up('bids', 5, { q: 1 })] }, 4);
    expect(none.tables.size).toBe(0);
  });
});

describe('replicas', () => {
  it('an image resets a replica exactly; it then follows net changes and serves catch-ups from the image on', () => {
    const noGuards = batchesArb(shape, 20, 5).map((bs) => bs.map((b) => ({ ops: b.ops.map((o) => ('guard' in o ? { ...o, guard: undefined } : o)) })));
    fc.assert(
      fc.property(noGuards, fc.nat(), (batches, x) => {
        const { states, changes } = run(batches);
        const at = 1 + (x % changes.length); // an image at version `at`
        const source = run(batches.slice(0, at - 1)).tables;
        const replica = new KeyedTables();
        replica.reset(structuredClone(source.image()));
        expect(replica.version).toBe(at);
        for (let v = at + 1; v <= changes.length; v++) replica.applyChange(structuredClone(changes[v - 1]!), v);
        const now = new Map([...replica.tables()].map((t) => [t.name, new Map([...t.rows()].map((r) => [r.key, r.fields]))]));
        expect(sameModel(now as Model, states[changes.length]!)).toBe(true);
        expect(replica.catchUp(at - 1)).toEqual({ kind: 'snapshot', reason: 'horizon' });
        const plan = replica.catchUp(at);
        if (plan.kind === 'delta') expect(sameModel(applyKeyed(states[at]!, plan.change), states[changes.length]!)).toBe(true);
      }),
      { numRuns: 100, seed: 3 },
    );
  });
});

describe('tombstone horizon', () => {
  it('keeps deletes up to the horizon (versions and bytes); older versions get a snapshot', () => {
    const t = new KeyedTables({}, { maxVersions: 100, maxBytes: 400 });
    t.apply({ declare: [BIDS], ops: Array.from({ length: 200 }, (_, i) => up('bids', i, { q: i })) }, 1); // bigger than the budget
    expect(t.history.horizon).toBe(1);
    expect(t.catchUp(0)).toEqual({ kind: 'snapshot', reason: 'horizon' });
    for (let v = 2; v <= 60; v++) t.apply({ ops: [del('bids', v), up('bids', 1000 + v, { q: v })] }, v);
    // ~10 B a version: the byte budget, not the version cap, sets the horizon.
    expect(t.history.bytes).toBeLessThanOrEqual(400);
    const h = t.history.horizon;
    expect(h).toBeGreaterThan(20);
    expect(h).toBeLessThan(60);
    expect(t.catchUp(h - 1)).toEqual({ kind: 'snapshot', reason: 'horizon' });
    const plan = t.catchUp(h);
    expect(plan.kind).toBe('delta');
    const rows = (plan as { change: KeyedChange }).change.tables.get('bids')!.rows;
    // Every row deleted after the horizon is a tombstone in the delta.
    for (let v = h + 1; v <= 60; v++) expect(rows.get(v)).toEqual({ op: 'delete' });
    expect(rows.size).toBe(2 * (60 - h));
    // Versions without keyed changes move nothing but the version.
    t.skip(61);
    expect(t.catchUp(60).kind).toBe('delta');
    expect((t.catchUp(60) as { change: KeyedChange }).change.tables.size).toBe(0);
    expect(t.catchUp(61)).toEqual({ kind: 'current' });
    expect(t.catchUp(62)).toEqual({ kind: 'snapshot', reason: 'ahead' });
  });
});
