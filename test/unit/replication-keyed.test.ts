// Replication of keyed topics (server/replication.ts, replication-keyed.ts):
// a flat update is byte for byte the form it had before keyed topics; a keyed
// update carries the batch's net row change, which a replica applies only at
// exactly replica + 1 in the same epoch; images carry the tables.

import { describe, expect, it } from 'vitest';
import { KeyedBatchError, TopicStore, type TopicBatch } from '../../src/engine/index.js';
import { Encoder, ErrorCode, decodeEncoded, type Delta2Msg } from '../../src/protocol/index.js';
import { applyUpdate, encodeUpdate, imageOf, readUpdate } from '../../src/server/replication.js';
import { KeyedPartWriter, decodeKeyedPart, refusalError, refusalOf } from '../../src/server/replication-keyed.js';
import { publishRecord, readPublish, readReject, rejectRecord } from '../../src/workers/records.js';

const enc = new Encoder();
const parts = new KeyedPartWriter();
const BIDS = { name: 'bids', key: 'int' as const, order: { key: 'desc' as const } };
const ORDERS = { name: 'orders', key: 'string' as const, order: { fields: [{ field: 'px', dir: 'desc' as const }], key: 'asc' as const }, maxRows: 50 };

/** What the sequencer sends for one batch (Sequencer.sequenced / Origin.sequence). */
function sequence(store: TopicStore, topic: string, batch: TopicBatch): Uint8Array {
  const a = store.publishBatch(topic, batch, 1000 + store.get(topic)?.version!);
  const t = a.topic;
  const delta2 = enc.delta2(t, a.base, a.version, a.changes, { namesFrom: a.namesFrom, bind: false });
  return encodeUpdate({ ts: t.ts, epoch: t.epoch, topicId: t.id, topic }, delta2, a.keyed && parts.encode(a.keyed, t.tables!));
}

function apply(replica: TopicStore, body: Uint8Array) {
  const u = readUpdate(body);
  return applyUpdate(replica, u, decodeEncoded(u.delta2) as Delta2Msg);
}

const rows = (s: TopicStore, topic: string) => JSON.stringify(s.get(topic)!.tables!.image(), (_k, v) => (v instanceof Map ? [...v] : typeof v === "bigint" ? `${v}n` : v));

describe('replicated updates', () => {
  it('a flat update is the old form byte for byte: f64 ts | f64 epoch | u32 id | u16 n | name | Delta2', () => {
    const store = new TopicStore();
    store.publish('px.AAPL', new Map<string, number>([['bid', 189.25], ['ask', 189.27], ['size', 300]]));
    const a = store.publish('px.AAPL', new Map([['bid', 189.26], ['ask', 189.28]]));
    const delta2 = enc.delta2(a.topic, a.base, a.version, a.changes, { namesFrom: a.namesFrom, bind: false });
    const body = encodeUpdate({ ts: 5, epoch: a.topic.epoch, topicId: a.topic.id, topic: 'px.AAPL' }, delta2);
    const old = new Uint8Array(22 + 7 + delta2.byteLength);
    const v = new DataView(old.buffer);
    v.setFloat64(0, 5, true);
    v.setFloat64(8, a.topic.epoch, true);
    v.setUint32(16, a.topic.id, true);
    v.setUint16(20, 7, true);
    old.set(new TextEncoder().encode('px.AAPL'), 22);
    old.set(delta2, 29);
    expect(body).toEqual(old);
    expect(body.byteLength).toBe(29 + delta2.byteLength);
    expect(readUpdate(body).keyed).toBeUndefined();
  });

  it('a keyed update carries the net row change; the replica applies it at replica + 1 only and ends equal', () => {
    const seq = new TopicStore();
    const replica = new TopicStore();
    const bodies = [
      sequence(seq, 'k.b', { fields: new Map([['last', 1.5]]), tables: { declare: [BIDS, ORDERS], ops: [{ op: 'upsert', table: 'bids', key: 100, fields: new Map([['qty', 3.2]]) }, { op: 'replace', table: 'orders', key: 'o1', fields: new Map<string, string | number>([['px', 5], ['side', 'b']]) }] } }),
      sequence(seq, 'k.b', { fields: new Map(), tables: { ops: [{ op: 'upsert', table: 'bids', key: 99, fields: new Map([['qty', 1]]) }, { op: 'upsert', table: 'bids', key: 100, fields: new Map([['qty', null]]) }, { op: 'delete', table: 'orders', key: 'o1' }] } }),
      sequence(seq, 'k.b', { fields: new Map([['last', 2]]) }), // a flat publish to a keyed topic
      sequence(seq, 'k.b', { fields: new Map(), tables: { ops: [{ op: 'clear', table: 'bids' }, { op: 'upsert', table: 'bids', key: -5, fields: new Map<string, bigint | number>([['qty', 2n ** 60n], ['n', 7]]) }] } }),
    ];
    expect(apply(replica, bodies[1]!)).toBeNull(); // v2 without v1: nothing applied
    expect(replica.get('k.b')).toBeUndefined();
    for (const b of bodies) expect(apply(replica, b)).not.toBeNull();
    expect(apply(replica, bodies[3]!)).toBeNull(); // v4 again: not replica + 1
    expect(replica.get('k.b')!.version).toBe(4);
    expect(rows(replica, 'k.b')).toBe(rows(seq, 'k.b'));
    expect(replica.get('k.b')!.tables!.table('orders')!.spec).toEqual(ORDERS); // maxRows and sort fields kept
    expect(Object.fromEntries(replica.get('k.b')!.state)).toEqual({ last: 2 });
  });

  it('another epoch, or a row change for a table the replica does not hold, is not applied: the replica resyncs from an image with the tables', () => {
    const seq = new TopicStore();
    const replica = new TopicStore();
    const first = sequence(seq, 'k.c', { fields: new Map(), tables: { declare: [BIDS], ops: [{ op: 'upsert', table: 'bids', key: 1, fields: new Map([['q', 1]]) }] } });
    const second = sequence(seq, 'k.c', { fields: new Map(), tables: { ops: [{ op: 'upsert', table: 'bids', key: 2, fields: new Map([['q', 2]]) }] } });
    // A replica holding the topic at v1 without its tables (it cannot tell bids' id): refused.
    replica.resetTopic('k.c', seq.get('k.c')!.epoch, 1, [], 0, seq.get('k.c')!.id, ['']);
    expect(apply(replica, second)).toBeNull();
    expect(replica.get('k.c')!.version).toBe(1);
    const img = imageOf(seq.get('k.c')!);
    expect(img.tables!.tables.map((t) => t.spec.name)).toEqual(['bids']);
    replica.resetTopic(img.name, img.epoch, img.version, img.state, img.ts, img.id, img.fieldNames, img.tables);
    expect(rows(replica, 'k.c')).toBe(rows(seq, 'k.c'));
    // Another epoch: refused.
    const other = new TopicStore();
    expect(apply(other, first)).not.toBeNull();
    const u = readUpdate(second);
    expect(applyUpdate(other, { ...u, epoch: u.epoch + 1 }, decodeEncoded(u.delta2) as Delta2Msg)).toBeNull();
  });

  it('keyed part bytes: a book update of 3 level changes, field names once per message', () => {
    const seq = new TopicStore();
    sequence(seq, 'k.d', { fields: new Map(), tables: { declare: [BIDS], ops: [] } });
    const a = seq.publishBatch('k.d', { fields: new Map(), tables: { ops: [6500050, 6500040, 6500030].map((key, i) => ({ op: 'upsert' as const, table: 'bids', key, fields: new Map([['qty', 1.5 + i]]) })) } });
    const part = parts.encode(a.keyed!, a.topic.tables!);
    // form, 0 declarations, then 3 × (head, key delta, n, entry): the name `qty` travels once.
    expect(part.byteLength).toBeLessThanOrEqual(30);
    expect(decodeKeyedPart(part, ['bids'])!.tables.get('bids')!.rows.size).toBe(3);
    expect(() => decodeKeyedPart(new Uint8Array([2, 0]), [])).toThrow(/form 2/);
    expect(decodeKeyedPart(part, [])).toBeNull(); // table 0 unknown to this replica
  });
});

describe('refusals across threads', () => {
  it('a KeyedBatchError crosses the ring reject record and comes back the same (table, key, reason, message)', () => {
    const err = new KeyedBatchError('ifNew', ErrorCode.ROW_GUARD, 'the row exists', { table: 'bids', key: 6500050, opIndex: 3 });
    const back = readReject(readRejectBody(rejectRecord(1, 9, err.errorCode, err.message, refusalOf(err))));
    const again = refusalError(back.code, back.message, back.refusal);
    expect(again).toBeInstanceOf(KeyedBatchError);
    expect(again).toMatchObject({ errorCode: ErrorCode.ROW_GUARD, message: err.message, table: 'bids', key: 6500050, opIndex: 3, reason: 'ifNew' });
    const plain = readReject(readRejectBody(rejectRecord(1, 9, ErrorCode.BAD_FIELD, 'no')));
    expect(plain).toEqual({ code: ErrorCode.BAD_FIELD, message: 'no' });
    expect(refusalError(plain.code, plain.message, undefined)).not.toBeInstanceOf(KeyedBatchError);
  });

  it('a publish record carries the declarations (maxRows) beside the Publish; a flat one is unchanged', () => {
    const msg = new Uint8Array([1, 2, 3]);
    expect(publishRecord(7, msg)).toEqual(new Uint8Array([7, 0, 0, 0, 1, 2, 3]));
    expect(readPublish(publishRecord(7, msg))).toEqual({ requestId: 7, message: msg });
    expect(readPublish(publishRecord(0x7fffffff, msg, [ORDERS]))).toEqual({ requestId: 0x7fffffff, message: msg, declare: [ORDERS] });
  });
});

function readRejectBody(rec: Uint8Array): Uint8Array {
  return rec.subarray(8);
}

describe('cluster messages of keyed topics (JSON over NATS)', () => {
  it('an image with tables, a forwarded keyed batch and a typed refusal survive their JSON exactly', async () => {
    const { imageFromJson, imageToJson, publishRequest, readPublishRequest, errorReply, readPublishReply } = await import('../../src/cluster/messages.js');
    const seq = new TopicStore();
    const bytes = new Uint8Array([0, 255, 7]);
    sequence(seq, 'k.j', { fields: new Map([['last', 0.1]]), tables: { declare: [BIDS, ORDERS], ops: [{ op: 'upsert', table: 'bids', key: 2 ** 52, fields: new Map<string, any>([['qty', 0.30000000000000004], ['big', 2n ** 62n], ['nan', NaN], ['b', bytes]]) }, { op: 'upsert', table: 'orders', key: 'ü', fields: new Map([['px', 1]]) }] } });
    const img = imageOf(seq.get('k.j')!);
    const back = imageFromJson(JSON.parse(JSON.stringify(imageToJson(img))));
    const replica = new TopicStore();
    replica.resetTopic(back.name, back.epoch, back.version, back.state, back.ts, back.id, back.fieldNames, back.tables);
    expect(rows(replica, 'k.j')).toBe(rows(seq, 'k.j'));
    expect(replica.get('k.j')!.tables!.table('bids')!.get(2 ** 52)!.fields.get('nan')).toBeNaN();
    const batch = { declare: [ORDERS], ops: [{ op: 'upsert' as const, table: 'orders', key: 'x', fields: new Map<string, any>([['px', 2n ** 60n], ['gone', null]]), guard: 'ifNew' as const }, { op: 'deleteRange' as const, table: 'bids', from: 1, to: 5, toExclusive: true }, { op: 'clear' as const, table: 'bids' }] };
    expect(readPublishRequest(publishRequest('k.j', new Map([['a', 1]]), batch))).toEqual({ topic: 'k.j', changes: new Map([['a', 1]]), tables: batch });
    expect(new TextDecoder().decode(publishRequest('px.X', new Map([['a', 1]])))).toBe('{"topic":"px.X","fields":[["a",1]]}');
    const err = new KeyedBatchError('tooManyRows', ErrorCode.TOO_MANY_ROWS, 'too many', { table: 'orders' });
    expect(() => readPublishReply(errorReply(err))).toThrow(expect.objectContaining({ name: 'KeyedBatchError', errorCode: ErrorCode.TOO_MANY_ROWS, table: 'orders', reason: 'tooManyRows', message: err.message }));
  });
});
