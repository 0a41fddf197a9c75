// The STOMP folder's pure parts: header escaping and frame writing, the
// tickfan-* headers, heart-beat negotiation and the heart-beat sweeper,
// MESSAGE frames made from fan-out's shared messages (once per buffer, cut to
// a subscription's fields), pending answers and subscription routing.

import { describe, expect, it } from 'vitest';
import { TopicPattern } from '../../src/engine/index.js';
import { Encoder, ErrorCode, TopicState } from '../../src/protocol/index.js';
import { parseDestination, parseFields, parseMaxRate, parseResume } from '../../src/server/stomp/destinations.js';
import { encodeFrame, escapeHeader, unescapeHeader, type StompVersion } from '../../src/server/stomp/frame.js';
import { StompHeartbeats, negotiateHeartbeat, silenceLimitMs, type Beating, type HeartbeatTerms } from '../../src/server/stomp/heartbeat.js';
import { errorFrame, replyFrame, updateFrame } from '../../src/server/stomp/outgoing.js';
import { PendingTable } from '../../src/server/stomp/pending.js';
import { translate, type TopicUpdate } from '../../src/server/stomp/shared-message.js';
import { StompSubscriptions, type StompSub } from '../../src/server/stomp/subscriptions.js';
import { StompParser } from '../../src/server/stomp/parser.js';

const enc = new Encoder();

/** Parses one frame written by the server with the server's own parser (the round trip). */
function reparse(frame: string | Buffer, version: StompVersion) {
  const out: { command: string; headers: Map<string, string>; body: Uint8Array }[] = [];
  const p = new StompParser({ maxFrameBytes: 1 << 20, maxHeaders: 64, maxHeaderBytes: 1 << 16 }, { frame: (f) => out.push(f), heartbeat: () => {} });
  p.version = version;
  p.feed(typeof frame === 'string' ? Buffer.from(frame) : frame);
  expect(out).toHaveLength(1);
  return out[0]!;
}

function sub(id: string, pattern: string, extra: Partial<StompSub> = {}): StompSub {
  return { id, num: 1, destination: pattern, kind: 'topic', ack: 'auto', fields: null, patterns: [TopicPattern.parse(pattern)], waiting: null, ...extra };
}

describe('STOMP frames', () => {
  it.each(['1.1', '1.2'] as const)('header escaping round-trips in %s', (v) => {
    for (const s of ['plain', 'a:b', 'back\\slash', 'two\nlines', 'c:\\:\n', ...(v === '1.2' ? ['cr\rhere'] : [])]) {
      expect(unescapeHeader(escapeHeader(s, v), v)).toBe(s);
    }
    expect(escapeHeader('/topic/a:b', v)).toBe('/topic/a\\cb');
  });

  it('1.0 escapes nothing; CONNECTED is never escaped', () => {
    expect(escapeHeader('a:b', '1.0')).toBe('a:b');
    expect(encodeFrame('CONNECTED', [['server', 'x:1']], '', '1.2')).toBe('CONNECTED\nserver:x:1\n\n\0');
  });

  it('a body gets its content-length in bytes; a binary body makes a Buffer', () => {
    const text = encodeFrame('MESSAGE', [['destination', '/topic/a']], '{"n":"é"}', '1.2');
    expect(text).toBe('MESSAGE\ndestination:/topic/a\ncontent-length:10\n\n{"n":"é"}\0');
    const bin = encodeFrame('MESSAGE', [], Uint8Array.of(0, 1, 0), '1.2');
    expect(Buffer.isBuffer(bin)).toBe(true);
    expect([...reparse(bin, '1.2').body]).toEqual([0, 1, 0]);
  });
});

describe('STOMP tickfan-* headers and destinations', () => {
  it('destinations: topics, services, reply queues; anything else is refused with what to use', () => {
    expect(parseDestination('/topic/px.*', 'SUBSCRIBE')).toEqual({ kind: 'topic', name: 'px.*' });
    expect(parseDestination('/service/orders.submit', 'SEND')).toEqual({ kind: 'service', name: 'orders.submit' });
    expect(parseDestination('/temp-queue/r', 'SUBSCRIBE')).toEqual({ kind: 'reply', name: '/temp-queue/r' });
    expect(parseDestination('/queue/r', 'SUBSCRIBE')).toEqual({ kind: 'reply', name: '/queue/r' });
    expect(() => parseDestination('/exchange/x', 'SEND')).toThrow(/unknown destination.*\/topic\/<topic>/);
    expect(() => parseDestination('/temp-queue/', 'SEND')).toThrow(/unknown destination/);
    expect(() => parseDestination(undefined, 'SEND')).toThrow(/SEND needs a destination header/);
  });

  it('tickfan-resume splits each point at its last @ (topic names may hold @ and :)', () => {
    expect(parseResume('px.A@3:17, fx:eur@usd@3:0')).toEqual([
      { topic: 'px.A', epoch: 3, version: 17 },
      { topic: 'fx:eur@usd', epoch: 3, version: 0 },
    ]);
    expect(parseResume(undefined)).toEqual([]);
    for (const bad of ['px.A', 'px.A@3', '@3:4', 'px.A@x:1', 'px.A@1:99999999999999999']) {
      expect(() => parseResume(bad), bad).toThrow(/topic@epoch:version/);
    }
  });

  it('tickfan-max-rate and tickfan-fields', () => {
    expect(parseMaxRate(undefined)).toBe(0);
    expect(parseMaxRate('2.5')).toBe(2.5);
    expect(() => parseMaxRate('-1')).toThrow(/updates per second/);
    expect(() => parseMaxRate('fast')).toThrow(/updates per second/);
    expect(parseFields(' bid, ask ,,')).toEqual(['bid', 'ask']);
  });
});

describe('STOMP heart-beats', () => {
  it('negotiates per the spec: each way the larger of what one side can do and the other wants, 0 meaning none', () => {
    expect(negotiateHeartbeat('0,0', 5000, '1.2')).toEqual({ header: '5000,5000', outMs: 0, inMs: 0 });
    expect(negotiateHeartbeat('1000,10000', 5000, '1.2')).toEqual({ header: '5000,5000', outMs: 10000, inMs: 5000 });
    expect(negotiateHeartbeat('20000,100', 5000, '1.1')).toEqual({ header: '5000,5000', outMs: 5000, inMs: 20000 });
    expect(negotiateHeartbeat(undefined, 5000, '1.2')).toMatchObject({ outMs: 0, inMs: 0 });
    expect(negotiateHeartbeat('10,10', 5000, '1.0')).toMatchObject({ outMs: 0, inMs: 0 });
    expect(() => negotiateHeartbeat('10', 5000, '1.2')).toThrow(/two numbers/);
    expect(() => negotiateHeartbeat('a,b', 5000, '1.2')).toThrow(/two numbers/);
  });

  it('the sweeper beats a quiet connection before its interval runs out and closes a silent one past its grace', () => {
    const hb = new StompHeartbeats(1000);
    const made = (terms: HeartbeatTerms) => {
      const b = { terms, lastReadAt: 0, lastWriteAt: 0, beats: [] as number[], silences: [] as number[], beat() {}, silent(_ms: number) {} };
      b.beat = () => b.beats.push((b.lastWriteAt = now));
      b.silent = (ms) => b.silences.push(ms);
      return b;
    };
    let now = 0;
    const out = made({ header: '', outMs: 1000, inMs: 0 });
    const inn = made({ header: '', outMs: 0, inMs: 1000 });
    const none = made({ header: '', outMs: 0, inMs: 0 });
    for (const b of [out, inn, none]) hb.add(b as Beating);
    for (now = 0; now <= 5000; now += 250) hb.tick(now);
    hb.delete(out as Beating);
    // Never more than the interval between two writes.
    const gaps = out.beats.map((t, i) => t - (out.beats[i - 1] ?? 0));
    expect(Math.max(...gaps)).toBeLessThanOrEqual(1000);
    expect(out.beats.length).toBeGreaterThanOrEqual(5);
    expect(inn.silences).toHaveLength(1);
    expect(inn.silences[0]).toBeGreaterThan(silenceLimitMs(1000));
    expect(silenceLimitMs(1000)).toBe(2000);
    expect(none.beats).toEqual([]);
  });
});

describe('STOMP MESSAGE frames from fan-out messages', () => {
  const snapshot = enc.snapshot('px.A:1', 7, 42, new Map<string, number | string>([['bid', 1.5], ['name', 'x']]), 0);
  const delta = enc.delta('px.A:1', 7, 42, 43, 1, new Map<string, number | null>([['bid', 2], ['name', null]]), 0);

  it('a shared message is turned into JSON once per buffer, however many connections frame it', () => {
    const a = translate(snapshot) as TopicUpdate;
    expect(translate(snapshot)).toBe(a);
    expect(a).toMatchObject({ kind: 'snapshot', topic: 'px.A:1', epoch: 7, version: 42 });
  });

  it('snapshot and delta frames: destination, subscription, ids, tickfan headers, the JSON body (null deletes)', () => {
    const s = sub('my:sub', 'px.*');
    const snap = reparse(updateFrame(translate(snapshot) as TopicUpdate, s, 1, '1.2'), '1.2');
    expect(snap.command).toBe('MESSAGE');
    expect(Object.fromEntries(snap.headers)).toMatchObject({
      destination: '/topic/px.A:1',
      subscription: 'my:sub',
      'message-id': '1',
      'content-type': 'application/json',
      'tickfan-kind': 'snapshot',
      'tickfan-epoch': '7',
      'tickfan-version': '42',
    });
    expect(snap.headers.has('ack')).toBe(false);
    expect(JSON.parse(Buffer.from(snap.body).toString())).toEqual({ bid: 1.5, name: 'x' });
    const d = reparse(updateFrame(translate(delta) as TopicUpdate, { ...s, ack: 'client' }, 2, '1.2'), '1.2');
    expect(Object.fromEntries(d.headers)).toMatchObject({ 'tickfan-kind': 'delta', 'tickfan-base': '42', 'tickfan-version': '43', ack: '2' });
    expect(JSON.parse(Buffer.from(d.body).toString())).toEqual({ bid: 2, name: null });
  });

  it('a subscription with a field subset gets a body with only its fields', () => {
    const d = reparse(updateFrame(translate(delta) as TopicUpdate, sub('s', 'px.*', { fields: new Set(['name']) }), 3, '1.2'), '1.2');
    expect(JSON.parse(Buffer.from(d.body).toString())).toEqual({ name: null });
    expect(d.headers.get('tickfan-version')).toBe('43');
  });

  it('a topic status is a MESSAGE whose empty body changes nothing', () => {
    const st = reparse(updateFrame(translate(enc.topicStatus('px.A:1', TopicState.STALE, 7, 43)) as TopicUpdate, sub('s', 'px.*'), 4, '1.2'), '1.2');
    expect(st.headers.get('tickfan-kind')).toBe('status');
    expect(st.headers.get('tickfan-status')).toBe('stale');
    expect(Buffer.from(st.body).toString()).toBe('{}');
  });

  it('acks, errors, responses and pongs are recognised; a Welcome is dropped', () => {
    expect(translate(enc.ack(5, 'x', 1, 2, 0))).toEqual({ kind: 'ack', id: 5 });
    expect(translate(enc.error(ErrorCode.BAD_FIELD, 6, 't', 'why'))).toMatchObject({ kind: 'error', id: 6, code: ErrorCode.BAD_FIELD, message: 'why' });
    expect(translate(enc.pong(9n))).toEqual({ kind: 'pong', nonce: 9 });
    expect(translate(enc.welcome('tickfan', 5000, 1 << 20, [1, 10]))).toEqual({ kind: 'other' });
  });

  it('ERROR frames: one-line message header, full text and the code in the body, the receipt-id', () => {
    const e = reparse(errorFrame(ErrorCode.PERMISSION_DENIED, 'not allowed to\npublish to a:b', 'r:1', '1.2'), '1.2');
    expect(Object.fromEntries(e.headers)).toMatchObject({ message: 'not allowed to publish to a:b', 'receipt-id': 'r:1', 'tickfan-code': '20', 'tickfan-error': 'TICKFAN_ERR_PERMISSION_DENIED' });
    expect(Buffer.from(e.body).toString()).toMatch(/not allowed to\npublish to a:b\n\nTICKFAN_ERR_PERMISSION_DENIED \(20\): the connection may not/);
  });

  it('replies: JSON fields, bytes as a binary body, or the typed error', () => {
    const to = { destination: '/temp-queue/r', subscription: 'sub-1', ack: false, correlationId: 'c:1' };
    const ok = reparse(replyFrame(to, 1, 0, '', { fields: new Map([['status', 'accepted']]), data: null }, 'desk', '1.2'), '1.2');
    expect(Object.fromEntries(ok.headers)).toMatchObject({ destination: '/temp-queue/r', subscription: 'sub-1', 'correlation-id': 'c:1', 'tickfan-code': '0', 'tickfan-responder': 'desk' });
    expect(JSON.parse(Buffer.from(ok.body).toString())).toEqual({ status: 'accepted' });
    const bin = replyFrame(to, 2, 0, '', { fields: null, data: Uint8Array.of(0, 255) }, '', '1.2');
    expect(Buffer.isBuffer(bin)).toBe(true);
    expect(reparse(bin, '1.2').headers.get('content-type')).toBe('application/octet-stream');
    const err = reparse(replyFrame(to, 3, ErrorCode.NO_RESPONDER, 'no responder serves x now', { fields: new Map(), data: null }, '', '1.2'), '1.2');
    expect(JSON.parse(Buffer.from(err.body).toString())).toEqual({ error: { code: 40, name: 'TICKFAN_ERR_NO_RESPONDER', message: 'no responder serves x now' } });
  });
});

describe('STOMP connection tables', () => {
  it('pending answers: oldest first per id', () => {
    const t = new PendingTable();
    t.add(1, { type: 'receipt', receipt: 'a' });
    t.add(1, { type: 'receipt', receipt: 'b' });
    t.add(2, { type: 'disconnect', receipt: 'c' });
    expect(t.take(1)).toEqual({ type: 'receipt', receipt: 'a' });
    expect(t.has(1)).toBe(true);
    expect(t.take(1)).toEqual({ type: 'receipt', receipt: 'b' });
    expect(t.has(1)).toBe(false);
    expect(t.take(1)).toBeUndefined();
    expect(t.take(2)?.type).toBe('disconnect');
    expect(t.size).toBe(0);
  });

  it('receivers: every subscription whose patterns match, in order; a waiting one skips deltas until its snapshot', () => {
    const subs = new StompSubscriptions();
    const a = sub('a', 'px.A');
    const b = sub('b', 'px.*', { num: 2, waiting: new Set(['px.A']) });
    subs.add(a);
    subs.add(b);
    subs.add({ id: 'r', num: 0, destination: '/temp-queue/r', kind: 'reply', ack: 'auto', fields: null, patterns: [], waiting: null });
    expect(subs.receivers('px.A')).toEqual([a, b]);
    expect(subs.receivers('px.B')).toEqual([b]);
    expect(subs.receivers('fx.A')).toEqual([]);
    expect(subs.takes(b, 'delta', 'px.A')).toBe(false);
    expect(subs.takes(b, 'status', 'px.A')).toBe(true);
    expect(subs.takes(b, 'snapshot', 'px.A')).toBe(true);
    expect(subs.takes(b, 'delta', 'px.A')).toBe(true);
    expect(b.waiting).toBeNull();
    expect(subs.replySub('/temp-queue/r')?.id).toBe('r');
    subs.remove('a');
    expect(subs.receivers('px.A')).toEqual([b]);
    expect(subs.hasNum(1)).toBe(false);
    expect(subs.hasNum(2)).toBe(true);
  });
});
