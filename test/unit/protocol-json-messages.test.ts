// The JSON form of protocol messages (SSE): every server message survives
// messageToJson → JSON text → messageFromJson, and every client message
// survives messageToCommand → JSON text → commandToMessage, exactly — every
// value kind included (-0, NaN, ±Infinity, int64 edges, bytes, deletes).

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  ErrorCode,
  TickfanError,
  TopicState,
  commandToMessage,
  messageFromJson,
  messageToCommand,
  messageToJson,
  type AnyMessage,
  type ClientMessage,
  type FieldValue,
  type Payload,
  type ResumePoint,
  type ServerMessage,
} from '../../src/protocol/index.js';

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const U32 = 2 ** 32 - 1;

const safeNat = fc.nat({ max: Number.MAX_SAFE_INTEGER });
/** A JSON number survives only when finite and not -0: what plain numeric fields carry. */
const plainDouble = fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => (x === 0 ? 0 : x));
const text = fc.string({ unit: 'binary', maxLength: 20 });
const topic = fc.oneof(fc.constantFrom('px.AAPL', 'book.BTC-USD', 'fx.EURUSD', ''), text);
const fieldName = fc.oneof(fc.constantFrom('bid', 'b.101.25', '__proto__', 'constructor', 'toString', ''), text);

/** Every kind of field value, with the edges that JSON cannot hold as plain numbers. */
const fieldValue: fc.Arbitrary<FieldValue> = fc.oneof(
  fc.double(), // NaN, ±Infinity, -0 included
  fc.constantFrom(-0, 0, NaN, Infinity, -Infinity, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, Number.MIN_VALUE, Number.MAX_VALUE),
  fc.integer(),
  fc.bigInt({ min: INT64_MIN, max: INT64_MAX }),
  fc.constantFrom(INT64_MIN, INT64_MAX, 0n, -1n, 2n ** 53n, -(2n ** 53n) - 1n),
  text,
  fc.boolean(),
  fc.uint8Array({ maxLength: 40 }),
);
const state = fc.array(fc.tuple(fieldName, fieldValue), { maxLength: 8 }).map((e) => new Map(e));
const changes = fc.array(fc.tuple(fieldName, fc.option(fieldValue, { nil: null })), { maxLength: 8 }).map((e) => new Map(e));
const resumePoint: fc.Arbitrary<ResumePoint> = fc.record({ topic, epoch: safeNat, version: safeNat });
const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });

/** A request's or reply's payload: a field map (deletes included) or bytes. */
const payload: fc.Arbitrary<Payload> = fc.oneof(
  changes.map((fields): Payload => ({ fields, data: null })),
  fc.uint8Array({ maxLength: 40 }).map((data): Payload => ({ fields: null, data })),
);

/** Server messages SSE carries: protocol 2's Snapshot2 / Delta2 exist only on WebSockets (SSE stays JSON). */
const serverMessages: Record<Exclude<ServerMessage['type'], 'snapshot2' | 'delta2' | 'keyedSnapshot2' | 'keyedDelta2' | 'keyedSnapshot' | 'keyedDelta'>, fc.Arbitrary<ServerMessage>> = {
  welcome: fc.record({
    type: fc.constant('welcome'),
    protocol: fc.nat({ max: 65535 }),
    server: text,
    heartbeatMs: fc.nat({ max: U32 }),
    maxFrame: fc.nat({ max: U32 }),
    rateTiers: fc.array(plainDouble, { maxLength: 5 }),
    // 1 at least: a server that predates protocol 2 sends none, read as 1.
    maxProtocol: fc.integer({ min: 1, max: 65535 }),
  }),
  snapshot: fc.record({ type: fc.constant('snapshot'), topic, epoch: safeNat, version: safeNat, fields: state, ts: plainDouble }),
  delta: fc.record({ type: fc.constant('delta'), topic, epoch: safeNat, base: safeNat, version: safeNat, updates: fc.nat({ max: U32 }), changes, ts: plainDouble }),
  topicStatus: fc.record({ type: fc.constant('topicStatus'), topic, state: fc.constantFrom(TopicState.OK, TopicState.STALE, TopicState.GONE), epoch: safeNat, version: safeNat }),
  ack: fc.record({ type: fc.constant('ack'), id: fc.nat({ max: U32 }), topic, epoch: safeNat, version: safeNat, count: fc.nat({ max: U32 }) }),
  error: fc.record({ type: fc.constant('error'), code: fc.constantFrom(...Object.values(ErrorCode)), id: fc.nat({ max: U32 }), topic, message: text }),
  heartbeat: fc.record({ type: fc.constant('heartbeat'), time: plainDouble, versions: fc.array(resumePoint, { maxLength: 5 }) }),
  ping: fc.record({ type: fc.constant('ping'), nonce: u64 }),
  pong: fc.record({ type: fc.constant('pong'), nonce: u64 }),
  serviceRequest: fc.record({
    type: fc.constant('serviceRequest'),
    correlation: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    serveId: fc.nat({ max: U32 }),
    service: text,
    requester: text,
    payload,
    timeoutMs: fc.nat({ max: U32 }),
  }),
  response: fc.record({
    type: fc.constant('response'),
    id: fc.nat({ max: U32 }),
    code: fc.constantFrom(0, ...Object.values(ErrorCode)),
    message: text,
    payload,
    responder: text,
  }),
};

const id = fc.integer({ min: 1, max: U32 });
/** Client messages SSE carries (Hello is not: the token travels in the stream's URL). */
const clientMessages: Record<Exclude<ClientMessage['type'], 'hello'>, fc.Arbitrary<ClientMessage>> = {
  subscribe: fc.record({
    type: fc.constant('subscribe'),
    id,
    topics: fc.array(topic, { maxLength: 4 }),
    maxRate: fc.double({ min: 0, noNaN: true, noDefaultInfinity: true }).map((x) => (x === 0 ? 0 : x)),
    fields: fc.array(fieldName, { maxLength: 4 }),
    resume: fc.array(resumePoint, { maxLength: 4 }),
    timestamps: fc.boolean(),
  }),
  unsubscribe: fc.record({ type: fc.constant('unsubscribe'), id }),
  publish: fc.record({ type: fc.constant('publish'), id: fc.nat({ max: U32 }), topic, changes }),
  catchUp: fc.record({ type: fc.constant('catchUp'), topic, epoch: safeNat, version: safeNat }),
  pause: fc.record({ type: fc.constant('pause'), id }),
  resume: fc.record({ type: fc.constant('resume'), id }),
  ping: fc.record({ type: fc.constant('ping'), nonce: u64 }),
  pong: fc.record({ type: fc.constant('pong'), nonce: u64 }),
  serve: fc.record({ type: fc.constant('serve'), id, service: text }),
  unserve: fc.record({ type: fc.constant('unserve'), id }),
  request: fc.record({ type: fc.constant('request'), id, service: text, payload, timeoutMs: fc.nat({ max: U32 }) }),
  reply: fc.record({
    type: fc.constant('reply'),
    correlation: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    payload,
    failed: fc.boolean(),
    error: text,
  }),
};

/** Through the JSON text, as an SSE event or a POST body carries it. */
const viaText = <T>(o: T): T => JSON.parse(JSON.stringify(o)) as T;

describe('server messages round trip through their JSON event form', () => {
  it.each(Object.entries(serverMessages))('%s', (_type, arb) => {
    fc.assert(
      fc.property(arb, (m) => {
        // toEqual compares numbers with Object.is: -0 and NaN must come back as themselves.
        expect(messageFromJson(viaText(messageToJson(m)))).toEqual(m);
      }),
      { numRuns: 300 },
    );
  });

  it('names the error code and the topic state for people reading the stream', () => {
    expect(messageToJson({ type: 'error', code: ErrorCode.BAD_FIELD, id: 1, topic: 't', message: 'm' }).name).toBe('TICKFAN_ERR_BAD_FIELD');
    expect(messageToJson({ type: 'topicStatus', topic: 't', state: TopicState.GONE, epoch: 1, version: 2 }).state).toBe('gone');
  });

  it('reads a message type it does not know as null (a newer server)', () => {
    expect(messageFromJson({ type: 'somethingNew', x: 1 })).toBeNull();
  });
});

describe('client messages round trip through their JSON command form', () => {
  it.each(Object.entries(clientMessages))('%s', (_type, arb) => {
    fc.assert(
      fc.property(arb, (m) => {
        expect(commandToMessage(viaText(messageToCommand(m)))).toEqual(m);
      }),
      { numRuns: 300 },
    );
  });

  it('sends no command for a Hello without a token; one with a token is a refresh command that round-trips', () => {
    expect(messageToCommand({ type: 'hello', protocol: 1, client: 'c', token: '' })).toBeNull();
    expect(messageToCommand({ type: 'hello', protocol: 1, client: 'c', token: 't' })).toEqual({ type: 'hello', token: 't' });
    expect(commandToMessage(viaText(messageToCommand({ type: 'hello', protocol: 0, client: '', token: 'a.b.c' })))).toEqual({ type: 'hello', protocol: 0, client: '', token: 'a.b.c' });
    expect(() => commandToMessage({ type: 'hello', token: '' })).toThrow(/new token/);
    expect(() => commandToMessage({ type: 'hello' })).toThrow(/token must be a string/);
  });

  it('covers every message type but Hello in both directions', () => {
    const all: AnyMessage['type'][] = [
      'hello', 'welcome', 'subscribe', 'unsubscribe', 'publish', 'catchUp', 'pause', 'resume', 'ping', 'pong', 'snapshot', 'delta', 'topicStatus', 'ack', 'error', 'heartbeat',
      'serve', 'unserve', 'request', 'serviceRequest', 'reply', 'response',
    ];
    const covered = new Set([...Object.keys(serverMessages), ...Object.keys(clientMessages), 'hello']);
    expect(all.filter((t) => !covered.has(t))).toEqual([]);
  });
});

describe('commands that are not messages are refused with a code', () => {
  const codeOf = (c: unknown): string => {
    try {
      commandToMessage(c);
      return 'accepted';
    } catch (err) {
      return err instanceof TickfanError ? `${err.code}: ${err.message}` : `untyped ${String(err)}`;
    }
  };

  it('refuses field values JSON cannot mean, naming the field', () => {
    for (const bad of [[1], {}, { $bytes: 1 }, { $bigint: '1.5' }, { $float: 'x' }]) {
      expect(codeOf({ type: 'publish', topic: 'px.X', fields: { bid: bad } })).toMatch(/^TICKFAN_ERR_BAD_FIELD: field bid/);
    }
  });

  it('refuses unknown types and out-of-range ids', () => {
    expect(codeOf({ type: 'nope' })).toMatch(/^TICKFAN_ERR_UNKNOWN_MESSAGE/);
    expect(codeOf({ type: 'pause', id: 0 })).toMatch(/^TICKFAN_ERR_BAD_REQUEST: id must be an integer/);
    expect(codeOf([{ type: 'pause', id: 1 }])).toMatch(/^TICKFAN_ERR_BAD_REQUEST/);
  });
});
