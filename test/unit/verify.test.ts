// Malformed input never gets past the decoder as anything but a TickfanError:
// truncations, bad offsets, huge lengths, bad vtables, missing required
// fields, bad size prefixes, and a seeded fuzz run of ≥100k byte arrays
// (RELIABILITY.md item 2: 0 untyped exceptions, worst decode time reported).

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Builder } from 'flatbuffers';
import {
  Encoder,
  ErrorCode,
  FrameWriter,
  TickfanError,
  TopicState,
  decodeMessage,
  decodeServerFrame,
  splitMessages,
  type AnyMessage,
  type FieldValue,
} from '../../src/protocol/index.js';
import { BODY_TYPE_COUNT } from '../../src/protocol/verify.js';
import { Tally, caught, expectCode, mutate, mutation } from './decoder-fuzz.js';

// ------------------------------------------------------------------ helpers

/** Decodes every size-prefixed message of a client frame. */
function decodeFrame(frame: Uint8Array): AnyMessage[] {
  const out: AnyMessage[] = [];
  splitMessages(frame, 0, (m) => out.push(decodeMessage(m)));
  return out;
}

/** Size-prefixes one message body. */
function prefixed(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.byteLength + 4);
  new DataView(out.buffer).setUint32(0, body.byteLength, true);
  out.set(body, 4);
  return out;
}

/** A message body (size prefix stripped) in a buffer of its own. */
function bodyOf(frame: Uint8Array): Uint8Array {
  return frame.slice(4);
}

/** Reads and patches raw FlatBuffers structure, to aim corruptions precisely. */
class Fb {
  readonly v: DataView;
  constructor(readonly b: Uint8Array) {
    this.v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  u16(p: number): number {
    return this.v.getUint16(p, true);
  }
  u32(p: number): number {
    return this.v.getUint32(p, true);
  }
  i32(p: number): number {
    return this.v.getInt32(p, true);
  }
  setU16(p: number, x: number): this {
    this.v.setUint16(p, x, true);
    return this;
  }
  setU32(p: number, x: number): this {
    this.v.setUint32(p, x >>> 0, true);
    return this;
  }
  get root(): number {
    return this.u32(0);
  }
  vtable(table: number): number {
    return table - this.i32(table);
  }
  /** Absolute position of field `i` of `table`, 0 when absent. */
  field(table: number, i: number): number {
    const vt = this.vtable(table);
    if (4 + 2 * i >= this.u16(vt)) return 0;
    const off = this.u16(vt + 4 + 2 * i);
    return off ? table + off : 0;
  }
  deref(p: number): number {
    return p + this.u32(p);
  }
  /** The message body table (Message field 1). */
  body(): number {
    return this.deref(this.field(this.root, 1));
  }
}

/** Pads a body with zeros (padding is never referenced by valid offsets). */
function padded(body: Uint8Array, extra: number): Uint8Array {
  const out = new Uint8Array(body.byteLength + extra);
  out.set(body);
  return out;
}

// A corpus of valid messages: every body type, every value kind.
function corpus(): [string, Uint8Array][] {
  const e = new Encoder();
  const changes = new Map<string, FieldValue | null>([
    ['bid', 101.25],
    ['size', 300],
    ['big', 2n ** 60n],
    ['venue', 'XNAS'],
    ['halted', true],
    ['raw', new Uint8Array([1, 2, 3, 4, 5])],
    ['gone', null],
  ]);
  return [
    ['hello', e.hello(1, 'tickfan-js', 'token')],
    ['welcome', e.welcome('tickfan', 15000, 1 << 20, [0, 1, 4])],
    ['subscribe', e.subscribe(1, ['px.*', 'fx.EURUSD'], 4, ['bid'], [{ topic: 'fx.EURUSD', epoch: 5, version: 6 }])],
    ['unsubscribe', e.unsubscribe(1)],
    ['publish', e.publish(2, 'px.AAPL', changes)],
    ['catchUp', e.catchUp('px.AAPL', 5, 6)],
    ['pause', e.pause(3)],
    ['resume', e.resume(3)],
    ['ping', e.ping(99n)],
    ['pong', e.pong(99n)],
    ['snapshot', e.snapshot('px.AAPL', 5, 6, changes, 1.5)],
    ['delta', e.delta('px.AAPL', 5, 4, 6, 2, changes, 1.5)],
    ['topicStatus', e.topicStatus('px.AAPL', TopicState.STALE, 5, 6)],
    ['ack', e.ack(2, 'px.AAPL', 5, 6, 1)],
    ['error', e.error(ErrorCode.BAD_TOPIC, 2, 'x..y', 'bad topic')],
    ['heartbeat', e.heartbeat(1e12, [{ topic: 'px.AAPL', epoch: 5, version: 6 }])],
  ];
}

const CORPUS = corpus();

/** Builds a size-prefixed Message by hand (to leave out what the Encoder always writes). */
function handMessage(type: number, build: ((b: Builder) => number) | null): Uint8Array {
  const b = new Builder(256);
  const body = build ? build(b) : 0;
  b.startObject(2);
  b.addFieldInt8(0, type, 0);
  if (body) b.addFieldOffset(1, body, 0);
  const root = b.endObject();
  b.finishSizePrefixed(root);
  return b.asUint8Array().slice();
}

function vectorOf(b: Builder, offsets: number[]): number {
  b.startVector(4, offsets.length, 4);
  for (let i = offsets.length - 1; i >= 0; i--) b.addOffset(offsets[i]!);
  return b.endVector();
}

/** A Field table; `name` undefined leaves the required name out. */
function fieldTable(b: Builder, name: string | undefined, kind = 2, i = 5n): number {
  const n = name === undefined ? 0 : b.createString(name);
  b.startObject(7);
  if (n) b.addFieldOffset(0, n, 0);
  b.addFieldInt8(1, kind, 0);
  b.addFieldInt64(3, i, 0n);
  return b.endObject();
}

// Body union types, schema order.
const T = { Hello: 1, Welcome: 2, Subscribe: 3, Publish: 5, CatchUp: 6, Snapshot: 11, Delta: 12, TopicStatus: 13, Heartbeat: 16 };

// --------------------------------------------------------------- targeted

describe('truncation at every length', () => {
  it.each(CORPUS)('%s: a frame cut short is BAD_FRAME at every length', (_name, frame) => {
    for (let len = 0; len < frame.byteLength; len++) expectCode(() => decodeFrame(frame.subarray(0, len)), ErrorCode.BAD_FRAME, `length ${len}`);
    expect(decodeFrame(frame)).toHaveLength(1);
  });

  it.each(CORPUS)('%s: a body cut short (size prefix fixed up) is refused or loses only trailing padding', (_name, frame) => {
    const body = bodyOf(frame);
    const full = decodeMessage(body);
    let refused = 0;
    for (let len = 0; len < body.byteLength; len++) {
      const cut = body.slice(0, len);
      const err = caught(() => {
        const got = decodeFrame(prefixed(cut));
        // Only a string's NUL terminator and alignment padding (≤ 4 bytes) may go.
        expect(body.byteLength - len).toBeLessThanOrEqual(4);
        expect(got).toEqual([full]);
      });
      if (err === undefined) continue;
      expect(err, `length ${len}: ${(err as Error).message}`).toBeInstanceOf(TickfanError);
      expect((err as TickfanError).errorCode).toBe(ErrorCode.BAD_FRAME);
      refused++;
    }
    expect(refused).toBeGreaterThanOrEqual(body.byteLength - 4);
  });
});

describe('bad root offset', () => {
  const body = bodyOf(CORPUS.find(([n]) => n === 'publish')![1]);
  it.each([
    ['past the end', body.byteLength],
    ['3 bytes before the end', body.byteLength - 3],
    ['u32 max', 0xffffffff],
    ['2^31', 0x80000000],
    ['2^31 - 1', 0x7fffffff],
    ['zero (table over the root offset)', 0],
  ])('%s', (_what, root) => {
    const b = body.slice();
    new Fb(b).setU32(0, root);
    expectCode(() => decodeMessage(b), ErrorCode.BAD_FRAME);
    expectCode(() => decodeFrame(prefixed(b)), ErrorCode.BAD_FRAME);
  });

  it.each([0, 1, 2, 3, 4, 5, 6, 7])('message of %d bytes', (n) => {
    expectCode(() => decodeMessage(body.slice(0, n)), ErrorCode.BAD_FRAME);
  });
});

describe('huge vector and string lengths', () => {
  const HUGE = [0xffffffff, 0x80000000, 0x7fffffff, 0x40000000, 0x40000001, 0x20000000, 0x10000];

  function lengthAt(name: string, what: string, locate: (f: Fb) => number): void {
    const body = bodyOf(CORPUS.find(([n]) => n === name)![1]);
    it.each(HUGE)(`${name} ${what}: length %d`, (len) => {
      const b = body.slice();
      const f = new Fb(b);
      f.setU32(locate(f), len);
      expectCode(() => decodeMessage(b), ErrorCode.BAD_FRAME);
    });
  }

  // Publish: 1 topic, 2 fields vector; Field: 0 name, 6 data.
  lengthAt('publish', 'topic', (f) => f.deref(f.field(f.body(), 1)));
  lengthAt('publish', 'fields', (f) => f.deref(f.field(f.body(), 2)));
  lengthAt('publish', 'bytes value', (f) => {
    // The bytes field: the last entry of the change set that has data.
    const vec = f.deref(f.field(f.body(), 2));
    for (let i = 0; i < f.u32(vec); i++) {
      const t = f.deref(vec + 4 + 4 * i);
      if (f.field(t, 6)) return f.deref(f.field(t, 6));
    }
    throw new Error('no bytes field');
  });
  lengthAt('publish', 'field name', (f) => {
    const vec = f.deref(f.field(f.body(), 2));
    return f.deref(f.field(f.deref(vec + 4), 0)); // first field's name
  });
  // Subscribe: 1 topics (string vector), 3 fields, 4 resume.
  lengthAt('subscribe', 'topics', (f) => f.deref(f.field(f.body(), 1)));
  lengthAt('subscribe', 'first topic', (f) => f.deref(f.deref(f.field(f.body(), 1)) + 4)); // first topic string
  lengthAt('subscribe', 'resume', (f) => f.deref(f.field(f.body(), 4)));
  // Welcome: 4 rate tiers (floats).
  lengthAt('welcome', 'rate tiers', (f) => f.deref(f.field(f.body(), 4)));
  // Heartbeat: 1 versions.
  lengthAt('heartbeat', 'versions', (f) => f.deref(f.field(f.body(), 1)));

  it('a vector offset pointing past the buffer', () => {
    const b = bodyOf(CORPUS.find(([n]) => n === 'publish')![1]);
    const f = new Fb(b);
    f.setU32(f.field(f.body(), 2), b.byteLength);
    expectCode(() => decodeMessage(b), ErrorCode.BAD_FRAME);
  });
});

describe('bad vtables', () => {
  const publish = bodyOf(CORPUS.find(([n]) => n === 'publish')![1]);
  // Each corruption is applied to the root table, the body table and a nested Field table.
  const tables: [string, (f: Fb) => number][] = [
    ['root', (f) => f.root],
    ['body', (f) => f.body()],
    ['field', (f) => f.deref(f.deref(f.field(f.body(), 2)) + 4)],
  ];
  const corruptions: [string, (f: Fb, t: number, len: number) => void][] = [
    ['vtable before the buffer', (f, t) => f.setU32(t, t + 8)],
    ['vtable past the buffer', (f, t, len) => f.setU32(t, t - len)],
    ['vtable size odd', (f, t) => f.setU16(f.vtable(t), f.u16(f.vtable(t)) | 1)],
    ['vtable size 2', (f, t) => f.setU16(f.vtable(t), 2)],
    ['vtable size 0', (f, t) => f.setU16(f.vtable(t), 0)],
    ['vtable size past the buffer', (f, t) => f.setU16(f.vtable(t), 0xfffe)],
    ['table size past the buffer', (f, t) => f.setU16(f.vtable(t) + 2, 0xffff)],
    ['field offset outside its table', (f, t) => f.setU16(f.vtable(t) + 4 + 2, f.u16(f.vtable(t) + 2))],
    ['field offset 0xffff', (f, t) => f.setU16(f.vtable(t) + 4 + 2, 0xffff)],
  ];
  for (const [where, locate] of tables) {
    it.each(corruptions)(`${where} table: %s`, (_what, corrupt) => {
      const b = publish.slice();
      const f = new Fb(b);
      corrupt(f, locate(f), b.byteLength);
      expectCode(() => decodeMessage(b), ErrorCode.BAD_FRAME);
    });
  }

  // The FlatBuffers TypeScript runtime reads vtable entries as *signed* 16-bit
  // numbers: a vtable size or field offset ≥ 0x8000 (possible once a message
  // is ≥ 32 KiB) makes it read fields the verifier never looked at.
  it('a vtable size ≥ 0x8000 is refused (runtime would see no fields at all)', () => {
    const b = padded(publish, 0x10000);
    const f = new Fb(b);
    const vt = f.vtable(f.body());
    f.setU16(vt, 0x8000 + f.u16(vt));
    expectCode(() => decodeMessage(b), ErrorCode.BAD_FRAME);
  });

  it('a field offset ≥ 0x8000 is refused (runtime would read before the table)', () => {
    const b = padded(publish, 0x10000);
    const f = new Fb(b);
    const t = f.body();
    const vt = f.vtable(t);
    f.setU16(vt + 2, 0xffff); // table size
    f.setU16(vt + 4 + 2 * 1, 0x8000); // topic: points into the zero padding for the verifier
    expectCode(() => decodeMessage(b), ErrorCode.BAD_FRAME);
  });

  it('a large valid message still decodes (the limit is on offsets, not sizes)', () => {
    const e = new Encoder();
    const fields = new Map<string, FieldValue>(Array.from({ length: 3000 }, (_, i) => [`f${i}`, i]));
    fields.set('blob', new Uint8Array(100_000));
    const [m] = decodeFrame(e.snapshot('big', 1, 1, fields, 0));
    expect(m?.type === 'snapshot' && m.fields.size).toBe(3001);
  });
});

describe('missing required fields', () => {
  const topic = (b: Builder) => b.createString('px.A');
  it.each([
    ['Publish.topic', T.Publish, (b: Builder) => (b.startObject(3), b.addFieldInt32(0, 7, 0), b.endObject())],
    ['CatchUp.topic', T.CatchUp, (b: Builder) => (b.startObject(3), b.addFieldInt64(1, 5n, 0n), b.endObject())],
    ['Snapshot.topic', T.Snapshot, (b: Builder) => (b.startObject(5), b.addFieldInt64(2, 5n, 0n), b.endObject())],
    ['Delta.topic', T.Delta, (b: Builder) => (b.startObject(7), b.addFieldInt64(3, 5n, 0n), b.endObject())],
    ['TopicStatus.topic', T.TopicStatus, (b: Builder) => (b.startObject(4), b.addFieldInt8(1, 1, 0), b.endObject())],
    [
      'Field.name (in a publish)',
      T.Publish,
      (b: Builder) => {
        const t = topic(b);
        const v = vectorOf(b, [fieldTable(b, 'ok'), fieldTable(b, undefined)]);
        b.startObject(3);
        b.addFieldOffset(1, t, 0);
        b.addFieldOffset(2, v, 0);
        return b.endObject();
      },
    ],
    [
      'Field.name (in a snapshot)',
      T.Snapshot,
      (b: Builder) => {
        const t = topic(b);
        const v = vectorOf(b, [fieldTable(b, undefined)]);
        b.startObject(5);
        b.addFieldOffset(0, t, 0);
        b.addFieldOffset(3, v, 0);
        return b.endObject();
      },
    ],
    [
      'ResumePoint.topic',
      T.Subscribe,
      (b: Builder) => {
        b.startObject(3);
        b.addFieldInt64(1, 1n, 0n);
        const v = vectorOf(b, [b.endObject()]);
        b.startObject(5);
        b.addFieldOffset(4, v, 0);
        return b.endObject();
      },
    ],
    [
      'TopicVersion.topic',
      T.Heartbeat,
      (b: Builder) => {
        b.startObject(3);
        b.addFieldInt64(2, 1n, 0n);
        const v = vectorOf(b, [b.endObject()]);
        b.startObject(2);
        b.addFieldOffset(1, v, 0);
        return b.endObject();
      },
    ],
  ])('%s', (_what, type, build) => {
    expectCode(() => decodeFrame(handMessage(type, build)), ErrorCode.BAD_FRAME);
  });

  it('the same hand-built messages decode once the required fields are there', () => {
    const pub = handMessage(T.Publish, (b) => {
      const t = topic(b);
      const v = vectorOf(b, [fieldTable(b, 'a'), fieldTable(b, 'b', 4, 0n)]);
      b.startObject(3);
      b.addFieldInt32(0, 7, 0);
      b.addFieldOffset(1, t, 0);
      b.addFieldOffset(2, v, 0);
      return b.endObject();
    });
    expect(decodeFrame(pub)).toEqual([{ type: 'publish', id: 7, topic: 'px.A', changes: new Map<string, FieldValue>([['a', 5], ['b', false]]) }]);
    const sub = handMessage(T.Subscribe, (b) => {
      const t = topic(b);
      b.startObject(3);
      b.addFieldOffset(0, t, 0);
      b.addFieldInt64(1, 1n, 0n);
      const v = vectorOf(b, [b.endObject()]);
      b.startObject(5);
      b.addFieldOffset(4, v, 0);
      return b.endObject();
    });
    expect(decodeFrame(sub)).toEqual([{ type: 'subscribe', id: 0, topics: [], maxRate: 0, fields: [], resume: [{ topic: 'px.A', epoch: 1, version: 0 }], timestamps: false }]);
  });

  it('a Welcome without max_protocol (a server that predates protocol 2) reads as maxProtocol 1', () => {
    const w = handMessage(T.Welcome, (b) => (b.startObject(6), b.addFieldInt16(0, 1, 0), b.addFieldInt32(2, 500, 0), b.endObject()));
    expect(decodeFrame(w)).toEqual([{ type: 'welcome', protocol: 1, server: '', heartbeatMs: 500, maxFrame: 0, rateTiers: [], maxProtocol: 1 }]);
  });

  it('optional strings may be absent', () => {
    expect(decodeFrame(handMessage(T.Hello, (b) => (b.startObject(3), b.addFieldInt16(0, 1, 0), b.endObject())))).toEqual([
      { type: 'hello', protocol: 1, client: '', token: '' },
    ]);
  });
});

describe('unknown message types and value kinds', () => {
  const emptyTable = (b: Builder) => (b.startObject(1), b.addFieldInt32(0, 1, 0), b.endObject());

  // Past the schema's last body type (Snapshot2 / Delta2 are roots of their own, not Message bodies).
  it.each([BODY_TYPE_COUNT + 1, BODY_TYPE_COUNT + 2, 100, 255])('body type %d is UNKNOWN_MESSAGE', (type) => {
    expectCode(() => decodeFrame(handMessage(type, emptyTable)), ErrorCode.UNKNOWN_MESSAGE);
  });

  it('body type NONE with a body is UNKNOWN_MESSAGE', () => {
    expectCode(() => decodeFrame(handMessage(0, emptyTable)), ErrorCode.UNKNOWN_MESSAGE);
  });

  it('a message with no body is UNKNOWN_MESSAGE', () => {
    expectCode(() => decodeFrame(handMessage(0, null)), ErrorCode.UNKNOWN_MESSAGE);
  });

  it('a body type without its body is BAD_FRAME', () => {
    for (const type of [T.Hello, T.Publish, T.Snapshot, T.Heartbeat]) {
      expectCode(() => decodeFrame(handMessage(type, null)), ErrorCode.BAD_FRAME, `type ${type}`);
    }
  });

  it('an unknown value kind is a typed BAD_FIELD error', () => {
    const msg = handMessage(T.Publish, (b) => {
      const t = b.createString('px.A');
      const v = vectorOf(b, [fieldTable(b, 'weird', 9)]);
      b.startObject(3);
      b.addFieldOffset(1, t, 0);
      b.addFieldOffset(2, v, 0);
      return b.endObject();
    });
    expectCode(() => decodeFrame(msg), ErrorCode.BAD_FIELD);
  });
});

describe('size prefixes', () => {
  const a = CORPUS[0]![1];
  const b = CORPUS[4]![1];
  const two = new Uint8Array([...a, ...b]);

  it('two valid messages decode', () => {
    expect(decodeFrame(two).map((m) => m.type)).toEqual(['hello', 'publish']);
  });

  it('an empty frame is BAD_FRAME', () => {
    expectCode(() => decodeFrame(new Uint8Array(0)), ErrorCode.BAD_FRAME);
  });

  it('a zero size is BAD_FRAME', () => {
    expectCode(() => decodeFrame(new Uint8Array(4)), ErrorCode.BAD_FRAME);
    expectCode(() => decodeFrame(new Uint8Array([...a, 0, 0, 0, 0])), ErrorCode.BAD_FRAME);
  });

  it.each([1, 2, 3])('%d stray bytes after a message are BAD_FRAME', (n) => {
    expectCode(() => decodeFrame(new Uint8Array([...a, ...new Array(n).fill(1)])), ErrorCode.BAD_FRAME);
  });

  it.each([
    ['one past the frame', (len: number) => len - 4 + 1],
    ['far past the frame', () => 0xffffffff],
    ['2^31', () => 0x80000000],
  ])('first size %s is BAD_FRAME', (_what, size) => {
    const f = two.slice();
    new DataView(f.buffer).setUint32(0, size(f.byteLength), true);
    expectCode(() => decodeFrame(f), ErrorCode.BAD_FRAME);
  });

  it('a second size running past the frame is BAD_FRAME (and nothing is half-applied)', () => {
    const f = two.slice();
    new DataView(f.buffer).setUint32(a.byteLength, b.byteLength, true);
    const got: AnyMessage[] = [];
    expectCode(() => splitMessages(f.subarray(0, f.byteLength - 1), 0, (m) => got.push(decodeMessage(m))), ErrorCode.BAD_FRAME);
    expect(got.map((m) => m.type)).toEqual(['hello']); // messages before the bad prefix were already whole
  });

  it('a size that cuts a message short lands the next prefix in its middle: still typed', () => {
    for (let cut = 1; cut < a.byteLength - 4; cut++) {
      const f = two.slice();
      new DataView(f.buffer).setUint32(0, a.byteLength - 4 - cut, true);
      const err = caught(() => decodeFrame(f));
      expect(err).toBeInstanceOf(TickfanError);
    }
  });

  it('server frames: header only, short header, bad prefix', () => {
    const w = new FrameWriter();
    expectCode(() => decodeServerFrame(w.write(1, []).slice()), ErrorCode.BAD_FRAME);
    expectCode(() => decodeServerFrame(new Uint8Array(5)), ErrorCode.BAD_FRAME);
    const f = w.write(2, [a]).slice();
    new DataView(f.buffer).setUint32(8, a.byteLength, true);
    expectCode(() => decodeServerFrame(f), ErrorCode.BAD_FRAME);
  });
});

// -------------------------------------------------------------------- fuzz

function withPrefix(body: Uint8Array, fix: boolean): Uint8Array {
  return fix ? prefixed(body.subarray(4)) : body;
}

describe('decoder fuzz (seeded)', () => {
  const tally = new Tally();
  const bodies = CORPUS.map(([, f]) => f);
  const SEED = 0x71cf4;

  it('random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 192 }), (bytes) => tally.run(bytes, decodeFrame)),
      { numRuns: 20_000, seed: SEED },
    );
  });

  it('random bodies behind a correct size prefix and a plausible root offset', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 4, maxLength: 192 }), fc.nat({ max: 64 }), (body, root) => {
        const b = body.slice();
        new DataView(b.buffer).setUint32(0, root % b.byteLength, true);
        return tally.run(prefixed(b), decodeFrame);
      }),
      { numRuns: 20_000, seed: SEED + 1 },
    );
  });

  it('mutated valid messages (bit flips, byte replacements, edge values, truncations)', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: bodies.length - 1 }),
        fc.array(mutation, { minLength: 1, maxLength: 6 }),
        fc.boolean(),
        (i, muts, fixPrefix) => tally.run(withPrefix(mutate(bodies[i]!, muts), fixPrefix), decodeFrame),
      ),
      { numRuns: 55_000, seed: SEED + 2 },
    );
  });

  it('mutated server frames with several messages', () => {
    const w = new FrameWriter();
    fc.assert(
      fc.property(
        fc.array(fc.nat({ max: bodies.length - 1 }), { minLength: 1, maxLength: 4 }),
        fc.nat(),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        (picks, seq, muts) => {
          const frame = w.write(seq, picks.map((i) => bodies[i]!)).slice();
          return tally.run(mutate(frame, muts), (f) => decodeServerFrame(f).messages);
        },
      ),
      { numRuns: 10_000, seed: SEED + 3 },
    );
  });

  it('reports: ≥100k cases, 0 untyped exceptions', () => {
    console.log(tally.report('decoder fuzz (protocol 1)'));
    expect(tally.cases).toBeGreaterThanOrEqual(100_000);
    // The mutated corpus must exercise both outcomes, or the fuzz tests nothing.
    expect(tally.decoded).toBeGreaterThan(1000);
    expect(tally.byCode.get(ErrorCode.BAD_FRAME) ?? 0).toBeGreaterThan(1000);
    expect(tally.byCode.get(ErrorCode.UNKNOWN_MESSAGE) ?? 0).toBeGreaterThan(0);
  });
});
