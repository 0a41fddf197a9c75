// Request-reply across cluster nodes (issue 20: a desk on any edge reaches
// the order service), with a real nats-server and origin + edges in this
// process: a request on edge B is answered by a responder on edge A, or on
// the origin, with the requester's token subject seen by the remote
// responder; over WebSocket, HTTP POST /request, STOMP SEND with reply-to
// and the SDK over SSE; NO_RESPONDER fast (< 1 s) on any node, also once the last offer
// is withdrawn; a remote responder's failure, timeout and disappearance come
// back as the same typed errors as locally, never a hang, a late answer
// dropped; garbage on a service subject gets a typed BAD_REQUEST; a request with a local responder stays local; requests from a
// node without one spread over responders on two nodes (one NATS queue
// group); and after nats-server restarts, the offers are back without the
// responder doing anything (quiet case).

import { connect as natsConnect } from '@nats-io/transport-node';
import { Client, type IMessage } from '@stomp/stompjs';
import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import type { ClusterServer } from '../../src/cluster/index.js';
import { connect, type RequestPayload } from '../../src/client/index.js';
import { ClusterHarness, clusterFixture } from './cluster-helpers.js';
import { ErrorCode } from '../../src/index.js';
import { roundTrip, sleep, waitFor, wsUrl } from './helpers.js';
import { NatsServer } from './nats-server.js';
import { SECRET, token } from './security-helpers.js';

type Settled = { ok: true; value: RequestPayload; ms: number } | { ok: false; code: string; message: string; ms: number };

/** A request whose outcome (and how long it took) is recorded instead of thrown. */
function settle(p: Promise<RequestPayload>): Promise<Settled> {
  const t0 = performance.now();
  return p.then(
    (value) => ({ ok: true as const, value, ms: performance.now() - t0 }),
    (e: Error & { code?: string }) => ({ ok: false as const, code: e.code ?? e.name, message: e.message, ms: performance.now() - t0 }),
  );
}

async function postRequest(node: ClusterServer, service: string, body: unknown, tok?: string): Promise<{ status: number; body: any; ms: number }> {
  const t0 = performance.now();
  const r = await fetch(`http://127.0.0.1:${node.port}/request/${service}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(tok ? { authorization: `Bearer ${tok}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json(), ms: performance.now() - t0 };
}

const fx = clusterFixture();
let h: ClusterHarness | undefined;

/** An origin and two edges with HS256 tokens. */
async function cluster(url = fx.nats.url) {
  h = fx.harness(url);
  const auth = { auth: { secret: SECRET } };
  const origin = await h.origin(auth);
  const a = await h.edge(auth);
  const b = await h.edge(auth);
  return { origin, a, b };
}

const SERVE = { serve: ['orders.>', 'echo.>'] };
const ASK = { request: ['orders.>', 'echo.>', 'none.>'] };

describe('request-reply across cluster nodes', () => {
  it('a request on edge B (WebSocket and HTTP) is answered by a responder on edge A, then on the origin; the remote responder sees who asked; bytes too', async () => {
    const { origin, a, b } = await cluster();
    const botTok = await token(SERVE, { expSec: 600, sub: 'order-bot' });
    const deskTok = await token(ASK, { expSec: 600, sub: 'desk-7' });
    const bot = h!.client(() => a, { token: botTok });
    const seen: { requester: string; service: string }[] = [];
    const svc = bot.serve('orders.*', (payload, meta) => {
      seen.push({ requester: meta.requester, service: meta.service });
      return payload instanceof Uint8Array ? payload.slice().reverse() : { ...payload, answeredOn: 'A' };
    });
    await svc.ready; // the ack: edge A's NATS subscription is in place
    expect(a.cluster.stats.toJSON()).toMatchObject({ requestsOut: 0 });

    const desk = h!.client(() => b, { token: deskTok });
    expect(await desk.request('orders.submit', { qty: 5, px: 101.25, big: 2n ** 60n }, { timeout: 2_000 })).toEqual({ qty: 5, px: 101.25, big: 2n ** 60n, answeredOn: 'A' });
    expect(await desk.request('orders.cancel', new Uint8Array([1, 2, 3]))).toEqual(new Uint8Array([3, 2, 1]));
    expect(seen).toEqual([
      { requester: 'desk-7', service: 'orders.submit' },
      { requester: 'desk-7', service: 'orders.cancel' },
    ]);
    expect(b.cluster.stats.toJSON()).toMatchObject({ requestsOut: 2, requestFailures: 0 });
    expect(a.cluster.stats.toJSON()).toMatchObject({ requestsIn: 2 });
    expect(a.stats.replies).toBe(2);

    // HTTP POST /request on B: the answer names the remote responder's subject.
    const r = await postRequest(b, 'orders.submit', { qty: 7 }, deskTok);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ service: 'orders.submit', responder: 'order-bot', fields: { qty: 7, answeredOn: 'A' } });
    expect(seen.at(-1)).toEqual({ requester: 'desk-7', service: 'orders.submit' });

    // The responder moves to the origin: A lets go of the subject, requests on B now reach the origin.
    svc.close();
    await roundTrip(bot); // A has taken the withdrawal (and let go of the NATS subject)
    await sleep(100);
    const bot2 = h!.client(() => origin, { token: botTok });
    const svc2 = bot2.serve('orders.submit', (p) => ({ ...(p as object), answeredOn: 'origin' }));
    await svc2.ready;
    await waitFor(() => a.stats.requests === 3, 1_000, 'A has seen its 3 requests');
    expect(await desk.request('orders.submit', { qty: 1 })).toEqual({ qty: 1, answeredOn: 'origin' });
    expect(a.cluster.stats.toJSON()).toMatchObject({ requestsIn: 3 }); // nothing more reached A
    expect(origin.cluster.stats.toJSON()).toMatchObject({ requestsIn: 1 });

    // And the other way: a requester on the origin reaching nobody local for echo.*, a responder on B.
    const echo = h!.client(() => b, { token: botTok }).serve('echo.>', (p) => p);
    await echo.ready;
    const ops = h!.client(() => origin, { token: deskTok });
    expect(await ops.request('echo.x.y', { n: 1 })).toEqual({ n: 1 });
  }, 30_000);

  it('no responder anywhere: NO_RESPONDER in < 1 s on an edge and on the origin (WebSocket, HTTP 503), also once the last offer is withdrawn', async () => {
    const { origin, a, b } = await cluster();
    const deskTok = await token(ASK, { expSec: 600, sub: 'desk-7' });
    for (const node of [a, b, origin]) {
      const c = h!.client(() => node, { token: deskTok });
      const s = await settle(c.request('none.here', {}, { timeout: 8_000 }));
      expect(s).toMatchObject({ ok: false, code: 'TICKFAN_ERR_NO_RESPONDER' });
      expect(s.ms).toBeLessThan(1_000);
      const r = await postRequest(node, 'none.here', {}, deskTok);
      expect(r.status).toBe(503);
      expect(r.body.error.name).toBe('TICKFAN_ERR_NO_RESPONDER');
      expect(r.ms).toBeLessThan(1_000);
    }
    expect(b.stats.noResponder).toBe(2);

    // One responder on A, then gone: A unsubscribes, B's next request is NO_RESPONDER at once, not a timeout.
    const bot = h!.client(() => a, { token: await token(SERVE, { expSec: 600, sub: 'order-bot' }) });
    const svc = bot.serve('orders.submit', () => ({ ok: true }));
    const svc2 = bot.serve('orders.>', () => ({ ok: 'pattern' }));
    await Promise.all([svc.ready, svc2.ready]);
    const desk = h!.client(() => b, { token: deskTok });
    expect(await desk.request('orders.submit', {})).toMatchObject({ ok: expect.anything() });
    svc.close();
    expect(await desk.request('orders.submit', {})).toEqual({ ok: 'pattern' }); // the pattern still serves it
    svc2.close();
    await sleep(100);
    const s = await settle(desk.request('orders.submit', {}, { timeout: 8_000 }));
    expect(s).toMatchObject({ ok: false, code: 'TICKFAN_ERR_NO_RESPONDER' });
    expect(s.ms).toBeLessThan(1_000);
  }, 30_000);

  it('a remote responder that fails, is slow, or vanishes mid-request: the requester on B gets the same typed error as locally, never a hang; a late answer is dropped', async () => {
    const { a, b } = await cluster();
    const botTok = await token(SERVE, { expSec: 600, sub: 'order-bot' });
    const bot = h!.client(() => a, { token: botTok });
    const fails = bot.serve('orders.fail', () => {
      throw new Error('price outside the band');
    });
    let slowMs = 600;
    const slow = bot.serve('orders.slow', async (p) => (await sleep(slowMs), p));
    await Promise.all([fails.ready, slow.ready]);
    const desk = h!.client(() => b, { token: await token(ASK, { expSec: 600, sub: 'desk-7' }) });

    // Garbage on the service subject (not a tickfan node): a typed BAD_REQUEST answer, edge A unharmed.
    const raw = await natsConnect({ servers: fx.nats.url });
    try {
      const m = await raw.request(`${h!.prefix}.svc.orders.fail`, new TextEncoder().encode('{"service": 7}'), { timeout: 2_000 });
      expect(JSON.parse(new TextDecoder().decode(m.data))).toMatchObject({ ok: false, code: ErrorCode.BAD_REQUEST, message: expect.stringMatching(/needs service, who and timeoutMs/) });
    } finally {
      await raw.close();
    }

    const f = await settle(desk.request('orders.fail', {}));
    expect(f).toMatchObject({ ok: false, code: 'TICKFAN_ERR_RESPONDER_FAILED', message: 'price outside the band' });

    // Its own timeout (300 ms), not the server's 10 s; the answer coming at 600 ms is dropped, the next request gets its own.
    const t = await settle(desk.request('orders.slow', { n: 1 }, { timeout: 300 }));
    expect(t).toMatchObject({ ok: false, code: 'TICKFAN_ERR_REQUEST_TIMEOUT' });
    expect(t.ms).toBeGreaterThanOrEqual(290);
    expect(t.ms).toBeLessThan(1_000);
    slowMs = 10;
    await sleep(500); // the late answer has come and gone
    expect(await desk.request('orders.slow', { n: 2 }, { timeout: 2_000 })).toEqual({ n: 2 });
    expect(b.stats.requestTimeouts).toBe(1);

    // The responder's connection is cut mid-request: RESPONDER_GONE at once (edge A's router says so), not the 8 s timeout.
    const hang = h!.client(() => a, { token: botTok });
    let taken = 0;
    const hung = hang.serve('orders.hang', () => (taken++, new Promise<RequestPayload>(() => {})));
    await hung.ready;
    const p = settle(desk.request('orders.hang', {}, { timeout: 8_000 }));
    await waitFor(() => taken === 1, 5_000, 'the request taken on A');
    hang.cut();
    hang.close();
    const g = await p;
    expect(g).toMatchObject({ ok: false, code: 'TICKFAN_ERR_RESPONDER_GONE' });
    expect(g.ms).toBeLessThan(1_500);

    // Edge A itself shuts down mid-request: RESPONDER_GONE (the server is shutting down), not a hang.
    const hang2 = h!.client(() => a, { token: botTok });
    const hung2 = hang2.serve('orders.hang', () => (taken++, new Promise<RequestPayload>(() => {})));
    await hung2.ready;
    const p2 = settle(desk.request('orders.hang', {}, { timeout: 8_000 }));
    await waitFor(() => taken === 2, 5_000, 'the second request taken on A');
    await a.close();
    const g2 = await p2;
    expect(g2).toMatchObject({ ok: false, code: 'TICKFAN_ERR_RESPONDER_GONE' });
    expect(g2.ms).toBeLessThan(2_000);
    // And with A gone, nobody serves it: NO_RESPONDER fast.
    const n = await settle(desk.request('orders.hang', {}, { timeout: 8_000 }));
    expect(n).toMatchObject({ ok: false, code: 'TICKFAN_ERR_NO_RESPONDER' });
    expect(n.ms).toBeLessThan(1_000);
  }, 30_000);

  it('a local responder keeps requests local; a node without one spreads them over responders on two nodes (queue group), each answered once', async () => {
    const { origin, a, b } = await cluster();
    const botTok = await token(SERVE, { expSec: 600, sub: 'order-bot' });
    const counts = { A: 0, B: 0 };
    const onA = h!.client(() => a, { token: botTok }).serve('orders.submit', (p) => (counts.A++, { ...(p as object), by: 'A' }));
    const onB = h!.client(() => b, { token: botTok }).serve('orders.*', (p) => (counts.B++, { ...(p as object), by: 'B' }));
    await Promise.all([onA.ready, onB.ready]);
    const deskTok = await token(ASK, { expSec: 600, sub: 'desk-7' });

    // On A: all 50 stay on A (no NATS hop).
    const local = h!.client(() => a, { token: deskTok });
    await local.request('orders.submit', { i: -1 }); // connected
    let t0 = performance.now();
    for (let i = 0; i < 50; i++) expect(await local.request('orders.submit', { i })).toEqual({ i, by: 'A' });
    const localMs = (performance.now() - t0) / 50;
    expect(counts).toEqual({ A: 51, B: 0 });
    expect(a.cluster.stats.toJSON()).toMatchObject({ requestsOut: 0 });
    counts.A = 0;

    // On the origin (no responder): one at a time (the hop's cost), then 200 requests, 20 in flight at a time, spread over A and B.
    const asker = h!.client(() => origin, { token: deskTok });
    await asker.request('orders.submit', { i: -1 });
    t0 = performance.now();
    for (let i = 0; i < 50; i++) await asker.request('orders.submit', { i });
    const forwardedMs = (performance.now() - t0) / 50;
    console.log(`round trip, SDK requester -> responder -> back, one at a time: ${localMs.toFixed(2)} ms on one node, ${forwardedMs.toFixed(2)} ms across nodes over NATS`);
    counts.A = counts.B = 0;
    const answers = new Map<number, string>();
    let next = 0;
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        while (next < 200) {
          const i = next++;
          const r = (await asker.request('orders.submit', { i })) as { i: number; by: string };
          expect(r.i).toBe(i);
          expect(answers.has(i)).toBe(false);
          answers.set(i, r.by);
        }
      }),
    );
    const byA = [...answers.values()].filter((x) => x === 'A').length;
    const byB = answers.size - byA;
    console.log(`spread of 200 requests from the origin: ${byA} on edge A, ${byB} on edge B`);
    expect(answers.size).toBe(200);
    expect(counts.A + counts.B).toBe(200); // each handled exactly once
    expect(byA).toBeGreaterThan(40);
    expect(byB).toBeGreaterThan(40);
    expect(origin.cluster.stats.toJSON()).toMatchObject({ requestsOut: 251, requestFailures: 0 });
  }, 30_000);

  it('STOMP SEND with reply-to, and the SDK over SSE, on edge B are answered by an SDK responder on edge A; a missing service answers NO_RESPONDER', async () => {
    h = fx.harness();
    await h.origin();
    const a = await h.edge();
    const b = await h.edge();
    const svc = h.client(() => a).serve('orders.submit', (p, meta) => ({ ...(p as object), requester: meta.requester }));
    await svc.ready;
    const messages: IMessage[] = [];
    let socket: WebSocket | null = null;
    const client = new Client({
      webSocketFactory: () => (socket = new WebSocket(`ws://127.0.0.1:${b.port}/stomp`, ['v12.stomp'])),
      reconnectDelay: 0,
      heartbeatIncoming: 0,
      heartbeatOutgoing: 0,
      debug: () => {},
    });
    await new Promise<void>((resolve) => {
      client.onConnect = () => resolve();
      client.activate();
    });
    try {
      client.subscribe('/temp-queue/replies', (m) => messages.push(m));
      client.publish({ destination: '/service/orders.submit', body: JSON.stringify({ qty: 3 }), headers: { 'reply-to': '/temp-queue/replies', 'correlation-id': 'c-1' } });
      client.publish({ destination: '/service/orders.none', body: '{}', headers: { 'reply-to': '/temp-queue/replies', 'correlation-id': 'c-2' } });
      await waitFor(() => messages.length === 2, 5_000, 'two STOMP answers');
      const by = new Map(messages.map((m) => [m.headers['correlation-id'], m]));
      expect(by.get('c-1')!.headers['tickfan-code']).toBe('0');
      expect(JSON.parse(by.get('c-1')!.body)).toEqual({ qty: 3, requester: 'anonymous' });
      expect(by.get('c-2')!.headers['tickfan-code']).toBe(String(ErrorCode.NO_RESPONDER));
      expect(JSON.parse(by.get('c-2')!.body).error.name).toBe('TICKFAN_ERR_NO_RESPONDER');
    } finally {
      await client.deactivate({ force: true });
      (socket as WebSocket | null)?.terminate();
    }

    // The SDK over SSE on edge B, likewise.
    const sse = connect(wsUrl(b), { transport: 'sse' });
    h.clients.push(sse);
    expect(await sse.request('orders.submit', { qty: 4 })).toEqual({ qty: 4, requester: 'anonymous' });
    expect(await settle(sse.request('orders.none', {}))).toMatchObject({ ok: false, code: 'TICKFAN_ERR_NO_RESPONDER' });
    expect(b.cluster.stats.toJSON()).toMatchObject({ requestsOut: 4 });
  }, 30_000);
});

describe('request-reply across nodes when NATS goes away', () => {
  it('while NATS is down a request with no local responder is NO_RESPONDER at once; after nats-server restarts the offers are back with nothing re-offered (quiet case)', async () => {
    const own = await NatsServer.start();
    try {
      h = fx.harness(own.url);
      await h.origin();
      const a = await h.edge();
      const b = await h.edge();
      let taken = 0;
      const svc = h.client(() => a).serve('orders.submit', (p) => (taken++, p));
      await svc.ready;
      const desk = h.client(() => b);
      expect(await desk.request('orders.submit', { n: 1 })).toEqual({ n: 1 });

      await own.kill();
      await waitFor(() => b.cluster.stats.toJSON().nats !== undefined && (b.cluster.stats.toJSON().nats as { state: string }).state !== 'connected', 5_000, 'edge B to notice NATS gone');
      const down = await settle(desk.request('orders.submit', { n: 2 }, { timeout: 8_000 }));
      expect(down).toMatchObject({ ok: false, code: 'TICKFAN_ERR_NO_RESPONDER' });
      expect(down.ms).toBeLessThan(1_000);

      await own.restart();
      for (const n of [a, b]) await waitFor(() => (n.cluster.stats.toJSON().nats as { state: string }).state === 'connected', 10_000, 'the edges back on NATS');
      // Quiet: the responder sent nothing since; edge A's subscription was renewed by the NATS client itself.
      expect(taken).toBe(1);
      let back: Settled | null = null;
      const t0 = Date.now();
      while (Date.now() - t0 < 5_000) {
        back = await settle(desk.request('orders.submit', { n: 3 }, { timeout: 2_000 }));
        if (back.ok) break;
        await sleep(100);
      }
      expect(back).toMatchObject({ ok: true, value: { n: 3 } });
      console.log(`after the NATS restart the first cross-node answer came ${Date.now() - t0} ms after both edges reconnected`);
    } finally {
      await h?.close();
      h = undefined;
      await own.stop();
    }
  }, 40_000);
});
