// Keyed tables, batch by batch against a reference model (issue 19, "model
// test"): random batches of every op and guard over two tables (int keys by
// key; string keys by fields then key), some with bad keys or values. An
// accepted batch leaves the tables equal to the model, rows in sort order,
// and its net change turns a client's plain map (and a replica) into the same
// state; a refused batch throws a KeyedBatchError naming the table and
// changes nothing, not even the version.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { KeyedBatchError, KeyedTables, applyToRows, type Key, type TableSpec } from '../../src/engine/tables/index.js';
import type { State } from '../../src/protocol/index.js';
import { BIDS, ORDERS, applyModel, batchesArb, sameList, sameRows, sortedRows, type Model } from './keyed-model.js';

const specs = new Map<string, TableSpec>([
  [BIDS.name, BIDS],
  [ORDERS.name, ORDERS],
]);
const shape = {
  intKeys: fc.integer({ min: 0, max: 20 }),
  strKeys: fc.constantFrom('o1', 'o2', 'o3', 'o4', 'o5', 'o6', 'o7', 'o8', 'é1', 'Z'),
  bad: true,
  tables: [BIDS, ORDERS],
};

function tablesAsModel(t: KeyedTables): Model {
  const m: Model = new Map();
  for (const table of t.tables()) m.set(table.name, new Map([...table.rows()].map((r) => [r.key, r.fields] as [Key, State])));
  return m;
}

describe('keyed batches against the reference model', () => {
  it('accepted batches equal the model (in sort order); refused ones change nothing', () => {
    const stats = { accepted: 0, refused: 0 };
    fc.assert(
      fc.property(batchesArb(shape, 40, 6), fc.boolean(), (batches, declareEachTime) => {
        const tables = new KeyedTables();
        const replica = new KeyedTables();
        const client: Model = new Map();
        let model: Model = new Map();
        let version = 0;
        let refused = 0;
        [{ ops: [] }, ...batches].forEach((b, i) => {
          const batch = i === 0 || declareEachTime ? { ...b, declare: [BIDS, ORDERS] } : b;
          const expected = applyModel(specs, model, batch);
          const before = tablesAsModel(tables);
          if (typeof expected === 'string') {
            let err: unknown;
            try {
              tables.apply(batch, version + 1);
            } catch (e) {
              err = e;
            }
            expect(err).toBeInstanceOf(KeyedBatchError);
            expect((err as KeyedBatchError).reason).toBe(expected);
            expect(specs.has((err as KeyedBatchError).table!)).toBe(true);
            expect(tables.version).toBe(version);
            const after = tablesAsModel(tables);
            for (const [name, rows] of before) expect(sameRows(rows, after.get(name)!)).toBe(true);
            refused++;
            return;
          }
          const change = tables.apply(batch, ++version);
          model = expected;
          replica.applyChange(change, version);
          for (const s of change.declared) client.set(s.name, new Map());
          for (const [name, c] of change.tables) applyToRows(client.get(name)!, c);
          for (const [name, rows] of model) {
            const spec = specs.get(name)!;
            const held = tables.table(name)!;
            const want = sortedRows(spec, rows);
            expect(sameList([...held.rows()].map((r) => [r.key, r.fields] as const), want)).toBe(true);
            expect(sameList([...replica.table(name)!.rows()].map((r) => [r.key, r.fields] as const), want)).toBe(true);
            expect(sameRows(client.get(name)!, rows)).toBe(true);
          }
        });
        stats.refused += refused;
        stats.accepted += batches.length - refused;
      }),
      { numRuns: 300, seed: 19 },
    );
    // Both kinds in numbers (a generator refusing everything would test little).
    expect(stats.accepted).toBeGreaterThan(2 * stats.refused);
    expect(stats.refused).toBeGreaterThan(500);
  });

  it('a guard or a bad value anywhere refuses the whole batch, naming table and row', () => {
    const t = new KeyedTables();
    t.apply({ declare: [BIDS], ops: [{ op: 'upsert', table: 'bids', key: 100, fields: new Map([['qty', 1]]) }] }, 1);
    const tryBatch = (ops: Parameters<KeyedTables['apply']>[0]['ops']) => {
      try {
        t.apply({ ops }, 2);
      } catch (e) {
        return e as KeyedBatchError;
      }
      throw new Error('accepted');
    };
    const guard = tryBatch([
      { op: 'upsert', table: 'bids', key: 101, fields: new Map([['qty', 2]]) },
      { op: 'delete', table: 'bids', key: 100 },
      { op: 'upsert', table: 'bids', key: 102, fields: new Map([['qty', 3]]), guard: 'ifExists' },
    ]);
    expect(guard).toMatchObject({ reason: 'ifExists', table: 'bids', key: 102, opIndex: 2, code: 'TICKFAN_ERR_ROW_GUARD' });
    expect(guard.message).toBe('table bids row 102: upsert ifExists: no such row');
    // A guard sees the batch's own earlier ops.
    expect(tryBatch([{ op: 'upsert', table: 'bids', key: 7, fields: new Map() }, { op: 'replace', table: 'bids', key: 7, fields: new Map(), guard: 'ifNew' }])).toMatchObject({ reason: 'ifNew', key: 7 });
    expect(tryBatch([{ op: 'upsert', table: 'bids', key: 1e20, fields: new Map() }])).toMatchObject({ reason: 'badKey', table: 'bids' });
    expect(tryBatch([{ op: 'upsert', table: 'bids', key: 5, fields: new Map([['x', {} as never]]) }])).toMatchObject({ reason: 'badField', key: 5, code: 'TICKFAN_ERR_BAD_FIELD' });
    expect(tryBatch([{ op: 'upsert', table: 'asks', key: 5, fields: new Map() }])).toMatchObject({ reason: 'undeclared', table: 'asks' });
    expect(t.version).toBe(1);
    expect([...t.table('bids')!.rows()].map((r) => r.key)).toEqual([100]);
    expect(t.history.size).toBe(1);
  });

  it('declarations: idempotent, conflicting ones refused, maxRows enforced', () => {
    const t = new KeyedTables();
    const small: TableSpec = { ...BIDS, maxRows: 2 };
    t.apply({ declare: [small], ops: [] }, 1);
    t.apply({ declare: [small], ops: [{ op: 'upsert', table: 'bids', key: 1, fields: new Map() }] }, 2);
    expect(() => t.apply({ declare: [BIDS], ops: [] }, 3)).toThrow(expect.objectContaining({ reason: 'specConflict', table: 'bids' }));
    expect(() => t.apply({ declare: [{ ...BIDS, order: { key: 'asc' } }, small], ops: [] }, 3)).toThrow(KeyedBatchError);
    expect(() =>
      t.apply({ ops: [2, 3].map((key) => ({ op: 'upsert' as const, table: 'bids', key, fields: new Map() })) }, 3),
    ).toThrow(expect.objectContaining({ reason: 'tooManyRows' }));
    // Replacing the whole content is fine: the count is the end state's.
    t.apply({ ops: [{ op: 'clear', table: 'bids' }, ...[2, 3].map((key) => ({ op: 'upsert' as const, table: 'bids', key, fields: new Map() }))] }, 3);
    expect(t.table('bids')!.size).toBe(2);
    expect(() => t.apply({ declare: [{ name: 'bad name', key: 'int', order: { key: 'asc' } }], ops: [] }, 4)).toThrow(expect.objectContaining({ reason: 'badOp' }));
  });

  it('deleteRange bounds are by key value, inclusive unless marked exclusive, in every order', () => {
    const t = new KeyedTables();
    const byFields: TableSpec = { name: 'f', key: 'int', order: { fields: [{ field: 'p', dir: 'asc' }], key: 'asc' } };
    t.apply({ declare: [BIDS, { ...BIDS, name: 'a', order: { key: 'asc' } }, byFields], ops: [] }, 1);
    let v = 1;
    for (const table of ['bids', 'a', 'f']) {
      const cases: [object, number[]][] = [
        [{ from: 3, to: 6 }, [1, 2, 7, 8]],
        [{ from: 3, to: 6, fromExclusive: true, toExclusive: true }, [1, 2, 3, 6, 7, 8]],
        [{ from: 3 }, [1, 2]],
        [{ to: 3, toExclusive: true }, [3, 4, 5, 6, 7, 8]],
        [{}, []],
      ];
      for (const [range, left] of cases) {
        t.apply({ ops: [{ op: 'clear', table }, ...[1, 2, 3, 4, 5, 6, 7, 8].map((key) => ({ op: 'upsert' as const, table, key, fields: new Map([['p', 9 - key]]) }))] }, ++v);
        t.apply({ ops: [{ op: 'deleteRange', table, ...range }] }, ++v);
        expect([...t.table(table)!.rows()].map((r) => r.key).sort((x, y) => (x as number) - (y as number))).toEqual(left);
      }
    }
  });
});
