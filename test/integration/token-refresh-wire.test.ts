// Token refresh on the wire, without the SDK (issue 20): a Hello carrying a
// token on a connection that holds one is answered by a Welcome (accepted)
// or an Error 21 with id 0 (refused: the old token holds until its exp, then
// 4010); narrowed grants end exactly the subscriptions and offers they no
// longer cover with PERMISSION_DENIED; the same as an SSE command, and over
// STOMP as a SEND to /tickfan/token answered by its RECEIPT.

import { request } from 'node:http';
import { Client, type IFrame } from '@stomp/stompjs';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import type { TickfanServer } from '../../src/index.js';
import { CloseCode, Encoder, ErrorCode, ServerFrameReader, clientFrame, type AnyMessage } from '../../src/protocol/index.js';
import { Harness, RawClient, isType, sleep, waitFor, wsUrl } from './helpers.js';
import { SECRET, token } from './security-helpers.js';

const h = new Harness();
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
  await h.close();
});

const enc = new Encoder();
const WRONG_KEY = 'another-secret-that-is-also-32-characters-long!!';

/** exp (seconds) at the next whole second at least `ms` away. */
const expIn = (ms: number) => Math.ceil((Date.now() + ms) / 1000);

async function raw(server: TickfanServer, jwt: string): Promise<RawClient> {
  const r = await RawClient.open(`${wsUrl(server)}?token=${jwt}`);
  cleanup.push(() => r.close());
  await waitFor(() => r.frames.length > 0, 5_000, 'the Welcome');
  return r;
}

/** Sends a refresh Hello and waits for its answer: the first Welcome or Error 21 (id 0) after it. */
async function refresh(r: RawClient, jwt: string): Promise<AnyMessage[]> {
  const from = r.messages.length;
  r.send(enc.hello(0, 'raw', jwt));
  await waitFor(() => r.messages.slice(from).some((m) => m.type === 'welcome' || (m.type === 'error' && m.code === ErrorCode.UNAUTHORIZED && m.id === 0)), 3_000, 'the refresh answer');
  return r.messages.slice(from);
}

const deltasOf = (r: RawClient, topic: string) => r.messages.filter(isType('delta')).filter((d) => d.topic === topic);

describe('refresh over WebSocket', () => {
  it('a new token is answered by a Welcome; the connection outlives the old exp; no resubscribe, no snapshot, no frame missed', async () => {
    const server = await h.server({ auth: { secret: SECRET } });
    server.publish('rf.A', { bid: 0 });
    const exp = expIn(1_500);
    const r = await raw(server, await token({ subscribe: ['rf.*'] }, { exp }));
    r.send(enc.subscribe(1, ['rf.A'], 0, [], []));
    await r.next(isType('ack'), 0);
    for (let i = 1; i <= 5; i++) server.publish('rf.A', { bid: i });
    const answer = await refresh(r, await token({ subscribe: ['rf.*'] }, { expSec: 600 }));
    expect(answer.filter((m) => m.type === 'welcome' || m.type === 'error').map((m) => m.type)).toEqual(['welcome']);
    expect(answer.find(isType('welcome'))!.protocol).toBe(1);
    // Past the old token's exp: still open, still served.
    while (Date.now() < exp * 1000 + 400) {
      server.publish('rf.A', { bid: Date.now() });
      await sleep(50);
    }
    await r.roundTrip();
    expect(r.closeCode).toBeNull();
    expect(r.messages.filter(isType('snapshot'))).toHaveLength(1);
    const versions = deltasOf(r, 'rf.A').map((d) => d.version);
    expect(versions).toEqual(Array.from({ length: versions.length }, (_, i) => i + 2));
    expect(versions.at(-1)).toBe(server.store.get('rf.A')!.version);
    expect(r.messages.filter(isType('error'))).toEqual([]);
    expect(r.problems).toEqual([]);
  });

  it('on a protocol-2 connection the Welcome says 2, in protocol-2 framing, and the stream goes on in protocol 2', async () => {
    const server = await h.server({ auth: { secret: SECRET } });
    server.publish('rf.P', { bid: 0 });
    const ws = new WebSocket(wsUrl(server));
    ws.binaryType = 'arraybuffer';
    cleanup.push(() => ws.terminate());
    const reader = new ServerFrameReader();
    const got: { protocol: number; messages: AnyMessage[] }[] = [];
    ws.on('message', (data) => {
      const protocol = reader.protocol;
      got.push({ protocol, messages: reader.read(new Uint8Array(data as ArrayBuffer)).messages });
    });
    await new Promise((r) => ws.once('open', r));
    const all = () => got.flatMap((f) => f.messages);
    ws.send(clientFrame([enc.hello(2, 'raw', await token({ subscribe: ['rf.*'] }, { expSec: 60 })), enc.subscribe(1, ['rf.P'], 0, [], [])]));
    await waitFor(() => all().some(isType('ack')), 3_000, 'the ack');
    const from = got.length;
    ws.send(clientFrame([enc.hello(0, 'raw', await token({ subscribe: ['rf.*'] }, { expSec: 600 }))]));
    await waitFor(() => got.slice(from).some((f) => f.messages.some(isType('welcome'))), 3_000, 'the Welcome');
    const answer = got.slice(from).find((f) => f.messages.some(isType('welcome')))!;
    expect(answer.protocol).toBe(2);
    expect(answer.messages.find(isType('welcome'))!.protocol).toBe(2);
    server.publish('rf.P', { bid: 1 });
    await waitFor(() => all().some((m) => m.type === 'delta2'), 3_000, 'a Delta2');
    expect(all().filter(isType('error'))).toEqual([]);
  });

  it('narrowed grants end exactly the subscriptions and offers outside them, each with PERMISSION_DENIED and its id; the rest stays as it was', async () => {
    const server = await h.server({ auth: { secret: SECRET } });
    for (const t of ['nw.A', 'nw.B', 'fx.EUR', 'bk.X.L2']) server.publish(t, { v: 0 });
    const wide = { subscribe: ['nw.*', 'fx.>', 'bk.>'], serve: ['svc.>'] };
    const r = await raw(server, await token(wide, { expSec: 600 }));
    r.send(enc.subscribe(1, ['nw.*'], 0, [], []), enc.subscribe(2, ['fx.EUR'], 0, [], []), enc.subscribe(3, ['bk.>'], 0, [], []), enc.subscribe(4, ['nw.B'], 0, [], []));
    r.send(enc.message({ type: 'serve', id: 10, service: 'svc.a' }), enc.message({ type: 'serve', id: 11, service: 'svc.b.*' }));
    await waitFor(() => r.messages.filter(isType('ack')).length === 6, 3_000, 'six acks');
    const snapshots = r.messages.filter(isType('snapshot')).length;
    // Keeps nw.* and svc.a only.
    const answer = await refresh(r, await token({ subscribe: ['nw.*'], serve: ['svc.a'] }, { expSec: 600 }));
    const errors = answer.filter(isType('error'));
    expect(errors.map((e) => [e.id, e.code, e.topic]).sort()).toEqual([
      [11, ErrorCode.PERMISSION_DENIED, 'svc.b.*'],
      [2, ErrorCode.PERMISSION_DENIED, 'fx.EUR'],
      [3, ErrorCode.PERMISSION_DENIED, 'bk.>'],
    ]);
    expect(answer.at(-1)!.type).toBe('welcome');
    expect(server.stats.subscriptions).toBe(2);
    const from = r.messages.length;
    for (const t of ['nw.A', 'nw.B', 'fx.EUR', 'bk.X.L2']) server.publish(t, { v: 1 });
    await r.roundTrip();
    const after = r.messages.slice(from).filter(isType('delta'));
    expect(after.map((d) => d.topic).sort()).toEqual(['nw.A', 'nw.B']);
    expect(r.messages.filter(isType('snapshot'))).toHaveLength(snapshots);
    // The withdrawn offer gets no requests; the kept one does.
    const requester = await raw(server, await token({ request: ['svc.>'] }, { expSec: 600 }));
    requester.send(enc.message({ type: 'request', id: 1, service: 'svc.b.x', payload: { fields: new Map(), data: null }, timeoutMs: 500 }));
    requester.send(enc.message({ type: 'request', id: 2, service: 'svc.a', payload: { fields: new Map(), data: null }, timeoutMs: 500 }));
    await waitFor(() => requester.messages.filter(isType('response')).length === 1, 3_000, 'the NO_RESPONDER answer');
    expect(requester.messages.find(isType('response'))).toMatchObject({ id: 1, code: ErrorCode.NO_RESPONDER });
    await waitFor(() => r.messages.some(isType('serviceRequest')), 3_000, 'the request to svc.a');
    expect(r.messages.filter(isType('serviceRequest')).map((m) => m.service)).toEqual(['svc.a']);
  });

  it('a refused refresh (bad signature, another subject) is answered by Error 21 with id 0; the old grants stay, and the old exp ends it with 4010', async () => {
    const server = await h.server({ auth: { secret: SECRET } });
    server.publish('rx.A', { bid: 0 });
    const exp = expIn(2_000);
    const r = await raw(server, await token({ subscribe: ['rx.*'] }, { exp }));
    r.send(enc.subscribe(1, ['rx.A'], 0, [], []));
    await r.next(isType('ack'), 0);
    for (const [label, bad] of [
      ['bad signature', await token({ subscribe: ['>'] }, { expSec: 600, secret: WRONG_KEY })],
      ['another subject', await token({ subscribe: ['rx.*'] }, { expSec: 600, sub: 'someone-else' })],
      ['expired', await token({ subscribe: ['rx.*'] }, { expSec: -30 })],
    ] as const) {
      const answer = await refresh(r, bad);
      const errors = answer.filter(isType('error'));
      expect(errors.map((e) => [e.code, e.id]), label).toEqual([[ErrorCode.UNAUTHORIZED, 0]]);
      expect(answer.some(isType('welcome')), label).toBe(false);
    }
    expect(r.messages.filter(isType('error')).find((e) => /someone-else/.test(e.message))).toBeDefined();
    // Still served under the old grants (the bad-signature token's wider ones did not apply).
    const id = 2;
    r.send(enc.subscribe(id, ['other.X'], 0, [], []));
    const denied = await r.next((m): m is AnyMessage => m.type === 'error' && m.id === id, 0);
    expect(denied.message).toMatchObject({ code: ErrorCode.PERMISSION_DENIED });
    server.publish('rx.A', { bid: 1 });
    await waitFor(() => deltasOf(r, 'rx.A').length === 1, 3_000, 'the delta');
    await waitFor(() => r.closeCode !== null, 4_000, 'the close at exp');
    const closedAt = Date.now();
    expect(r.closeCode).toBe(CloseCode.TOKEN_EXPIRED);
    expect(closedAt).toBeGreaterThanOrEqual(exp * 1000 - 20);
    expect(closedAt).toBeLessThan(exp * 1000 + 500);
  });

  it('with fan-out workers: the same answers, and a withdrawn offer leaves the main thread\'s router', async () => {
    const server = await h.server({ auth: { secret: SECRET }, workers: 2 });
    server.publish('wk.A', { v: 0 });
    server.publish('wk.B', { v: 0 });
    await sleep(200); // the workers' replicas take the topics
    const r = await raw(server, await token({ subscribe: ['wk.*'], serve: ['wsvc.>'] }, { expSec: 600 }));
    r.send(enc.subscribe(1, ['wk.A'], 0, [], []), enc.subscribe(2, ['wk.B'], 0, [], []), enc.message({ type: 'serve', id: 3, service: 'wsvc.x' }));
    await waitFor(() => r.messages.filter(isType('ack')).length === 3, 5_000, 'three acks');
    const answer = await refresh(r, await token({ subscribe: ['wk.A'] }, { expSec: 600 }));
    expect(answer.filter(isType('error')).map((e) => [e.id, e.code]).sort()).toEqual([
      [2, ErrorCode.PERMISSION_DENIED],
      [3, ErrorCode.PERMISSION_DENIED],
    ]);
    expect(answer.at(-1)!.type).toBe('welcome');
    const requester = await raw(server, await token({ request: ['wsvc.>'] }, { expSec: 600 }));
    requester.send(enc.message({ type: 'request', id: 1, service: 'wsvc.x', payload: { fields: new Map(), data: null }, timeoutMs: 500 }));
    await waitFor(() => requester.messages.some(isType('response')), 3_000, 'the answer');
    expect(requester.messages.find(isType('response'))).toMatchObject({ code: ErrorCode.NO_RESPONDER });
    const from = r.messages.length;
    server.publish('wk.A', { v: 1 });
    server.publish('wk.B', { v: 1 });
    await waitFor(() => r.messages.slice(from).some(isType('delta')), 3_000, 'the delta');
    await r.roundTrip();
    expect(r.messages.slice(from).filter(isType('delta')).map((d) => d.topic)).toEqual(['wk.A']);
  });

  it('what follows a refresh Hello waits for its verdict: a Subscribe in the same frame is judged by the new grants', async () => {
    const server = await h.server({ auth: { secret: SECRET } });
    server.publish('wide.A', { v: 1 });
    const r = await raw(server, await token({ subscribe: ['narrow.*'] }, { expSec: 600 }));
    r.send(enc.hello(0, 'raw', await token({ subscribe: ['narrow.*', 'wide.*'] }, { expSec: 600 })), enc.subscribe(1, ['wide.A'], 0, [], []));
    await r.next(isType('ack'), 0);
    const types = r.messages.map((m) => m.type);
    expect(types.indexOf('welcome', 1)).toBeLessThan(types.indexOf('ack'));
    expect(r.messages.filter(isType('error'))).toEqual([]);
  });
});

// ------------------------------------------------------------------ SSE

/** GET /sse as plain HTTP: its JSON events, and POST /sse/<session> for commands. */
async function sseStream(server: TickfanServer, query: string) {
  const events: Record<string, unknown>[] = [];
  let ended = false;
  const req = request({ host: '127.0.0.1', port: server.port, path: `/sse?${query}`, agent: false, headers: { accept: 'text/event-stream' } });
  const status = await new Promise<number>((resolve, reject) => {
    req.on('response', (res) => {
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        for (let at = buf.indexOf('\n\n'); at >= 0; at = buf.indexOf('\n\n')) {
          const data = buf.slice(0, at).split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('');
          buf = buf.slice(at + 2);
          if (data) events.push(...(JSON.parse(data) as Record<string, unknown>[]));
        }
      });
      res.on('close', () => (ended = true));
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
  cleanup.push(() => req.destroy());
  await waitFor(() => events.some((e) => e.type === 'session'), 3_000, 'the session event');
  const session = String(events.find((e) => e.type === 'session')!.session);
  const post = async (body: unknown) => {
    const res = await fetch(`http://127.0.0.1:${server.port}/sse/${session}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return res.status;
  };
  return { status, events, post, ended: () => ended };
}

describe('refresh over SSE: {"type":"hello","token"} on the session', () => {
  it('accepted: a welcome event; narrowed: the error for the subscription; refused: an error, and the stream ends at the old exp', async () => {
    const server = await h.server({ auth: { secret: SECRET } });
    for (const t of ['ss.A', 'tt.B']) server.publish(t, { v: 0 });
    const exp = expIn(2_000);
    const s = await sseStream(server, `token=${await token({ subscribe: ['ss.*', 'tt.*'] }, { exp })}`);
    expect(s.status).toBe(200);
    expect(await s.post([{ type: 'subscribe', id: 1, topics: ['ss.A'] }, { type: 'subscribe', id: 2, topics: ['tt.B'] }])).toBe(202);
    await waitFor(() => s.events.filter((e) => e.type === 'ack').length === 2, 3_000, 'two acks');
    // Narrowed to ss.*, and valid for long.
    let from = s.events.length;
    expect(await s.post({ type: 'hello', token: await token({ subscribe: ['ss.*'] }, { expSec: 600 }) })).toBe(202);
    await waitFor(() => s.events.slice(from).some((e) => e.type === 'welcome'), 3_000, 'the welcome');
    expect(s.events.slice(from).filter((e) => e.type === 'error')).toMatchObject([{ code: ErrorCode.PERMISSION_DENIED, id: 2, topic: 'tt.B' }]);
    // Refused: an error event, and the stream carries on.
    from = s.events.length;
    expect(await s.post({ type: 'hello', token: await token({ subscribe: ['>'] }, { expSec: 600, secret: WRONG_KEY }) })).toBe(202);
    await waitFor(() => s.events.slice(from).some((e) => e.type === 'error'), 3_000, 'the refusal');
    expect(s.events.slice(from).filter((e) => e.type === 'error')).toMatchObject([{ code: ErrorCode.UNAUTHORIZED, id: 0 }]);
    server.publish('ss.A', { v: 1 });
    await waitFor(() => s.events.some((e) => e.type === 'delta' && e.topic === 'ss.A'), 3_000, 'the delta');
    // The accepted refresh moved exp to +600 s: past the first token's exp the stream is still open.
    await sleep(Math.max(0, exp * 1000 + 300 - Date.now()));
    expect(s.ended()).toBe(false);
    expect(s.events.some((e) => e.type === 'close')).toBe(false);
  });

  it('a refused refresh leaves the old exp in force: the stream ends then with 4010', async () => {
    const server = await h.server({ auth: { secret: SECRET } });
    const exp = expIn(1_500);
    const s = await sseStream(server, `token=${await token({ subscribe: ['ss.*'] }, { exp })}`);
    expect(await s.post({ type: 'hello', token: await token({ subscribe: ['ss.*'] }, { expSec: 600, secret: WRONG_KEY }) })).toBe(202);
    await waitFor(() => s.events.some((e) => e.type === 'close'), 4_000, 'the close event');
    expect(Date.now()).toBeGreaterThanOrEqual(exp * 1000 - 20);
    expect(s.events.find((e) => e.type === 'close')).toMatchObject({ code: CloseCode.TOKEN_EXPIRED });
    expect(await s.post({ type: 'hello', token: '' }).catch(() => 0)).not.toBe(202);
  });
});

// ------------------------------------------------------------------ STOMP

async function stomp(server: TickfanServer, passcode: string) {
  const errors: IFrame[] = [];
  const closes: number[] = [];
  const client = new Client({
    webSocketFactory: () => new WebSocket(`ws://127.0.0.1:${server.port}/stomp`, ['v12.stomp']),
    connectHeaders: { passcode },
    reconnectDelay: 0,
    heartbeatIncoming: 0,
    heartbeatOutgoing: 0,
    debug: () => {},
  });
  client.onStompError = (f) => errors.push(f);
  client.onWebSocketClose = (e: { code: number }) => closes.push(e.code);
  await new Promise<void>((resolve, reject) => {
    client.onConnect = () => resolve();
    setTimeout(() => reject(new Error('no CONNECTED within 5 s')), 5_000).unref();
    client.activate();
  });
  cleanup.push(() => client.deactivate({ force: true }));
  let receipts = 0;
  /** SEND to /tickfan/token; resolves with the RECEIPT's headers. */
  const refresh = (jwt: string) =>
    new Promise<Record<string, string>>((resolve) => {
      const receipt = `t${++receipts}`;
      client.watchForReceipt(receipt, (f) => resolve(f.headers));
      client.publish({ destination: '/tickfan/token', headers: { passcode: jwt, receipt } });
    });
  return { client, errors, closes, refresh };
}

describe('refresh over STOMP: SEND to /tickfan/token with a receipt', () => {
  it('accepted: RECEIPT tickfan-code 0 with the new exp, messages keep flowing; refused: RECEIPT tickfan-code 21, and the connection carries on', async () => {
    const server = await h.server({ auth: { secret: SECRET } });
    server.publish('st.A', { v: 0 });
    const p = await stomp(server, await token({ subscribe: ['st.*'] }, { expSec: 60 }));
    const got: number[] = [];
    p.client.subscribe('/topic/st.A', (m) => got.push(Number(m.headers['tickfan-version'])));
    await waitFor(() => got.length === 1, 3_000, 'the snapshot');
    const ok = await p.refresh(await token({ subscribe: ['st.*'] }, { exp: 4_000_000_000 }));
    expect(ok).toMatchObject({ 'tickfan-code': '0', 'tickfan-expires': String(4_000_000_000 * 1000) });
    const bad = await p.refresh(await token({ subscribe: ['st.*'] }, { expSec: 60, secret: WRONG_KEY }));
    expect(bad['tickfan-code']).toBe(String(ErrorCode.UNAUTHORIZED));
    expect(bad.message).toMatch(/signature/);
    for (let i = 1; i <= 3; i++) server.publish('st.A', { v: i });
    await waitFor(() => got.length === 4, 3_000, 'three deltas');
    expect(got).toEqual([1, 2, 3, 4]);
    expect(p.errors).toEqual([]);
  });

  it('narrowed grants that no longer cover a subscription end the connection with ERROR PERMISSION_DENIED (STOMP cannot end one subscription)', async () => {
    const server = await h.server({ auth: { secret: SECRET } });
    server.publish('st.B', { v: 0 });
    const p = await stomp(server, await token({ subscribe: ['st.*'] }, { expSec: 60 }));
    p.client.subscribe('/topic/st.B', () => {});
    await sleep(100);
    void p.refresh(await token({ subscribe: ['other.*'] }, { expSec: 60 }));
    await waitFor(() => p.errors.length === 1 && p.closes.length === 1, 3_000, 'the ERROR and the close');
    expect(p.errors[0]!.headers['tickfan-code']).toBe(String(ErrorCode.PERMISSION_DENIED));
    expect(p.errors[0]!.headers.message).toMatch(/st\.B/);
  });

  it('without a receipt header the SEND is refused (ERROR, close): a refresh must be answerable', async () => {
    const server = await h.server({ auth: { secret: SECRET } });
    const p = await stomp(server, await token({ subscribe: ['st.*'] }, { expSec: 60 }));
    p.client.publish({ destination: '/tickfan/token', headers: { passcode: await token({ subscribe: ['st.*'] }, { expSec: 60 }) } });
    await waitFor(() => p.errors.length === 1, 3_000, 'the ERROR');
    expect(p.errors[0]!.headers.message).toMatch(/receipt/);
  });
});
