// Round trips of every tickfan message through Encoder (encode.ts) →
// splitMessages (framing.ts) → decodeMessage (decode.ts); value kinds on the
// wire, refused values, server frames and builder reuse.
// What goes in must come out exactly: a subscriber's state depends on it.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  Encoder,
  ErrorCode,
  FrameWriter,
  MAX_PROTOCOL,
  PROTOCOL_VERSION,
  SERVER_FRAME_HEADER,
  TickfanError,
  TopicState,
  clientFrame,
  decodeMessage,
  decodeServerFrame,
  frameSeq,
  splitMessages,
  type AnyMessage,
  type Changes,
  type FieldValue,
} from '../../src/protocol/index.js';

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** Decodes a client-style frame (size-prefixed messages, no header). */
function decodeAll(frame: Uint8Array): AnyMessage[] {
  const out: AnyMessage[] = [];
  splitMessages(frame, 0, (m) => out.push(decodeMessage(m)));
  return out;
}

function decodeOne(frame: Uint8Array): AnyMessage {
  const all = decodeAll(frame);
  expect(all).toHaveLength(1);
  return all[0]!;
}

/** What a value becomes on the wire: integers inside ±2^53 come back as numbers. */
function wire(v: FieldValue | null): FieldValue | null {
  if (typeof v === 'bigint' && v >= BigInt(-MAX_SAFE) && v <= BigInt(MAX_SAFE)) return Number(v);
  return v;
}

function expectThrowsCode(fn: () => unknown, code: number): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(TickfanError);
  expect((caught as TickfanError).errorCode).toBe(code);
}

// Every value kind, with the edge cases that matter for prices and sizes.
const VALUE_CASES: [string, FieldValue | null, 'float' | 'int' | 'string' | 'bool' | 'bytes' | 'delete'][] = [
  ['float', 101.25, 'float'],
  ['float.neg', -0.000001, 'float'],
  ['float.tiny', Number.MIN_VALUE, 'float'],
  ['float.max', Number.MAX_VALUE, 'float'],
  ['float.inf', Infinity, 'float'],
  ['float.-inf', -Infinity, 'float'],
  ['float.nan', NaN, 'float'],
  ['float.2^53', 2 ** 53, 'float'],
  ['float.1e300', 1e300, 'float'],
  ['negzero', -0, 'float'],
  ['int.zero', 0, 'int'],
  ['int', 300, 'int'],
  ['int.neg', -42, 'int'],
  ['int.maxsafe', MAX_SAFE, 'int'],
  ['int.minsafe', -MAX_SAFE, 'int'],
  ['big.2^53', 2n ** 53n, 'int'],
  ['big.-2^53', -(2n ** 53n), 'int'],
  ['big.max', 2n ** 63n - 1n, 'int'],
  ['big.min', -(2n ** 63n), 'int'],
  ['big.small', 7n, 'int'],
  ['big.zero', 0n, 'int'],
  ['str', 'AAPL', 'string'],
  ['str.empty', '', 'string'],
  ['str.unicode', '€ 日本 🚀 ü', 'string'],
  ['str.nul', 'a\u0000b', 'string'],
  ['bool.t', true, 'bool'],
  ['bool.f', false, 'bool'],
  ['bytes', new Uint8Array([0, 1, 2, 254, 255]), 'bytes'],
  ['bytes.empty', new Uint8Array(0), 'bytes'],
  ['gone', null, 'delete'],
];

describe('value kinds round trip in a delta', () => {
  const enc = new Encoder();
  const changes: Changes = new Map(VALUE_CASES.map(([k, v]) => [k, v]));
  const m = decodeOne(enc.delta('px.AAPL', 5, 9, 10, 1, changes, 1_700_000_000_123.5));
  if (m.type !== 'delta') throw new Error(`expected a delta, got ${m.type}`);

  it.each(VALUE_CASES)('%s', (name, v, kind) => {
    expect(m.changes.has(name)).toBe(true);
    const got = m.changes.get(name);
    expect(got).toEqual(wire(v));
    expect(Object.is(got, wire(v)) || v instanceof Uint8Array).toBe(true);
    switch (kind) {
      case 'float':
      case 'int':
        expect(typeof got === 'number' || typeof got === 'bigint').toBe(true);
        break;
      case 'string':
        expect(typeof got).toBe('string');
        break;
      case 'bool':
        expect(typeof got).toBe('boolean');
        break;
      case 'bytes':
        expect(got).toBeInstanceOf(Uint8Array);
        break;
      case 'delete':
        expect(got).toBeNull();
        break;
    }
  });

  it('-0 comes back as -0, not +0', () => {
    expect(Object.is(m.changes.get('negzero'), -0)).toBe(true);
  });

  it('integers past 2^53 come back as bigint, exact', () => {
    expect(m.changes.get('big.2^53')).toBe(9007199254740992n);
    expect(m.changes.get('big.max')).toBe(9223372036854775807n);
    expect(m.changes.get('big.min')).toBe(-9223372036854775808n);
  });

  it('keeps the field order of the change set', () => {
    expect([...m.changes.keys()]).toEqual(VALUE_CASES.map(([k]) => k));
  });

  it('refuses integers outside 64 bits with BAD_FIELD', () => {
    expectThrowsCode(() => enc.delta('t', 1, 0, 1, 1, new Map([['x', 2n ** 63n]]), 0), ErrorCode.BAD_FIELD);
    expectThrowsCode(() => enc.delta('t', 1, 0, 1, 1, new Map([['x', -(2n ** 63n) - 1n]]), 0), ErrorCode.BAD_FIELD);
    // The encoder is still usable after refusing.
    expect(decodeOne(enc.unsubscribe(3))).toEqual({ type: 'unsubscribe', id: 3 });
  });

  it('refuses anything that is not a field value with BAD_FIELD naming the field, never as empty bytes', () => {
    const bad: unknown[] = [{}, [], [1], undefined, () => 1, Symbol('s'), new Date(0), new ArrayBuffer(2), new Uint16Array(2), new Map(), /x/];
    for (const v of bad) {
      for (const encode of [
        () => enc.publish(1, 'px.X', new Map([['ok', 1], ['bid', v as FieldValue]])),
        () => enc.delta('px.X', 1, 0, 1, 1, new Map([['bid', v as FieldValue]]), 0),
        () => enc.snapshot('px.X', 1, 1, new Map([['bid', v as FieldValue]]), 0),
      ]) {
        let err: unknown;
        try {
          encode();
        } catch (e) {
          err = e;
        }
        expect(err, String(typeof v)).toBeInstanceOf(TickfanError);
        expect((err as TickfanError).code).toBe('TICKFAN_ERR_BAD_FIELD');
        expect((err as TickfanError).message).toMatch(/^field bid: /);
      }
    }
    // The builder was left clean: the next message is whole.
    expect(decodeOne(enc.publish(2, 'px.X', new Map([['bid', 1.5]])))).toEqual({ type: 'publish', id: 2, topic: 'px.X', changes: new Map([['bid', 1.5]]) });
  });

  it('hands out decoded bytes that do not alias the frame', () => {
    const frame = enc.publish(1, 'b', new Map([['raw', new Uint8Array([1, 2, 3])]]));
    const p = decodeOne(frame);
    if (p.type !== 'publish') throw new Error('expected publish');
    frame.fill(0);
    expect(p.changes.get('raw')).toEqual(new Uint8Array([1, 2, 3]));
  });
});

describe('every message type round trips', () => {
  const enc = new Encoder();
  const big = 2 ** 53 - 1;
  const state = new Map<string, FieldValue>([
    ['bid', 101.25],
    ['ask', 101.5],
    ['size', 300],
    ['venue', 'XNAS'],
    ['halted', false],
    ['raw', new Uint8Array([9, 8, 7])],
    ['b.101.25', 2n ** 60n],
  ]);
  const changes: Changes = new Map<string, FieldValue | null>([
    ['bid', 101.3],
    ['ask', null],
    ['b.101.25', -7],
  ]);

  const cases: [string, Uint8Array, AnyMessage][] = [
    ['hello', enc.hello(PROTOCOL_VERSION, 'tickfan-js/0.1', 'tok.en'), { type: 'hello', protocol: 1, client: 'tickfan-js/0.1', token: 'tok.en' }],
    ['hello without token', enc.hello(65535, '', ''), { type: 'hello', protocol: 65535, client: '', token: '' }],
    [
      'welcome',
      enc.welcome('tickfan/0.1', 15_000, 1 << 20, [0, 1, 4, 0.5]),
      { type: 'welcome', protocol: PROTOCOL_VERSION, server: 'tickfan/0.1', heartbeatMs: 15_000, maxFrame: 1 << 20, rateTiers: [0, 1, 4, 0.5], maxProtocol: MAX_PROTOCOL },
    ],
    ['welcome without tiers', enc.welcome('s', 0, 0, []), { type: 'welcome', protocol: PROTOCOL_VERSION, server: 's', heartbeatMs: 0, maxFrame: 0, rateTiers: [], maxProtocol: MAX_PROTOCOL }],
    [
      'welcome announcing protocol 2',
      enc.welcome('s', 1, 2, [4], 2),
      { type: 'welcome', protocol: 2, server: 's', heartbeatMs: 1, maxFrame: 2, rateTiers: [4], maxProtocol: MAX_PROTOCOL },
    ],
    [
      'subscribe',
      enc.subscribe(4_000_000_000, ['px.AAPL', 'px.*', 'book.>', '>'], 4, ['bid', 'ask'], [
        { topic: 'px.AAPL', epoch: 1_700_000_000_000_000, version: 12 },
        { topic: 'px.MSFT', epoch: big, version: big },
      ]),
      {
        type: 'subscribe',
        id: 4_000_000_000,
        topics: ['px.AAPL', 'px.*', 'book.>', '>'],
        maxRate: 4,
        fields: ['bid', 'ask'],
        resume: [
          { topic: 'px.AAPL', epoch: 1_700_000_000_000_000, version: 12 },
          { topic: 'px.MSFT', epoch: big, version: big },
        ],
        timestamps: false,
      },
    ],
    ['subscribe minimal', enc.subscribe(0, [], 0, [], []), { type: 'subscribe', id: 0, topics: [], maxRate: 0, fields: [], resume: [], timestamps: false }],
    [
      'subscribe with timestamps',
      enc.subscribe(3, ['px.*'], 0, [], [], true),
      { type: 'subscribe', id: 3, topics: ['px.*'], maxRate: 0, fields: [], resume: [], timestamps: true },
    ],
    ['unsubscribe', enc.unsubscribe(77), { type: 'unsubscribe', id: 77 }],
    ['publish', enc.publish(5, 'px.AAPL', changes), { type: 'publish', id: 5, topic: 'px.AAPL', changes }],
    ['publish without fields', enc.publish(0, 'x', new Map()), { type: 'publish', id: 0, topic: 'x', changes: new Map() }],
    ['catchUp', enc.catchUp('px.AAPL', big, big - 1), { type: 'catchUp', topic: 'px.AAPL', epoch: big, version: big - 1 }],
    ['pause', enc.pause(9), { type: 'pause', id: 9 }],
    ['resume', enc.resume(10), { type: 'resume', id: 10 }],
    ['ping', enc.ping(2n ** 64n - 1n), { type: 'ping', nonce: 2n ** 64n - 1n }],
    ['ping zero', enc.ping(0n), { type: 'ping', nonce: 0n }],
    ['pong', enc.pong(123456789012345678n), { type: 'pong', nonce: 123456789012345678n }],
    [
      'snapshot',
      enc.snapshot('px.AAPL', 1_700_000_000_000_001, 42, state, 1_700_000_000_123),
      { type: 'snapshot', topic: 'px.AAPL', epoch: 1_700_000_000_000_001, version: 42, fields: state, ts: 1_700_000_000_123 },
    ],
    ['snapshot empty', enc.snapshot('e', 1, 0, [], 0), { type: 'snapshot', topic: 'e', epoch: 1, version: 0, fields: new Map(), ts: 0 }],
    [
      'delta',
      enc.delta('px.AAPL', 1_700_000_000_000_001, 40, 42, 2, changes, 1.5),
      { type: 'delta', topic: 'px.AAPL', epoch: 1_700_000_000_000_001, base: 40, version: 42, updates: 2, changes, ts: 1.5 },
    ],
    [
      'delta at 2^53 - 1',
      enc.delta('t', big, big - 1, big, 1, [['a', 1]], 0),
      { type: 'delta', topic: 't', epoch: big, base: big - 1, version: big, updates: 1, changes: new Map([['a', 1]]), ts: 0 },
    ],
    ...[TopicState.OK, TopicState.STALE, TopicState.GONE].map(
      (s): [string, Uint8Array, AnyMessage] => [
        `topicStatus ${s}`,
        enc.topicStatus('fx.EURUSD', s, 3, 4),
        { type: 'topicStatus', topic: 'fx.EURUSD', state: s, epoch: 3, version: 4 },
      ],
    ),
    ['ack', enc.ack(8, 'px.AAPL', 3, 99, 1), { type: 'ack', id: 8, topic: 'px.AAPL', epoch: 3, version: 99, count: 1 }],
    ['ack without topic', enc.ack(8, '', 0, 0, 250), { type: 'ack', id: 8, topic: '', epoch: 0, version: 0, count: 250 }],
    [
      'error',
      enc.error(ErrorCode.BAD_TOPIC, 12, 'px..x', 'topic "px..x": level "" must be…'),
      { type: 'error', code: ErrorCode.BAD_TOPIC, id: 12, topic: 'px..x', message: 'topic "px..x": level "" must be…' },
    ],
    ['error without topic', enc.error(ErrorCode.INTERNAL, 0, '', ''), { type: 'error', code: ErrorCode.INTERNAL, id: 0, topic: '', message: '' }],
    [
      'heartbeat',
      enc.heartbeat(1_700_000_000_000.25, [
        { topic: 'px.AAPL', epoch: 5, version: 6 },
        { topic: 'px.MSFT', epoch: big, version: 0 },
      ]),
      {
        type: 'heartbeat',
        time: 1_700_000_000_000.25,
        versions: [
          { topic: 'px.AAPL', epoch: 5, version: 6 },
          { topic: 'px.MSFT', epoch: big, version: 0 },
        ],
      },
    ],
    ['heartbeat empty', enc.heartbeat(0, []), { type: 'heartbeat', time: 0, versions: [] }],
    ['serve', enc.serve(9, 'orders.*'), { type: 'serve', id: 9, service: 'orders.*' }],
    ['unserve', enc.unserve(9), { type: 'unserve', id: 9 }],
    [
      'request with fields',
      enc.request(10, 'orders.submit', { fields: new Map<string, FieldValue | null>([['side', 'buy'], ['qty', 100]]), data: null }, 2000),
      { type: 'request', id: 10, service: 'orders.submit', payload: { fields: new Map<string, FieldValue | null>([['side', 'buy'], ['qty', 100]]), data: null }, timeoutMs: 2000 },
    ],
    [
      'request with bytes',
      enc.request(11, 'blobs.put', { fields: null, data: new Uint8Array([0, 1, 255]) }, 0),
      { type: 'request', id: 11, service: 'blobs.put', payload: { fields: null, data: new Uint8Array([0, 1, 255]) }, timeoutMs: 0 },
    ],
    [
      'serviceRequest',
      enc.serviceRequest(big, 9, 'orders.submit', 'desk-42', { fields: new Map<string, FieldValue | null>([['qty', 1]]), data: null }, 500),
      { type: 'serviceRequest', correlation: big, serveId: 9, service: 'orders.submit', requester: 'desk-42', payload: { fields: new Map<string, FieldValue | null>([['qty', 1]]), data: null }, timeoutMs: 500 },
    ],
    [
      'reply',
      enc.reply(7, { fields: new Map<string, FieldValue | null>([['status', 'accepted']]), data: null }, false, ''),
      { type: 'reply', correlation: 7, payload: { fields: new Map<string, FieldValue | null>([['status', 'accepted']]), data: null }, failed: false, error: '' },
    ],
    [
      'reply failed',
      enc.reply(8, { fields: new Map(), data: null }, true, 'too big'),
      { type: 'reply', correlation: 8, payload: { fields: new Map(), data: null }, failed: true, error: 'too big' },
    ],
    [
      'response',
      enc.response(10, 0, '', { fields: null, data: new Uint8Array([42]) }, 'desk-7'),
      { type: 'response', id: 10, code: 0, message: '', payload: { fields: null, data: new Uint8Array([42]) }, responder: 'desk-7' },
    ],
    [
      'response error',
      enc.response(12, ErrorCode.NO_RESPONDER, 'no responder serves x now', { fields: new Map(), data: null }, ''),
      { type: 'response', id: 12, code: ErrorCode.NO_RESPONDER, message: 'no responder serves x now', payload: { fields: new Map(), data: null }, responder: '' },
    ],
  ];

  it.each(cases)('%s', (_name, frame, expected) => {
    const got = decodeOne(frame);
    expect(got).toEqual(expected);
    // The size prefix covers the whole message and nothing else.
    expect(new DataView(frame.buffer, frame.byteOffset).getUint32(0, true)).toBe(frame.byteLength - 4);
  });

  it.each(cases)('Encoder.message(%s) writes the same bytes as its own method', (_name, frame, expected) => {
    // A Welcome always carries this build's protocol version; the other cases are exact.
    expect(enc.message(expected)).toEqual(frame);
  });

  it('covers all 22 body types', () => {
    expect(new Set(cases.map(([, , m]) => m.type)).size).toBe(22);
  });

  it('returns a fresh buffer per message (safe to cache and share)', () => {
    const a = enc.unsubscribe(1);
    const copy = a.slice();
    enc.unsubscribe(2);
    enc.snapshot('x', 1, 1, state, 0);
    expect(a).toEqual(copy);
    expect(a.buffer).not.toBe(enc.unsubscribe(1).buffer);
  });

  it('drops deletes from snapshots (a snapshot holds only present fields)', () => {
    const m = decodeOne(enc.snapshot('t', 1, 2, new Map<string, FieldValue | null>([['a', 1], ['b', null]]), 0));
    if (m.type !== 'snapshot') throw new Error('expected snapshot');
    expect(m.fields).toEqual(new Map([['a', 1]]));
  });

  it('decodes a message wherever it sits in memory (unaligned buffers from ws)', () => {
    for (const [name, frame, expected] of cases) {
      for (let shift = 1; shift < 8; shift++) {
        const buf = new Uint8Array(frame.byteLength + shift);
        buf.set(frame, shift);
        const view = buf.subarray(shift);
        expect(decodeOne(view), `${name} at byte offset ${shift}`).toEqual(expected);
      }
    }
  });
});

describe('field subsets', () => {
  const enc = new Encoder();
  const state = new Map<string, FieldValue>([
    ['bid', 1],
    ['ask', 2],
    ['last', 3],
    ['venue', 'X'],
  ]);

  it('snapshot carries only the requested fields', () => {
    const m = decodeOne(enc.snapshot('px.A', 1, 4, state, 0, new Set(['bid', 'venue', 'missing'])));
    expect(m).toEqual({ type: 'snapshot', topic: 'px.A', epoch: 1, version: 4, fields: new Map<string, FieldValue>([['bid', 1], ['venue', 'X']]), ts: 0 });
  });

  it('delta carries only the requested fields, deletes included', () => {
    const ch: Changes = new Map<string, FieldValue | null>([
      ['bid', 5],
      ['ask', null],
      ['last', 6],
    ]);
    const m = decodeOne(enc.delta('px.A', 1, 4, 5, 1, ch, 0, new Set(['ask', 'last'])));
    if (m.type !== 'delta') throw new Error('expected delta');
    expect(m.changes).toEqual(new Map([['ask', null], ['last', 6]]));
    expect(m.base).toBe(4);
    expect(m.version).toBe(5);
  });

  it('a delta with nothing in the subset still carries its versions', () => {
    const m = decodeOne(enc.delta('px.A', 1, 4, 5, 1, new Map([['bid', 5]]), 0, new Set(['ask'])));
    expect(m).toEqual({ type: 'delta', topic: 'px.A', epoch: 1, base: 4, version: 5, updates: 1, changes: new Map(), ts: 0 });
  });

  it('an empty subset set means no fields, undefined means all', () => {
    const none = decodeOne(enc.snapshot('px.A', 1, 4, state, 0, new Set()));
    const all = decodeOne(enc.snapshot('px.A', 1, 4, state, 0));
    if (none.type !== 'snapshot' || all.type !== 'snapshot') throw new Error('expected snapshots');
    expect(none.fields.size).toBe(0);
    expect(all.fields).toEqual(state);
  });
});

describe('frames', () => {
  const enc = new Encoder();

  it('carries several messages in one client frame, in order', () => {
    const parts = [enc.hello(1, 'c', 't'), enc.subscribe(1, ['px.>'], 0, [], []), enc.ping(5n), enc.publish(2, 'px.A', [['bid', 1.5]])];
    const msgs = decodeAll(clientFrame(parts));
    expect(msgs.map((m) => m.type)).toEqual(['hello', 'subscribe', 'ping', 'publish']);
    expect(msgs[3]).toEqual({ type: 'publish', id: 2, topic: 'px.A', changes: new Map([['bid', 1.5]]) });
    expect(clientFrame([parts[0]!])).toBe(parts[0]);
  });

  it.each([0, 1, 2, 255, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 5, 2 ** 40 + 3, 2 ** 53 - 1])('server frame with sequence %d', (seq) => {
    const w = new FrameWriter();
    const parts = [enc.delta('px.A', 1, 1, 2, 1, [['bid', 2]], 0), enc.topicStatus('px.B', TopicState.STALE, 1, 9)];
    const frame = w.write(seq, parts);
    expect(frameSeq(frame)).toBe(seq);
    const { seq: got, messages } = decodeServerFrame(frame);
    expect(got).toBe(seq);
    expect(messages).toEqual([
      { type: 'delta', topic: 'px.A', epoch: 1, base: 1, version: 2, updates: 1, changes: new Map([['bid', 2]]), ts: 0 },
      { type: 'topicStatus', topic: 'px.B', state: TopicState.STALE, epoch: 1, version: 9 },
    ]);
    expect(frame.byteLength).toBe(SERVER_FRAME_HEADER + parts[0]!.byteLength + parts[1]!.byteLength);
  });

  it('writes the sequence as little-endian u64', () => {
    const frame = new FrameWriter().write(2 ** 32 + 0x01020304, [enc.pong(1n)]);
    expect([...frame.subarray(0, 8)]).toEqual([4, 3, 2, 1, 1, 0, 0, 0]);
  });

  it('uses only the first `count` parts', () => {
    const parts = [enc.pause(1), enc.pause(2), enc.pause(3)];
    const { messages } = decodeServerFrame(new FrameWriter().write(7, parts, 2));
    expect(messages).toEqual([
      { type: 'pause', id: 1 },
      { type: 'pause', id: 2 },
    ]);
  });

  it('grows for frames larger than its scratch buffer and keeps working', () => {
    const w = new FrameWriter();
    const big = new Uint8Array(200_000).map((_, i) => i & 0xff);
    const parts = [enc.snapshot('big', 1, 1, [['blob', big]], 0), enc.snapshot('big2', 1, 1, [['blob', big]], 0)];
    const { seq, messages } = decodeServerFrame(w.write(3, parts));
    expect(seq).toBe(3);
    expect(messages).toHaveLength(2);
    const m = messages[1]!;
    if (m.type !== 'snapshot') throw new Error('expected snapshot');
    const blob = m.fields.get('blob');
    expect(blob).toBeInstanceOf(Uint8Array);
    expect(Buffer.compare(blob as Uint8Array, big)).toBe(0);
    // A small frame after the big one.
    expect(decodeServerFrame(w.write(4, [enc.ping(1n)]))).toEqual({ seq: 4, messages: [{ type: 'ping', nonce: 1n }] });
  });

  it('refuses server frames shorter than the header or with no message', () => {
    expectThrowsCode(() => frameSeq(new Uint8Array(7)), ErrorCode.BAD_FRAME);
    expectThrowsCode(() => decodeServerFrame(new Uint8Array(7)), ErrorCode.BAD_FRAME);
    expectThrowsCode(() => decodeServerFrame(new Uint8Array(8)), ErrorCode.BAD_FRAME);
  });
});

describe('builder reuse', () => {
  it('keeps Encoder.capacity stable over thousands of similar messages', () => {
    const enc = new Encoder();
    const w = new FrameWriter();
    const msg = (i: number) =>
      enc.delta(`px.SYM${i % 500}`, 1_700_000_000_000_000, i, i + 1, 1, [
        ['bid', 100 + (i % 97) / 4],
        ['ask', 100.25 + (i % 89) / 4],
        ['size', i * 7],
        ['venue', i % 2 ? 'XNAS' : 'ARCX'],
        ['gone', null],
      ], 1_700_000_000_000 + i);
    for (let i = 0; i < 50; i++) msg(i);
    const capacity = enc.capacity;
    for (let i = 0; i < 10_000; i++) {
      const bytes = msg(i);
      if (i % 1000 === 0) {
        const m = decodeServerFrame(w.write(i + 1, [bytes])).messages[0]!;
        expect(m).toMatchObject({ type: 'delta', base: i, version: i + 1 });
      }
    }
    expect(enc.capacity).toBe(capacity);
    expect(capacity).toBeLessThanOrEqual(4096);
  });

  it('grows once for a large message, then stays at that size', () => {
    const enc = new Encoder(1024);
    const fields: [string, FieldValue][] = Array.from({ length: 400 }, (_, i) => [`b.${100 + i / 100}`, i * 10]);
    enc.snapshot('book.BTC-USD', 1, 1, fields, 0);
    const capacity = enc.capacity;
    expect(capacity).toBeGreaterThan(1024);
    for (let i = 0; i < 300; i++) enc.snapshot('book.BTC-USD', 1, i, fields, 0);
    expect(enc.capacity).toBe(capacity);
  });
});

describe('property: random deltas round trip', () => {
  const value = fc.oneof(
    fc.double(),
    fc.integer(),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
    fc.string({ unit: 'grapheme', maxLength: 12 }),
    fc.boolean(),
    fc.uint8Array({ maxLength: 16 }),
    fc.constant(null),
  );
  const changes = fc.uniqueArray(fc.tuple(fc.string({ minLength: 1, maxLength: 10 }), value), {
    selector: ([k]) => k,
    maxLength: 12,
  });

  it('decode(encode(delta)) equals the delta', () => {
    const enc = new Encoder();
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }),
        fc.nat({ max: MAX_SAFE }),
        fc.nat({ max: MAX_SAFE }),
        fc.nat({ max: 2 ** 32 - 1 }),
        changes,
        // ts is a time: -0 is not one, and defaults are not written on the wire.
        fc.double({ noNaN: true }).filter((x) => !Object.is(x, -0)),
        (topic, epoch, version, updates, entries, ts) => {
          const m = decodeOne(enc.delta(topic, epoch, Math.max(0, version - 1), version, updates, entries, ts));
          expect(m).toEqual({
            type: 'delta',
            topic,
            epoch,
            base: Math.max(0, version - 1),
            version,
            updates,
            changes: new Map(entries.map(([k, v]) => [k, wire(v)])),
            ts,
          });
          if (m.type === 'delta') expect([...m.changes.keys()]).toEqual(entries.map(([k]) => k));
        },
      ),
      { numRuns: 500, seed: 20240501 },
    );
  });
});
