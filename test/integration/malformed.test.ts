// Malformed input: garbage, bad size prefixes, unknown union types, text
// frames and server-only messages each get an Error with the right code in
// the next frame; the connection stays open, the server keeps serving, and a
// healthy subscriber on another connection sees every version meanwhile.

import { Builder } from 'flatbuffers';
import { afterEach, describe, expect, it } from 'vitest';
import { CloseCode, ErrorCode, TickfanError } from '../../src/index.js';
import { Encoder, PROTOCOL_VERSION, type ErrorMsg } from '../../src/protocol/index.js';
import { Harness, caughtUp, chainProblem, http, isType, record, serverState, sleep, waitFor, type RawClient } from './helpers.js';

const h = new Harness();
afterEach(() => h.close());

const enc = new Encoder();

function u32le(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), (at += p.byteLength);
  return out;
}

/** A well-formed size-prefixed Message whose body union type is `type`, with a one-field table as the body. */
function messageOfType(type: number): Uint8Array {
  const b = new Builder(64);
  b.startObject(1);
  b.addFieldInt64(0, 7n, 0n);
  const body = b.endObject();
  b.startObject(2);
  b.addFieldInt8(0, type, 0);
  b.addFieldOffset(1, body, 0);
  b.finishSizePrefixed(b.endObject());
  return b.asUint8Array().slice();
}

/** Sends `data`; expects exactly one Error with `code`, in the very next frame. */
async function expectError(raw: RawClient, data: Uint8Array | string, code: number, label: string): Promise<ErrorMsg> {
  const before = raw.lastSeq;
  if (typeof data === 'string') raw.sendRaw(data);
  else raw.sendRaw(data);
  const { frame, message } = await raw.next(isType('error'), before, 2_000);
  expect(frame.seq, label).toBe(before + 1);
  expect(message.code, `${label}: ${message.message}`).toBe(code);
  expect(message.message.length, label).toBeGreaterThan(0);
  expect(raw.open, label).toBe(true);
  return message;
}

describe('malformed frames and unknown messages', () => {
  it('each gets an Error with its code in the next frame; the connection, the server and other subscribers carry on', async () => {
    const server = await h.server();
    const topic = 'mf.A';
    server.publish(topic, { px: 0 });
    const healthy = await h.connected(server);
    const hs = healthy.subscribe(topic);
    const ups = record(hs);
    await hs.ready;

    // Updates keep flowing to the healthy subscriber throughout.
    let running = true;
    const feed = (async () => {
      for (let i = 1; running && i < 5_000; i++) {
        server.publish(topic, { px: i });
        await sleep(2); // pacing, not a wait: a steady stream while the bad frames go in
      }
    })();

    const raw = await h.raw(server);
    expect(raw.messages[0]).toMatchObject({ type: 'welcome', protocol: PROTOCOL_VERSION });
    raw.send(enc.hello(PROTOCOL_VERSION, 'raw-test', ''));

    const BAD_FRAME = ErrorCode.BAD_FRAME;
    const UNKNOWN = ErrorCode.UNKNOWN_MESSAGE;
    await expectError(raw, new Uint8Array([0x13, 0x37, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x42, 0x99]), BAD_FRAME, 'garbage');
    await expectError(raw, concat(u32le(16), new Uint8Array(16).fill(0xff)), BAD_FRAME, 'valid prefix, garbage message');
    await expectError(raw, concat(u32le(1000), new Uint8Array(10)), BAD_FRAME, 'size prefix past the end');
    await expectError(raw, new Uint8Array([1, 0]), BAD_FRAME, 'truncated size prefix');
    await expectError(raw, new Uint8Array(0), BAD_FRAME, 'empty frame');
    await expectError(raw, messageOfType(99), UNKNOWN, 'unknown union type 99');
    await expectError(raw, messageOfType(0), UNKNOWN, 'union type NONE');
    await expectError(raw, '{"type":"subscribe","topics":["mf.A"]}', BAD_FRAME, 'text frame');
    await expectError(raw, enc.snapshot('mf.A', 1, 1, new Map([['px', 1]]), 0), UNKNOWN, 'server-only Snapshot');
    await expectError(raw, enc.welcome('evil', 1, 1, []), UNKNOWN, 'server-only Welcome');
    await expectError(raw, enc.delta('mf.A', 1, 1, 2, 1, new Map([['px', 2]]), 0), UNKNOWN, 'server-only Delta');
    // A good message truncated in the middle.
    const ping = enc.ping(42n);
    await expectError(raw, ping.subarray(0, ping.byteLength - 3), BAD_FRAME, 'truncated message');

    // Messages before the bad one in a frame still count: Pong and Error in one answer.
    const before = raw.lastSeq;
    raw.sendRaw(concat(enc.ping(7n), u32le(500), new Uint8Array(3)));
    const { frame } = await raw.next(isType('error'), before, 2_000);
    expect(frame.seq).toBe(before + 1);
    expect(frame.messages.map((m) => m.type).sort()).toEqual(['error', 'pong']);
    expect(frame.messages.find(isType('pong'))).toMatchObject({ nonce: 7n });

    // Still open, still served: a subscription on the same raw connection works.
    raw.send(enc.subscribe(1, [topic], 0, [], []));
    const sub = await raw.next(isType('ack'), before + 1, 2_000);
    expect(sub.message).toMatchObject({ id: 1, count: 1 });
    expect(sub.frame.messages.some((m) => m.type === 'snapshot' && m.topic === topic)).toBe(true);
    expect(raw.closeCode).toBeNull();
    expect((await http(server.port, 'GET', '/healthz')).body).toMatchObject({ status: 'ok' });

    running = false;
    await feed;
    await waitFor(() => caughtUp(healthy, server, topic), 5_000, 'the healthy subscriber');
    expect(chainProblem(ups, { full: true })).toBeNull();
    expect(ups).toHaveLength(server.store.get(topic)!.version);
    expect(ups.length).toBeGreaterThan(10);
    expect(hs.state).toEqual(serverState(server, topic).state);
    expect(healthy.stats).toMatchObject({ gaps: 0, catchUps: 0, sequenceGaps: 0 });
    // Every raw frame so far was numbered 1, 2, 3, … (checked frame by frame).
    expect(raw.problems).toEqual([]);
    expect(raw.frames.map((f) => f.seq)).toEqual(raw.frames.map((_, i) => i + 1));
  });

  it('too many malformed frames in a row close the connection with 4002; a good frame resets the count', async () => {
    const server = await h.server({ maxBadFrames: 3 });
    const raw = await h.raw(server);
    const garbage = new Uint8Array([9, 9, 9]);
    await expectError(raw, garbage, ErrorCode.BAD_FRAME, 'bad 1');
    await expectError(raw, garbage, ErrorCode.BAD_FRAME, 'bad 2');
    const beforePing = raw.lastSeq;
    raw.send(enc.ping(1n)); // resets the count
    await raw.next(isType('pong'), beforePing, 2_000);
    await expectError(raw, garbage, ErrorCode.BAD_FRAME, 'bad 1 again');
    await expectError(raw, garbage, ErrorCode.BAD_FRAME, 'bad 2 again');
    raw.sendRaw(garbage);
    await waitFor(() => raw.closeCode !== null, 2_000, 'the close');
    expect(raw.closeCode).toBe(CloseCode.TOO_MANY_BAD_FRAMES);
  });
});

describe('refused requests through the SDK', () => {
  it('publish to an invalid topic rejects with TICKFAN_ERR_BAD_TOPIC', async () => {
    const server = await h.server();
    const client = await h.connected(server);
    const err = await client.publish('bad topic!', { px: 1 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TickfanError);
    expect(err).toMatchObject({ code: 'TICKFAN_ERR_BAD_TOPIC', errorCode: ErrorCode.BAD_TOPIC });
    expect(server.store.size).toBe(0);
    // The client is still usable.
    await expect(client.publish('mf.OK', { px: 1 })).resolves.toMatchObject({ topic: 'mf.OK', version: 1 });
    expect(client.state).toBe('connected');
  });

  it.each([
    ['mf.>.A', ErrorCode.BAD_PATTERN, 'TICKFAN_ERR_BAD_PATTERN'],
    ['mf..A', ErrorCode.BAD_TOPIC, 'TICKFAN_ERR_BAD_TOPIC'],
    ['bad topic!', ErrorCode.BAD_TOPIC, 'TICKFAN_ERR_BAD_TOPIC'],
  ] as const)('subscribe to %j: ready rejects with %i', async (name, errorCode, code) => {
    const server = await h.server();
    server.publish('mf.B', { px: 1 });
    const client = await h.connected(server);
    const bad = client.subscribe(name);
    const events: unknown[] = [];
    bad.on('error', (e) => events.push(e));
    const err = await bad.ready.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TickfanError);
    expect(err).toMatchObject({ code, errorCode });
    expect(events).toEqual([err]);
    expect(server.stats.subscriptions).toBe(0);
    // Other subscriptions on the same client are unaffected.
    const good = client.subscribe('mf.B');
    await good.ready;
    expect(good.state).toEqual({ px: 1 });
  });
});
