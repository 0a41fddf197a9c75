// Request-reply over real sockets with the real SDK: each request is answered
// exactly once, by exactly one responder, spread over competing responders; a
// responder that vanishes mid-request fails its requests fast with
// RESPONDER_GONE; timeouts, late replies, handler failures, bytes, refused
// values and grants each end with their typed error; responders re-offer
// after a reconnect; requester and responder meet across fan-out workers.
//
// The fan-out worker case runs the compiled build (dist/): `npm test` builds first.

import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, type TickfanServer } from '../../src/index.js';
import type { RequestPayload, TickfanClient, WebSocketCtor } from '../../src/client/index.js';
import { decodeServerFrame } from '../../src/protocol/index.js';
import { Harness, roundTrip, sleep, waitFor } from './helpers.js';
import { SECRET, token } from './security-helpers.js';

const h = new Harness();
afterEach(() => h.close());

/** A WebSocket class that notes which server (fan-out worker) each connection's Welcome names, and keeps its sockets. */
function spied(): { Ctor: WebSocketCtor; sockets: WebSocket[]; welcomes: string[]; tcp(): Socket } {
  const sockets: WebSocket[] = [];
  const welcomes: string[] = [];
  class Spied extends WebSocket {
    constructor(url: string) {
      super(url);
      sockets.push(this);
      this.once('message', (data: WebSocket.RawData) => {
        try {
          const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data as Buffer);
          const w = decodeServerFrame(bytes).messages.find((m) => m.type === 'welcome');
          welcomes.push(w && w.type === 'welcome' ? w.server : '?');
        } catch {
          welcomes.push('?');
        }
      });
    }
  }
  return {
    Ctor: Spied as unknown as WebSocketCtor,
    sockets,
    welcomes,
    tcp: () => {
      const s = (sockets[sockets.length - 1] as unknown as { _socket?: Socket })._socket;
      if (!s) throw new Error('no socket yet');
      return s;
    },
  };
}

type Settled = { ok: true; value: RequestPayload; ms: number } | { ok: false; error: { errorCode?: number; code?: string; message: string }; ms: number };

/** A request whose outcome (and how long it took) is recorded instead of thrown. */
function settle(p: Promise<RequestPayload>): Promise<Settled> {
  const t0 = performance.now();
  return p.then(
    (value) => ({ ok: true as const, value, ms: performance.now() - t0 }),
    (error: Error & { errorCode?: number; code?: string }) => ({ ok: false as const, error, ms: performance.now() - t0 }),
  );
}

function plain(p: RequestPayload): Record<string, unknown> {
  if (p instanceof Uint8Array) throw new Error('expected a field object, got bytes');
  return { ...p };
}

describe('request-reply: competing responders', () => {
  it('50 requesters × 3 responders, 10,000 requests: each answered once, by exactly one responder, to its own requester, spread over all three', async () => {
    const server = await h.server();
    const REQUESTERS = 50;
    const PER = 200;
    const WINDOW = 8; // requests in flight per requester
    const responders = ['r0', 'r1', 'r2'];
    /** Per responder: correlation id → the nonce it answered. */
    const handled = responders.map(() => new Map<number, string>());
    const calls = new Map<string, number>(); // nonce → handler calls, over all responders
    for (const [k, name] of responders.entries()) {
      const c = await h.connected(server);
      const svc = c.serve('orders.submit', async (payload, meta) => {
        const nonce = String(plain(payload).nonce);
        calls.set(nonce, (calls.get(nonce) ?? 0) + 1);
        expect(handled[k]!.has(meta.correlationId)).toBe(false);
        handled[k]!.set(meta.correlationId, nonce);
        if (meta.correlationId % 7 === 0) await sleep(1); // some answers take a turn longer
        return { nonce, by: name, corr: meta.correlationId };
      });
      await svc.ready;
    }
    const requesters = await Promise.all(Array.from({ length: REQUESTERS }, () => h.connected(server)));
    const answers = new Map<string, Record<string, unknown>>(); // nonce → reply
    const failures: string[] = [];
    const t0 = performance.now();
    await Promise.all(
      requesters.map(async (c, r) => {
        let next = 0;
        const lane = async () => {
          while (next < PER) {
            const i = next++;
            const nonce = `${r}:${i}:${Math.random().toString(36).slice(2, 10)}`;
            try {
              const reply = plain(await c.request('orders.submit', { nonce, r, i }, { timeout: 15_000 }));
              if (reply.nonce !== nonce) failures.push(`requester ${r} asked ${nonce} and got the reply to ${String(reply.nonce)}`);
              if (answers.has(nonce)) failures.push(`${nonce} answered twice`);
              answers.set(nonce, reply);
            } catch (err) {
              failures.push(`${nonce}: ${(err as Error).message}`);
            }
          }
        };
        await Promise.all(Array.from({ length: WINDOW }, lane));
      }),
    );
    const ms = performance.now() - t0;
    expect(failures.slice(0, 5)).toEqual([]);
    expect(answers.size).toBe(REQUESTERS * PER);
    // Exactly one responder ran each request, once.
    expect(calls.size).toBe(REQUESTERS * PER);
    expect([...calls.values()].every((n) => n === 1)).toBe(true);
    const total = handled.reduce((a, m) => a + m.size, 0);
    expect(total).toBe(REQUESTERS * PER);
    // Correlation ids are unique over all responders, and each reply names the responder that recorded it.
    const allCorr = new Set(handled.flatMap((m) => [...m.keys()]));
    expect(allCorr.size).toBe(REQUESTERS * PER);
    for (const [nonce, reply] of answers) {
      const k = responders.indexOf(String(reply.by));
      expect(k, `${nonce} answered by an unknown responder`).toBeGreaterThanOrEqual(0);
      expect(handled[k]!.get(reply.corr as number)).toBe(nonce);
    }
    // A fair share each.
    const shares = handled.map((m) => m.size / total);
    for (const s of shares) expect(s).toBeGreaterThan(0.2);
    expect(server.stats.requests).toBe(REQUESTERS * PER);
    expect(server.stats.replies).toBe(REQUESTERS * PER);
    expect(server.stats.lateReplies).toBe(0);
    expect(server.stats.requestTimeouts).toBe(0);
    expect(ms).toBeLessThan(15_000);
  }, 30_000);

  it('no responder: NO_RESPONDER at once (nothing is queued)', async () => {
    const server = await h.server();
    const c = await h.connected(server);
    const r = await settle(c.request('orders.nobody', { a: 1 }, { timeout: 5_000 }));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.errorCode).toBe(ErrorCode.NO_RESPONDER);
    expect(r.ms).toBeLessThan(1_000);
    expect(server.stats.noResponder).toBe(1);
  });
});

describe('request-reply: a responder that goes away mid-request', () => {
  it.each([
    ['closes its client', 'close'],
    ['loses its socket', 'kill'],
  ] as const)('one that %s: its in-flight requests fail fast with RESPONDER_GONE, the other keeps answering', async (_label, how) => {
    const server = await h.server();
    const requester = await h.connected(server);
    const spy = spied();
    const stuck = await h.connected(server, { WebSocket: spy.Ctor, reconnect: false });
    const good = await h.connected(server);
    const stuckGot: number[] = [];
    let goodAnswered = 0;
    await stuck.serve('svc.mid', (_p, meta) => {
      stuckGot.push(meta.correlationId);
      return new Promise<RequestPayload>(() => {}); // never answers
    }).ready;
    await good.serve('svc.mid', (p) => (goodAnswered++, { n: plain(p).n as number, by: 'good' })).ready;
    const pending = Array.from({ length: 20 }, (_, n) => settle(requester.request('svc.mid', { n }, { timeout: 10_000 })));
    await waitFor(() => stuckGot.length + goodAnswered === 20, 5_000, 'every request to reach a responder');
    expect(stuckGot.length).toBeGreaterThan(0);
    const closedAt = performance.now();
    if (how === 'close') stuck.close();
    else spy.tcp().destroy();
    const results = await Promise.all(pending);
    const gone = results.filter((r) => !r.ok);
    expect(gone).toHaveLength(stuckGot.length);
    for (const r of gone) if (!r.ok) expect(r.error.errorCode).toBe(ErrorCode.RESPONDER_GONE);
    // Fast: long before the 10 s timeout.
    expect(performance.now() - closedAt).toBeLessThan(2_000);
    expect(results.filter((r) => r.ok)).toHaveLength(goodAnswered);
    // The remaining responder takes everything now.
    const after = await Promise.all(Array.from({ length: 10 }, (_, n) => requester.request('svc.mid', { n: 100 + n }, { timeout: 5_000 })));
    expect(after.map((r) => plain(r).by)).toEqual(Array(10).fill('good'));
    expect(server.stats.requestTimeouts).toBe(0);
  });

  it('a responder that withdrew its offer (svc.close()) and then disconnects still fails what it had taken at once', async () => {
    const server = await h.server();
    const requester = await h.connected(server);
    const responder = await h.connected(server, { reconnect: false });
    let got = 0;
    const svc = responder.serve('svc.withdrawn', () => (got++, new Promise<RequestPayload>(() => {})));
    await svc.ready;
    const p = settle(requester.request('svc.withdrawn', { a: 1 }, { timeout: 8_000 }));
    await waitFor(() => got === 1, 5_000, 'the request to reach the responder');
    svc.close();
    await roundTrip(responder); // the Unserve is processed
    const closedAt = performance.now();
    responder.close();
    const r = await p;
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.errorCode).toBe(ErrorCode.RESPONDER_GONE);
    expect(performance.now() - closedAt).toBeLessThan(2_000);
  });

  it('a responder re-offers its services after a reconnect, and requests reach it again', async () => {
    const server = await h.server();
    const requester = await h.connected(server);
    const spy = spied();
    const responder = await h.connected(server, { WebSocket: spy.Ctor });
    let hang = false;
    let calls = 0;
    const svc = responder.serve('svc.again', (p) => {
      calls++;
      return hang ? new Promise<RequestPayload>(() => {}) : { n: plain(p).n as number, connection: spy.sockets.length };
    });
    await svc.ready;
    expect(plain(await requester.request('svc.again', { n: 1 }))).toEqual({ n: 1, connection: 1 });
    hang = true;
    const inFlight = settle(requester.request('svc.again', { n: 2 }, { timeout: 8_000 }));
    await waitFor(() => calls === 2, 5_000, 'the request to reach the responder');
    spy.tcp().destroy();
    const r = await inFlight;
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.errorCode).toBe(ErrorCode.RESPONDER_GONE);
    expect(r.ms).toBeLessThan(2_000);
    await waitFor(() => spy.sockets.length === 2 && responder.state === 'connected', 5_000, 'the responder to reconnect');
    hang = false;
    await roundTrip(responder); // its re-offer went out before this barrier
    expect(plain(await requester.request('svc.again', { n: 3 }, { timeout: 3_000 }))).toEqual({ n: 3, connection: 2 });
    expect(calls).toBe(3);
  });
});

describe('request-reply: timeouts and late replies', () => {
  it('REQUEST_TIMEOUT after the requested timeout (from the server, not the client guard), naming it', async () => {
    const server = await h.server();
    const requester = await h.connected(server);
    const responder = await h.connected(server);
    await responder.serve('svc.slow', () => new Promise<RequestPayload>(() => {})).ready;
    const r = await settle(requester.request('svc.slow', { a: 1 }, { timeout: 300 }));
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.errorCode).toBe(ErrorCode.REQUEST_TIMEOUT);
      expect(r.error.message).toContain('300 ms');
    }
    expect(r.ms).toBeGreaterThanOrEqual(290);
    expect(r.ms).toBeLessThan(1_500); // the SDK's own guard would fire at 2.3 s
    expect(server.stats.requestTimeouts).toBe(1);
  });

  it("a longer timeout than the server's requestTimeoutMs is capped to it", async () => {
    const server = await h.server({ requestTimeoutMs: 400 });
    const requester = await h.connected(server);
    const responder = await h.connected(server);
    await responder.serve('svc.slow', () => new Promise<RequestPayload>(() => {})).ready;
    const r = await settle(requester.request('svc.slow', { a: 1 }, { timeout: 5_000 }));
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.errorCode).toBe(ErrorCode.REQUEST_TIMEOUT);
      expect(r.error.message).toContain('400 ms');
    }
    expect(r.ms).toBeGreaterThanOrEqual(390);
    expect(r.ms).toBeLessThan(2_000);
  });

  it('a reply after the timeout is dropped and counted, and never reaches the next request', async () => {
    const server = await h.server();
    const requester = await h.connected(server);
    const responder = await h.connected(server);
    let answeredLate = false;
    await responder.serve('svc.late', async (p) => {
      const { nonce, delay } = plain(p) as { nonce: string; delay: number };
      await sleep(delay);
      if (nonce === 'first') answeredLate = true;
      return { nonce };
    }).ready;
    // first: answered at 600 ms, long after its 200 ms timeout — while "second" is waiting on the same responder.
    const first = settle(requester.request('svc.late', { nonce: 'first', delay: 600 }, { timeout: 200 }));
    const r1 = await first;
    expect(r1.ok).toBe(false);
    if (!r1.ok) expect(r1.error.errorCode).toBe(ErrorCode.REQUEST_TIMEOUT);
    const second = settle(requester.request('svc.late', { nonce: 'second', delay: 700 }, { timeout: 5_000 }));
    await waitFor(() => answeredLate, 3_000, 'the late answer');
    await waitFor(() => server.stats.lateReplies === 1, 3_000, 'the late answer to be counted');
    const r2 = await second;
    expect(r2.ok).toBe(true);
    if (r2.ok) expect(plain(r2.value)).toEqual({ nonce: 'second' });
    expect(server.stats.lateReplies).toBe(1);
    expect(server.stats.replies).toBe(1);
  });
});

describe('request-reply: payloads and failures', () => {
  it("RESPONDER_FAILED carries the handler's thrown message (sync throw, async rejection, a reply that is not a payload)", async () => {
    const server = await h.server();
    const requester = await h.connected(server);
    const responder = await h.connected(server);
    await responder.serve('svc.fail.sync', () => {
      throw new Error('insufficient margin for DESK42');
    }).ready;
    await responder.serve('svc.fail.async', async () => {
      await sleep(5);
      throw new Error('venue closed');
    }).ready;
    await responder.serve('svc.fail.shape', () => 'just a string' as unknown as RequestPayload).ready;
    const cases: [string, string][] = [
      ['svc.fail.sync', 'insufficient margin for DESK42'],
      ['svc.fail.async', 'venue closed'],
      ['svc.fail.shape', 'not a payload'],
    ];
    for (const [service, text] of cases) {
      const r = await settle(requester.request(service, { a: 1 }, { timeout: 3_000 }));
      expect(r.ok, service).toBe(false);
      if (r.ok) continue;
      expect(r.error.errorCode, service).toBe(ErrorCode.RESPONDER_FAILED);
      expect(r.error.message, service).toContain(text);
      expect(r.ms, service).toBeLessThan(2_000);
    }
    // A field value the server refuses in a reply fails the request too (not a wait for the timeout).
    await responder.serve('svc.fail.value', () => ({ big: 'x'.repeat(70 * 1024) })).ready;
    const big = await settle(requester.request('svc.fail.value', {}, { timeout: 3_000 }));
    expect(big.ok).toBe(false);
    if (!big.ok) expect(big.error.errorCode).toBe(ErrorCode.RESPONDER_FAILED);
    expect(big.ms).toBeLessThan(2_000);
  });

  it('bytes (Uint8Array) both ways; field values of every kind round-trip; meta names the service and correlation', async () => {
    const server = await h.server();
    const requester = await h.connected(server);
    const responder = await h.connected(server);
    const metas: { correlationId: number; service: string; requester: string }[] = [];
    await responder.serve('blob.*', (p, meta) => {
      metas.push(meta);
      if (!(p instanceof Uint8Array)) return { kind: 'fields', ...p };
      return Uint8Array.from(p).reverse();
    }).ready;
    const sent = Uint8Array.from([0, 1, 2, 127, 128, 255]);
    const back = await requester.request('blob.rev', sent);
    expect(back).toBeInstanceOf(Uint8Array);
    expect([...(back as Uint8Array)]).toEqual([255, 128, 127, 2, 1, 0]);
    const empty = await requester.request('blob.rev', new Uint8Array(0));
    expect(empty).toBeInstanceOf(Uint8Array);
    expect((empty as Uint8Array).length).toBe(0);
    const fields = { s: 'é€', i: -42, f: 1.5, t: true, big: 2n ** 60n, b: Uint8Array.from([9]), nil: null };
    const echoed = plain(await requester.request('blob.fields', fields));
    expect(echoed).toEqual({ kind: 'fields', ...fields });
    expect(metas.map((m) => m.service)).toEqual(['blob.rev', 'blob.rev', 'blob.fields']);
    expect(new Set(metas.map((m) => m.correlationId)).size).toBe(3);
    expect(metas.every((m) => m.requester === 'anonymous' || m.requester.length > 0)).toBe(true);
  });

  it('a bad payload value is refused with BAD_FIELD before anything is sent; too-large bytes get VALUE_TOO_LARGE', async () => {
    const server = await h.server({ limits: { maxValueBytes: 1024 } });
    const requester = await h.connected(server);
    const responder = await h.connected(server);
    let calls = 0;
    await responder.serve('svc.check', () => (calls++, { ok: true })).ready;
    const bad: [string, unknown][] = [
      ['a Date', { when: new Date() }],
      ['a nested object', { order: { qty: 1 } }],
      ['an array', { legs: [1, 2] }],
      ['undefined', { x: undefined }],
      ['a function', { f: () => 1 }],
    ];
    for (const [label, payload] of bad) {
      const r = await settle(requester.request('svc.check', payload as RequestPayload));
      expect(r.ok, label).toBe(false);
      if (!r.ok) expect(r.error.errorCode, label).toBe(ErrorCode.BAD_FIELD);
    }
    for (const payload of ['text', 42, null, [1, 2]]) {
      const r = await settle(requester.request('svc.check', payload as unknown as RequestPayload));
      expect(r.ok, JSON.stringify(payload)).toBe(false);
      if (!r.ok) expect(r.error.errorCode, JSON.stringify(payload)).toBe(ErrorCode.BAD_REQUEST);
    }
    await roundTrip(requester);
    expect(server.stats.requests).toBe(0); // nothing reached the server
    expect(calls).toBe(0);
    const tooBig = await settle(requester.request('svc.check', new Uint8Array(2048)));
    expect(tooBig.ok).toBe(false);
    if (!tooBig.ok) expect(tooBig.error.errorCode).toBe(ErrorCode.VALUE_TOO_LARGE);
    const tooBigField = await settle(requester.request('svc.check', { s: 'x'.repeat(2048) }));
    expect(tooBigField.ok).toBe(false);
    if (!tooBigField.ok) expect(tooBigField.error.errorCode).toBe(ErrorCode.VALUE_TOO_LARGE);
    expect(calls).toBe(0);
    // And the connection is fine: a good request still works.
    expect(plain(await requester.request('svc.check', { qty: 1 }))).toEqual({ ok: true });
    expect(calls).toBe(1);
  });
});

describe('request-reply: grants (auth on)', () => {
  it('serve outside the serve grant → PERMISSION_DENIED on ready; request outside the request grant → PERMISSION_DENIED; meta.requester is the token subject', async () => {
    const server = await h.server({ auth: { secret: SECRET } });
    const desk = await h.connected(server, { token: await token({ serve: ['orders.*'] }, { expSec: 600, sub: 'desk-bot' }) });
    const seen: string[] = [];
    const inside = desk.serve('orders.submit', (_p, meta) => (seen.push(meta.requester), { accepted: true }));
    await expect(inside.ready).resolves.toBeUndefined();
    const outside = desk.serve('admin.halt', () => ({}));
    await expect(outside.ready).rejects.toMatchObject({ errorCode: ErrorCode.PERMISSION_DENIED });
    const wider = desk.serve('orders.>', () => ({}));
    await expect(wider.ready).rejects.toMatchObject({ errorCode: ErrorCode.PERMISSION_DENIED });

    const admin = await h.connected(server, { token: await token({ serve: ['admin.>'], request: ['>'] }, { expSec: 600, sub: 'ops' }) });
    let adminCalls = 0;
    await admin.serve('admin.halt', () => (adminCalls++, { halted: true })).ready;

    const trader = await h.connected(server, { token: await token({ request: ['orders.>'] }, { expSec: 600, sub: 'trader-7' }) });
    expect(plain(await trader.request('orders.submit', { qty: 1 }))).toEqual({ accepted: true });
    expect(seen).toEqual(['trader-7']);
    const denied = await settle(trader.request('admin.halt', { now: true }));
    expect(denied.ok).toBe(false);
    if (!denied.ok) expect(denied.error.errorCode).toBe(ErrorCode.PERMISSION_DENIED);
    expect(adminCalls).toBe(0);
    // The same service is reachable for a connection granted it (so the denial was the grant, not a missing responder).
    expect(plain(await admin.request('admin.halt', {}))).toEqual({ halted: true });
    expect(adminCalls).toBe(1);
    // A token without any request grant may request nothing; one without serve grants may serve nothing.
    const reader = await h.connected(server, { token: await token({ subscribe: ['px.>'] }, { expSec: 600, sub: 'reader' }) });
    const none = await settle(reader.request('orders.submit', {}));
    expect(none.ok).toBe(false);
    if (!none.ok) expect(none.error.errorCode).toBe(ErrorCode.PERMISSION_DENIED);
    await expect(reader.serve('orders.submit', () => ({})).ready).rejects.toMatchObject({ errorCode: ErrorCode.PERMISSION_DENIED });
    // The denied offers took nothing: every orders.submit still goes to desk.
    for (let i = 0; i < 4; i++) await trader.request('orders.submit', { i });
    expect(seen).toHaveLength(5);
  });
});

describe('request-reply across fan-out workers', () => {
  /** Connects SDK clients until one lands on a worker other than `not` (or on any worker when `not` is null). */
  async function onWorker(server: TickfanServer, not: string | null): Promise<{ client: TickfanClient; worker: string; spy: ReturnType<typeof spied> }> {
    for (let i = 0; i < 40; i++) {
      const spy = spied();
      const client = await h.connected(server, { WebSocket: spy.Ctor, reconnect: false });
      await waitFor(() => spy.welcomes.length > 0, 3_000, 'the Welcome');
      const worker = spy.welcomes[0]!;
      if (worker !== not) return { client, worker, spy };
      client.close();
    }
    throw new Error(`no connection landed on a worker other than ${not}`);
  }

  it('a requester and a responder on different workers meet; competing responders on both workers share; a responder leaving fails fast', async () => {
    const server = await h.server({ workers: 2 });
    expect(server.workers).toBe(2);
    const a = await onWorker(server, null);
    const b = await onWorker(server, a.worker);
    expect(b.worker).not.toBe(a.worker);
    // Responder on worker A only; requester on worker B.
    const got: number[] = [];
    await a.client.serve('x.echo', (p, meta) => (got.push(meta.correlationId), { n: plain(p).n as number, worker: a.worker })).ready;
    const replies = await Promise.all(Array.from({ length: 20 }, (_, n) => b.client.request('x.echo', { n }, { timeout: 5_000 })));
    expect(replies.map((r) => plain(r))).toEqual(Array.from({ length: 20 }, (_, n) => ({ n, worker: a.worker })));
    expect(new Set(got).size).toBe(20);
    expect(server.stats.requests).toBe(20);

    // A second responder, on worker B: requests from both workers spread over both.
    const b2 = await onWorker(server, a.worker);
    await b2.client.serve('x.echo', async (p) => (await sleep(1), { n: plain(p).n as number, worker: b2.worker })).ready;
    const mixed = await Promise.all(
      Array.from({ length: 60 }, (_, n) => (n % 2 ? a.client : b.client).request('x.echo', { n }, { timeout: 5_000 })),
    );
    expect(mixed.map((r) => plain(r).n)).toEqual(Array.from({ length: 60 }, (_, n) => n));
    const byWorker = new Map<string, number>();
    for (const r of mixed) byWorker.set(String(plain(r).worker), (byWorker.get(String(plain(r).worker)) ?? 0) + 1);
    expect(byWorker.get(a.worker)! > 0 && byWorker.get(b.worker)! > 0).toBe(true);

    // The responder on worker A hangs, then its connection is cut: B's requester hears RESPONDER_GONE at once.
    const hangs = await onWorker(server, b.worker);
    let hung = 0;
    await hangs.client.serve('x.hang', () => (hung++, new Promise<RequestPayload>(() => {}))).ready;
    let early: Settled | null = null;
    const pending = settle(b.client.request('x.hang', {}, { timeout: 8_000 })).then((r) => (early = r));
    await waitFor(() => hung === 1 || early !== null, 5_000, 'the request to reach the other worker');
    expect(early, 'the request ended before reaching the responder').toBeNull();
    hangs.spy.tcp().destroy();
    const r = await pending;
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.errorCode).toBe(ErrorCode.RESPONDER_GONE);
    expect(r.ms).toBeLessThan(2_500);
    // Nobody serves it any more, on any worker.
    const none = await settle(a.client.request('x.hang', {}));
    expect(none.ok).toBe(false);
    if (!none.ok) expect(none.error.errorCode).toBe(ErrorCode.NO_RESPONDER);
  }, 30_000);

  it('once serve().ready resolves, a requester on the other worker finds the offer, even with the main thread busy', async () => {
    const server = await h.server({ workers: 2 });
    const a = await onWorker(server, null);
    const b = await onWorker(server, a.worker);
    // The main thread (this process: it runs the sequencer and the service router) stalls 20 ms at a time, as under publish load.
    const busy = setInterval(() => {
      const t = performance.now();
      while (performance.now() - t < 20);
    }, 21);
    const missed: string[] = [];
    try {
      for (let i = 0; i < 40; i++) {
        const [responder, requester] = i % 2 ? [a, b] : [b, a];
        const svc = responder.client.serve(`x.fresh${i}`, () => ({ i }));
        await svc.ready;
        const r = await settle(requester.client.request(`x.fresh${i}`, {}, { timeout: 5_000 }));
        if (!r.ok) missed.push(`#${i} (served on ${responder.worker}, asked from ${requester.worker}): ${r.error.message}`);
        svc.close();
      }
    } finally {
      clearInterval(busy);
    }
    expect(missed.slice(0, 3), `${missed.length} of 40 requests after ready missed the offer`).toEqual([]);
  }, 30_000);
});
