// Depth views (issue 19, "depth views"): for N ∈ {1, 5, 10, 50}, both sort
// directions and a field-sorted table, a client applying the view deltas to a
// plain map always holds topN(reference) — through churn outside the window,
// deletes that refill it from below, deleteRange through the top, and clear.
// Changes that leave the window as it was give no delta at all. A second
// client that gets the view deltas merged between random flushes (a rate
// tier) is exact at each flush, and the view checksum matches the reference's.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DepthView, KeyedTables, applyToRows, mergeTableChange, viewChecksum, type Key, type RowChange, type RowOp, type TableChange, type TableSpec } from '../../src/engine/tables/index.js';
import type { FieldValue, State } from '../../src/protocol/index.js';
import { ASKS, BIDS, ORDERS, applyModel, sameList, sameRows, sortedRows, topN, type Model } from './keyed-model.js';

type Meta =
  | { t: 'up'; key: number; q: number; n: number }
  | { t: 'touch'; rank: number; q: number; n: number }
  | { t: 'outside'; offset: number; q: number }
  | { t: 'delRank'; rank: number }
  | { t: 'rangeTop'; rank: number }
  | { t: 'repl'; key: number; q: number }
  | { t: 'clear' };

const small = fc.integer({ min: 0, max: 3 });
const meta: fc.Arbitrary<Meta> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('up' as const), key: fc.integer({ min: 0, max: 150 }), q: small, n: small }) },
  { weight: 6, arbitrary: fc.record({ t: fc.constant('touch' as const), rank: fc.integer({ min: 0, max: 60 }), q: small, n: small }) },
  { weight: 8, arbitrary: fc.record({ t: fc.constant('outside' as const), offset: fc.integer({ min: 0, max: 5 }), q: small }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('delRank' as const), rank: fc.integer({ min: 0, max: 12 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('rangeTop' as const), rank: fc.integer({ min: 0, max: 15 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('repl' as const), key: fc.integer({ min: 0, max: 150 }), q: small }) },
  { weight: 1, arbitrary: fc.constant({ t: 'clear' as const }) },
);

/** Turns meta ops into row ops against the reference rows as they are before the batch. */
function resolve(spec: TableSpec, rows: Map<Key, State>, metas: Meta[]): RowOp[] {
  const table = spec.name;
  const ranked = sortedRows(spec, rows).map(([k]) => k as number);
  const keys = [...rows.keys()] as number[];
  const worst = spec.order.key === 'desc' ? Math.min(0, ...keys) : Math.max(150, ...keys);
  const f = (q: number, n?: number) => new Map<string, FieldValue | null>(n === undefined ? [['q', q]] : [['q', q], ['n', n === 3 ? null : n]]);
  return metas.flatMap((m): RowOp[] => {
    switch (m.t) {
      case 'up':
        return [{ op: 'upsert', table, key: m.key, fields: f(m.q, m.n) }];
      case 'repl':
        return [{ op: 'replace', table, key: m.key, fields: f(m.q) }];
      case 'touch':
        return ranked[m.rank] === undefined ? [] : [{ op: 'upsert', table, key: ranked[m.rank]!, fields: f(m.q, m.n) }];
      case 'outside': {
        const key = spec.order.key === 'desc' ? worst - 1 - m.offset : worst + 1 + m.offset;
        return [{ op: 'upsert', table, key, fields: f(m.q) }];
      }
      case 'delRank':
        return ranked[m.rank] === undefined ? [] : [{ op: 'delete', table, key: ranked[m.rank]! }];
      case 'rangeTop': {
        const k = ranked[Math.min(m.rank, ranked.length - 1)];
        if (k === undefined) return [];
        return [spec.order.key === 'desc' ? { op: 'deleteRange', table, from: k } : { op: 'deleteRange', table, to: k }];
      }
      case 'clear':
        return [{ op: 'clear', table }];
    }
  });
}

function asMap(list: readonly (readonly [Key, State])[]): Map<Key, State> {
  return new Map(list.map(([k, f]) => [k, f]));
}

describe('depth views against topN(reference)', () => {
  for (const spec of [BIDS, ASKS]) {
    for (const depth of [1, 5, 10, 50]) {
      it(`${spec.name} (key ${spec.order.key}) at depth ${depth}`, () => {
        fc.assert(
          fc.property(
            fc.array(fc.array(meta, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 60 }),
            fc.constantFrom<readonly string[] | undefined>(undefined, ['q']),
            fc.array(fc.boolean(), { minLength: 60, maxLength: 60 }),
            fc.integer({ min: 0, max: 80 }),
            (batches, fields, flushes, fill) => {
              const tables = new KeyedTables();
              const specs = new Map([[spec.name, spec]]);
              const initial = { declare: [spec], ops: Array.from({ length: fill }, (_, i) => ({ op: 'upsert' as const, table: spec.name, key: i * 2, fields: new Map([['q', i % 4], ['n', 1]]) })) };
              let model = applyModel(specs, new Map(), initial) as Model;
              tables.apply(initial, 1);
              const view = new DepthView({ table: spec.name, depth, fields });
              const client = asMap(view.reset(tables.table(spec.name)));
              const tier = new Map(client);
              let pending: { clear: boolean; rows: Map<Key, RowChange> } = { clear: false, rows: new Map() };
              batches.forEach((metas, i) => {
                const before = topN(spec, model.get(spec.name), depth, fields);
                const batch = { ops: resolve(spec, model.get(spec.name)!, metas) };
                model = applyModel(specs, model, batch) as Model;
                const change = tables.apply(batch, i + 2);
                const delta = view.update(tables.table(spec.name)!, change.tables.get(spec.name));
                const want = topN(spec, model.get(spec.name), depth, fields);
                if (delta) applyToRows(client, delta);
                expect(sameRows(client, asMap(want))).toBe(true);
                expect(sameList(view.rows(), want)).toBe(true);
                // No delta exactly when the window (as the client sees it) did not change.
                expect(delta === undefined).toBe(sameList(before, want));
                if (delta) expect(delta.rows.size).toBeLessThanOrEqual(2 * depth);
                if (delta) mergeTableChange(pending, delta);
                if (flushes[i]) {
                  applyToRows(tier, pending);
                  pending = { clear: false, rows: new Map() };
                  expect(sameRows(tier, asMap(want))).toBe(true);
                  expect(viewChecksum([{ name: spec.name, keyType: 'int', rows: view.rows() }])).toBe(viewChecksum([{ name: spec.name, keyType: 'int', rows: want }]));
                }
              });
            },
          ),
          { numRuns: depth === 50 ? 60 : 120, seed: 42 + depth },
        );
      });
    }
  }

  it('a field-sorted (market-by-order) table: rows move when their sort fields change', () => {
    const keys = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l');
    const op: fc.Arbitrary<RowOp> = fc.oneof(
      { weight: 6, arbitrary: fc.record({ key: keys, px: fc.option(fc.integer({ min: 0, max: 4 }), { nil: null }), seq: fc.integer({ min: 0, max: 4 }), q: small }).map(({ key, px, seq, q }) => ({ op: 'upsert' as const, table: 'orders', key, fields: new Map<string, FieldValue | null>([['px', px], ['seq', seq], ['q', q]]) })) },
      { weight: 2, arbitrary: keys.map((key) => ({ op: 'delete' as const, table: 'orders', key })) },
      { weight: 1, arbitrary: fc.constant({ op: 'deleteRange' as const, table: 'orders', from: 'c', to: 'f' }) },
      { weight: 1, arbitrary: fc.constant({ op: 'clear' as const, table: 'orders' }) },
    );
    fc.assert(
      fc.property(fc.array(fc.array(op, { minLength: 1, maxLength: 5 }), { maxLength: 50 }), fc.constantFrom(1, 3, 5), (batches, depth) => {
        const tables = new KeyedTables();
        const specs = new Map([['orders', ORDERS]]);
        tables.apply({ declare: [ORDERS], ops: [] }, 1);
        let model: Model = new Map([['orders', new Map()]]);
        const view = new DepthView({ table: 'orders', depth });
        const client = asMap(view.reset(tables.table('orders')));
        batches.forEach((ops, i) => {
          model = applyModel(specs, model, { ops }) as Model;
          const change = tables.apply({ ops }, i + 2);
          const delta = view.update(tables.table('orders')!, change.tables.get('orders'));
          if (delta) applyToRows(client, delta);
          const want = topN(ORDERS, model.get('orders'), depth);
          expect(sameRows(client, asMap(want))).toBe(true);
          expect(sameList(view.rows(), want)).toBe(true);
        });
      }),
      { numRuns: 200, seed: 5 },
    );
  });

  it('the view delta: entering rows in full, evictions by key, changed view fields only, nothing for churn below', () => {
    const t = new KeyedTables();
    t.apply({ declare: [BIDS], ops: [100, 99, 98, 97, 96].map((key) => ({ op: 'upsert' as const, table: 'bids', key, fields: new Map([['q', key], ['n', 1]]) })) }, 1);
    const view = new DepthView({ table: 'bids', depth: 3, fields: ['q'] });
    view.reset(t.table('bids'));
    const step = (v: number, ops: RowOp[]): TableChange | undefined => view.update(t.table('bids')!, t.apply({ ops }, v).tables.get('bids'));
    // Below the window, or a field the view does not carry: nothing.
    expect(step(2, [{ op: 'upsert', table: 'bids', key: 96, fields: new Map([['q', 1]]) }, { op: 'upsert', table: 'bids', key: 90, fields: new Map([['q', 1]]) }])).toBeUndefined();
    expect(step(3, [{ op: 'upsert', table: 'bids', key: 99, fields: new Map([['n', 7]]) }])).toBeUndefined();
    // A new best bid: it enters in full (view fields), 98 is evicted.
    expect(step(4, [{ op: 'upsert', table: 'bids', key: 101, fields: new Map([['q', 5], ['n', 2]]) }])).toEqual({
      clear: false,
      rows: new Map<Key, RowChange>([
        [98, { op: 'delete' }],
        [101, { op: 'replace', fields: new Map([['q', 5]]), existed: false }],
      ]),
    });
    // Deleting the best refills from below; a change inside is an upsert of what changed.
    expect(step(5, [{ op: 'delete', table: 'bids', key: 101 }, { op: 'upsert', table: 'bids', key: 100, fields: new Map([['q', 6], ['n', 0]]) }])).toEqual({
      clear: false,
      rows: new Map<Key, RowChange>([
        [101, { op: 'delete' }],
        [100, { op: 'upsert', fields: new Map([['q', 6]]) }],
        [98, { op: 'replace', fields: new Map([['q', 98]]), existed: false }],
      ]),
    });
    // Clear: one clear op, not an eviction per row.
    expect(step(6, [{ op: 'clear', table: 'bids' }, { op: 'upsert', table: 'bids', key: 1, fields: new Map([['q', 1]]) }])).toEqual({
      clear: true,
      rows: new Map<Key, RowChange>([[1, { op: 'replace', fields: new Map([['q', 1]]), existed: false }]]),
    });
  });
});
