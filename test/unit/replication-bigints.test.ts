// Bigint marks of replicated updates (server/replication-bigints.ts): a field
// or row field published as a bigint below 2^53 reaches a replica as a
// bigint, not the number the Delta2 and op stream read back; updates without
// one are unchanged byte for byte; marks that do not fit the update make the
// replica resynchronise instead of applying.

import { describe, expect, it } from 'vitest';
import { TopicStore, type Accepted, type TopicBatch } from '../../src/engine/index.js';
import { Encoder, decodeEncoded, type Changes, type Delta2Msg, type FieldValue } from '../../src/protocol/index.js';
import { applyUpdate, encodeUpdate, readUpdate } from '../../src/server/replication.js';
import { bigintMarks } from '../../src/server/replication-bigints.js';
import { KeyedPartWriter } from '../../src/server/replication-keyed.js';

const enc = new Encoder();
const parts = new KeyedPartWriter();
const ROWS = { name: 'rows', key: 'int' as const, order: { key: 'asc' as const } };

/** What an origin sends for one accepted update (`marks: false`: as before marks). */
function body(a: Accepted, marks = true): Uint8Array {
  const t = a.topic;
  const delta2 = enc.delta2(t, a.base, a.version, a.changes, { namesFrom: a.namesFrom, bind: false });
  const keyed = a.keyed && parts.encode(a.keyed, t.tables!);
  return encodeUpdate({ ts: t.ts, epoch: t.epoch, topicId: t.id, topic: t.name }, delta2, keyed, marks ? bigintMarks(a.changes, a.keyed) : undefined);
}

function apply(replica: TopicStore, b: Uint8Array, tweak: Partial<ReturnType<typeof readUpdate>> = {}) {
  const u = { ...readUpdate(b), ...tweak };
  return applyUpdate(replica, u, decodeEncoded(u.delta2) as Delta2Msg);
}

/** Values with their kinds spelled out (5n and 5 differ, -0 and 0 too). */
const kinds = (m: Iterable<readonly [string, FieldValue]> | undefined): string[] => [...(m ?? [])].map(([k, v]) => `${k}=${typeof v}:${Object.is(v, -0) ? '-0' : String(v)}`);
const rowKinds = (s: TopicStore, topic: string) => [...s.get(topic)!.tables!.table('rows')!.rows()].map((r) => `${r.key}:${kinds(r.fields).join(',')}`);

const SMALL: Changes = new Map<string, FieldValue | null>([
  ['zero', 0n],
  ['five', 5n],
  ['neg', -(2n ** 53n - 1n)],
  ['max', 2n ** 53n - 1n],
  ['past', 2n ** 53n],
  ['num', 5],
  ['negZero', -0],
  ['s', ''],
]);

describe('bigint marks', () => {
  it('flat: 0n, 5n, ±(2^53 - 1)n stay bigints on the replica, numbers stay numbers; without marks they would turn into numbers', () => {
    const seq = new TopicStore();
    const a = seq.publish('vk.a', SMALL);
    const replica = new TopicStore();
    expect(apply(replica, body(a))).not.toBeNull();
    expect(kinds(replica.get('vk.a')!.state)).toEqual(kinds(seq.get('vk.a')!.state));
    const before = new TopicStore();
    expect(apply(before, body(a, false))).not.toBeNull();
    expect(kinds(before.get('vk.a')!.state)).not.toEqual(kinds(seq.get('vk.a')!.state));
    expect(readUpdate(body(a)).keyed).toBeUndefined();
  });

  it('keyed: summary fields and row fields (upsert, replace, insert) keep their bigints; deletes and clears apply as before', () => {
    const seq = new TopicStore();
    const replica = new TopicStore();
    const batches: TopicBatch[] = [
      { fields: new Map([['n', 1n]]), tables: { declare: [ROWS], ops: [{ op: 'upsert', table: 'rows', key: 1, fields: SMALL }, { op: 'replace', table: 'rows', key: 2, fields: new Map([['q', 7n]]) }] } },
      { fields: new Map([['n', 2]]), tables: { ops: [{ op: 'upsert', table: 'rows', key: 1, fields: new Map([['five', 6n]]) }, { op: 'delete', table: 'rows', key: 2 }, { op: 'upsert', table: 'rows', key: -3, fields: new Map([['q', -3n]]) }] } },
      { fields: new Map(), tables: { ops: [{ op: 'clear', table: 'rows' }, { op: 'replace', table: 'rows', key: 9, fields: new Map<string, FieldValue>([['q', 0n], ['f', 0.5]]) }] } },
    ];
    for (const b of batches) {
      expect(apply(replica, body(seq.publishBatch('vk.k', b)))).not.toBeNull();
      expect(kinds(replica.get('vk.k')!.state)).toEqual(kinds(seq.get('vk.k')!.state));
      expect(rowKinds(replica, 'vk.k')).toEqual(rowKinds(seq, 'vk.k'));
    }
    expect(rowKinds(replica, 'vk.k')).toEqual(['9:q=bigint:0,f=number:0.5']);
  });

  it('an update with no bigint below 2^53 carries no marks: its bytes are what they were', () => {
    const seq = new TopicStore();
    const a = seq.publish('vk.n', new Map<string, FieldValue>([['big', 2n ** 60n], ['n', 5], ['s', 'x']]));
    expect(bigintMarks(a.changes)).toBeUndefined();
    expect(body(a)).toEqual(body(a, false));
    const k = seq.publishBatch('vk.nk', { fields: new Map(), tables: { declare: [ROWS], ops: [{ op: 'upsert', table: 'rows', key: 1, fields: new Map([['q', 1.5]]) }] } });
    expect(body(k)).toEqual(body(k, false));
  });

  it('marks that do not fit the update (not JSON, a field that is no safe integer, a row it does not change) are not applied: the replica resynchronises', () => {
    const seq = new TopicStore();
    const a = seq.publish('vk.b', SMALL);
    const bad = ['{', '{"f":["s"]}', '{"f":["negZero"]}', '{"f":["nope"]}', '{"f":"five"}', '{"r":[["rows",1,"q"]]}', 'null'];
    for (const m of bad) {
      const replica = new TopicStore();
      expect(apply(replica, body(a), { marks: new TextEncoder().encode(m) }), m).toBeNull();
      expect(replica.get('vk.b')?.version ?? 0).toBe(0);
    }
    const k = seq.publishBatch('vk.bk', { fields: new Map(), tables: { declare: [ROWS], ops: [{ op: 'upsert', table: 'rows', key: 1, fields: new Map([['q', 1n]]) }] } });
    const replica = new TopicStore();
    expect(apply(replica, body(k), { marks: new TextEncoder().encode('{"r":[["rows",2,"q"]]}') })).toBeNull();
    expect(apply(replica, body(k))).not.toBeNull();
  });
});
