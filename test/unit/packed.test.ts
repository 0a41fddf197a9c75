// Protocol 2's packed field entries (src/protocol/packed.ts): every value a
// field can hold comes back exactly — bit for bit, Object.is — through
// PackWriter and readPacked, with its id and with or without its name; prices
// take the decimal form only when it gives back the very same double; varints
// and length prefixes hold at their edges.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  Encoder,
  ErrorCode,
  MAX_DECIMAL_EXPONENT,
  PackReader,
  PackWriter,
  PackedTag,
  Protocol2Reader,
  TickfanError,
  decimalOf,
  decodeEncoded,
  readPacked,
  readVarint,
  sameValue,
  type FieldValue,
  type PackedEntry,
  type TopicRef,
} from '../../src/protocol/index.js';

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** What a value becomes on the wire: a bigint inside ±(2^53 - 1) comes back as a number (as in protocol 1). */
function wire(v: FieldValue | null): FieldValue | null {
  if (typeof v === 'bigint' && v >= BigInt(-MAX_SAFE) && v <= BigInt(MAX_SAFE)) return Number(v);
  return v;
}

/** Exactly the same value: Object.is for everything but bytes (by content). */
function exact(a: FieldValue | null | undefined, b: FieldValue | null | undefined): boolean {
  if (a instanceof Uint8Array || b instanceof Uint8Array) return a instanceof Uint8Array && b instanceof Uint8Array && sameValue(a, b);
  return Object.is(a, b);
}

/** Bit pattern of a double, to tell -0 from 0 and one NaN from another in failure messages. */
const bits = (x: number) => {
  const v = new DataView(new ArrayBuffer(8));
  v.setFloat64(0, x);
  return v.getBigUint64(0).toString(16);
};

function one(id: number, name: string, withName: boolean, v: FieldValue | null): { bytes: Uint8Array; entry: PackedEntry } {
  const w = new PackWriter();
  w.entry(id, name, withName, v);
  const bytes = w.take().slice();
  const entries = readPacked(bytes);
  expect(entries).toHaveLength(1);
  return { bytes, entry: entries[0]! };
}

/** The tag byte of a one-entry vector written without a name. */
function tagOf(v: FieldValue | null): number {
  const { bytes } = one(1, 'f', false, v);
  return bytes[1]!;
}

function codeOf(fn: () => unknown): number | string {
  try {
    fn();
  } catch (err) {
    return err instanceof TickfanError ? err.errorCode : `untyped: ${String(err)}`;
  }
  return 'no error';
}

// ------------------------------------------------------------------ arbitraries

const price = fc.tuple(fc.integer({ min: -2_000_000_000, max: 2_000_000_000 }), fc.integer({ min: 1, max: 8 })).map(([n, e]) => n / 10 ** e);
const numberValue = fc.oneof(
  fc.double(), // -0, NaN, ±Infinity, subnormals included
  fc.constantFrom(-0, 0, NaN, Infinity, -Infinity, MAX_SAFE, -MAX_SAFE, 2 ** 52, -(2 ** 52), 2 ** 52 - 1, 2 ** 53, 2 ** 53 + 2, Number.MIN_VALUE, Number.MAX_VALUE, Number.EPSILON, 0.1, 0.3, 308.83, 1e-15, 1e-16, 1e21),
  fc.integer(),
  fc.maxSafeInteger(),
  price,
  fc.double({ min: -1e6, max: 1e6, noNaN: true }),
);
const bigintValue = fc.oneof(
  fc.bigInt({ min: INT64_MIN, max: INT64_MAX }),
  fc.constantFrom(INT64_MIN, INT64_MAX, INT64_MIN + 1n, INT64_MAX - 1n, 0n, -1n, 2n ** 53n, -(2n ** 53n), 2n ** 53n - 1n, 2n ** 52n, 2n ** 49n, 2n ** 49n - 1n, 2n ** 62n),
);
const stringValue = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 30 }), // astral planes included
  fc.string({ unit: 'grapheme', minLength: 40, maxLength: 200 }), // past 43 UTF-16 units: 2-byte length prefix
  fc.constantFrom('', 'a\u0000b', '🚀'.repeat(22), 'x'.repeat(42), 'x'.repeat(43), 'x'.repeat(44), '€'.repeat(5461), '€'.repeat(5462)),
);
const value: fc.Arbitrary<FieldValue | null> = fc.oneof(numberValue, bigintValue, stringValue, fc.boolean(), fc.uint8Array({ maxLength: 300 }), fc.constant(null));
const fieldName = fc.oneof(fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }), fc.string({ unit: 'grapheme', minLength: 44, maxLength: 80 }), fc.constantFrom('bid', 'b.101.25', '__proto__'));
const id = fc.oneof(fc.nat({ max: 200 }), fc.constantFrom(0, 1, 63, 64, 8191, 8192, 2 ** 31, 2 ** 52 - 1));

// ------------------------------------------------------------------ properties

describe('every value kind round trips exactly', () => {
  it('property: one entry, any id, with or without its name', () => {
    fc.assert(
      fc.property(id, fieldName, fc.boolean(), value, (i, name, withName, v) => {
        const { entry } = one(i, name, withName, v);
        expect(entry.id).toBe(i);
        // Id 0 has no id: its name always travels.
        expect(entry.name).toBe(withName || i === 0 ? name : undefined);
        const want = wire(v);
        expect(exact(entry.value, want), `${String(v)} (${typeof v === 'number' ? bits(v) : typeof v}) came back as ${String(entry.value)}`).toBe(true);
      }),
      { numRuns: 3000, seed: 20260101 },
    );
  });

  it('property: many entries in one vector keep their order, ids, names and values', () => {
    const w = new PackWriter();
    fc.assert(
      fc.property(fc.array(fc.tuple(id, fieldName, fc.boolean(), value), { maxLength: 30 }), (es) => {
        w.reset(); // one writer for every run: reuse and growth
        for (const [i, n, named, v] of es) w.entry(i, n, named, v);
        const got = readPacked(w.take());
        expect(got.map((e) => [e.id, e.name])).toEqual(es.map(([i, n, named]) => [i, named || i === 0 ? n : undefined]));
        got.forEach((e, k) => expect(exact(e.value, wire(es[k]![3])), `entry ${k}`).toBe(true));
      }),
      { numRuns: 500, seed: 20260102 },
    );
  });

  it.each<[string, FieldValue | null, FieldValue | null]>([
    ['-0', -0, -0],
    ['+0', 0, 0],
    ['NaN', NaN, NaN],
    ['Infinity', Infinity, Infinity],
    ['-Infinity', -Infinity, -Infinity],
    ['MAX_SAFE_INTEGER', MAX_SAFE, MAX_SAFE],
    ['-MAX_SAFE_INTEGER', -MAX_SAFE, -MAX_SAFE],
    ['2^53 (a double, not a safe integer)', 2 ** 53, 2 ** 53],
    ['1e300', 1e300, 1e300],
    ['MIN_VALUE', Number.MIN_VALUE, Number.MIN_VALUE],
    ['0.1', 0.1, 0.1],
    ['308.83', 308.83, 308.83],
    ['1/3', 1 / 3, 1 / 3],
    ['int64 max', INT64_MAX, INT64_MAX],
    ['int64 min', INT64_MIN, INT64_MIN],
    ['2^53 as bigint', 2n ** 53n, 2n ** 53n],
    ['-(2^53) as bigint', -(2n ** 53n), -(2n ** 53n)],
    ['7n (comes back a number)', 7n, 7],
    ['empty string', '', ''],
    ['astral string', '𝄞🚀\u{10FFFF}', '𝄞🚀\u{10FFFF}'],
    ['43 chars', 'y'.repeat(43), 'y'.repeat(43)],
    ['44 chars', 'y'.repeat(44), 'y'.repeat(44)],
    ['true', true, true],
    ['false', false, false],
    ['empty bytes', new Uint8Array(0), new Uint8Array(0)],
    ['bytes', new Uint8Array([0, 255, 128]), new Uint8Array([0, 255, 128])],
    ['delete', null, null],
  ])('%s', (_what, v, want) => {
    for (const [i, named] of [[0, true], [1, false], [1, true], [5000, false]] as const) {
      const { entry } = one(i, 'f', named, v);
      expect(exact(entry.value, want), `id ${i} named ${named}: ${String(entry.value)}`).toBe(true);
      expect(typeof entry.value).toBe(typeof want);
    }
  });

  it('a very long string (3-byte and 5-byte length prefixes) round trips', () => {
    for (const n of [5462, 699_051]) {
      const s = 'é'.repeat(n - 1) + '🚀';
      expect(one(1, 'long', false, s).entry.value).toBe(s);
    }
  });

  it('bytes come back as a copy, not a view of the message', () => {
    const w = new PackWriter();
    w.entry(1, 'b', false, new Uint8Array([1, 2, 3]));
    const bytes = w.take().slice();
    const got = readPacked(bytes)[0]!.value as Uint8Array;
    bytes.fill(0);
    expect([...got]).toEqual([1, 2, 3]);
  });

  it('through Encoder.snapshot2 / delta2 and a Protocol2Reader, a whole state comes back exactly', () => {
    const enc = new Encoder();
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(fieldName, value), { selector: ([k]) => k, maxLength: 20 }), fc.nat({ max: 1000 }), (entries, seed) => {
        const ids = new Map(entries.map(([k], i) => [k, (i + seed) % 3 === 0 ? 0 : i + 1])); // some fields past the cap (id 0)
        const t: TopicRef = { id: 3, name: 'px.A', epoch: 9, fieldId: (n) => ids.get(n) ?? 0 };
        const state = entries.filter(([, v]) => v !== null) as [string, FieldValue][];
        const reader = new Protocol2Reader();
        const snap = decodeEncoded(enc.snapshot2(t, 4, state, 1.5));
        if (snap.type !== 'snapshot2') throw new Error(snap.type);
        const s = reader.read(snap);
        if (s.type !== 'snapshot') throw new Error(`snapshot: ${s.type}`);
        expect(s.fields.size).toBe(state.length);
        for (const [k, v] of state) expect(exact(s.fields.get(k), wire(v)), k).toBe(true);
        // A stream delta naming no field (every id learnt from the snapshot) resolves to the same changes.
        const d = decodeEncoded(enc.delta2(t, 4, 5, entries, { namesFrom: Infinity, bind: false }));
        if (d.type !== 'delta2') throw new Error(d.type);
        expect(d.entries.every((e) => (e.id === 0) === (e.name !== undefined))).toBe(true);
        const r = reader.read(d);
        const deleted = entries.filter(([k, v]) => v === null && ids.get(k)! > 0);
        if (deleted.length) {
          // A field deleted at once was never in the image: its id is unknown to this client.
          expect(r.type).toBe('unresolved');
          return;
        }
        if (r.type !== 'delta') throw new Error(`delta: ${r.type}`);
        expect([...r.changes.keys()]).toEqual(entries.map(([k]) => k));
        for (const [k, v] of entries) expect(exact(r.changes.get(k), wire(v)), k).toBe(true);
      }),
      { numRuns: 300, seed: 20260103 },
    );
  });
});

describe('decimals: only when they give back the very same double', () => {
  it('property: decimalOf(v) is null or a mantissa and exponent with m / 10^e === v', () => {
    fc.assert(
      fc.property(numberValue, (v) => {
        const d = decimalOf(v);
        if (d === null) return;
        expect(Number.isInteger(d.m)).toBe(true);
        expect(Math.abs(d.m)).toBeLessThan(2 ** 52);
        expect(d.e).toBeGreaterThanOrEqual(1);
        expect(d.e).toBeLessThanOrEqual(MAX_DECIMAL_EXPONENT);
        expect(Object.is(d.m / 10 ** d.e, v)).toBe(true);
        expect(Number.isInteger(v)).toBe(false); // integers travel as INT (or FLOAT for -0 and past 2^53)
      }),
      { numRuns: 5000, seed: 20260104 },
    );
  });

  it('property: the tag is INT for safe integers, DECIMAL exactly when decimalOf finds one, FLOAT otherwise', () => {
    fc.assert(
      fc.property(numberValue, (v) => {
        const tag = tagOf(v);
        const d = decimalOf(v);
        if (Number.isSafeInteger(v) && !Object.is(v, -0)) expect(tag).toBe(PackedTag.INT);
        else if (d) expect(tag).toBe(PackedTag.DECIMAL | (d.e << 3));
        else expect(tag).toBe(PackedTag.FLOAT);
      }),
      { numRuns: 5000, seed: 20260105 },
    );
  });

  it('property: prices with up to 8 decimals always take the decimal form, and it is smaller than a double', () => {
    fc.assert(
      fc.property(price, (v) => {
        fc.pre(!Number.isInteger(v));
        expect(decimalOf(v)).not.toBeNull();
        const { bytes, entry } = one(1, 'px', false, v);
        expect(bytes[1]! & 7).toBe(PackedTag.DECIMAL);
        expect(bytes.byteLength).toBeLessThan(2 + 8);
        expect(Object.is(entry.value, v)).toBe(true);
      }),
      { numRuns: 3000, seed: 20260106 },
    );
  });

  it('a double with no short decimal form travels as 8 bytes', () => {
    // (Math.PI has one: 3141592653589793 / 10^15 is that very double.)
    for (const v of [1 / 3, 1 / 7, 1e-20, -0, 2 ** 53, NaN, Infinity, 0.1 + 0.2, 5e-324]) {
      expect(decimalOf(v), String(v)).toBeNull();
      expect(tagOf(v), String(v)).toBe(PackedTag.FLOAT);
    }
    expect(decimalOf(308.83)).toEqual({ m: 30883, e: 2 });
    expect(decimalOf(Math.PI)).toEqual({ m: 3141592653589793, e: 15 });
    expect(decimalOf(-0.5)).toEqual({ m: -5, e: 1 });
    expect(tagOf(7)).toBe(PackedTag.INT);
    expect(tagOf(true)).toBe(PackedTag.BOOL | 8);
    expect(tagOf(false)).toBe(PackedTag.BOOL);
    expect(tagOf(null)).toBe(PackedTag.DELETE);
    expect(tagOf('s')).toBe(PackedTag.STRING);
    expect(tagOf(new Uint8Array(1))).toBe(PackedTag.BYTES);
    expect(tagOf(5n)).toBe(PackedTag.INT);
  });
});

describe('varints', () => {
  const EDGES = [0, 1, 127, 128, 255, 16383, 16384, 2 ** 21 - 1, 2 ** 21, 2 ** 28, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 35, 2 ** 49, 2 ** 52, 2 ** 53 - 1];
  /** 7 bits a byte: 1 byte below 2^7, 2 below 2^14, … 8 below 2^56. */
  const size = (n: number) => {
    let bytes = 1;
    for (let limit = 128; n >= limit; limit *= 128) bytes++;
    return bytes;
  };

  it.each(EDGES)('%d: written in 7 bits a byte and read back by PackReader and readVarint', (n) => {
    const w = new PackWriter();
    w.varint(n);
    const bytes = w.take().slice();
    expect(bytes.byteLength).toBe(size(n));
    expect(new PackReader(bytes).varint()).toBe(n);
    expect(readVarint(bytes, 0)).toEqual({ value: n, next: bytes.byteLength });
  });

  it('property: any safe non-negative integer round trips, followed by more bytes', () => {
    fc.assert(
      fc.property(fc.oneof(fc.nat(), fc.maxSafeNat(), fc.constantFrom(...EDGES)), (n) => {
        const w = new PackWriter();
        w.varint(n);
        w.varint(7);
        const r = new PackReader(w.take());
        expect(r.varint()).toBe(n);
        expect(r.varint()).toBe(7);
        expect(r.done).toBe(true);
      }),
      { numRuns: 2000, seed: 20260107 },
    );
  });

  it('refuses varints past 2^53 or longer than 8 bytes, and cut-short ones, with BAD_FRAME (PackReader and readVarint alike)', () => {
    const bad = [
      [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10], // 2^53
      [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], // 2^56 - 1
      [0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], // 1, padded to 9 bytes
      [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], // 2^56 in 9 bytes
      new Array<number>(9).fill(0x80),
      [0x80, 0x80],
      [0xff],
      [],
    ].map((a) => new Uint8Array(a));
    for (const b of bad) {
      expect(codeOf(() => new PackReader(b).varint()), `PackReader ${[...b]}`).toBe(ErrorCode.BAD_FRAME);
      expect(codeOf(() => readVarint(b, 0)), `readVarint ${[...b]}`).toBe(ErrorCode.BAD_FRAME);
    }
    // 8 bytes padded is still fine.
    const padded = new Uint8Array([0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]);
    expect(new PackReader(padded).varint()).toBe(1);
    expect(readVarint(padded, 0)).toEqual({ value: 1, next: 8 });
  });

  it('integers: zigzag edges (2^49 and 2^52 switch arithmetic) and int64 ends round trip', () => {
    const cases: (number | bigint)[] = [0, -1, 1, 2 ** 48, -(2 ** 48), 2 ** 49 - 1, 2 ** 49, -(2 ** 49), 2 ** 52 - 1, 2 ** 52, -(2 ** 52), MAX_SAFE, -MAX_SAFE, 2n ** 53n, INT64_MAX, INT64_MIN];
    for (const v of cases) expect(exact(one(1, 'i', false, v).entry.value, wire(v)), String(v)).toBe(true);
  });

  it('a length prefix padded with continuation bytes reads the same (how long strings are written)', () => {
    // 'ab' with its length written in 2 bytes: 0x82 0x00.
    expect(readPacked(new Uint8Array([2, PackedTag.STRING, 0x82, 0x00, 97, 98]))).toEqual([{ id: 1, name: undefined, value: 'ab' }]);
    const { bytes } = one(1, 'f', false, 'x'.repeat(43)); // 129 bytes at most: 2-byte prefix
    expect([...bytes.subarray(2, 4)]).toEqual([43 | 0x80, 0]);
  });
});

describe('what the reader refuses', () => {
  it.each<[string, number[]]>([
    ['id 0 without a name', [0, 2, 2]],
    ['an empty name', [3, 0, 2, 2]],
    ['a name running past the end', [3, 5, 97]],
    ['a name that is not UTF-8', [3, 1, 0xff, 2, 2]],
    ['a string value that is not UTF-8', [2, 4, 2, 0xc3, 0x28]],
    ['a lone surrogate encoded as UTF-8', [2, 4, 3, 0xed, 0xa0, 0x80]],
    ['unknown tag 7', [2, 7]],
    ['delete with an argument', [2, 8]],
    ['int with an argument', [2, 2 | 8, 2]],
    ['decimal exponent 0', [2, 1, 2]],
    ['decimal exponent 23', [2, 1 | (23 << 3), 2]],
    ['bool argument 2', [2, 5 | (2 << 3)]],
    ['a float cut short', [2, 3, 0, 0, 0, 0]],
    ['an integer past 64 bits', [2, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]],
    ['an integer varint of 11 bytes', [2, 2, ...new Array<number>(10).fill(0xff), 0x01]],
    ['bytes running past the end', [2, 6, 9, 1]],
    ['an entry cut after its key', [2]],
    ['a good entry, then a cut one', [2, 2, 2, 4]],
  ])('%s: BAD_FRAME from readPacked itself', (_what, bytes) => {
    expect(codeOf(() => readPacked(new Uint8Array(bytes)))).toBe(ErrorCode.BAD_FRAME);
  });
});

describe('what the writer refuses', () => {
  it('values a field cannot hold, with BAD_FIELD, and the writer stays usable', () => {
    const w = new PackWriter();
    for (const v of [{}, [], undefined, new Date(0), 2n ** 63n, -(2n ** 63n) - 1n, () => 1]) {
      expect(codeOf(() => w.entry(1, 'x', false, v as FieldValue))).toBe(ErrorCode.BAD_FIELD);
    }
    w.reset();
    w.entry(2, 'y', true, 1.5);
    expect(readPacked(w.take())).toEqual([{ id: 2, name: 'y', value: 1.5 }]);
  });
});
