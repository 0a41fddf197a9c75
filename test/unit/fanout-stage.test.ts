// The fast path's per-turn stage (fanout/stage.ts): a frame assembled from
// staged deltas and ordinary messages is byte for byte the frame
// FrameWriter2 writes from the same messages as arrays, whatever the mix,
// sizes and growth of the stage; and the Encoder writes into a stage exactly
// the bytes delta2() returns.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Encoder, FrameWriter2, type FieldValue } from '../../src/protocol/index.js';
import { STAGED, Stage } from '../../src/server/fanout/stage.js';

const topic = { id: 7, name: 'px.S', epoch: 3, fieldId: (f: string) => (f === 'bid' ? 1 : f === 'ask' ? 2 : 0) };

/** A Delta2 of `n` fields (long ones carry a string value past 260 bytes). */
function changesOf(n: number, long: boolean): Map<string, FieldValue> {
  const m = new Map<string, FieldValue>();
  for (let i = 0; i < n; i++) m.set(i === 0 ? 'bid' : `f${i}`, i + 0.25);
  if (long) m.set('note', 'x'.repeat(300));
  return m;
}

describe('Stage', () => {
  it('delta2Into writes what delta2 returns', () => {
    const enc = new Encoder();
    const stage = new Stage();
    for (const [n, long, bind] of [[1, false, false], [5, false, true], [3, true, false]] as const) {
      const o = { namesFrom: 2, bind, ts: bind ? 1234 : undefined };
      const expected = enc.delta2(topic, 10, 11, changesOf(n, long), o);
      const at = enc.delta2Into(stage, topic, 10, 11, changesOf(n, long), o);
      expect(stage.bytes.subarray(at, at + expected.byteLength)).toEqual(expected);
    }
  });

  it('frames equal FrameWriter2 for any mix of staged and ordinary messages (a stage that grows, reset between turns)', () => {
    const enc = new Encoder();
    const writer = new FrameWriter2();
    const stage = new Stage();
    const part = fc.record({ staged: fc.boolean(), fields: fc.integer({ min: 0, max: 6 }), long: fc.boolean(), p1: fc.boolean() });
    fc.assert(
      fc.property(fc.array(fc.array(part, { minLength: 1, maxLength: 40 }), { minLength: 1, maxLength: 4 }), fc.integer({ min: 0, max: 300 }), (turns, seq) => {
        for (const parts of turns) {
          const arrays: Uint8Array[] = [];
          const queue: Uint8Array[] = [];
          const offsets: number[] = [];
          parts.forEach((p, i) => {
            const changes = changesOf(p.fields, p.long);
            // An ordinary part is a Delta2 array or a protocol-1 Message (not bare), as heartbeats and flags are.
            const msg = p.p1 && !p.staged ? enc.heartbeat(i, []) : enc.delta2(topic, i, i + 1, changes, { namesFrom: 1, bind: false });
            arrays.push(msg);
            if (p.staged) {
              offsets.push(enc.delta2Into(stage, topic, i, i + 1, changes, { namesFrom: 1, bind: false }));
              queue.push(STAGED);
            } else queue.push(msg);
          });
          const expected = writer.write(seq, arrays, arrays.length).slice();
          expect(stage.frame2(seq, queue, queue.length, offsets)).toEqual(expected);
          stage.reset();
          expect(stage.size).toBe(0);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('keeps staged bytes when it grows past its first buffer', () => {
    const enc = new Encoder();
    const stage = new Stage();
    const first = enc.delta2Into(stage, topic, 0, 1, changesOf(2, false), { namesFrom: 1, bind: false });
    const expected = enc.delta2(topic, 0, 1, changesOf(2, false), { namesFrom: 1, bind: false });
    const before = stage.bytes.byteLength;
    while (stage.bytes.byteLength === before) enc.delta2Into(stage, topic, 0, 1, changesOf(6, true), { namesFrom: 1, bind: false });
    expect(stage.bytes.subarray(first, first + expected.byteLength)).toEqual(expected);
  });
});
