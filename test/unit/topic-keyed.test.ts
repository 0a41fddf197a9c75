// A topic holding keyed tables: one batch = one version over summary and rows,
// refused batches change nothing, summary-only publishes keep the tables'
// history continuous, and catch-up plans span both histories (merged delta
// only when both cover the gap and it is smaller; a snapshot otherwise).
import { describe, expect, it } from 'vitest';
import { TopicStore, KeyedBatchError, applyToRows, type Batch, type Key, type TableSpec } from '../../src/engine/index.js';
import { ErrorCode, type State } from '../../src/protocol/index.js';

const BIDS: TableSpec = { name: 'bids', key: 'int', order: { key: 'desc' } };
const f = (o: Record<string, number>) => new Map(Object.entries(o));
const rowsOf = (s: TopicStore, topic: string, table: string) => [...(s.get(topic)!.tables!.table(table)?.rows() ?? [])].map((r) => [r.key, Object.fromEntries(r.fields)]);

describe('topic with keyed tables', () => {
  it('applies summary and rows as one version and returns the net change', () => {
    const s = new TopicStore();
    const a = s.publishBatch('book.X', { fields: f({ last: 10 }), tables: { declare: [BIDS], ops: [{ op: 'upsert', table: 'bids', key: 100, fields: f({ qty: 1 }) }, { op: 'upsert', table: 'bids', key: 101, fields: f({ qty: 2 }) }] } });
    expect(a).toMatchObject({ base: 0, version: 1, created: true });
    expect(a.keyed!.tables.get('bids')!.rows.size).toBe(2);
    expect(a.keyed!.declared).toEqual([BIDS]);
    expect(rowsOf(s, 'book.X', 'bids')).toEqual([[101, { qty: 2 }], [100, { qty: 1 }]]);
    const t = s.get('book.X')!;
    expect(t.state.get('last')).toBe(10);
    expect(t.tables!.version).toBe(1);
    // A summary-only publish on a keyed topic: tables follow the version with no change.
    const b = s.publish('book.X', f({ last: 11 }));
    expect(b.version).toBe(2);
    expect(b.keyed).toBeUndefined();
    expect(t.tables!.version).toBe(2);
    // Tables only (empty summary) is a version too.
    const c = s.publishBatch('book.X', { fields: new Map(), tables: { ops: [{ op: 'delete', table: 'bids', key: 100 }] } });
    expect(c.version).toBe(3);
    expect(c.changes.size).toBe(0);
    expect(rowsOf(s, 'book.X', 'bids')).toEqual([[101, { qty: 2 }]]);
  });

  it('flat topics hold no tables and their Accepted carries no keyed change', () => {
    const s = new TopicStore();
    const a = s.publish('px.A', f({ bid: 1 }));
    expect(a.keyed).toBeUndefined();
    expect(s.get('px.A')!.tables).toBeUndefined();
    // publishBatch without tables is the flat publish.
    expect(s.publishBatch('px.A', { fields: f({ bid: 2 }) }).version).toBe(2);
    expect(s.get('px.A')!.tables).toBeUndefined();
  });

  it('a refused batch changes nothing: no version, no summary, no rows, no topic', () => {
    const s = new TopicStore();
    s.publishBatch('book.X', { fields: f({ last: 1 }), tables: { declare: [BIDS], ops: [{ op: 'upsert', table: 'bids', key: 100, fields: f({ qty: 1 }) }] } });
    const refuse = (batch: Batch, fields = f({ last: 99 })) => {
      try {
        s.publishBatch('book.X', { fields, tables: batch });
      } catch (e) {
        return e;
      }
      throw new Error('not refused');
    };
    const guard = refuse({ ops: [{ op: 'upsert', table: 'bids', key: 101, fields: f({ qty: 5 }) }, { op: 'upsert', table: 'bids', key: 100, fields: f({ qty: 5 }), guard: 'ifNew' }] });
    expect(guard).toBeInstanceOf(KeyedBatchError);
    expect(guard).toMatchObject({ errorCode: ErrorCode.ROW_GUARD, table: 'bids', key: 100, reason: 'ifNew' });
    expect(refuse({ ops: [{ op: 'delete', table: 'bids', key: 7, guard: 'ifExists' }] })).toMatchObject({ errorCode: ErrorCode.ROW_GUARD, key: 7 });
    expect(refuse({ ops: [{ op: 'upsert', table: 'bids', key: 1.5, fields: f({ qty: 1 }) }] })).toMatchObject({ errorCode: ErrorCode.BAD_KEY });
    expect(refuse({ ops: [{ op: 'upsert', table: 'asks', key: 1, fields: f({ qty: 1 }) }] })).toMatchObject({ errorCode: ErrorCode.BAD_REQUEST, table: 'asks' });
    expect(refuse({ declare: [{ ...BIDS, maxRows: 1 }], ops: [] })).toMatchObject({ reason: 'specConflict' });
    expect(refuse({ declare: [{ name: 'small', key: 'int', order: { key: 'asc' }, maxRows: 1 }], ops: [{ op: 'upsert', table: 'small', key: 1, fields: f({ a: 1 }) }, { op: 'upsert', table: 'small', key: 2, fields: f({ a: 1 }) }] })).toMatchObject({ errorCode: ErrorCode.TOO_MANY_ROWS });
    // A bad summary value refuses the row ops too.
    expect(refuse({ ops: [{ op: 'upsert', table: 'bids', key: 102, fields: f({ qty: 1 }) }] }, new Map([['x', {} as never]]))).toMatchObject({ errorCode: ErrorCode.BAD_FIELD });
    const t = s.get('book.X')!;
    expect(t.version).toBe(1);
    expect(t.tables!.version).toBe(1);
    expect(t.state.get('last')).toBe(1);
    expect(rowsOf(s, 'book.X', 'bids')).toEqual([[100, { qty: 1 }]]);
    expect(t.tables!.table('small')).toBeUndefined();
    // The next accepted batch is version 2, and catch-up from 1 is exact.
    s.publishBatch('book.X', { fields: new Map(), tables: { ops: [{ op: 'upsert', table: 'bids', key: 100, fields: f({ qty: 2 }) }] } });
    expect(t.version).toBe(2);
    // A refused first batch creates no topic.
    expect(() => s.publishBatch('book.NEW', { fields: f({ a: 1 }), tables: { ops: [{ op: 'upsert', table: 'bids', key: 1, fields: f({ q: 1 }) }] } })).toThrow(KeyedBatchError);
    expect(s.get('book.NEW')).toBeUndefined();
    expect(() => s.publishBatch('book.NEW', { fields: new Map(), tables: { ops: [] } })).toThrow(/no fields and no row ops/);
  });
});

/** A topic with `n` levels of 3 fields each, then `k` single-level changes. */
function book(n: number, historySize = 256): TopicStore {
  const s = new TopicStore({ historySize });
  const ops = Array.from({ length: n }, (_, i) => ({ op: 'upsert' as const, table: 'bids', key: 1000 + i, fields: f({ qty: i, px: 1000 + i, orders: 3 }) }));
  s.publishBatch('book.X', { fields: f({ last: 1 }), tables: { declare: [BIDS], ops } });
  return s;
}

function imageRows(s: TopicStore): Map<Key, State> {
  return new Map([...s.get('book.X')!.tables!.table('bids')!.rows()].map((r) => [r.key, new Map(r.fields)]));
}

describe('catch-up plans of keyed topics', () => {
  it('a merged delta when both histories cover the gap and it is smaller, exact when applied', () => {
    const s = book(200);
    const base = imageRows(s);
    const baseSummary = new Map(s.get('book.X')!.state);
    s.publishBatch('book.X', { fields: f({ last: 2 }), tables: { ops: [{ op: 'upsert', table: 'bids', key: 1005, fields: f({ qty: 50 }) }, { op: 'upsert', table: 'bids', key: 5000, fields: f({ qty: 1 }) }] } });
    s.publish('book.X', f({ vol: 7 }));
    s.publishBatch('book.X', { fields: new Map(), tables: { ops: [{ op: 'upsert', table: 'bids', key: 5001, fields: f({ qty: 1 }) }, { op: 'delete', table: 'bids', key: 5001 }, { op: 'deleteRange', table: 'bids', from: 1000, to: 1002 }] } });
    const plan = s.get('book.X')!.plan(s.get('book.X')!.epoch, 1);
    expect(plan.kind).toBe('delta');
    if (plan.kind !== 'delta') return;
    expect(plan).toMatchObject({ base: 1, version: 4, updates: 3 });
    expect(Object.fromEntries(plan.changes)).toEqual({ last: 2, vol: 7 });
    const rows = plan.tables!.tables.get('bids')!.rows;
    expect(rows.has(5001)).toBe(false); // added and deleted inside the window: nothing
    applyToRows(base, plan.tables!.tables.get('bids')!);
    expect(base).toEqual(imageRows(s));
    for (const [k, v] of plan.changes) if (v === null) baseSummary.delete(k); else baseSummary.set(k, v);
    expect(baseSummary).toEqual(new Map(s.get('book.X')!.state));
    expect(s.get('book.X')!.plan(s.get('book.X')!.epoch, 4)).toEqual({ kind: 'current' });
  });

  it('a snapshot when the merged delta is not smaller (a book emptied level by level)', () => {
    const s = book(200);
    for (let i = 0; i < 200; i++) s.publishBatch('book.X', { fields: new Map(), tables: { ops: [{ op: 'delete', table: 'bids', key: 1000 + i }] } });
    s.publishBatch('book.X', { fields: new Map(), tables: { ops: [{ op: 'upsert', table: 'bids', key: 1, fields: f({ qty: 1 }) }] } });
    const t = s.get('book.X')!;
    expect(t.version).toBe(202);
    expect(t.tables!.history.covers(1)).toBe(true);
    expect(t.plan(t.epoch, 1)).toEqual({ kind: 'snapshot' }); // 200 deletes + 1 row against a 1-row snapshot
    const recent = t.plan(t.epoch, 200);
    expect(recent.kind).toBe('delta'); // one delete and one row: smaller than the snapshot
    if (recent.kind === 'delta') expect([...recent.tables!.tables.get('bids')!.rows.keys()].sort()).toEqual([1, 1199]);
  });

  it('a snapshot past either horizon: the summary ring, or tables declared after the held version', () => {
    const small = book(200, 4);
    for (let i = 0; i < 6; i++) small.publishBatch('book.X', { fields: new Map(), tables: { ops: [{ op: 'upsert', table: 'bids', key: 1000, fields: f({ qty: i }) }] } });
    const t = small.get('book.X')!;
    expect(t.version).toBe(7);
    expect(t.tables!.history.covers(1)).toBe(true); // the tables could, the summary ring cannot
    expect(t.plan(t.epoch, 1)).toEqual({ kind: 'snapshot' });
    expect(t.plan(t.epoch, 4).kind).toBe('delta');

    const s = new TopicStore();
    s.publish('book.Y', f({ last: 1 }));
    s.publish('book.Y', f({ last: 2 }));
    s.publishBatch('book.Y', { fields: new Map(), tables: { declare: [BIDS], ops: [{ op: 'upsert', table: 'bids', key: 1, fields: f({ qty: 1 }) }] } });
    const y = s.get('book.Y')!;
    expect(y.tables!.version).toBe(3);
    expect(y.plan(y.epoch, 1)).toEqual({ kind: 'snapshot' }); // before the tables existed
    const fromTwo = y.plan(y.epoch, 2); // the tables' history starts at 2: (2, 3] is covered, declaration included
    expect(fromTwo.kind).toBe('delta');
    if (fromTwo.kind === 'delta') expect(fromTwo.tables!.declared).toEqual([BIDS]);
    expect(y.plan(y.epoch + 1, 3)).toEqual({ kind: 'snapshot' });
  });

  it('an image reset carries the tables; history starts over at its version', () => {
    const src = book(50);
    src.publishBatch('book.X', { fields: f({ last: 3 }), tables: { ops: [{ op: 'delete', table: 'bids', key: 1001 }] } });
    const t = src.get('book.X')!;
    const replica = new TopicStore();
    const { topic } = replica.resetTopic('book.X', t.epoch, t.version, t.state, t.ts, t.id, t.fieldNames(), t.tables!.image());
    expect(topic.tables!.version).toBe(2);
    expect(imageRows(replica)).toEqual(imageRows(src));
    expect(topic.plan(t.epoch, 1)).toEqual({ kind: 'snapshot' });
    // A flat image drops tables.
    replica.resetTopic('book.X', t.epoch + 1, 1, [['a', 1]], 0, t.id, ['']);
    expect(replica.get('book.X')!.tables).toBeUndefined();
    // The replica follows summary updates with its tables in step.
    replica.resetTopic('book.X', t.epoch, t.version, t.state, t.ts, t.id, t.fieldNames(), t.tables!.image());
    expect(replica.applySequenced('book.X', t.epoch, 3, f({ last: 4 }), 0, t.id)).not.toBeNull();
    expect(replica.get('book.X')!.tables!.version).toBe(3);
  });
});
