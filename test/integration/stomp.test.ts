// STOMP over WebSocket (/stomp) against a real server on port 0, with the
// real @stomp/stompjs client (over `ws`) and a raw-frame client: versioned
// snapshots then deltas that rebuild GET /snapshot exactly, topics and
// patterns, SEND with receipts, request-reply through reply-to, resume
// points, errors and permissions, heart-beats, and bad frames that close
// one connection while the others on the same topic keep receiving.

import { Client, FrameImpl, Parser, type IFrame, type IMessage, type StompHeaders } from '@stomp/stompjs';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import type { TickfanServer } from '../../src/index.js';
import { ErrorCode } from '../../src/protocol/index.js';
import { Harness, http, record, sleep, tick, waitFor } from './helpers.js';
import type { Socket } from 'node:net';
import { SECRET, token } from './security-helpers.js';

type Json = Record<string, unknown>;

const h = new Harness();
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
  await h.close();
});

const stompUrl = (server: TickfanServer, query = '') => `ws://127.0.0.1:${server.port}/stomp${query}`;

// ------------------------------------------------------------------ a stompjs client

interface StompPeer {
  client: Client;
  /** ERROR frames received. */
  errors: IFrame[];
  /** MESSAGE frames no subscription took. */
  unhandled: IMessage[];
  /** Close codes of its WebSocket. */
  closes: number[];
  /** The subprotocol the server chose. */
  protocol: string;
}

interface PeerOptions {
  query?: string;
  headers?: StompHeaders;
  protocols?: string[];
  /** [outgoing, incoming] heart-beat ms (default: none). */
  heartbeat?: [number, number];
  /** Resolve once the WebSocket closed instead of once CONNECTED (for refused CONNECTs). */
  expectRefusal?: boolean;
}

/** A stompjs Client over `ws`, connected (or refused), closed after the test. */
async function peer(server: TickfanServer, o: PeerOptions = {}): Promise<StompPeer> {
  const p: StompPeer = { client: null as unknown as Client, errors: [], unhandled: [], closes: [], protocol: '' };
  let socket: WebSocket | null = null;
  const client = new Client({
    webSocketFactory: () => {
      socket = new WebSocket(stompUrl(server, o.query), o.protocols ?? ['v12.stomp']);
      socket.once('open', () => (p.protocol = socket!.protocol));
      return socket;
    },
    connectHeaders: o.headers ?? {},
    reconnectDelay: 0,
    heartbeatOutgoing: o.heartbeat?.[0] ?? 0,
    heartbeatIncoming: o.heartbeat?.[1] ?? 0,
    debug: () => {},
  });
  p.client = client;
  client.onStompError = (f) => p.errors.push(f);
  client.onUnhandledMessage = (m) => p.unhandled.push(m);
  client.onWebSocketClose = (e: { code: number }) => p.closes.push(e.code);
  const ready = new Promise<void>((resolve, reject) => {
    client.onConnect = () => resolve();
    if (o.expectRefusal) client.onWebSocketClose = (e: { code: number }) => (p.closes.push(e.code), resolve());
    setTimeout(() => reject(new Error('the STOMP client did not connect within 5 s')), 5_000).unref();
  });
  client.activate();
  cleanup.push(async () => {
    await client.deactivate({ force: true });
    (socket as WebSocket | null)?.terminate();
  });
  await ready;
  return p;
}

/** Every MESSAGE a subscription receives. */
function collect(p: StompPeer, destination: string, headers: StompHeaders = {}): { messages: IMessage[]; id: string } {
  const messages: IMessage[] = [];
  const sub = p.client.subscribe(destination, (m) => messages.push(m), headers);
  return { messages, id: sub.id };
}

/** The RECEIPT for `id`; rejects (with the ERROR frames so far) when none comes in 5 s. */
function receipt(p: StompPeer, id: string): Promise<IFrame> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no RECEIPT ${id} in 5 s; ERRORs: ${JSON.stringify(p.errors.map((e) => e.headers.message))}`)), 5_000);
    p.client.watchForReceipt(id, (f) => {
      clearTimeout(t);
      resolve(f);
    });
  });
}

/**
 * Applies a subscription's MESSAGE frames for `topic` as a STOMP client
 * should: a snapshot replaces what it holds, a delta applies only on its
 * tickfan-base (null deletes), a status changes nothing. Throws on a broken chain.
 */
function applyAll(messages: readonly IMessage[], topic: string): { epoch: number; version: number; state: Json; snapshots: number; deltas: number } {
  const held = { epoch: 0, version: -1, state: {} as Json, snapshots: 0, deltas: 0 };
  for (const m of messages) {
    if (m.headers.destination !== `/topic/${topic}`) continue;
    expect(m.headers['content-type']).toBe('application/json');
    const kind = m.headers['tickfan-kind'];
    const epoch = Number(m.headers['tickfan-epoch']);
    const version = Number(m.headers['tickfan-version']);
    const body = JSON.parse(m.body) as Json;
    if (kind === 'snapshot') {
      Object.assign(held, { epoch, version, state: { ...body } });
      held.snapshots++;
    } else if (kind === 'delta') {
      const base = Number(m.headers['tickfan-base']);
      if (held.version < 0) throw new Error(`a delta ${base}→${version} before any snapshot`);
      if (epoch !== held.epoch || base !== held.version) throw new Error(`delta ${base}→${version} (epoch ${epoch}) does not apply to v${held.version} (epoch ${held.epoch})`);
      for (const [k, v] of Object.entries(body)) {
        if (v === null) delete held.state[k];
        else held.state[k] = v;
      }
      held.version = version;
      held.deltas++;
    } else if (kind !== 'status') throw new Error(`unknown tickfan-kind ${kind}`);
  }
  return held;
}

async function snapshotOf(server: TickfanServer, topic: string): Promise<{ epoch: number; version: number; fields: Json }> {
  const r = await http(server.port, 'GET', `/snapshot/${topic}`);
  expect(r.status).toBe(200);
  return r.body as { epoch: number; version: number; fields: Json };
}

/** Publishes `n` versions of `topic` with every kind of value, deletes included. */
function churn(server: TickfanServer, topic: string, n: number, from = 0): void {
  for (let i = from; i < from + n; i++) {
    server.publish(topic, {
      bid: 100 + i / 4,
      seq: i,
      big: 2n ** 60n + BigInt(i),
      name: `v${i}`,
      open: i % 2 === 0,
      raw: new Uint8Array([i & 255, 1, 2]),
      ...(i % 3 === 0 ? { odd: null } : { odd: i }),
    });
  }
}

// ------------------------------------------------------------------ a raw frame client

/** A WebSocket speaking STOMP by hand; server frames are read by stompjs' own parser. */
class RawStomp {
  readonly frames: IFrame[] = [];
  heartbeats = 0;
  closeCode: number | null = null;
  private readonly parser = new Parser(
    (raw) => this.frames.push(FrameImpl.fromRawFrame(raw, true)),
    () => this.heartbeats++,
  );

  private constructor(readonly ws: WebSocket) {
    ws.binaryType = 'arraybuffer';
    ws.on('message', (data: ArrayBuffer) => this.parser.parseChunk(data));
    ws.on('close', (code) => (this.closeCode = code));
  }

  static open(server: TickfanServer, protocols: string[] = ['v12.stomp'], query = ''): Promise<RawStomp> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(stompUrl(server, query), protocols);
      const r = new RawStomp(ws);
      cleanup.push(() => ws.terminate());
      ws.once('open', () => resolve(r));
      ws.once('error', reject);
    });
  }

  /** Opens and CONNECTs (1.2, no heart-beats unless asked). */
  static async connected(server: TickfanServer, heartBeat = '0,0', extra = ''): Promise<RawStomp> {
    const r = await RawStomp.open(server);
    r.send(`CONNECT\naccept-version:1.2\nhost:x\nheart-beat:${heartBeat}\n${extra}\n\0`);
    await r.next('CONNECTED');
    return r;
  }

  send(data: string | Uint8Array): void {
    this.ws.send(data);
  }

  async next(command: string, timeoutMs = 5_000): Promise<IFrame> {
    let found: IFrame | undefined;
    await waitFor(() => !!(found = this.frames.find((f) => f.command === command)), timeoutMs, `a ${command} frame`);
    return found!;
  }

  closed(timeoutMs = 5_000): Promise<void> {
    return waitFor(() => this.closeCode !== null, timeoutMs, 'the server to close the socket');
  }
}

// ------------------------------------------------------------------ tests

describe('STOMP: subscriptions', () => {
  it('a topic and a pattern: a versioned snapshot then deltas whose JSON, applied in order, equals GET /snapshot', async () => {
    const server = await h.server();
    churn(server, 'stp.A', 5);
    churn(server, 'stp.B', 3);
    const exact = await peer(server);
    const pattern = await peer(server);
    const a = collect(exact, '/topic/stp.A');
    const all = collect(pattern, '/topic/stp.*');
    await waitFor(() => a.messages.length >= 1 && all.messages.length >= 2, 5_000, 'the snapshots');
    expect(a.messages[0]!.headers['tickfan-kind']).toBe('snapshot');
    expect(a.messages[0]!.headers.subscription).toBe(a.id);
    churn(server, 'stp.A', 40, 5);
    churn(server, 'stp.B', 25, 3);
    const done = () => {
      const t = server.store.get('stp.A')!;
      const u = server.store.get('stp.B')!;
      return applyAll(a.messages, 'stp.A').version === t.version && applyAll(all.messages, 'stp.A').version === t.version && applyAll(all.messages, 'stp.B').version === u.version;
    };
    await waitFor(done, 5_000, 'every version');
    for (const [msgs, topic] of [[a.messages, 'stp.A'], [all.messages, 'stp.A'], [all.messages, 'stp.B']] as const) {
      const held = applyAll(msgs, topic);
      const snap = await snapshotOf(server, topic);
      expect({ epoch: held.epoch, version: held.version, state: held.state }).toEqual({ epoch: snap.epoch, version: snap.version, state: snap.fields });
      // One snapshot, then one delta per version: nothing skipped, nothing repeated.
      expect(held.snapshots).toBe(1);
      expect(held.deltas).toBe(topic === 'stp.A' ? 40 : 25);
    }
    // A pattern's MESSAGEs name the topic itself, and carry distinct message ids.
    expect(new Set(all.messages.map((m) => m.headers.destination))).toEqual(new Set(['/topic/stp.A', '/topic/stp.B']));
    expect(new Set(all.messages.map((m) => m.headers['message-id'])).size).toBe(all.messages.length);
  });

  it('two subscriptions of one connection covering one topic each get a snapshot and the whole chain; a field subset gets only its fields', async () => {
    const server = await h.server();
    churn(server, 'two.A', 3);
    const p = await peer(server);
    const exact = collect(p, '/topic/two.A');
    await waitFor(() => exact.messages.length === 1, 5_000, 'the first snapshot');
    churn(server, 'two.A', 5, 3);
    const wild = collect(p, '/topic/two.>');
    const some = collect(p, '/topic/two.A', { 'tickfan-fields': 'bid,odd' });
    churn(server, 'two.A', 20, 8);
    const v = () => server.store.get('two.A')!.version;
    await waitFor(() => [exact, wild, some].every((s) => applyAll(s.messages, 'two.A').version === v()), 5_000, 'every subscription at the last version');
    const snap = await snapshotOf(server, 'two.A');
    expect(applyAll(exact.messages, 'two.A').state).toEqual(snap.fields);
    expect(applyAll(wild.messages, 'two.A').state).toEqual(snap.fields);
    expect(applyAll(some.messages, 'two.A').state).toEqual({ bid: snap.fields.bid, ...(snap.fields.odd !== undefined ? { odd: snap.fields.odd } : {}) });
    for (const s of [wild, some]) expect(s.messages[0]!.headers['tickfan-kind']).toBe('snapshot');
    for (const m of some.messages) for (const k of Object.keys(JSON.parse(m.body) as Json)) expect(['bid', 'odd']).toContain(k);
  });

  it('UNSUBSCRIBE stops MESSAGEs (with a receipt); a throttled subscription gets merged deltas that still chain', async () => {
    const server = await h.server();
    server.publish('uns.A', { x: 0 });
    const p = await peer(server);
    const sub = p.client.subscribe('/topic/uns.A', () => {});
    const slow = collect(p, '/topic/uns.A', { 'tickfan-max-rate': '5' });
    await waitFor(() => slow.messages.length >= 1, 5_000, 'the throttled snapshot');
    const gone = receipt(p, 'u-1');
    sub.unsubscribe({ receipt: 'u-1' });
    expect((await gone).headers['receipt-id']).toBe('u-1');
    for (let i = 1; i <= 30; i++) {
      server.publish('uns.A', { x: i });
      await sleep(5);
    }
    await waitFor(() => applyAll(slow.messages, 'uns.A').version === server.store.get('uns.A')!.version, 5_000, 'the throttled subscription at the last version');
    const held = applyAll(slow.messages, 'uns.A');
    expect(held.state).toEqual({ x: 30 });
    expect(held.deltas).toBeLessThan(30);
    expect(slow.messages.some((m) => Number(m.headers['tickfan-updates']) > 1)).toBe(true);
  });

  it('tickfan-resume: a reconnecting subscriber gets one merged catch-up delta from what it held, like the native client', async () => {
    const server = await h.server();
    // Thirty fields, then small updates: a merged delta is smaller than the snapshot.
    server.publish('res.A', Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`f${i}`, `value ${i}`])));
    const first = await peer(server);
    const s1 = collect(first, '/topic/res.A');
    await waitFor(() => s1.messages.length === 1, 5_000, 'the snapshot');
    const held = applyAll(s1.messages, 'res.A');
    await first.client.deactivate();
    for (let i = 0; i < 7; i++) server.publish('res.A', { f1: i, f2: i % 2 ? null : 'back' });
    const before = server.stats.catchUpDeltas;
    const second = await peer(server);
    const s2 = collect(second, '/topic/res.*', { 'tickfan-resume': `res.A@${held.epoch}:${held.version}` });
    await waitFor(() => s2.messages.length === 1, 5_000, 'the catch-up');
    const m = s2.messages[0]!;
    expect(m.headers['tickfan-kind']).toBe('delta');
    expect(Number(m.headers['tickfan-base'])).toBe(held.version);
    expect(Number(m.headers['tickfan-updates'])).toBe(7);
    expect(server.stats.catchUpDeltas).toBe(before + 1);
    // Applied on what the first connection held, it gives the server's state.
    const resumed = applyAll([...s1.messages, m], 'res.A');
    const snap = await snapshotOf(server, 'res.A');
    expect({ version: resumed.version, state: resumed.state }).toEqual({ version: snap.version, state: snap.fields });
    // A resume point from another epoch (or none) gets a snapshot instead.
    const third = await peer(server);
    const s3 = collect(third, '/topic/res.A', { 'tickfan-resume': `res.A@${held.epoch + 1}:3` });
    await waitFor(() => s3.messages.length === 1, 5_000, 'the snapshot');
    expect(s3.messages[0]!.headers['tickfan-kind']).toBe('snapshot');
  });

  it('a stale topic is told as a MESSAGE with tickfan-kind:status and an empty body', async () => {
    const server = await h.server();
    server.publish('st.A', { x: 1 });
    const p = await peer(server);
    const s = collect(p, '/topic/st.A');
    await waitFor(() => s.messages.length === 1, 5_000, 'the snapshot');
    server.setStale('st.A', true);
    await waitFor(() => s.messages.length === 2, 5_000, 'the status');
    const m = s.messages[1]!;
    expect(m.headers['tickfan-kind']).toBe('status');
    expect(m.headers['tickfan-status']).toBe('stale');
    expect(m.body).toBe('{}');
    expect(applyAll(s.messages, 'st.A').state).toEqual({ x: 1 });
  });
});

describe('STOMP: SEND', () => {
  it('SEND to a topic publishes its JSON fields; the RECEIPT comes once the publish is sequenced', async () => {
    const server = await h.server();
    const reader = await h.connected(server);
    const sub = reader.subscribe('snd.A');
    const seen = record(sub);
    const p = await peer(server);
    const r = receipt(p, 'r-1');
    p.client.publish({ destination: '/topic/snd.A', body: JSON.stringify({ bid: 101.25, name: 'x', big: { $bigint: '1234567890123456789' } }), headers: { receipt: 'r-1', 'content-type': 'application/json' } });
    expect((await r).headers['receipt-id']).toBe('r-1');
    expect(server.store.get('snd.A')!.version).toBe(1);
    const snap = await snapshotOf(server, 'snd.A');
    expect(snap.fields).toEqual({ bid: 101.25, name: 'x', big: { $bigint: '1234567890123456789' } });
    await waitFor(() => seen.length === 1, 5_000, 'the SDK subscriber');
    expect(seen[0]!.state).toEqual({ bid: 101.25, name: 'x', big: 1234567890123456789n });
    // A delete, without content-type.
    const r2 = receipt(p, 'r-2');
    p.client.publish({ destination: '/topic/snd.A', body: '{"name": null}', headers: { receipt: 'r-2' } });
    await r2;
    expect((await snapshotOf(server, 'snd.A')).fields).toEqual({ bid: 101.25, big: { $bigint: '1234567890123456789' } });
    expect(p.errors).toEqual([]);
  });

  it('a refused SEND gets an ERROR with its receipt-id and the code, then the close; other clients carry on', async () => {
    const server = await h.server();
    const other = await peer(server);
    const s = collect(other, '/topic/bad.A');
    const p = await peer(server);
    p.client.publish({ destination: '/topic/bad.A', body: '{"x": [1, 2]}', headers: { receipt: 'r-9' } });
    await waitFor(() => p.errors.length === 1 && p.closes.length === 1, 5_000, 'the ERROR and the close');
    const e = p.errors[0]!;
    expect(e.headers['receipt-id']).toBe('r-9');
    expect(e.headers['tickfan-code']).toBe(String(ErrorCode.BAD_FIELD));
    expect(e.headers.message).toMatch(/field x/);
    expect(e.body).toMatch(/TICKFAN_ERR_BAD_FIELD/);
    expect(p.closes[0]).toBe(1008);
    // Not JSON at all, and not a JSON content-type: refused as well.
    for (const [body, headers, pattern] of [
      ['bid=1', {}, /not JSON/],
      ['{"x":1}', { 'content-type': 'text/plain' }, /content-type/],
    ] as const) {
      const q = await peer(server);
      q.client.publish({ destination: '/topic/bad.A', body, headers: { ...headers, receipt: 'r' } });
      await waitFor(() => q.errors.length === 1, 5_000, 'the ERROR');
      expect(q.errors[0]!.headers.message).toMatch(pattern);
      expect(q.errors[0]!.headers['receipt-id']).toBe('r');
    }
    expect(server.store.get('bad.A')).toBeUndefined();
    server.publish('bad.A', { x: 1 });
    await waitFor(() => s.messages.length === 1, 5_000, 'the other client');
    expect(other.errors).toEqual([]);
  });
});

describe('STOMP: request-reply', () => {
  it('SEND to /service/<name> with reply-to and correlation-id: the answer of an SDK responder arrives as a MESSAGE', async () => {
    const server = await h.server();
    const responder = await h.connected(server);
    const metas: { service: string; requester: string }[] = [];
    const svc = responder.serve('orders.submit', async (payload, meta) => {
      metas.push({ service: meta.service, requester: meta.requester });
      return { status: 'accepted', qty: (payload as Json).qty as number };
    });
    await svc.ready;
    const p = await peer(server);
    const replies = collect(p, '/temp-queue/replies');
    const r = receipt(p, 'q-1');
    p.client.publish({
      destination: '/service/orders.submit',
      body: JSON.stringify({ side: 'buy', qty: 100 }),
      headers: { 'reply-to': '/temp-queue/replies', 'correlation-id': 'c-1', receipt: 'q-1' },
    });
    await r;
    // The RECEIPT comes after the reply.
    expect(replies.messages).toHaveLength(1);
    const m = replies.messages[0]!;
    expect(m.headers['correlation-id']).toBe('c-1');
    expect(m.headers['tickfan-code']).toBe('0');
    expect(m.headers.subscription).toBe(replies.id);
    expect(JSON.parse(m.body)).toEqual({ status: 'accepted', qty: 100 });
    expect(metas).toEqual([{ service: 'orders.submit', requester: 'anonymous' }]);

    // Ten at once, matched by correlation id.
    for (let i = 0; i < 10; i++) {
      p.client.publish({ destination: '/service/orders.submit', body: JSON.stringify({ qty: i }), headers: { 'reply-to': '/temp-queue/replies', 'correlation-id': `k${i}` } });
    }
    await waitFor(() => replies.messages.length === 11, 5_000, 'ten replies');
    for (const x of replies.messages.slice(1)) expect(JSON.parse(x.body)).toEqual({ status: 'accepted', qty: Number(x.headers['correlation-id']!.slice(1)) });

    // Without a subscription to the reply destination, the reply still comes (stompjs: onUnhandledMessage).
    p.client.publish({ destination: '/service/orders.submit', body: '{"qty": 7}', headers: { 'reply-to': '/temp-queue/elsewhere', 'correlation-id': 'u' } });
    await waitFor(() => p.unhandled.length === 1, 5_000, 'the unsubscribed reply');
    expect(p.unhandled[0]!.headers.subscription).toBe('/temp-queue/elsewhere');
    expect(p.unhandled[0]!.headers.destination).toBe('/temp-queue/elsewhere');
    expect(JSON.parse(p.unhandled[0]!.body)).toEqual({ status: 'accepted', qty: 7 });
  });

  it('typed errors arrive as replies: no responder, responder failed, timeout', async () => {
    const server = await h.server();
    const responder = await h.connected(server);
    const failing = responder.serve('svc.fail', async () => {
      throw new Error('out of stock');
    });
    const slow = responder.serve('svc.slow', () => new Promise(() => {}));
    await Promise.all([failing.ready, slow.ready]);
    const p = await peer(server);
    const replies = collect(p, '/queue/answers');
    const ask = (service: string, id: string, headers: StompHeaders = {}) =>
      p.client.publish({ destination: `/service/${service}`, body: '{}', headers: { 'reply-to': '/queue/answers', 'correlation-id': id, ...headers } });
    ask('svc.none', 'a');
    ask('svc.fail', 'b');
    ask('svc.slow', 'c', { 'tickfan-timeout-ms': '100' });
    await waitFor(() => replies.messages.length === 3, 5_000, 'three answers');
    const by = new Map(replies.messages.map((m) => [m.headers['correlation-id'], m]));
    const expectError = (id: string, code: number, text: RegExp) => {
      const m = by.get(id)!;
      expect(m.headers['tickfan-code']).toBe(String(code));
      const body = JSON.parse(m.body) as { error: { code: number; name: string; message: string } };
      expect(body.error.code).toBe(code);
      expect(body.error.message).toMatch(text);
    };
    expectError('a', ErrorCode.NO_RESPONDER, /no responder/);
    expectError('b', ErrorCode.RESPONDER_FAILED, /out of stock/);
    expectError('c', ErrorCode.REQUEST_TIMEOUT, /100 ms/);
    // Typed errors are answers, not protocol errors: the connection stays.
    expect(p.errors).toEqual([]);
    expect(p.client.connected).toBe(true);
  });
});

describe('STOMP: errors and permissions', () => {
  it('a bad destination, an unknown command, a frame before CONNECT: an ERROR a person can act on, then the close', async () => {
    const server = await h.server();
    const p = await peer(server);
    p.client.subscribe('/exchange/amq.topic/x', () => {}, { receipt: 's-1' });
    await waitFor(() => p.errors.length === 1 && p.closes.length === 1, 5_000, 'the ERROR');
    expect(p.errors[0]!.headers.message).toMatch(/unknown destination .*\/topic\/<topic>/);
    expect(p.errors[0]!.headers['receipt-id']).toBe('s-1');
    expect(p.errors[0]!.headers['tickfan-code']).toBe(String(ErrorCode.BAD_TOPIC));

    const bad = await peer(server);
    bad.client.subscribe('/topic/a..b', () => {});
    await waitFor(() => bad.errors.length === 1, 5_000, 'the ERROR');
    expect(bad.errors[0]!.headers['tickfan-code']).toBe(String(ErrorCode.BAD_TOPIC));

    const raw = await RawStomp.connected(server);
    raw.send('FROB\nx:y\n\n\0');
    const e = await raw.next('ERROR');
    expect(e.headers.message).toMatch(/FROB is not a STOMP client command/);
    expect(e.headers['tickfan-code']).toBe(String(ErrorCode.UNKNOWN_MESSAGE));
    await raw.closed();
    expect(raw.closeCode).toBe(1002);

    const early = await RawStomp.open(server);
    early.send('SUBSCRIBE\nid:1\ndestination:/topic/x\n\n\0');
    expect((await early.next('ERROR')).headers.message).toMatch(/first frame must be CONNECT/);
    await early.closed();
  });

  it('with authentication on: tokens in passcode, Authorization or ?token=; no token, a bad token, or a topic outside the grants are refused', async () => {
    const server = await h.server({ auth: { secret: SECRET } });
    const jwt = await token({ subscribe: ['px.*'], publish: ['px.MINE'], request: ['svc.*'] }, { sub: 'desk42' });
    server.publish('px.A', { bid: 1 });
    server.publish('secret.A', { bid: 1 });

    for (const o of [{ headers: { passcode: jwt } }, { headers: { Authorization: `Bearer ${jwt}` } }, { query: `?token=${jwt}` }] as PeerOptions[]) {
      const p = await peer(server, o);
      const s = collect(p, '/topic/px.A');
      await waitFor(() => s.messages.length === 1, 5_000, 'the snapshot');
    }

    const none = await peer(server, { expectRefusal: true });
    expect(none.errors[0]!.headers.message).toMatch(/needs a token/);
    expect(none.errors[0]!.headers['tickfan-code']).toBe(String(ErrorCode.UNAUTHORIZED));
    expect(none.closes[0]).toBe(4001);

    const forged = await peer(server, { headers: { passcode: jwt.slice(0, -4) + 'AAAA' }, expectRefusal: true });
    expect(forged.errors[0]!.headers['tickfan-code']).toBe(String(ErrorCode.UNAUTHORIZED));

    const p = await peer(server, { headers: { passcode: jwt } });
    p.client.subscribe('/topic/secret.A', () => {}, { receipt: 'x' });
    await waitFor(() => p.errors.length === 1, 5_000, 'the ERROR');
    expect(p.errors[0]!.headers['tickfan-code']).toBe(String(ErrorCode.PERMISSION_DENIED));
    expect(p.errors[0]!.headers['receipt-id']).toBe('x');
    expect(p.errors[0]!.body).not.toMatch(/bid/);

    const pub = await peer(server, { headers: { passcode: jwt } });
    pub.client.publish({ destination: '/topic/px.A', body: '{"bid": 2}', headers: { receipt: 'p' } });
    await waitFor(() => pub.errors.length === 1, 5_000, 'the ERROR');
    expect(pub.errors[0]!.headers['tickfan-code']).toBe(String(ErrorCode.PERMISSION_DENIED));
    expect(server.store.get('px.A')!.version).toBe(1);

    // A request outside the request grants is a typed answer.
    const req = await peer(server, { headers: { passcode: jwt } });
    const answers = collect(req, '/temp-queue/a');
    req.client.publish({ destination: '/service/orders.submit', body: '{}', headers: { 'reply-to': '/temp-queue/a' } });
    await waitFor(() => answers.messages.length === 1, 5_000, 'the answer');
    expect(answers.messages[0]!.headers['tickfan-code']).toBe(String(ErrorCode.PERMISSION_DENIED));
  });

  it('a socket that sends no CONNECT within authTimeoutMs is closed; a token that expires ends the session (4010), as natively', async () => {
    const server = await h.server({ authTimeoutMs: 200, auth: { secret: SECRET } });
    const idle = await RawStomp.open(server);
    const e = await idle.next('ERROR', 3_000);
    expect(e.headers.message).toMatch(/no CONNECT frame .* within 200 ms/);
    await idle.closed();
    expect(idle.closeCode).toBe(1008);

    // exp is in whole seconds: +3 s expires 2–3 s from now, time enough to connect on a loaded machine (+1 s could expire before CONNECT).
    const jwt = await token({ subscribe: ['>'] }, { expSec: 3 });
    const p = await peer(server, { headers: { passcode: jwt } });
    await waitFor(() => p.errors.length === 1 && p.closes.length === 1, 5_000, 'the expiry');
    expect(p.errors[0]!.headers.message).toMatch(/token has expired/);
    expect(p.closes[0]).toBe(4010);
  });

  it('subprotocols: v12.stomp preferred, v10.stomp and v11.stomp accepted, an unknown one refused at the upgrade', async () => {
    const server = await h.server();
    expect((await peer(server, { protocols: ['v10.stomp', 'v11.stomp', 'v12.stomp'] })).protocol).toBe('v12.stomp');
    expect((await peer(server, { protocols: ['v11.stomp'] })).protocol).toBe('v11.stomp');
    const raw = await RawStomp.open(server, ['v10.stomp']);
    expect(raw.ws.protocol).toBe('v10.stomp');
    raw.send('CONNECT\n\n\0');
    expect((await raw.next('CONNECTED')).headers.version).toBe('1.0');
    await expect(RawStomp.open(server, ['mqtt'])).rejects.toThrow(/400/);
  });

  it('limits: maxConnections through admission, as for native connections', async () => {
    const server = await h.server({ maxConnections: 2 });
    await peer(server);
    await h.connected(server);
    await expect(RawStomp.open(server)).rejects.toThrow(/503/);
  });
});

describe('STOMP: heart-beats and DISCONNECT', () => {
  it('the server heart-beats a client that asked, and closes one silent past its promise plus grace', async () => {
    const server = await h.server({ heartbeatMs: 100 });
    const listener = await RawStomp.connected(server, '0,100');
    expect((await listener.next('CONNECTED')).headers['heart-beat']).toBe('100,100');
    await waitFor(() => listener.heartbeats >= 3, 2_000, 'three heart-beats');

    const beating = await RawStomp.connected(server, '100,0');
    const timer = setInterval(() => beating.send('\n'), 80);
    cleanup.push(() => clearInterval(timer));
    const silent = await RawStomp.connected(server, '100,0');
    const at = Date.now();
    const e = await silent.next('ERROR', 5_000);
    expect(e.headers.message).toMatch(/heart-beat timeout/);
    await silent.closed();
    // 100 ms promised, plus the grace (at least a second).
    expect(Date.now() - at).toBeGreaterThanOrEqual(1_000);
    expect(beating.closeCode).toBeNull();
    expect(listener.closeCode).toBeNull();
  });

  it('DISCONNECT with a receipt: RECEIPT after what was queued, then a normal close', async () => {
    const server = await h.server();
    server.publish('dis.A', { x: 1 });
    const raw = await RawStomp.connected(server);
    raw.send('SUBSCRIBE\nid:s\ndestination:/topic/dis.A\n\n\0DISCONNECT\nreceipt:bye\n\n\0');
    const r = await raw.next('RECEIPT');
    expect(r.headers['receipt-id']).toBe('bye');
    expect(raw.frames.map((f) => f.command)).toEqual(['CONNECTED', 'MESSAGE', 'RECEIPT']);
    await raw.closed();
    expect(raw.closeCode).toBe(1000);
    await waitFor(() => server.stats.connections === 0, 5_000, 'the connection to be forgotten');
  });
});

describe('STOMP: bad frames', () => {
  it('a bad frame gets an ERROR and a close, while another STOMP client and an SDK client on the same topic keep receiving', async () => {
    const server = await h.server({ maxPayloadBytes: 4096 });
    server.publish('iso.A', { v: 0 });
    const stomp = await peer(server);
    const s = collect(stomp, '/topic/iso.A');
    const sdk = await h.connected(server);
    const sub = sdk.subscribe('iso.A');
    const seen = record(sub);
    await sub.ready;
    let i = 0;
    const feed = setInterval(() => server.publish('iso.A', { v: ++i }), 2);
    cleanup.push(() => clearInterval(feed));

    const badFrames: [string, string | Uint8Array, RegExp][] = [
      ['a header without a colon', 'SEND\ndestination:/topic/iso.A\nnocolon\n\n{}\0', /not a header line/],
      ['a lowercase command', 'send\n\n\0', /not a STOMP command/],
      ['an undefined escape', 'SEND\ndestination:/topic/iso\\t.A\n\n{}\0', /undefined escape/],
      ['a body longer than its content-length', 'SEND\ndestination:/topic/iso.A\ncontent-length:2\n\n{}}\0', /content-length/],
      ['a frame over maxPayloadBytes, in pieces, without its NUL', 'SEND\ndestination:/topic/iso.A\n\n' + 'x'.repeat(3000), /larger than the 4096/],
      ['a WebSocket message over maxPayloadBytes', 'x'.repeat(5000), /larger than the 4096/],
    ];
    for (const [what, bytes, message] of badFrames) {
      const raw = await RawStomp.connected(server);
      raw.send(bytes);
      if (what.includes('in pieces')) raw.send('y'.repeat(2000));
      const e = await raw.next('ERROR');
      expect(e.headers.message, what).toMatch(message);
      await raw.closed();
      expect([1002, 1009], what).toContain(raw.closeCode);
    }
    const last = ++i;
    server.publish('iso.A', { v: last });
    clearInterval(feed);
    await waitFor(() => applyAll(s.messages, 'iso.A').version === server.store.get('iso.A')!.version, 5_000, 'the STOMP client at the last version');
    await waitFor(() => seen.at(-1)?.version === server.store.get('iso.A')!.version, 5_000, 'the SDK client at the last version');
    expect(applyAll(s.messages, 'iso.A').state).toEqual({ v: last });
    expect(stomp.errors).toEqual([]);
    expect(stomp.closes).toEqual([]);
    expect(server.stats.connections).toBe(2);
  });

  it('frames split anywhere across WebSocket messages, with heart-beat EOLs between them and NULs inside a content-length body', async () => {
    const server = await h.server();
    const raw = await RawStomp.open(server);
    const body = '{"a":"x\\u0000y"}';
    const text = `\n\r\nCONNECT\naccept-version:1.1,1.2\n\n\0\nSUBSCRIBE\nid:s:1\ndestination:/topic/spl.A\nreceipt:r\\c1\n\n\0\n\nSEND\ndestination:/topic/spl.A\ncontent-length:${Buffer.byteLength(body)}\nreceipt:p\n\n${body}\0`;
    const bytes = Buffer.from(text);
    for (let i = 0; i < bytes.length; i++) raw.send(bytes.subarray(i, i + 1));
    await waitFor(() => raw.frames.filter((f) => f.command === 'RECEIPT').length === 2, 5_000, 'both receipts');
    expect(raw.frames.filter((f) => f.command === 'RECEIPT').map((f) => f.headers['receipt-id'])).toEqual(['r:1', 'p']);
    const m = await raw.next('MESSAGE');
    expect(m.headers.subscription).toBe('s:1');
    expect(JSON.parse(m.body)).toEqual({ a: 'x\u0000y' });
    expect(raw.closeCode).toBeNull();
  });
});

describe('STOMP: slow lane', () => {
  const BLOB = 'x'.repeat(20_000);

  /** Large in-process publishes, a turn apart, until `done()` (bounded). */
  async function publishUntil(server: TickfanServer, topic: string, done: () => boolean, from: number): Promise<number> {
    let i = from;
    while (!done()) {
      if (i - from > 3_000) throw new Error('still not done after 3000 publishes');
      for (let j = 0; j < 10; j++, i++) server.publish(topic, { n: i, blob: BLOB + i });
      await tick();
    }
    return i;
  }

  it('a STOMP reader that stops reading leaves the stream, and ends exact through one catch-up', async () => {
    const server = await h.server({ slowThresholdBytes: 64 * 1024, slowTimeoutMs: 10_000 });
    server.publish('slow.A', { n: 0, blob: BLOB, ...Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`s${i}`, i])) });
    const raw = await RawStomp.connected(server);
    raw.send('SUBSCRIBE\nid:s\ndestination:/topic/slow.A\n\n\0');
    await raw.next('MESSAGE');
    const tcp = (raw.ws as unknown as { _socket: Socket })._socket;
    const before = { ...server.stats };
    tcp.pause();
    let i = await publishUntil(server, 'slow.A', () => server.stats.slowLaneEntries > before.slowLaneEntries, 1);
    for (let k = 0; k < 30; k++, i++) server.publish('slow.A', { n: i });
    tcp.resume();
    const messages = () => raw.frames.filter((f) => f.command === 'MESSAGE') as IMessage[];
    await waitFor(() => applyAll(messages(), 'slow.A').version === server.store.get('slow.A')!.version, 10_000, 'the reader to catch up');
    expect(server.stats.slowLaneEntries - before.slowLaneEntries).toBe(1);
    expect(server.stats.catchUpDeltas + server.stats.catchUpSnapshots - before.catchUpDeltas - before.catchUpSnapshots).toBe(1);
    const jumps = messages().slice(1).filter((m) => m.headers['tickfan-kind'] === 'snapshot' || Number(m.headers['tickfan-updates']) > 1);
    expect(jumps).toHaveLength(1);
    expect(applyAll(messages(), 'slow.A').state).toEqual((await snapshotOf(server, 'slow.A')).fields);
    expect(raw.closeCode).toBeNull();
  });

  it('one that stays behind past the hard cap is closed as a slow consumer (4008); others carry on', async () => {
    const server = await h.server({ slowThresholdBytes: 64 * 1024, hardCapBytes: 256 * 1024, slowTimeoutMs: 300 });
    server.publish('cap.A', { n: 0 });
    const other = await peer(server);
    const s = collect(other, '/topic/cap.A');
    const raw = await RawStomp.connected(server);
    raw.send('SUBSCRIBE\nid:s\ndestination:/topic/cap.A\n\n\0');
    await raw.next('MESSAGE');
    (raw.ws as unknown as { _socket: Socket })._socket.pause();
    await publishUntil(server, 'cap.A', () => server.stats.slowDisconnects > 0, 1);
    (raw.ws as unknown as { _socket: Socket })._socket.resume();
    await raw.closed(10_000);
    expect(raw.closeCode).toBe(4008);
    await waitFor(() => applyAll(s.messages, 'cap.A').version === server.store.get('cap.A')!.version, 10_000, 'the other reader');
    expect(other.errors).toEqual([]);
  });
});

describe('STOMP: with fan-out workers', () => {
  it('STOMP clients on different workers read, publish and request like on one thread', async () => {
    const server = await h.server({ workers: 2 });
    const responder = await h.connected(server);
    const svc = responder.serve('wk.echo', async (payload) => ({ echoed: (payload as Json).n as number }));
    await svc.ready;
    const peers = await Promise.all([peer(server), peer(server), peer(server), peer(server)]);
    const subs = peers.map((p) => collect(p, '/topic/wk.*'));
    for (let i = 0; i < 20; i++) {
      const r = receipt(peers[i % 4]!, `w${i}`);
      peers[i % 4]!.client.publish({ destination: '/topic/wk.A', body: JSON.stringify({ n: i, [`f${i % 3}`]: i }), headers: { receipt: `w${i}` } });
      await r;
    }
    await waitFor(() => subs.every((s) => applyAll(s.messages, 'wk.A').version === 20), 10_000, 'every subscriber at version 20');
    const snap = await snapshotOf(server, 'wk.A');
    for (const s of subs) expect(applyAll(s.messages, 'wk.A').state).toEqual(snap.fields);
    // A responder on one worker answers requesters on both.
    const answers = peers.map((p) => collect(p, '/temp-queue/r'));
    peers.forEach((p, i) => p.client.publish({ destination: '/service/wk.echo', body: JSON.stringify({ n: i }), headers: { 'reply-to': '/temp-queue/r', 'correlation-id': `c${i}` } }));
    await waitFor(() => answers.every((a) => a.messages.length === 1), 10_000, 'every answer');
    answers.forEach((a, i) => expect(JSON.parse(a.messages[0]!.body)).toEqual({ echoed: i }));
  });
});

describe('STOMP: counted like native connections', () => {
  it('connections, subscriptions and deliveries show in the stats and /healthz', async () => {
    const server = await h.server();
    server.publish('met.A', { x: 1 });
    const p = await peer(server);
    const s = collect(p, '/topic/met.A');
    await waitFor(() => s.messages.length === 1, 5_000, 'the snapshot');
    expect(server.stats.connections).toBe(1);
    expect(server.stats.subscriptions).toBe(1);
    const before = server.stats.deliveries;
    server.publish('met.A', { x: 2 });
    await waitFor(() => s.messages.length === 2, 5_000, 'the delta');
    expect(server.stats.deliveries).toBe(before + 1);
    await p.client.deactivate();
    await waitFor(() => server.stats.connections === 0 && server.stats.subscriptions === 0, 5_000, 'the connection to be forgotten');
  });
});
