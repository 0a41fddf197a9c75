// Decoding without a BigInt per 64-bit value (issue 13): versions, epochs,
// bases and integer field values are read as two 32-bit halves; a BigInt is
// made only for an integer past 2^53 - 1, and the values come out as before.

import { ByteBuffer } from 'flatbuffers';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Encoder, decodeEncoded, type FieldValue } from '../../src/protocol/index.js';

afterEach(() => vi.restoreAllMocks());

const enc = new Encoder();

const INTS: bigint[] = [
  0n,
  1n,
  -1n,
  2n ** 31n - 1n,
  -(2n ** 31n),
  2n ** 32n,
  -(2n ** 32n),
  2n ** 32n + 5n,
  -(2n ** 32n) - 5n,
  2n ** 53n - 1n,
  -(2n ** 53n) + 1n,
  2n ** 53n,
  -(2n ** 53n),
  2n ** 53n + 1n,
  2n ** 63n - 1n,
  -(2n ** 63n),
];

/** What decoding gave before: a number when it is a safe integer, else the bigint. */
const expected = (i: bigint): FieldValue => (i >= -BigInt(Number.MAX_SAFE_INTEGER) && i <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(i) : i);

describe('64-bit values without BigInt', () => {
  it('integer field values decode as before at every boundary', () => {
    const changes = new Map<string, FieldValue | null>(INTS.map((i, n) => [`f${n}`, i]));
    const m = decodeEncoded(enc.delta('px.A', 3, 1, 2, 1, changes, 0));
    expect(m.type).toBe('delta');
    const got = (m as { changes: Map<string, FieldValue | null> }).changes;
    INTS.forEach((i, n) => expect(got.get(`f${n}`), `${i}`).toEqual(expected(i)));
    // Small integers given as numbers too.
    const small = decodeEncoded(enc.publish(1, 'px.A', new Map<string, FieldValue | null>([['a', 42], ['b', -7], ['c', 0]])));
    expect([...(small as { changes: Map<string, FieldValue | null> }).changes]).toEqual([
      ['a', 42],
      ['b', -7],
      ['c', 0],
    ]);
  });

  it('versions, epochs and bases decode exactly (and clamp past 2^53 - 1 as before)', () => {
    for (const v of [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 3, Number.MAX_SAFE_INTEGER]) {
      const d = decodeEncoded(enc.delta('px.A', v, Math.max(0, v - 1), v, 1, [], 0)) as { epoch: number; base: number; version: number };
      expect([d.epoch, d.base, d.version]).toEqual([v, Math.max(0, v - 1), v]);
      const s = decodeEncoded(enc.snapshot('px.A', v, v, new Map(), 0)) as { epoch: number; version: number };
      expect([s.epoch, s.version]).toEqual([v, v]);
      const h = decodeEncoded(enc.heartbeat(5, [{ topic: 'px.A', epoch: v, version: v }])) as { versions: { epoch: number; version: number }[] };
      expect(h.versions).toEqual([{ topic: 'px.A', epoch: v, version: v }]);
      const t = decodeEncoded(enc.topicStatus('px.A', 1, v, v)) as { epoch: number; version: number };
      expect([t.epoch, t.version]).toEqual([v, v]);
    }
  });

  it('makes no BigInt for a delta of ordinary values', () => {
    const bytes = enc.delta('px.A', 1_700_000_000_123, 41, 42, 1, new Map<string, FieldValue | null>([['bid', 101.5], ['size', 300], ['n', -12]]), 0);
    const r64 = vi.spyOn(ByteBuffer.prototype, 'readInt64');
    const ru64 = vi.spyOn(ByteBuffer.prototype, 'readUint64');
    const d = decodeEncoded(bytes) as { epoch: number; version: number; changes: Map<string, FieldValue | null> };
    expect(d.epoch).toBe(1_700_000_000_123);
    expect(d.version).toBe(42);
    expect(d.changes.get('size')).toBe(300);
    expect(r64).not.toHaveBeenCalled();
    expect(ru64).not.toHaveBeenCalled();
  });
});
