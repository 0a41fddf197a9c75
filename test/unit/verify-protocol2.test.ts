// Protocol 2's decoders against malformed input: decodeMessage2 (kind byte +
// root), decodeServerFrame2 and ServerFrameReader never let anything but a
// TickfanError (BAD_FRAME, UNKNOWN_MESSAGE, BAD_FIELD) out, and whatever they
// decode is well typed — down to every packed entry, and through a client's
// Protocol2Reader. Targeted cases first, then a seeded fuzz run of ≥100k
// cases (issue 10: "the decoder fuzz extended to protocol 2"), worst decode
// time reported.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Builder } from 'flatbuffers';
import * as fb from '../../src/protocol/generated/tickfan.js';
import {
  Encoder,
  ErrorCode,
  FrameWriter,
  FrameWriter2,
  MessageKind,
  PackWriter,
  PackedTag,
  Protocol2Reader,
  ServerFrameReader,
  TickfanError,
  TopicState,
  decodeMessage2,
  decodeServerFrame2,
  serverFrameSize,
  type AnyMessage,
  type FieldValue,
  type TopicRef,
} from '../../src/protocol/index.js';
import { ALLOWED, Tally, caught, expectCode, mutate, mutation, wellTyped, type Mutation } from './decoder-fuzz.js';

// ------------------------------------------------------------------ helpers

/** A TopicRef whose fields `ids` have ids 1, 2, …; any other field has none (0: past the cap). */
function topicRef(id: number, name: string, epoch: number, ids: readonly string[]): TopicRef {
  return { id, name, epoch, fieldId: (f) => ids.indexOf(f) + 1 };
}

/** One protocol-2 wire message (kind byte + root) from the Encoder's in-memory form. */
function wireOf(encoded: Uint8Array): Uint8Array {
  if ((encoded[3]! & 0x80) !== 0) return encoded.slice(4);
  const out = new Uint8Array(encoded.byteLength - 3);
  out[0] = MessageKind.MESSAGE;
  out.set(encoded.subarray(4), 1);
  return out;
}

/** A Snapshot2 (kind 1) or Delta2 (kind 2) around raw packed bytes, built by hand. */
function rootAround(kind: 1 | 2, packed: Uint8Array, o: { version?: number; span?: number; topic?: string | null; hi?: number } = {}): Uint8Array {
  const b = new Builder(256);
  const vec = b.createByteVector(packed);
  const topic = o.topic === null ? 0 : b.createString(o.topic ?? 'px.A');
  const root =
    kind === 1
      ? fb.Snapshot2.createSnapshot2(b, 9, o.version ?? 12, vec, topic, 77n, o.hi ?? 0, 1.5)
      : fb.Delta2.createDelta2(b, 9, o.version ?? 12, vec, o.span ?? 3, o.hi ?? 0, topic, topic ? 77n : 0n, 0);
  b.finish(root);
  const bytes = b.asUint8Array();
  const out = new Uint8Array(1 + bytes.byteLength);
  out[0] = kind;
  out.set(bytes, 1);
  return out;
}

const VALUES: [string, FieldValue | null][] = [
  ['bid', 101.25], // decimal
  ['ask', 308.83],
  ['size', 300], // int
  ['neg', -7],
  ['big', 2n ** 60n],
  ['third', 1 / 3], // float
  ['nan', NaN],
  ['negzero', -0],
  ['venue', 'XNAS'],
  ['long', 'x'.repeat(60)], // length prefix over one byte
  ['uni', '€ 日本 🚀'],
  ['halted', true],
  ['open', false],
  ['raw', new Uint8Array([1, 2, 3, 255])],
  ['gone', null],
];
const NAMES = VALUES.map(([k]) => k);
const STATE = VALUES.filter(([, v]) => v !== null) as [string, FieldValue][];

/** Valid protocol-2 messages of every kind, as they travel (kind byte + root). */
function corpus2(): [string, Uint8Array][] {
  const e = new Encoder();
  // Half the fields have ids, the rest travel by name only (past the dictionary's cap).
  const t = topicRef(7, 'px.AAPL', 1_700_000_000_000_001, NAMES.filter((_, i) => i % 2 === 0));
  const all = topicRef(3, 'fx.EURUSD', 5, NAMES);
  return [
    ['snapshot2', e.snapshot2(t, 42, STATE, 1_700_000_000_123)],
    ['snapshot2 empty', e.snapshot2(all, 0, [], 0)],
    ['snapshot2 past 2^32', e.snapshot2(all, 2 ** 40 + 3, STATE.slice(0, 3), 0)],
    ['snapshot2 subset', e.snapshot2(all, 9, STATE, 0, new Set(['bid', 'venue']))],
    ['delta2 stream', e.delta2(all, 41, 42, VALUES, { namesFrom: 9, bind: false })],
    ['delta2 stream with ts', e.delta2(t, 41, 42, VALUES.slice(0, 4), { namesFrom: 1, bind: false, ts: 1_700_000_000_124 })],
    ['delta2 catch-up', e.delta2(all, 10, 17, VALUES, { namesFrom: 1, bind: true })],
    ['delta2 confirm', e.delta2(all, 17, 17, [], { namesFrom: 1, bind: true })],
    ['delta2 past 2^32', e.delta2(all, 2 ** 32, 2 ** 32 + 1, [['bid', 1.5]], { namesFrom: 100, bind: false })],
    [
      'delta2 from entries',
      e.message({
        type: 'delta2',
        topicId: 4,
        topic: null,
        epoch: 0,
        base: 5,
        version: 6,
        updates: 1,
        entries: [
          { id: 1, name: 'bid', value: 1.5 },
          { id: 2, name: undefined, value: null },
          { id: 0, name: 'x', value: 'y' },
        ],
        ts: 0,
      }),
    ],
    ['welcome', e.welcome('tickfan', 15_000, 1 << 20, [0, 1, 4], 2)],
    ['ack', e.ack(2, 'px.AAPL', 5, 6, 1)],
    ['error', e.error(ErrorCode.BAD_TOPIC, 2, 'x..y', 'bad topic')],
    ['heartbeat', e.heartbeat(1e12, [{ topic: 'px.AAPL', epoch: 5, version: 6 }])],
    ['topicStatus', e.topicStatus('px.AAPL', TopicState.STALE, 5, 6)],
    ['pong', e.pong(99n)],
    ['ping', e.ping(98n)],
    ['snapshot (protocol 1 table, kind 0)', e.snapshot('px.AAPL', 5, 6, STATE, 1.5)],
  ].map(([n, m]) => [n as string, wireOf(m as Uint8Array)]);
}

const CORPUS = corpus2();
const byName = (n: string) => CORPUS.find(([k]) => k === n)![1];

function varint(n: number): number[] {
  const out: number[] = [];
  for (; n >= 128; n = Math.floor(n / 128)) out.push((n % 128) | 128);
  out.push(n);
  return out;
}

// --------------------------------------------------------------- targeted

describe('decodeMessage2: kinds and roots', () => {
  it('decodes every corpus message (the fuzz starts from valid input)', () => {
    for (const [name, m] of CORPUS) {
      const d = caught(() => expect(wellTyped(decodeMessage2(m)), name).toBe(true));
      expect(d, name).toBeUndefined();
    }
    expect(decodeMessage2(byName('delta2 confirm'))).toMatchObject({ type: 'delta2', base: 17, version: 17, updates: 0, entries: [] });
    expect(decodeMessage2(byName('delta2 past 2^32'))).toMatchObject({ base: 2 ** 32, version: 2 ** 32 + 1, topic: null, epoch: 0 });
  });

  it('an empty message is BAD_FRAME', () => {
    expectCode(() => decodeMessage2(new Uint8Array(0)), ErrorCode.BAD_FRAME);
  });

  it.each([6, 8, 127, 128, 255])('kind %d is UNKNOWN_MESSAGE', (kind) => {
    const m = byName('delta2 stream').slice();
    m[0] = kind;
    expectCode(() => decodeMessage2(m), ErrorCode.UNKNOWN_MESSAGE);
  });

  it('a kind byte alone, or with a root shorter than 8 bytes, is BAD_FRAME', () => {
    for (const kind of [0, 1, 2, 3, 4]) for (let n = 0; n < 8; n++) expectCode(() => decodeMessage2(new Uint8Array(1 + n).fill(kind, 0, 1)), ErrorCode.BAD_FRAME, `kind ${kind}, ${n} bytes`);
  });

  it.each(CORPUS)('%s: cut short at every length is refused (or loses only trailing padding)', (_name, m) => {
    const full = decodeMessage2(m);
    let refused = 0;
    for (let len = 0; len < m.byteLength; len++) {
      const err = caught(() => {
        const got = decodeMessage2(m.slice(0, len));
        // Only a string's NUL terminator and alignment padding (≤ 4 bytes) may go.
        expect(m.byteLength - len).toBeLessThanOrEqual(4);
        expect(got).toEqual(full);
      });
      if (err === undefined) continue;
      expect(err, `length ${len}: ${(err as Error).message}`).toBeInstanceOf(TickfanError);
      expect((err as TickfanError).errorCode, `length ${len}`).toBe(ErrorCode.BAD_FRAME);
      refused++;
    }
    expect(refused).toBeGreaterThanOrEqual(m.byteLength - 4);
  });

  it('a Snapshot2 without its topic is BAD_FRAME', () => {
    const build = (topic: boolean) => {
      const b = new Builder(64);
      const values = b.createByteVector(new Uint8Array([3, 1, 97, 2, 2])); // a = 1
      const name = topic ? b.createString('px.A') : 0;
      b.startObject(7);
      b.addFieldInt32(0, 1, 0);
      b.addFieldInt32(1, 2, 0);
      b.addFieldOffset(2, values, 0);
      if (name) b.addFieldOffset(3, name, 0);
      b.finish(b.endObject()); // no requiredField check: this one may lack its topic
      return new Uint8Array([MessageKind.SNAPSHOT2, ...b.asUint8Array()]);
    };
    expectCode(() => decodeMessage2(build(false)), ErrorCode.BAD_FRAME);
    expect(decodeMessage2(build(true))).toEqual({ type: 'snapshot2', topicId: 1, topic: 'px.A', epoch: 0, version: 2, entries: [{ id: 1, name: 'a', value: 1 }], ts: 0 });
  });

  it('a Delta2 whose span is larger than its version is BAD_FRAME (its base would be negative)', () => {
    expectCode(() => decodeMessage2(rootAround(2, new Uint8Array(0), { version: 3, span: 4 })), ErrorCode.BAD_FRAME);
    expect(decodeMessage2(rootAround(2, new Uint8Array(0), { version: 3, span: 3 }))).toMatchObject({ base: 0, version: 3, updates: 3 });
  });

  it('versions at 2^53 - 1 decode exactly; past 2^53 they are BAD_FRAME, never an inexact number', () => {
    const hiMax = Math.floor((2 ** 53 - 1) / 2 ** 32);
    const lo = (2 ** 53 - 1) % 2 ** 32;
    expect(decodeMessage2(rootAround(2, new Uint8Array(0), { hi: hiMax, version: lo, span: 1 }))).toMatchObject({ version: 2 ** 53 - 1, base: 2 ** 53 - 2 });
    expect(decodeMessage2(rootAround(1, new Uint8Array(0), { hi: hiMax, version: lo }))).toMatchObject({ version: 2 ** 53 - 1 });
    for (const [hi, version] of [
      [hiMax + 1, 0], // 2^53
      [hiMax + 1, 1],
      [0xffffffff, 0xffffffff],
    ]) {
      expectCode(() => decodeMessage2(rootAround(2, new Uint8Array(0), { hi, version, span: 1 })), ErrorCode.BAD_FRAME, `delta2 hi ${hi}`);
      expectCode(() => decodeMessage2(rootAround(1, new Uint8Array(0), { hi, version })), ErrorCode.BAD_FRAME, `snapshot2 hi ${hi}`);
    }
  });

  describe('huge vector and string lengths', () => {
    const HUGE = [0xffffffff, 0x80000000, 0x7fffffff, 0x40000000, 0x10000];
    /** Where the length of field `i`'s vector or string sits in the root (after the kind byte). */
    const lengthOf = (m: Uint8Array, i: number): number => {
      const v = new DataView(m.buffer, m.byteOffset + 1, m.byteLength - 1);
      const root = v.getUint32(0, true);
      const vt = root - v.getInt32(root, true);
      const off = v.getUint16(vt + 4 + 2 * i, true);
      expect(off, `field ${i} present`).toBeGreaterThan(0);
      return 1 + root + off + v.getUint32(root + off, true);
    };
    it.each([
      ['snapshot2', 2, 'values'],
      ['snapshot2', 3, 'topic'],
      ['delta2 stream', 2, 'changes'],
      ['delta2 catch-up', 5, 'topic'],
    ] as const)('%s field %d (%s)', (name, field, _what) => {
      for (const len of [...HUGE, byName(name).byteLength]) {
        const m = byName(name).slice();
        new DataView(m.buffer).setUint32(lengthOf(m, field), len, true);
        expectCode(() => decodeMessage2(m), ErrorCode.BAD_FRAME, `length ${len}`);
        // In a frame, bytes of the next message follow: a length into them is still refused.
        const next = byName('snapshot2');
        const frame = new Uint8Array([1, ...varint(m.byteLength), ...m, ...varint(next.byteLength), ...next]);
        expectCode(() => decodeServerFrame2(frame), ErrorCode.BAD_FRAME, `length ${len} in a frame`);
      }
    });
  });

  it('a vector running past its message is refused even when the memory after it holds valid entries (pooled buffers)', () => {
    const e = new Encoder();
    const all = topicRef(3, 'fx.EURUSD', 5, NAMES);
    for (const kind of ['snapshot2', 'delta2'] as const) {
      // Packed bytes a multiple of 4 long: the vector (built first) then ends exactly at the end of the root.
      let m: Uint8Array = new Uint8Array(0);
      let found = false;
      for (let n = 0; n < 8 && !found; n++) {
        const entries: [string, FieldValue][] = [['venue', 'x'.repeat(n)]];
        m = wireOf(kind === 'snapshot2' ? e.snapshot2(all, 5, entries, 0) : e.delta2(all, 4, 5, entries, { namesFrom: 1, bind: false }));
        const at = (() => {
          const v = new DataView(m.buffer, 1);
          const root = v.getUint32(0, true);
          const vt = root - v.getInt32(root, true);
          const off = v.getUint16(vt + 4 + 2 * 2, true);
          return 1 + root + off + v.getUint32(root + off, true);
        })();
        const len = new DataView(m.buffer).getUint32(at, true);
        if (at + 4 + len !== m.byteLength) continue;
        // After the message, in the same memory: entries "id 1 = true".
        const extra = [2, PackedTag.BOOL | 8, 2, PackedTag.BOOL | 8];
        const mem = new Uint8Array([...m, ...extra]);
        new DataView(mem.buffer).setUint32(at, len + extra.length, true);
        expectCode(() => decodeMessage2(mem.subarray(0, m.byteLength)), ErrorCode.BAD_FRAME, kind);
        const frame = new Uint8Array([1, ...varint(m.byteLength), ...mem]);
        expectCode(() => decodeServerFrame2(frame.subarray(0, frame.byteLength - extra.length)), ErrorCode.BAD_FRAME, `${kind} in a frame`);
        // The same bytes inside the message decode (the check is on the message's end, nothing else).
        expect(decodeMessage2(mem)).toMatchObject({ type: kind, entries: [{ name: 'venue' }, { id: 1, value: true }, { id: 1, value: true }] });
        found = true;
      }
      expect(found, kind).toBe(true);
    }
  });

  it('bad packed entries inside a valid root are BAD_FRAME', () => {
    const bad: [string, number[]][] = [
      ['id 0 without a name', [0, 2, 2]],
      ['an empty name', [3, 0, 2, 2]],
      ['a name running past the end', [3, 5, 97]],
      ['a name that is not UTF-8', [3, 1, 0xff, 2, 2]],
      ['unknown tag 7', [2, 7]],
      ['delete with an argument', [2, 8]],
      ['decimal exponent 0', [2, 1, 2]],
      ['decimal exponent 23', [2, 1 | (23 << 3), 2]],
      ['bool argument 2', [2, 5 | (2 << 3)]],
      ['a float cut short', [2, 3, 0, 0, 0, 0]],
      ['a key varint of 9 bytes', [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 2, 2]],
      ['a key past 2^53', [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 2, 2]],
      ['an integer past 64 bits', [2, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]],
      ['an integer varint of 11 bytes', [2, 2, ...new Array<number>(10).fill(0xff), 0x01]],
      ['a decimal mantissa of 2^52', [2, 1 | (2 << 3), 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20]],
      ['bytes running past the end', [2, 6, 9, 1]],
      ['an entry cut after its key', [2]],
    ];
    for (const [what, bytes] of bad) {
      for (const kind of [1, 2] as const) expectCode(() => decodeMessage2(rootAround(kind, new Uint8Array(bytes))), ErrorCode.BAD_FRAME, what);
    }
  });
});

describe('protocol-2 frames', () => {
  const w = new FrameWriter2();
  const e = new Encoder();
  const all = topicRef(3, 'fx.EURUSD', 5, NAMES);

  it('a frame without messages, a zero size, a size past the end, a seq varint cut short: BAD_FRAME', () => {
    expectCode(() => decodeServerFrame2(new Uint8Array([5])), ErrorCode.BAD_FRAME);
    expectCode(() => decodeServerFrame2(new Uint8Array([5, 0])), ErrorCode.BAD_FRAME);
    expectCode(() => decodeServerFrame2(new Uint8Array([0x80])), ErrorCode.BAD_FRAME);
    expectCode(() => decodeServerFrame2(new Uint8Array(0)), ErrorCode.BAD_FRAME);
    const f = w.write(1, [e.pong(1n)]).slice();
    f[1] += 1; // the message's size, one past the frame
    expectCode(() => decodeServerFrame2(f), ErrorCode.BAD_FRAME);
    expectCode(() => decodeServerFrame2(new Uint8Array([1, ...new Array<number>(9).fill(0xff)])), ErrorCode.BAD_FRAME);
  });

  it('a frame cut anywhere but between two messages is BAD_FRAME; cut between them, it holds the first ones', () => {
    const parts = [e.ack(1, 'px.A', 5, 6, 1), e.delta2(all, 5, 6, VALUES, { namesFrom: 1, bind: false }), e.snapshot2(all, 6, STATE, 0)];
    const frame = w.write(300, parts).slice();
    const whole = decodeServerFrame2(frame).messages;
    expect(whole.map((m) => m.type)).toEqual(['ack', 'delta2', 'snapshot2']);
    // Where each message ends: seq 300 takes 2 bytes.
    const ends = parts.map((_, i) => serverFrameSize(2, 300, parts.slice(0, i + 1)));
    expect(ends.at(-1)).toBe(frame.byteLength);
    for (let len = 0; len < frame.byteLength; len++) {
      const k = ends.indexOf(len);
      if (k >= 0) expect(decodeServerFrame2(frame.subarray(0, len))).toEqual({ seq: 300, messages: whole.slice(0, k + 1) });
      else expectCode(() => decodeServerFrame2(frame.subarray(0, len)), ErrorCode.BAD_FRAME, `length ${len}`);
    }
  });

  it('the reader keeps the messages before a bad one and says why it stopped', () => {
    const frame = w.write(2, [e.ack(1, 'px.A', 5, 6, 1), e.pong(3n)]).slice();
    frame[frame.byteLength - 9] = 0xff; // inside the pong's table
    const r = new ServerFrameReader();
    r.protocol = 2;
    const { seq, messages, error } = r.read(frame);
    expect(seq).toBe(2);
    expect(messages[0]?.type).toBe('ack');
    if (messages.length === 1) {
      expect(error).toBeInstanceOf(TickfanError);
      expect(ALLOWED.has((error as TickfanError).errorCode)).toBe(true);
    }
  });
});

// -------------------------------------------------------------------- fuzz

/** Decoded snapshot2 / delta2 also go through a client's Protocol2Reader: it must not throw either. */
const reader2 = new Protocol2Reader();
let resolved = 0;
let unresolved = 0;

function throughReader(msgs: AnyMessage[]): AnyMessage[] {
  const out = msgs.slice();
  for (const m of msgs) {
    if (m.type !== 'snapshot2' && m.type !== 'delta2') continue;
    const r = reader2.read(m);
    if (r.type === 'unresolved') {
      if (typeof r.reason !== 'string' || (r.topic !== null && typeof r.topic !== 'string')) throw new Error(`ill-typed unresolved: ${JSON.stringify(r)}`);
      unresolved++;
      continue;
    }
    resolved++;
    if (r.type === 'snapshot' && [...r.fields.values()].some((v) => v === null)) throw new Error('a resolved snapshot holds a delete');
    out.push(r);
  }
  return out;
}

const one = (b: Uint8Array) => throughReader([decodeMessage2(b)]);
const frame2 = (b: Uint8Array) => throughReader(decodeServerFrame2(b).messages);

/** Mutations aimed at varints: their edges and over-long forms, inserted or written over bytes. */
const VARINT_EDGES = [
  [0x00],
  [0x7f],
  [0x80, 0x01],
  [0xff, 0x7f],
  [0x80, 0x80, 0x80, 0x80, 0x10], // 2^32
  [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f], // 2^53 - 1
  [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10], // 2^53
  [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], // 2^64 - 1 (10 bytes)
  [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], // 11 bytes
  [0x80],
].map((a) => new Uint8Array(a));
const varintMutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 3, arbitrary: mutation },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.constantFrom('insert' as const), at: fc.nat(), bytes: fc.constantFrom(...VARINT_EDGES) }),
  },
  // A tag byte of every kind and argument.
  { weight: 1, arbitrary: fc.record({ k: fc.constant('byte' as const), at: fc.nat(), value: fc.nat({ max: 255 }) }) },
);

const fieldName = fc.oneof(fc.constantFrom(...NAMES), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 50 }));
const fieldValue: fc.Arbitrary<FieldValue | null> = fc.oneof(
  fc.double(),
  fc.integer().map((x) => x / 100),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  fc.string({ maxLength: 60 }),
  fc.boolean(),
  fc.uint8Array({ maxLength: 20 }),
  fc.constant(null),
);
const entries = fc.array(fc.record({ id: fc.nat({ max: 300 }), name: fieldName, named: fc.boolean(), value: fieldValue }), { maxLength: 8 });

describe('protocol-2 decoder fuzz (seeded)', () => {
  const tally = new Tally();
  const SEED = 0x2f7c2;
  const roots = CORPUS.map(([, m]) => m);
  const pack = new PackWriter();

  it('random bytes as one message', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 160 }), (bytes) => tally.run(bytes, one)),
      { numRuns: 12_000, seed: SEED },
    );
  });

  it('random roots behind each kind byte with a plausible root offset', () => {
    fc.assert(
      fc.property(fc.constantFrom(0, 1, 2, 1, 2), fc.uint8Array({ minLength: 4, maxLength: 160 }), fc.nat({ max: 64 }), (kind, body, root) => {
        const b = new Uint8Array(1 + body.byteLength);
        b[0] = kind;
        b.set(body, 1);
        new DataView(b.buffer).setUint32(1, root % body.byteLength, true);
        return tally.run(b, one);
      }),
      { numRuns: 12_000, seed: SEED + 1 },
    );
  });

  it('mutated valid messages of every kind (flips, bytes, u16/u32 edges, truncations, inserts, deletes)', () => {
    fc.assert(
      fc.property(fc.nat({ max: roots.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 6 }), fc.boolean(), (i, muts, keepKind) => {
        const m = roots[i]!;
        // Mutating the root alone keeps FlatBuffers' 4-byte alignment for the u16/u32 edge values.
        const input = keepKind ? new Uint8Array([m[0]!, ...mutate(m.subarray(1), muts)]) : mutate(m, muts);
        return tally.run(input, one);
      }),
      { numRuns: 40_000, seed: SEED + 2 },
    );
  });

  it('mutated packed entries inside otherwise valid Snapshot2 / Delta2 roots', () => {
    fc.assert(
      fc.property(fc.constantFrom(1, 2) as fc.Arbitrary<1 | 2>, entries, fc.array(varintMutation, { minLength: 1, maxLength: 4 }), (kind, es, muts) => {
        pack.reset();
        for (const e of es) pack.entry(e.id, e.name, e.named, e.value);
        return tally.run(rootAround(kind, mutate(pack.take(), muts), { topic: kind === 1 || es.length % 2 ? 'px.A' : null }), one);
      }),
      { numRuns: 20_000, seed: SEED + 3 },
    );
  });

  it('mutated protocol-2 server frames with several messages', () => {
    const w = new FrameWriter2();
    const encoded = corpus2Encoded();
    fc.assert(
      fc.property(
        fc.array(fc.nat({ max: encoded.length - 1 }), { minLength: 1, maxLength: 4 }),
        fc.oneof(fc.constantFrom(0, 1, 127, 128, 2 ** 32, 2 ** 53 - 1), fc.nat()),
        fc.array(varintMutation, { minLength: 1, maxLength: 4 }),
        (picks, seq, muts) => tally.run(mutate(w.write(seq, picks.map((i) => encoded[i]!)), muts), frame2),
      ),
      { numRuns: 10_000, seed: SEED + 4 },
    );
  });

  it('mutated sessions through ServerFrameReader: protocol 1 up to the Welcome announcing 2, protocol 2 after', () => {
    const e = new Encoder();
    const w1 = new FrameWriter();
    const w2 = new FrameWriter2();
    const encoded = corpus2Encoded();
    const p1 = [e.ack(1, 'px.A', 1, 1, 1), e.snapshot('px.A', 1, 1, STATE, 0), e.heartbeat(1, [])];
    fc.assert(
      fc.property(
        fc.array(fc.nat({ max: p1.length - 1 }), { maxLength: 2 }),
        fc.array(fc.array(fc.nat({ max: encoded.length - 1 }), { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 3 }),
        fc.nat(),
        fc.array(varintMutation, { minLength: 1, maxLength: 3 }),
        (before, after, which, muts) => {
          let seq = 1;
          const frames = [
            w1.write(seq++, [e.welcome('t', 1, 1, [], 1)]).slice(),
            ...before.map((i) => w1.write(seq++, [p1[i]!]).slice()),
            w1.write(seq++, [e.welcome('t', 1, 1, [], 2)]).slice(),
            ...after.map((picks) => w2.write(seq++, picks.map((i) => encoded[i]!)).slice()),
          ];
          const at = which % frames.length;
          frames[at] = mutate(frames[at]!, muts) as Uint8Array<ArrayBuffer>;
          return tally.run(frames[at]!, () => session(frames));
        },
      ),
      { numRuns: 6_000, seed: SEED + 5 },
    );
  });

  it('reports: ≥100k cases, 0 untyped exceptions, snapshots and deltas reached', () => {
    console.log(`${tally.report('decoder fuzz (protocol 2)')}; decoded by type ${JSON.stringify(Object.fromEntries(tally.types))}; Protocol2Reader: ${resolved} resolved, ${unresolved} unresolved`);
    expect(tally.cases).toBeGreaterThanOrEqual(100_000);
    expect(tally.decoded).toBeGreaterThan(1000);
    expect(tally.byCode.get(ErrorCode.BAD_FRAME) ?? 0).toBeGreaterThan(1000);
    expect(tally.byCode.get(ErrorCode.UNKNOWN_MESSAGE) ?? 0).toBeGreaterThan(0);
    // Mutated snapshots and deltas that still decode: the fuzz reaches the packed entries and the reader.
    expect(tally.types.get('snapshot2') ?? 0).toBeGreaterThan(1000);
    expect(tally.types.get('delta2') ?? 0).toBeGreaterThan(1000);
    expect(resolved).toBeGreaterThan(1000);
    expect(unresolved).toBeGreaterThan(100);
  });
});

/** The corpus in the Encoder's in-memory form, for the frame writers. */
function corpus2Encoded(): Uint8Array[] {
  return CORPUS.map(([, m]) => {
    const bare = m[0] !== MessageKind.MESSAGE;
    const out = new Uint8Array(m.byteLength + (bare ? 4 : 3));
    new DataView(out.buffer).setUint32(0, bare ? m.byteLength + 0x8000_0000 : m.byteLength - 1, true);
    out.set(bare ? m : m.subarray(1), 4);
    return out;
  });
}

/**
 * Reads frames in order as a client does. The reader may switch to protocol 2
 * only after a frame that decoded a Welcome announcing it; messages before a
 * bad one are checked too; the first error is rethrown for the tally.
 */
function session(frames: Uint8Array[]): AnyMessage[] {
  const r = new ServerFrameReader();
  const all: AnyMessage[] = [];
  let first: unknown = null;
  let announced = false;
  for (const f of frames) {
    if (r.protocol !== (announced ? 2 : 1)) throw new Error(`reader in protocol ${r.protocol}, announced: ${announced}`);
    let got: ReturnType<ServerFrameReader['read']>;
    try {
      got = r.read(f);
    } catch (err) {
      first ??= err;
      if (!(err instanceof TickfanError) || err.errorCode !== ErrorCode.BAD_FRAME) throw new Error(`read() threw ${String(err)}`, { cause: err });
      continue;
    }
    if (got.error) {
      if (!(got.error instanceof TickfanError) || !ALLOWED.has(got.error.errorCode)) throw new Error(`untyped frame error ${String(got.error)}`, { cause: got.error });
      first ??= got.error;
    }
    const bad = got.messages.find((m) => !wellTyped(m));
    if (bad) throw new Error(`ill-typed ${bad.type} from a frame`);
    announced ||= got.messages.some((m) => m.type === 'welcome' && m.protocol === 2);
    all.push(...throughReader(got.messages));
  }
  if (r.protocol !== (announced ? 2 : 1)) throw new Error(`reader in protocol ${r.protocol} at the end, announced: ${announced}`);
  if (first) throw first;
  return all;
}
