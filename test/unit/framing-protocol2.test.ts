// Protocol-2 framing (src/protocol/framing.ts): FrameWriter2 turns the
// Encoder's in-memory messages into `varint seq | (varint size | kind |
// root)+` and decodeServerFrame2 / splitMessages2 give them back; the frame
// size fan-out counts equals what is written, for both protocols; a client's
// ServerFrameReader changes framing right after the frame whose Welcome
// announces protocol 2, never before; a frame cut short is BAD_FRAME.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  Encoder,
  ErrorCode,
  FrameWriter,
  FrameWriter2,
  MessageKind,
  SERVER_FRAME_HEADER,
  ServerFrameReader,
  TickfanError,
  TopicState,
  decodeEncoded,
  decodeServerFrame,
  decodeServerFrame2,
  readVarint,
  serverFrameSize,
  splitMessages2,
  type AnyMessage,
  type FieldValue,
  type TopicRef,
} from '../../src/protocol/index.js';
import { expectCode } from './decoder-fuzz.js';

const enc = new Encoder();
const NAMES = ['bid', 'ask', 'size', 'venue', 'halted', 'raw'];
const topic: TopicRef = { id: 12, name: 'px.AAPL', epoch: 1_700_000_000_000_001, fieldId: (n) => NAMES.indexOf(n) + 1 };

const isBare = (p: Uint8Array) => (p[3]! & 0x80) !== 0;

// In-memory messages of every kind a server frame carries.
const value: fc.Arbitrary<FieldValue | null> = fc.oneof(
  fc.double(),
  fc.integer().map((n) => n / 100),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  fc.string({ maxLength: 50 }),
  fc.boolean(),
  fc.uint8Array({ maxLength: 20 }),
  fc.constant(null),
);
const changes = fc.uniqueArray(fc.tuple(fc.oneof(fc.constantFrom(...NAMES), fc.string({ minLength: 1, maxLength: 8 })), value), { selector: ([k]) => k, maxLength: 8 });
const version = fc.oneof(fc.nat({ max: 1000 }), fc.constantFrom(2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1));
const part: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.tuple(version, changes, fc.boolean(), fc.nat({ max: 50 })).map(([v, c, bind, from]) =>
    enc.delta2(topic, Math.max(0, v - 1), v, c, { namesFrom: from, bind, ts: bind ? 1.5 : undefined }),
  ),
  fc.tuple(version, changes).map(([v, c]) => enc.snapshot2(topic, v, c.filter(([, x]) => x !== null) as [string, FieldValue][], 2.5)),
  fc.tuple(fc.nat({ max: 2 ** 32 - 1 }), version).map(([id, v]) => enc.ack(id, 'px.AAPL', 3, v, 1)),
  fc.nat({ max: 1e9 }).map((t) => enc.heartbeat(t, [{ topic: 'px.AAPL', epoch: 3, version: t }])),
  fc.constant(enc.topicStatus('px.AAPL', TopicState.STALE, 3, 4)),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((n) => enc.pong(n)),
  fc.constant(enc.error(ErrorCode.BAD_TOPIC, 1, 'x', 'no')),
  fc.constant(enc.welcome('s', 1, 2, [4], 2)),
);
const SEQ_EDGES = [0, 1, 127, 128, 16383, 16384, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 3, 2 ** 53 - 1];
const seq = fc.oneof(fc.constantFrom(...SEQ_EDGES), fc.maxSafeNat());

describe('FrameWriter2 → decodeServerFrame2', () => {
  it('property: mixed frames (Message roots and bare Snapshot2 / Delta2) come back message for message', () => {
    const w = new FrameWriter2();
    fc.assert(
      fc.property(seq, fc.array(part, { minLength: 1, maxLength: 6 }), (s, parts) => {
        const frame = w.write(s, parts);
        const { seq: got, messages } = decodeServerFrame2(frame);
        expect(got).toBe(s);
        expect(messages).toEqual(parts.map(decodeEncoded));
        // Each message on the wire: its kind byte, then exactly the root the Encoder built.
        const wire: Uint8Array[] = [];
        splitMessages2(frame, readVarint(frame, 0).next, (m) => wire.push(m.slice()));
        expect(wire.map((m) => m[0])).toEqual(parts.map((p) => (isBare(p) ? p[4] : MessageKind.MESSAGE)));
        wire.forEach((m, i) => expect(Buffer.compare(m.subarray(1), parts[i]!.subarray(isBare(parts[i]!) ? 5 : 4))).toBe(0));
        expect(frame.byteLength).toBe(serverFrameSize(2, s, parts));
      }),
      { numRuns: 500, seed: 20260201 },
    );
  });

  it.each(SEQ_EDGES)('sequence %d: a varint of 7 bits a byte in front', (s) => {
    const frame = new FrameWriter2().write(s, [enc.pong(1n)]);
    const { value, next } = readVarint(frame, 0);
    expect(value).toBe(s);
    expect(next).toBe(s < 2 ** 7 ? 1 : s < 2 ** 14 ? 2 : s < 2 ** 21 ? 3 : s < 2 ** 28 ? 4 : s < 2 ** 35 ? 5 : s < 2 ** 42 ? 6 : s < 2 ** 49 ? 7 : 8);
    expect(decodeServerFrame2(frame)).toEqual({ seq: s, messages: [{ type: 'pong', nonce: 1n }] });
  });

  it('a published frame (sequence 0) of one stream delta: 1 byte of sequence, the size, the kind, the root', () => {
    const d = enc.delta2(topic, 41, 42, [['bid', 101.25]], { namesFrom: 100, bind: false });
    const frame = new FrameWriter2().write(0, [d]);
    expect(frame[0]).toBe(0);
    expect(frame[1]).toBe(d.byteLength - 4); // the kind byte is counted in the in-memory size
    expect(frame[2]).toBe(MessageKind.DELTA2);
    expect(frame.byteLength).toBe(2 + d.byteLength - 4);
  });

  it('uses only the first `count` parts, and grows past its 64 KiB scratch buffer', () => {
    const w = new FrameWriter2();
    const parts = [enc.pause(1), enc.pause(2), enc.pause(3)];
    expect(decodeServerFrame2(w.write(7, parts, 2)).messages).toEqual([
      { type: 'pause', id: 1 },
      { type: 'pause', id: 2 },
    ]);
    const blob = new Uint8Array(200_000).map((_, i) => i & 0xff);
    const big = [enc.snapshot2(topic, 1, [['raw', blob]], 0), enc.ack(1, 'px.AAPL', 1, 1, 1)];
    const frame = w.write(2 ** 32, big);
    expect(frame.byteLength).toBe(serverFrameSize(2, 2 ** 32, big));
    const [snap, ack] = decodeServerFrame2(frame).messages;
    expect(snap).toMatchObject({ type: 'snapshot2', entries: [{ id: 6, name: 'raw' }] });
    expect(Buffer.compare((snap as { entries: { value: Uint8Array }[] }).entries[0]!.value, blob)).toBe(0);
    expect(ack).toMatchObject({ type: 'ack', id: 1 });
    expect(decodeServerFrame2(w.write(1, [enc.ping(1n)]))).toEqual({ seq: 1, messages: [{ type: 'ping', nonce: 1n }] });
  });
});

describe('serverFrameSize equals the bytes written', () => {
  it('property: protocol 2 (FrameWriter2) and protocol 1 (FrameWriter, Message roots only)', () => {
    const w1 = new FrameWriter();
    const w2 = new FrameWriter2();
    fc.assert(
      fc.property(seq, fc.array(part, { minLength: 1, maxLength: 8 }), (s, parts) => {
        expect(serverFrameSize(2, s, parts)).toBe(w2.write(s, parts).byteLength);
        const p1 = parts.filter((p) => !isBare(p));
        expect(serverFrameSize(1, s, p1)).toBe(w1.write(s, p1).byteLength);
        expect(serverFrameSize(1, s, p1)).toBe(SERVER_FRAME_HEADER + p1.reduce((n, p) => n + p.byteLength, 0));
      }),
      { numRuns: 500, seed: 20260202 },
    );
  });

  it('counts messages just under and just over 128 bytes on the wire with a 1- and a 2-byte size', () => {
    const sizes = new Set<number>();
    for (let n = 40; n < 120; n++) {
      for (const p of [enc.error(1, 1, '', 'x'.repeat(n)), enc.snapshot2(topic, 1, [['raw', new Uint8Array(n)]], 0)]) {
        const wire = p.byteLength - 4 + (isBare(p) ? 0 : 1); // the kind byte counts
        const frame = new FrameWriter2().write(5, [p]);
        expect(frame.byteLength).toBe(1 + (wire < 128 ? 1 : 2) + wire);
        expect(frame[1]! & 0x80).toBe(wire < 128 ? 0 : 0x80);
        expect(serverFrameSize(2, 5, [p])).toBe(frame.byteLength);
        sizes.add(wire);
      }
    }
    expect([...sizes].some((x) => x < 128 && x > 120)).toBe(true);
    expect([...sizes].some((x) => x >= 128 && x < 136)).toBe(true);
  });
});

describe('cut short', () => {
  it('splitMessages2 refuses a zero size itself (never hands out an empty message)', () => {
    const got: Uint8Array[] = [];
    expectCode(() => splitMessages2(new Uint8Array([0, 0, 1, 2]), 1, (m) => got.push(m)), ErrorCode.BAD_FRAME);
    expect(got).toEqual([]);
    expectCode(() => splitMessages2(new Uint8Array([0]), 1, (m) => got.push(m)), ErrorCode.BAD_FRAME);
  });

  it('a sequence varint past 2^53 or longer than 8 bytes is BAD_FRAME', () => {
    const pong = new FrameWriter2().write(1, [enc.pong(1n)]).slice(1);
    for (const seq of [
      [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10],
      [0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00],
    ]) {
      expectCode(() => decodeServerFrame2(new Uint8Array([...seq, ...pong])), ErrorCode.BAD_FRAME, `${seq}`);
      const r = new ServerFrameReader();
      r.protocol = 2;
      expectCode(() => r.read(new Uint8Array([...seq, ...pong])), ErrorCode.BAD_FRAME);
    }
  });

  it('property: a frame cut at any byte but a message boundary is BAD_FRAME; at a boundary it holds the messages before', () => {
    const w = new FrameWriter2();
    fc.assert(
      fc.property(seq, fc.array(part, { minLength: 1, maxLength: 3 }), (s, parts) => {
        const frame = w.write(s, parts).slice();
        const all = decodeServerFrame2(frame).messages;
        const ends = parts.map((_, i) => serverFrameSize(2, s, parts.slice(0, i + 1)));
        for (let len = 0; len < frame.byteLength; len++) {
          const k = ends.indexOf(len);
          if (k >= 0) expect(decodeServerFrame2(frame.subarray(0, len)).messages).toEqual(all.slice(0, k + 1));
          else expectCode(() => decodeServerFrame2(frame.subarray(0, len)), ErrorCode.BAD_FRAME, `length ${len} of ${frame.byteLength}`);
        }
      }),
      { numRuns: 60, seed: 20260203 },
    );
  });

  it('the reader: a frame cut short reports BAD_FRAME (thrown when not even its sequence reads)', () => {
    const r = new ServerFrameReader();
    r.protocol = 2;
    const frame = new FrameWriter2().write(300, [enc.ack(1, 'a', 1, 1, 1), enc.snapshot2(topic, 3, [['bid', 1.5]], 0)]).slice();
    for (let len = 0; len < frame.byteLength; len++) {
      let err: unknown = null;
      try {
        err = r.read(frame.subarray(0, len)).error;
      } catch (e) {
        err = e;
        expect(len).toBeLessThan(2); // only the sequence varint itself
      }
      if (len === serverFrameSize(2, 300, [enc.ack(1, 'a', 1, 1, 1)])) continue; // the ack alone: a whole frame
      expect(err, `length ${len}`).toBeInstanceOf(TickfanError);
      expect((err as TickfanError).errorCode).toBe(ErrorCode.BAD_FRAME);
    }
  });
});

describe('ServerFrameReader: the framing changes after the Welcome announcing protocol 2', () => {
  const w1 = new FrameWriter();
  const w2 = new FrameWriter2();
  const hello1 = enc.welcome('s', 1000, 1 << 20, [], 1); // the first Welcome: protocol 1, maxProtocol 2
  const hello2 = enc.welcome('s', 1000, 1 << 20, [], 2);
  const ack = enc.ack(1, 'px.AAPL', 1, 1, 1);
  const snap2 = enc.snapshot2(topic, 3, [['bid', 1.5]], 0);
  const types = (ms: AnyMessage[]) => ms.map((m) => m.type);

  it('stays in protocol 1 through the first Welcome (which only offers 2) and other frames', () => {
    const r = new ServerFrameReader();
    const first = r.read(w1.write(1, [hello1]).slice());
    expect(first.messages).toMatchObject([{ type: 'welcome', protocol: 1, maxProtocol: 2 }]);
    expect(r.protocol).toBe(1);
    expect(r.read(w1.write(2, [ack]).slice())).toMatchObject({ seq: 2, messages: [{ type: 'ack' }], error: null });
    expect(r.protocol).toBe(1);
  });

  it('reads the whole frame holding Welcome{protocol: 2} in protocol 1 — messages after the Welcome too — and the next in protocol 2', () => {
    const r = new ServerFrameReader();
    r.read(w1.write(1, [hello1]).slice());
    const turn = r.read(w1.write(2, [ack, hello2, ack]).slice());
    expect(types(turn.messages)).toEqual(['ack', 'welcome', 'ack']);
    expect(turn.error).toBeNull();
    expect(r.protocol).toBe(2);
    const next = r.read(w2.write(3, [ack, snap2]).slice());
    expect(next.seq).toBe(3);
    expect(types(next.messages)).toEqual(['ack', 'snapshot2']);
    expect(next.error).toBeNull();
    // Published frames (sequence 0) of protocol 2 too.
    expect(r.read(w2.write(0, [snap2]).slice())).toMatchObject({ seq: 0, messages: [{ type: 'snapshot2' }] });
  });

  it('a protocol-2 frame before the switch is not read as protocol 2, and a protocol-1 frame after it is not read as protocol 1', () => {
    const before = new ServerFrameReader();
    before.read(w1.write(1, [hello1]).slice());
    const early = before.read(w2.write(2, [ack]).slice());
    expect(early.messages).toEqual([]);
    expect(early.error).toBeInstanceOf(TickfanError);
    expect(before.protocol).toBe(1);
    // Nor does a Welcome announcing 2 in a frame that never decodes switch anything.
    const misread = before.read(w2.write(3, [hello2]).slice());
    expect(misread.messages).toEqual([]);
    expect(misread.error).toBeInstanceOf(TickfanError);
    expect(before.protocol).toBe(1);

    const after = new ServerFrameReader();
    after.read(w1.write(1, [hello2]).slice());
    expect(after.protocol).toBe(2);
    // Its u64 sequence reads as a varint (2), then the zero bytes after it as a size of 0.
    const late = after.read(w1.write(2, [ack]).slice());
    expect(late.messages).toEqual([]);
    expect(late.error).toBeInstanceOf(TickfanError);
    expect((late.error as TickfanError).errorCode).toBe(ErrorCode.BAD_FRAME);
  });

  it('property: over any session, the reader is in protocol 2 exactly from the frame after the first Welcome{protocol: 2}', () => {
    const frameOf = fc.record({ welcome2: fc.boolean(), parts: fc.array(part, { minLength: 1, maxLength: 3 }) });
    fc.assert(
      fc.property(fc.array(frameOf, { minLength: 1, maxLength: 8 }), (frames) => {
        const r = new ServerFrameReader();
        let protocol = 1;
        let n = 0;
        for (const f of frames) {
          expect(r.protocol).toBe(protocol);
          // Protocol 1 cannot carry Snapshot2 / Delta2.
          const parts = (protocol === 1 ? f.parts.filter((p) => !isBare(p)) : f.parts).concat(f.welcome2 ? [hello2] : []);
          if (parts.length === 0) continue;
          const frame = (protocol === 1 ? w1 : w2).write(++n, parts).slice();
          const got = r.read(frame);
          expect(got.error).toBeNull();
          expect(got.seq).toBe(n);
          expect(got.messages).toEqual(parts.map(decodeEncoded));
          if (parts.some((p) => !isBare(p) && (decodeEncoded(p) as { protocol?: number }).protocol === 2)) protocol = 2;
        }
        expect(r.protocol).toBe(protocol);
      }),
      { numRuns: 300, seed: 20260204 },
    );
  });

  it('protocol-1 frames are as before: decodeServerFrame reads what FrameWriter writes', () => {
    const frame = w1.write(2 ** 40, [ack, hello1]);
    expect(decodeServerFrame(frame).seq).toBe(2 ** 40);
    expect(types(decodeServerFrame(frame).messages)).toEqual(['ack', 'welcome']);
  });
});
