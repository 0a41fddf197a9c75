// The keyed op stream's compact forms (keyed-ops.ts): int keys against a
// table's key base (offsets resolved by the holder of the binding), the
// absolute fallback when keys lie more than 2^53 from the base, steps too big
// for the head, table ops, chained entries (integers without a tag, the empty
// list), KeyedDelta2's body (topic id, version, span, summary) and kind 5
// (the body alone). Random
// changes with random key bases round-trip; malformed streams are BAD_FRAME.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  decodeEncoded,
  decodeMessage2,
  Encoder,
  ErrorCode,
  KeyedEncoder,
  MessageKind,
  PackWriter,
  Protocol2Reader,
  readOps,
  TickfanError,
  type FieldValue,
  type Key,
  type KeyedChange,
  type KeyedDelta2Msg,
  type KeyedDeltaMsg,
  type KeyedTableBinding,
  type RowChange,
  type TopicRef,
} from '../../src/protocol/index.js';

const MAX = Number.MAX_SAFE_INTEGER;

function topicRef(): TopicRef {
  const ids = new Map<string, number>();
  return { id: 5, name: 'book.K', epoch: 9, fieldId: (f) => ids.get(f) ?? (ids.set(f, ids.size + 1), ids.size) };
}

const binding = (id: number, name: string, keyBase?: number): KeyedTableBinding => ({ id, spec: { name, key: 'int', order: { key: 'asc' } }, depth: 0, fields: [], ...(keyBase !== undefined ? { keyBase } : {}) });

/** A reader holding `tables` (bound by an empty snapshot), as a subscriber after its snapshot. */
function reader(t: TopicRef, tables: KeyedTableBinding[]): Protocol2Reader {
  const r = new Protocol2Reader();
  const snap = new KeyedEncoder().keyedSnapshot2(t, 1, [], tables.map((binding) => ({ binding, rows: [] })), 0);
  r.readKeyed(decodeEncoded(snap[0]!) as never);
  return r;
}

const upsert = (qty: FieldValue, orders: FieldValue | null): RowChange => ({ op: 'upsert', fields: new Map([['qty', qty], ['orders', orders]]) });
const change = (tables: Record<string, [Key, RowChange][]>): KeyedChange => ({ declared: [], tables: new Map(Object.entries(tables).map(([n, rows]) => [n, { clear: false, rows: new Map(rows) }])) });

describe('int keys against the key base', () => {
  it('a live delta carries offsets; the reader holding the binding adds the base', () => {
    const t = topicRef();
    const bids = binding(0, 'bids', 130_000);
    const enc = new KeyedEncoder();
    const bytes = enc.keyedDelta2(t, 1, 2, [], change({ bids: [[130_002, upsert(0.5, 3)], [129_990, { op: 'delete' }]] }), new Map([['bids', bids]]), { namesFrom: 1, bind: false });
    const wire = decodeEncoded(bytes) as KeyedDelta2Msg;
    const tc = wire.rows.get(0)!;
    expect(tc.relative).toBe(true);
    expect([...tc.rows.keys()]).toEqual([-10, 2]);
    const m = reader(t, [bids]).readKeyed(wire) as KeyedDeltaMsg;
    expect([...m.change.tables.get('bids')!.rows.keys()]).toEqual([129_990, 130_002]);
    // The first key, 10 below the base: zigzag(−10) + 1 = 20, · 8 + code 2 = 162 (a2 01); the next, 12 above it: 12 · 8 + code 0 (60).
    const hex = [...bytes].map((x) => x.toString(16).padStart(2, '0')).join(' ');
    expect(hex).toContain('14 02 a2 01 60'); // after h = topic 5 << 2 and version 2
    // Re-encoding the decoded message gives the same bytes.
    expect(new Encoder().message(wire)).toEqual(bytes);
  });

  it('a message that binds the table resolves its keys itself', () => {
    const t = topicRef();
    const bids = binding(0, 'bids', 130_000);
    const bytes = new KeyedEncoder().keyedDelta2(t, 1, 3, [], change({ bids: [[130_001, upsert(1, 1)]] }), new Map([['bids', bids]]), { namesFrom: 1, bind: true, bindTables: [bids] });
    const wire = decodeEncoded(bytes) as KeyedDelta2Msg;
    expect(wire.tables[0]!.keyBase).toBe(130_000);
    expect(wire.rows.get(0)!.relative).toBeUndefined();
    expect([...wire.rows.get(0)!.rows.keys()]).toEqual([130_001]);
  });

  it('keys more than 2^53 − 1 from the base are written absolute (a table op with a = 1)', () => {
    const t = topicRef();
    const bids = binding(0, 'bids', MAX - 5);
    const keys = [-MAX, -1, 0, MAX];
    const bytes = new KeyedEncoder().keyedDelta2(t, 1, 2, [], change({ bids: keys.map((k) => [k, { op: 'delete' }]) }), new Map([['bids', bids]]), { namesFrom: 1, bind: false });
    const wire = decodeEncoded(bytes) as KeyedDelta2Msg;
    expect(wire.rows.get(0)!.relative).toBeUndefined();
    expect([...wire.rows.get(0)!.rows.keys()]).toEqual(keys);
    const m = reader(t, [bids]).readKeyed(wire) as KeyedDeltaMsg;
    expect([...m.change.tables.get('bids')!.rows.keys()]).toEqual(keys);
  });

  it('random changes with random key bases round-trip exactly', () => {
    const intKey = fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.integer({ min: 129_000, max: 131_000 }), fc.constantFrom(MAX, -MAX, 0, 2 ** 52, -(2 ** 52)), fc.maxSafeInteger());
    const row: fc.Arbitrary<RowChange> = fc.oneof(
      fc.tuple(fc.oneof(fc.double({ noNaN: true }), fc.integer()), fc.oneof(fc.integer(), fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }).filter((x) => x > BigInt(MAX) || x < -BigInt(MAX)), fc.constant(null))).map(([q, o]) => upsert(q, o)),
      fc.constant<RowChange>({ op: 'delete' }),
      fc.constant<RowChange>({ op: 'upsert', fields: new Map() }),
      fc.boolean().map((existed): RowChange => ({ op: 'replace', fields: new Map<string, FieldValue>([['qty', -0], ['s', 'x']]), existed })),
    );
    const base = fc.oneof(fc.constant(undefined), fc.integer({ min: 129_000, max: 131_000 }), fc.constantFrom(MAX, -MAX, 0));
    fc.assert(
      fc.property(base, base, fc.array(fc.tuple(intKey, row), { maxLength: 8 }), fc.array(fc.tuple(intKey, row), { maxLength: 8 }), fc.boolean(), fc.nat({ max: 2 ** 40 }), fc.nat({ max: 3 }), (b0, b1, r0, r1, bind, version, span) => {
        const t = topicRef();
        const tables = [binding(0, 'bids', b0), binding(1, 'asks', b1)];
        const c = change({ ...(r0.length ? { bids: r0 } : {}), ...(r1.length ? { asks: r1 } : {}) });
        const enc = new KeyedEncoder();
        const v = version + span;
        const summary = new Map<string, FieldValue | null>([['mid', 65000.25], ['ts', 1_796_000_000_123], ['gone', null]]);
        const bytes = enc.keyedDelta2(t, version, v, summary, c, new Map(tables.map((x) => [x.spec.name, x])), { namesFrom: 1, bind, bindTables: bind ? tables : [] });
        const wire = decodeEncoded(bytes) as KeyedDelta2Msg;
        expect(new Encoder().message(wire)).toEqual(bytes);
        const m = reader(t, tables).readKeyed(wire) as KeyedDeltaMsg;
        expect(m.type).toBe('keyedDelta');
        expect([m.base, m.version, m.updates]).toEqual([version, v, span]);
        expect(m.summary).toEqual(summary);
        for (const [name, rows] of [['bids', r0], ['asks', r1]] as const) {
          const want = new Map(rows);
          const got = m.change.tables.get(name)?.rows ?? new Map();
          expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
          for (const [k, r] of want) {
            const g = got.get(k)!;
            expect(g.op).toBe(r.op);
            if (r.op !== 'delete' && g.op !== 'delete') expect([...g.fields]).toEqual([...r.fields]);
          }
        }
      }),
      { numRuns: 400, seed: 1919 },
    );
  });
});

describe('kind 5: a KeyedDelta2 that has nothing but its body', () => {
  it('a live delta travels as its body alone (with its checksum: 4 bytes more); ts and bindings need kind 4; all read alike', () => {
    const t = topicRef();
    const bids = binding(0, 'bids', 130_000);
    const tables = new Map([['bids', bids]]);
    const c = change({ bids: [[130_001, upsert(0.5, 1)]] });
    const enc = new KeyedEncoder();
    const kindOf = (m: Uint8Array) => m[4];
    const live = enc.keyedDelta2(t, 41, 42, [['mid', 1.5]], c, tables, { namesFrom: 1, bind: false });
    const withSum = enc.keyedDelta2(t, 41, 42, [['mid', 1.5]], c, tables, { namesFrom: 1, bind: false, checksum: 0xfedcba98 });
    for (const m of [live, withSum]) expect(kindOf(m)).toBe(MessageKind.KEYED_BODY2);
    expect(withSum.byteLength - live.byteLength).toBe(4);
    const withTs = enc.keyedDelta2(t, 41, 42, [['mid', 1.5]], c, tables, { namesFrom: 1, bind: false, ts: 1, checksum: 0 });
    const bound = enc.keyedDelta2(t, 41, 42, [['mid', 1.5]], c, tables, { namesFrom: 1, bind: true, bindTables: [bids] });
    for (const m of [withTs, bound]) expect(kindOf(m)).toBe(MessageKind.KEYED_DELTA2);
    // 24 bytes of FlatBuffers (root, padding, vtable, table, vector length) and the ts field around the same body.
    expect(withTs.byteLength - withSum.byteLength).toBeGreaterThanOrEqual(24 + 8);
    const a = decodeEncoded(live) as KeyedDelta2Msg;
    const b = decodeEncoded(withSum) as KeyedDelta2Msg;
    const d = decodeEncoded(withTs) as KeyedDelta2Msg;
    expect({ ...b, checksum: null }).toEqual(a);
    expect(b.checksum).toBe(0xfedcba98);
    expect({ ...d, checksum: null, ts: 0 }).toEqual(a);
    expect([d.checksum, d.ts]).toEqual([0, 1]);
    for (const m of [live, withSum, withTs]) expect(new Encoder().message(decodeEncoded(m) as KeyedDelta2Msg)).toEqual(m);
  });

  it('random bytes as kind 5 are a message or BAD_FRAME, never another error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        try {
          const m = decodeMessage2(new Uint8Array([MessageKind.KEYED_BODY2, ...bytes]));
          return m.type === 'keyedDelta2';
        } catch (err) {
          return err instanceof TickfanError && err.errorCode === ErrorCode.BAD_FRAME;
        }
      }),
      { numRuns: 5000, seed: 5 },
    );
  });
});

describe('op stream forms', () => {
  /** Bytes of an op stream written by hand. */
  const ops = (write: (w: PackWriter) => void): Uint8Array => {
    const w = new PackWriter();
    write(w);
    return w.take().slice();
  };

  it('steps too big for the head travel after an arg of 0; table ops switch tables', () => {
    // table 1 (int, absolute): a delete at −2^53 + 1, then one at 2^53 − 1 (a step of 2^54 − 2: a 64-bit zigzag).
    const bytes = ops((w) => {
      w.varint((1 * 4 + 1) * 8 + 6);
      w.varint(2);
      w.int(-MAX);
      w.varint(2);
      w.int(2n * BigInt(MAX));
    });
    const read = readOps(bytes, 'delta');
    expect(read.map((o) => [o.table, o.key, o.relative])).toEqual([
      [1, -MAX, false],
      [1, MAX, false],
    ]);
  });

  it('a stream starts on table 0 with int keys; an empty entry list is 00; integers carry no tag', () => {
    // upsert of key 3 (zigzag 6 + 1 = 7) with no fields; insert of key 4 with field 1 = 5 (key (1·2)·4 + 2 = 10, zigzag 10).
    const bytes = ops((w) => {
      w.varint(7 * 8 + 0);
      w.byte(0);
      w.varint(1 * 8 + 4);
      w.varint(10);
      w.varint(10);
    });
    const read = readOps(bytes, 'delta', () => 0);
    expect(read.map((o) => [o.table, o.code, o.key, o.entries])).toEqual([
      [0, 0, 3, []],
      [0, 4, 4, [{ id: 1, name: undefined, value: 5 }]],
    ]);
  });

  const refused: [string, (w: PackWriter) => void][] = [
    ['absolute string keys', (w) => w.varint(3 * 8 + 6)],
    ['a table split in a server stream', (w) => (w.varint(1 * 8 + 2), w.varint(4 * 8 + 6), w.varint(1 * 8 + 2), w.varint(0 * 8 + 6), w.varint(3 * 8 + 2))],
    ['code 7 inside the ops', (w) => w.varint(7)],
    ['a clear with an argument', (w) => w.varint(8 + 3)],
    ['a key offset past 2^53', (w) => (w.varint(2), w.int(MAX), w.varint(2 * 8 + 2))],
    ['an entry cut short', (w) => (w.varint(8), w.varint(5))],
  ];
  for (const [what, write] of refused) {
    it(`refuses ${what} (BAD_FRAME)`, () => {
      let err: unknown;
      try {
        readOps(ops(write), 'delta');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TickfanError);
      expect((err as TickfanError).errorCode).toBe(ErrorCode.BAD_FRAME);
    });
  }

  it('a reader adds a key base only within 2^53 (else the delta is unresolved, never a wrong key)', () => {
    const t = topicRef();
    const bids = binding(0, 'bids', MAX);
    // Written against base 0 (offset 10), read by a reader whose binding says base 2^53 − 1.
    const bytes = new KeyedEncoder().keyedDelta2(t, 1, 2, [], change({ bids: [[10, { op: 'delete' }]] }), new Map([['bids', binding(0, 'bids')]]), { namesFrom: 1, bind: false });
    const m = reader(t, [bids]).readKeyed(decodeEncoded(bytes) as never);
    expect(m.type).toBe('unresolved');
  });
});
