// The protocol reference's worked example (docs/protocol.md, "Worked example")
// is the real encoder's output: each annotated byte block is read back (the
// hex columns, and the offset column against the bytes counted so far) and
// compared with what Encoder + FrameWriter2 produce for the same messages,
// and the bytes decode to what the annotations say.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeEncoded, Encoder, FrameWriter2, KeyedEncoder, Protocol2Reader, ServerFrameReader, type Delta2Msg, type FieldValue, type Key, type KeyedDelta2Msg, type KeyedDeltaMsg, type RowChange, type Snapshot2Msg } from '../../src/protocol/index.js';

const doc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');

/** The bytes of the annotated block after `<!-- bytes: name -->`, checking its offset column. */
function block(name: string): Uint8Array {
  const at = doc.indexOf(`<!-- bytes: ${name} -->`);
  expect(at, `docs/protocol.md has the "${name}" block`).toBeGreaterThan(-1);
  const body = /```text\n([\s\S]*?)```/.exec(doc.slice(at))![1]!;
  const bytes: number[] = [];
  let buffer = 0;
  for (const line of body.split('\n')) {
    if (!line.trim()) continue;
    const m = /^(frame|\d{4}) {2,}([0-9a-f]{2}(?: [0-9a-f]{2})*)(?: {2,}|$)/.exec(line);
    expect(m, `a line of "${name}" reads as offset, hex, note: ${line}`).not.toBeNull();
    const hex = m![2]!.split(' ').map((h) => parseInt(h, 16));
    if (m![1] !== 'frame') {
      expect(Number(m![1]), `offset column of: ${line}`).toBe(buffer);
      buffer += hex.length;
    }
    bytes.push(...hex);
  }
  return Uint8Array.from(bytes);
}

const hex = (u: Uint8Array) => Array.from(u, (b) => b.toString(16).padStart(2, '0')).join(' ');

/** The example: px.AAPL, topic id 7, epoch 1; bid = field 1, ask = field 2. */
function example() {
  const ids: Record<string, number> = { bid: 1, ask: 2 };
  const t = { id: 7, name: 'px.AAPL', epoch: 1, fieldId: (n: string) => ids[n] ?? 0 };
  const enc = new Encoder();
  const snap = enc.snapshot2(t, 42, new Map<string, FieldValue>([['bid', 101.25], ['ask', 101.27]]), 1796000000000).slice();
  const delta = enc.delta2(t, 42, 43, new Map<string, FieldValue>([['bid', 101.3]]), { namesFrom: 3, bind: false }).slice();
  const w = new FrameWriter2();
  return { snapshotFrame: w.write(5, [snap]).slice(), deltaFrame: w.write(0, [delta]).slice() };
}

describe('the worked example in docs/protocol.md', () => {
  it('shows the bytes the encoder writes', () => {
    const { snapshotFrame, deltaFrame } = example();
    expect(hex(block('snapshot2-frame'))).toBe(hex(snapshotFrame));
    expect(hex(block('delta2-frame'))).toBe(hex(deltaFrame));
  });

  it('decodes to what the annotations say', () => {
    const frames = new ServerFrameReader();
    frames.protocol = 2;
    const a = frames.read(block('snapshot2-frame'));
    const b = frames.read(block('delta2-frame'));
    expect([a.seq, b.seq]).toEqual([5, 0]);
    const snap = a.messages[0] as Snapshot2Msg;
    const delta = b.messages[0] as Delta2Msg;
    expect({ topicId: snap.topicId, topic: snap.topic, epoch: snap.epoch, version: snap.version, ts: snap.ts }).toEqual({ topicId: 7, topic: 'px.AAPL', epoch: 1, version: 42, ts: 1796000000000 });
    expect(snap.entries.map((e) => [e.id, e.name, e.value])).toEqual([
      [1, 'bid', 101.25],
      [2, 'ask', 101.27],
    ]);
    expect({ topicId: delta.topicId, topic: delta.topic, base: delta.base, version: delta.version }).toEqual({ topicId: 7, topic: null, base: 42, version: 43 });
    expect(delta.entries.map((e) => [e.id, e.name, e.value])).toEqual([[1, undefined, 101.3]]);
  });
});

/** The keyed example: book.BTC-USD, topic id 9, epoch 1; bids = table 0 (int keys, desc, key base 130000); mid = 1, qty = 2, count = 3. */
function keyedExample(): Uint8Array {
  const ids: Record<string, number> = { mid: 1, qty: 2, count: 3 };
  const t = { id: 9, name: 'book.BTC-USD', epoch: 1, fieldId: (n: string) => ids[n] ?? 0 };
  const rows = new Map<Key, RowChange>([
    [130000, { op: 'upsert', fields: new Map<string, FieldValue | null>([['qty', 3.2], ['count', 4]]) }],
    [130001, { op: 'replace', fields: new Map<string, FieldValue>([['qty', 0.5], ['count', 1]]), existed: false }],
    [129990, { op: 'delete' }],
  ]);
  const d = new KeyedEncoder().keyedDelta2(t, 101, 102, [['mid', 65000.25]], { declared: [], tables: new Map([['bids', { clear: false, rows }]]) }, new Map([['bids', BIDS]]), { namesFrom: 4, bind: false });
  return new FrameWriter2().write(0, [d]).slice();
}

const BIDS = { id: 0, spec: { name: 'bids', key: 'int' as const, order: { key: 'desc' as const } }, depth: 10, fields: [], keyBase: 130000 };

describe('the KeyedDelta2 worked example in docs/protocol.md', () => {
  it('shows the bytes the encoder writes and decodes to what the annotations say', () => {
    expect(hex(block('keyed-delta2-frame'))).toBe(hex(keyedExample()));
    const frames = new ServerFrameReader();
    frames.protocol = 2;
    const { seq, messages, error } = frames.read(block('keyed-delta2-frame'));
    expect(error).toBeNull();
    expect(seq).toBe(0);
    const m = messages[0] as KeyedDelta2Msg;
    expect(m).toMatchObject({ type: 'keyedDelta2', topicId: 9, topic: null, base: 101, version: 102, checksum: null, tables: [] });
    expect(m.summary).toEqual([{ id: 1, name: undefined, value: 65000.25 }]);
    // Keys as offsets from the key base (the message does not bind bids) ...
    const bids = m.rows.get(0)!;
    expect(bids.clear).toBe(false);
    expect(bids.relative).toBe(true);
    expect([...bids.rows.keys()]).toEqual([-10, 0, 1]);
    expect(bids.rows.get(-10)).toEqual({ op: 'delete' });
    expect(bids.rows.get(0)).toEqual({ op: 'upsert', entries: [{ id: 2, name: undefined, value: 3.2 }, { id: 3, name: undefined, value: 4 }] });
    expect(bids.rows.get(1)).toEqual({ op: 'replace', existed: false, entries: [{ id: 2, name: undefined, value: 0.5 }, { id: 3, name: undefined, value: 1 }] });
    // ... which a reader holding the binding (and the field names, from its snapshot) turns into keys.
    const reader = new Protocol2Reader();
    const snap = new KeyedEncoder().keyedSnapshot2({ id: 9, name: 'book.BTC-USD', epoch: 1, fieldId: (n: string) => ({ mid: 1, qty: 2, count: 3 })[n] ?? 0 }, 101, [['mid', 65000]], [{ binding: BIDS, rows: [[129995, new Map<string, FieldValue>([['qty', 1], ['count', 1]])]] }], 0);
    reader.readKeyed(decodeEncoded(snap[0]!) as never);
    const resolved = reader.readKeyed(m) as KeyedDeltaMsg;
    expect([...resolved.change.tables.get('bids')!.rows.keys()]).toEqual([129990, 130000, 130001]);
    expect(resolved.summary.get('mid')).toBe(65000.25);
  });
});
