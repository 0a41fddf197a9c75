// The allocation cuts on the publish path keep the bytes and the semantics:
// the reusing FlatBuffers builder writes exactly what the library's Builder
// writes (vtables shared within a message, never across messages), a byte
// vector from a scratch buffer equals createByteVector's, and the reused
// change set of the in-process publish gives the same Map contents as
// toChanges whatever the shape of the fields.

import { Builder } from 'flatbuffers';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createByteVectorOf, ReusingBuilder } from '../../src/protocol/builder.js';
import { ChangesScratch, Encoder, toChanges, type FieldValue } from '../../src/protocol/index.js';
import * as fb from '../../src/protocol/generated/tickfan.js';

/** A Snapshot (protocol 1) of `fields`: one Field table each, whose vtables the builder dedups. */
function snapshotWith(b: Builder, fields: readonly [string, FieldValue][]): Uint8Array {
  const offs = fields.map(([name, v]) => {
    const n = b.createString(name);
    const s = typeof v === 'string' ? b.createString(v) : 0;
    fb.Field.startField(b);
    fb.Field.addName(b, n);
    if (typeof v === 'number') {
      fb.Field.addKind(b, fb.ValueKind.Float);
      fb.Field.addF(b, v);
    } else if (typeof v === 'boolean') {
      fb.Field.addKind(b, fb.ValueKind.Bool);
      fb.Field.addB(b, v);
    } else if (typeof v === 'string') {
      fb.Field.addKind(b, fb.ValueKind.String);
      fb.Field.addS(b, s);
    }
    return fb.Field.endField(b);
  });
  const vec = fb.Snapshot.createFieldsVector(b, offs);
  const t = b.createString('px.T');
  const root = fb.Message.createMessage(b, fb.Body.Snapshot, fb.Snapshot.createSnapshot(b, t, 1n, 7n, vec, 0));
  b.finishSizePrefixed(root);
  const out = b.asUint8Array().slice();
  b.clear();
  return out;
}

const value = fc.oneof(fc.double({ noNaN: true }), fc.boolean(), fc.string({ maxLength: 12 }));
const fieldList = fc.array(fc.tuple(fc.string({ minLength: 1, maxLength: 8 }), value), { maxLength: 12 });

describe('ReusingBuilder', () => {
  it('writes what the library Builder writes, message after message (vtables deduplicated within a message only)', () => {
    fc.assert(
      fc.property(fc.array(fieldList, { minLength: 1, maxLength: 6 }), (messages) => {
        const reusing = new ReusingBuilder(64); // small: the buffer grows mid-message too
        for (const fields of messages) {
          const expected = snapshotWith(new Builder(64), fields);
          expect(snapshotWith(reusing, fields)).toEqual(expected);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('shares one vtable between identical tables of a message (the dedup still works)', () => {
    const fields: [string, FieldValue][] = Array.from({ length: 10 }, (_, i) => [`f${i}`, i + 0.5]);
    const one = snapshotWith(new ReusingBuilder(), fields.slice(0, 1)).byteLength;
    const ten = snapshotWith(new ReusingBuilder(), fields).byteLength;
    // Each further Field adds its table and name, not another vtable (≥ 10 bytes for this shape).
    const perField = (ten - one) / 9;
    expect(perField).toBeLessThan(one - 30);
    expect(snapshotWith(new ReusingBuilder(), fields)).toEqual(snapshotWith(new Builder(), fields));
  });

  it('refuses endObject without startObject, as the library does', () => {
    expect(() => new ReusingBuilder().endObject()).toThrow(/endObject called without startObject/);
  });

  it('createByteVectorOf writes the first n bytes as createByteVector does, short and long', () => {
    for (const n of [0, 1, 7, 64, 256, 257, 3000]) {
      const bytes = Uint8Array.from({ length: n + 5 }, (_, i) => (i * 37 + 11) & 0xff);
      const a = new Builder(16);
      const b = new Builder(16);
      a.finish(createByteVectorOf(a, bytes, n));
      b.finish(b.createByteVector(bytes.subarray(0, n)));
      expect(a.asUint8Array()).toEqual(b.asUint8Array());
    }
  });

  it('the encoder gives the same Delta2 bytes before and after warm-up (no state leaks between messages)', () => {
    const enc = new Encoder();
    const t = { id: 3, name: 'px.A', epoch: 9, fieldId: (f: string) => ({ bid: 1, ask: 2 })[f] ?? 0 };
    const first = enc.delta2(t, 4, 5, new Map<string, FieldValue>([['bid', 1.25], ['ask', 1.5]]), { namesFrom: 1, bind: false });
    for (let i = 0; i < 100; i++) enc.delta2(t, i, i + 1, new Map<string, FieldValue>([['bid', i + 0.5], ['x', 'y']]), { namesFrom: 1, bind: i % 2 === 0 });
    const again = new Encoder().delta2(t, 4, 5, new Map<string, FieldValue>([['bid', 1.25], ['ask', 1.5]]), { namesFrom: 1, bind: false });
    expect(enc.delta2(t, 4, 5, new Map<string, FieldValue>([['bid', 1.25], ['ask', 1.5]]), { namesFrom: 1, bind: false })).toEqual(first);
    expect(again).toEqual(first);
  });
});

describe('ChangesScratch', () => {
  const entries = (m: Map<string, unknown>) => [...m.entries()];

  it('gives what toChanges gives for any sequence of shapes, and reuses the Map for a repeated shape', () => {
    const name = fc.constantFrom('bid', 'ask', 'last', 't', '1', 'x');
    const obj = fc.dictionary(name, fc.oneof(fc.double({ noNaN: true }), fc.constant(null), fc.string({ maxLength: 4 })), { maxKeys: 5 });
    fc.assert(
      fc.property(fc.array(obj, { minLength: 1, maxLength: 10 }), (objs) => {
        const s = new ChangesScratch();
        for (const o of objs) {
          const c = s.take(o);
          expect(entries(c)).toEqual(entries(toChanges(o)));
          s.give(c);
        }
      }),
      { numRuns: 300 },
    );
    const s = new ChangesScratch();
    const a = s.take({ t: 1, bid: 2.5 });
    s.give(a);
    const b = s.take({ t: 2, bid: 2.75 });
    expect(b).toBe(a);
    expect(entries(b)).toEqual([['t', 2], ['bid', 2.75]]);
    s.give(b);
    const c = s.take({ bid: 3, t: 3 }); // another order: another Map, in this order
    expect(c).not.toBe(a);
    expect(entries(c)).toEqual([['bid', 3], ['t', 3]]);
  });

  it('hands out a copy while its Map is out (a publish from inside a publish), and copies Map input', () => {
    const s = new ChangesScratch();
    const outer = s.take({ a: 1 });
    const inner = s.take({ a: 2 });
    expect(inner).not.toBe(outer);
    expect(entries(outer)).toEqual([['a', 1]]);
    s.give(inner); // not its Map: still out
    expect(s.take({ a: 3 })).not.toBe(outer);
    s.give(outer);
    expect(s.take({ a: 4 })).toBe(outer);
    const given = new Map<string, FieldValue | null>([['a', 5]]);
    const fromMap = new ChangesScratch().take(given);
    expect(fromMap).not.toBe(given);
    expect(entries(fromMap)).toEqual([['a', 5]]);
  });

  it('ignores inherited properties and refuses what is not an object, like toChanges', () => {
    const s = new ChangesScratch();
    const proto = { inherited: 1 };
    const o = Object.create(proto) as Record<string, FieldValue>;
    o.own = 2;
    expect(entries(s.take(o))).toEqual([['own', 2]]);
    expect(() => new ChangesScratch().take(null as never)).toThrow(/fields must be an object or a Map/);
    expect(() => new ChangesScratch().take(5 as never)).toThrow(/fields must be an object or a Map/);
  });
});
