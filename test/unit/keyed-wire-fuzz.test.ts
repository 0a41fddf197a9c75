// Decoder fuzz over keyed topics' kinds 3 and 4 (and keyed Publish): mutated
// valid KeyedSnapshot2 / KeyedDelta2 roots, mutated op streams inside
// otherwise valid roots, and random bytes as op streams. Every outcome is a
// well-typed message or a TickfanError with an allowed code, never another
// exception (decoder-fuzz.ts's Tally checks both).

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeMessage, decodeMessage2, Encoder, KeyedEncoder, readOps, TickfanError, type FieldValue, type Key, type KeyedTableBinding, type RowChange, type State, type TopicRef } from '../../src/protocol/index.js';
import { ALLOWED, Tally, mutate, mutation } from './decoder-fuzz.js';

const t: TopicRef = { id: 3, name: 'book.X', epoch: 2, fieldId: (f) => ({ qty: 1, count: 2, px: 3 })[f] ?? 0 };
const BIDS: KeyedTableBinding = { id: 0, spec: { name: 'bids', key: 'int', order: { key: 'desc' } }, depth: 10, fields: ['qty'] };
const ORDERS: KeyedTableBinding = { id: 1, spec: { name: 'orders', key: 'string', order: { fields: [{ field: 'px', dir: 'asc' }], key: 'asc' } }, depth: 0, fields: [] };
const bindings = new Map([['bids', BIDS], ['orders', ORDERS]]);

function corpus(): Uint8Array[] {
  const k = new KeyedEncoder();
  const row = (q: number): State => new Map<string, FieldValue>([['qty', q], ['count', 3], ['note', 'ü'], ['raw', new Uint8Array([1, 2])], ['big', 2n ** 60n], ['f', true]]);
  const rows: [Key, State][] = [[130_000, row(3.2)], [129_999, row(0.01)], [-5, row(1e300)]];
  const orders: [Key, State][] = [['ORD-1', row(1)], ['ORD-12', row(2)], ['😀', row(3)]];
  const bidsChange = new Map<Key, RowChange>([[130_001, { op: 'upsert', fields: new Map([['qty', 3.25], ['count', null]]) }], [129_000, { op: 'delete' }], [129_500, { op: 'replace', fields: row(2), existed: false }]]);
  const ordersChange = new Map<Key, RowChange>([['ORD-2', { op: 'replace', fields: row(1), existed: true }], ['ORD-3', { op: 'delete' }]]);
  const out = [
    ...k.keyedSnapshot2(t, 10, new Map([['mid', 65000.25]]), [{ binding: BIDS, rows }, { binding: ORDERS, rows: orders }], 1.5, 0x1234),
    ...k.keyedSnapshot2(t, 2 ** 40, [], [{ binding: BIDS, rows }], 0, undefined, 8),
    k.keyedDelta2(t, 10, 11, [], { declared: [], tables: new Map([['bids', { clear: false, rows: bidsChange }], ['orders', { clear: true, rows: ordersChange }]]) }, bindings, { namesFrom: 2, bind: false }),
    // Keys against a key base (offsets in a live delta), one far from it (an absolute group), a summary in the body.
    k.keyedDelta2(t, 11, 14, new Map([['mid', 65000.5], ['n', 3]]), { declared: [], tables: new Map([['bids', { clear: false, rows: new Map<Key, RowChange>([[-(2 ** 53) + 1, { op: 'delete' }], [129_998, { op: 'upsert', fields: new Map([['qty', 1.5], ['count', 4]]) }]]) }]]) }, new Map([['bids', { ...BIDS, keyBase: 130_000 }]]), { namesFrom: 2, bind: false }),
    k.keyedDelta2(t, 11, 12, [], { declared: [], tables: new Map([['bids', { clear: false, rows: new Map<Key, RowChange>([[129_998, { op: 'upsert', fields: new Map([['qty', 1.5], ['count', 4]]) }]]) }]]) }, new Map([['bids', { ...BIDS, keyBase: 130_000 }]]), { namesFrom: 2, bind: false }),
    k.keyedDelta2(t, 5, 11, new Map([['mid', null]]), { declared: [], tables: new Map([['bids', { clear: true, rows: bidsChange }]]) }, bindings, { namesFrom: 1, bind: true, bindTables: [BIDS, ORDERS], checksum: 0, ts: 7 }),
  ];
  out.push(
    new Encoder().publish(1, 'book.X', [], {
      declare: [BIDS.spec],
      ops: [
        { op: 'upsert', table: 'bids', key: 5, fields: new Map([['qty', 1]]), guard: 'ifNew' },
        { op: 'deleteRange', table: 'orders', from: 'A', to: 'B', fromExclusive: true },
        { op: 'clear', table: 'bids' },
      ],
    }),
  );
  return out;
}

/** One message of a protocol-2 frame (kind + root) from the in-memory form; a Message's u32 prefix stripped. */
const bare = (m: Uint8Array) => ((m[3]! & 0x80) !== 0 ? m.subarray(4) : m.subarray(4));
const decodeOne = (m: Uint8Array, isPublish: boolean) => [isPublish ? decodeMessage(m) : decodeMessage2(m)];

describe('keyed decoder fuzz (seeded)', () => {
  const msgs = corpus();
  const tally = new Tally();

  it('the corpus decodes', () => {
    msgs.forEach((m, i) => expect(tally.run(bare(m), (b) => decodeOne(b, i === msgs.length - 1))).toBe(true));
    expect(tally.decoded).toBe(msgs.length);
  });

  it('mutated KeyedSnapshot2 / KeyedDelta2 / keyed Publish (kind byte kept or not)', () => {
    fc.assert(
      fc.property(fc.nat({ max: msgs.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 6 }), fc.boolean(), (i, muts, keepKind) => {
        const m = bare(msgs[i]!);
        const isPublish = i === msgs.length - 1;
        const input = keepKind && !isPublish ? new Uint8Array([m[0]!, ...mutate(m.subarray(1), muts)]) : mutate(m, muts);
        return tally.run(input, (b) => decodeOne(b, isPublish));
      }),
      { numRuns: 30_000, seed: 1903 },
    );
  });

  it('random and mutated op streams through readOps (every kind of stream)', () => {
    const k = new KeyedEncoder();
    const wire = decodeMessage2(bare(msgs[msgs.length - 5]!)) as never;
    const valid = k.message(wire);
    let typed = 0;
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.array(mutation, { minLength: 1, maxLength: 4 }).map((muts) => mutate(valid.subarray(5), muts))), fc.constantFrom('delta', 'snapshot', 'publish'), (bytes, kind) => {
        try {
          const ops = readOps(bytes, kind as 'delta');
          for (const op of ops) if (op.key !== undefined && !(typeof op.key === 'string' || Number.isSafeInteger(op.key))) return false;
        } catch (err) {
          if (!(err instanceof TickfanError) || !ALLOWED.has(err.errorCode)) throw err;
          typed++;
        }
        return true;
      }),
      { numRuns: 30_000, seed: 1904 },
    );
    expect(typed).toBeGreaterThan(0);
  });

  it('reports', () => {
    console.log(`${tally.report('decoder fuzz (keyed kinds 3/4 + keyed Publish)')}; decoded by type ${JSON.stringify(Object.fromEntries(tally.types))}`);
    expect(tally.types.get('keyedDelta2') ?? 0).toBeGreaterThan(0);
    expect(tally.types.get('keyedSnapshot2') ?? 0).toBeGreaterThan(0);
  });
});
