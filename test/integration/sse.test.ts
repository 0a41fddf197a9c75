// SSE (GET /sse) without a browser: the JSON event stream carries the same
// epochs and versions as the WebSocket protocol; a reconnect with
// Last-Event-ID resumes the session by merged delta when the history covers
// the gap and by snapshot when not; commands go up as POSTs; backpressure is
// bounded like a WebSocket's (slow lane, one catch-up on drain, cut past the
// slow timeout); admission (origins, tokens) applies; and the SDK runs over
// SSE, by choice or by falling back when no WebSocket opens.

import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import type { TickfanServer } from '../../src/index.js';
import { type FetchLike, type TickfanClient, type WebSocketCtor } from '../../src/client/index.js';
import { ErrorCode, errorCodeName, type FieldValue } from '../../src/protocol/index.js';
import { TcpProxy } from '../e2e/tcp-proxy.js';
import { Harness, caughtUp, chainProblem, http, record, serverState, sleep, waitFor } from './helpers.js';

const h = new Harness();
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
  await h.close();
});

// ------------------------------------------------------------------ a raw SSE client

type Json = Record<string, any>;
interface SseEvent {
  id: string;
  seq: number;
  data: Json[];
}

/** GET /sse with node:http: every event parsed, the response pausable (to stall the reader). */
class RawSse {
  readonly events: SseEvent[] = [];
  status = 0;
  headers: IncomingMessage['headers'] = {};
  body = '';
  ended = false;
  private buf = '';
  private res: IncomingMessage | null = null;

  private constructor(private readonly req: ClientRequest) {}

  static open(port: number, path: string, headers: Record<string, string> = {}): Promise<RawSse> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, agent: false, headers: { accept: 'text/event-stream', ...headers } });
      const c = new RawSse(req);
      req.on('response', (res) => {
        c.res = res;
        c.status = res.statusCode ?? 0;
        c.headers = res.headers;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => c.onData(chunk));
        res.on('end', () => (c.ended = true));
        res.on('aborted', () => (c.ended = true));
        res.on('error', () => (c.ended = true));
        res.on('close', () => (c.ended = true));
        resolve(c);
      });
      req.on('error', reject);
      req.end();
      cleanup.push(() => c.abort());
    });
  }

  private onData(chunk: string): void {
    if (this.status !== 200) {
      this.body += chunk;
      return;
    }
    this.buf += chunk;
    let at: number;
    while ((at = this.buf.indexOf('\n\n')) >= 0) {
      const block = this.buf.slice(0, at);
      this.buf = this.buf.slice(at + 2);
      let id = '';
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('id: ')) id = line.slice(4);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (data) this.events.push({ id, seq: Number(id.split('.')[1] ?? NaN), data: JSON.parse(data) });
    }
  }

  get session(): string {
    return this.events.find((e) => e.data[0]?.type === 'session')!.data[0]!.session;
  }

  messages(type?: string): Json[] {
    const all = this.events.flatMap((e) => e.data);
    return type ? all.filter((m) => m.type === type) : all;
  }

  /** Stops reading the socket: the server's writes back up. */
  pause(): void {
    this.res?.pause();
  }

  resume(): void {
    this.res?.resume();
  }

  abort(): void {
    this.req.destroy();
  }
}

/** Applies a raw event stream's snapshot and deltas for `topic`; throws on a delta that does not chain. */
function applyAll(events: readonly SseEvent[], topic: string): { epoch: number; version: number; state: Json } {
  let held = { epoch: 0, version: -1, state: {} as Json };
  for (const m of events.flatMap((e) => e.data)) {
    if (m.topic !== topic) continue;
    if (m.type === 'snapshot') held = { epoch: m.epoch, version: m.version, state: { ...m.fields } };
    else if (m.type === 'delta') {
      if (m.epoch !== held.epoch || m.base !== held.version) throw new Error(`delta ${m.base}→${m.version} does not apply to v${held.version}`);
      for (const [k, v] of Object.entries(m.changes)) {
        if (v === null) delete held.state[k];
        else held.state[k] = v;
      }
      held.version = m.version;
    }
  }
  return held;
}

function post(port: number, path: string, body: unknown, method = 'POST'): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const data = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const req = request({ host: '127.0.0.1', port, path, method, agent: false, headers: { 'content-type': 'application/json', 'content-length': data.length } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

// Many fields that do not change, so a merged delta is smaller than a snapshot.
const STATICS: Record<string, FieldValue> = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`ref${i}`, `static value ${i}`]));

describe('GET /sse', () => {
  it('streams the snapshot and then every delta as JSON events with the protocol epochs and versions; ids are <session>.<seq>', async () => {
    const server = await h.server();
    const topic = 'sse.basic';
    server.publish(topic, { bid: 100, n: 0, name: 'basic' });
    const s = await RawSse.open(server.port, `/sse?topics=${topic}`);
    expect(s.status).toBe(200);
    expect(s.headers['content-type']).toMatch(/^text\/event-stream/);
    await waitFor(() => s.messages('ack').length === 1, 5_000, 'the subscription ack');
    for (let i = 1; i <= 5; i++) server.publish(topic, { bid: 100 + i, n: i, ...(i === 3 ? { name: null } : {}) });
    await waitFor(() => applyAll(s.events, topic).version === 6, 5_000, 'the deltas');

    const first = s.events[0]!.data;
    expect(first[0]).toMatchObject({ type: 'session', resumed: false, subs: [] });
    expect(first[1]).toMatchObject({ type: 'welcome', protocol: 1 });
    expect(s.messages('snapshot')).toHaveLength(1);
    expect(s.messages('ack')[0]).toMatchObject({ id: 1, count: 1 });
    // Each event is one server frame: one session, sequence numbers 1, 2, 3 …
    expect(new Set(s.events.map((e) => e.id.split('.')[0]))).toEqual(new Set([s.session]));
    expect(s.events.map((e) => e.seq)).toEqual(s.events.map((_, i) => i + 1));
    expect(s.messages('delta').map((d) => [d.base, d.version, d.updates])).toEqual([1, 2, 3, 4, 5].map((b) => [b, b + 1, 1]));
    const want = serverState(server, topic);
    expect(applyAll(s.events, topic)).toEqual({ epoch: want.epoch, version: want.version, state: want.state });
    // The same (epoch, version) as the HTTP snapshot.
    expect(s.messages('snapshot')[0]!.epoch).toBe(want.epoch);
  });

  it.each([
    { kind: 'delta', historySize: 256 },
    { kind: 'snapshot', historySize: 8 },
  ] as const)('a reconnect with Last-Event-ID resumes the session by $kind, from the point that event left the client at', async ({ kind, historySize }) => {
    const server = await h.server({ limits: { historySize } });
    const topic = `sse.resume.${kind}`;
    server.publish(topic, { bid: 100, n: 0, ...STATICS });
    const s = await RawSse.open(server.port, `/sse?topics=${topic}&maxRate=0`);
    await waitFor(() => s.messages('ack').length === 1, 5_000, 'the subscription ack');
    for (let i = 1; i <= 6; i++) {
      server.publish(topic, { bid: 100 + i, n: i });
      await waitFor(() => applyAll(s.events, topic).version === i + 1, 5_000, `v${i + 1}`); // one event per update
    }
    await waitFor(() => applyAll(s.events, topic).version === 7, 5_000, 'the live deltas');
    // The client saw events up to #3 only: the rest were lost with the connection.
    const lastSeen = s.events.findIndex((e) => e.data.some((m) => m.type === 'delta' && m.version === 4));
    const seen = s.events.slice(0, lastSeen + 1);
    const held = applyAll(seen, topic);
    expect(held.version).toBe(4);
    const maxSeq = s.events.at(-1)!.seq;
    s.abort();
    await waitFor(() => server.stats.connections === 0, 5_000, 'the server to see the stream go');
    for (let k = 0; k < 20; k++) server.publish(topic, { bid: 99, gapFill: k });
    const before = { ...server.stats };

    // Header form (as EventSource sends it) for one case, query form (as the SDK sends it) for the other.
    const id = seen.at(-1)!.id;
    const r = kind === 'delta' ? await RawSse.open(server.port, `/sse?topics=${topic}`, { 'last-event-id': id }) : await RawSse.open(server.port, `/sse?topics=${topic}&lastEventId=${encodeURIComponent(id)}`);
    await waitFor(() => r.messages('ack').length === 1, 5_000, 'the restored subscription');

    expect(r.events[0]!.data[0]).toEqual({ type: 'session', session: s.session, resumed: true, subs: [{ id: 1, paused: false }] });
    // Event numbers keep growing across the streams of one session.
    expect(r.events[0]!.seq).toBe(maxSeq + 1);
    const catchUp = r.messages().find((m) => m.topic === topic)!;
    const want = serverState(server, topic);
    if (kind === 'delta') {
      expect(catchUp).toMatchObject({ type: 'delta', epoch: want.epoch, base: 4, version: want.version, updates: want.version - 4 });
      expect(server.stats.catchUpDeltas - before.catchUpDeltas).toBe(1);
    } else {
      expect(catchUp).toMatchObject({ type: 'snapshot', epoch: want.epoch, version: want.version });
      expect(server.stats.catchUpSnapshots - before.catchUpSnapshots).toBe(1);
    }
    expect(applyAll([...seen, ...r.events], topic)).toEqual({ epoch: want.epoch, version: want.version, state: want.state });
  });

  it('a Last-Event-ID the server does not know (expired, other server) starts a new session with snapshots', async () => {
    const server = await h.server();
    server.publish('sse.unknown', { a: 1 });
    const r = await RawSse.open(server.port, '/sse?topics=sse.unknown', { 'last-event-id': 'AAAAAAAAAAAAAAAA.42' });
    await waitFor(() => r.messages('snapshot').length === 1, 5_000, 'the snapshot');
    expect(r.events[0]!.data[0]).toMatchObject({ type: 'session', resumed: false });
    expect(r.session).not.toBe('AAAAAAAAAAAAAAAA');
    expect(r.events[0]!.seq).toBe(1);
  });

  it('takes commands as JSON POSTs to /sse/<session> and answers on the stream, in order', async () => {
    const server = await h.server();
    server.publish('cmd.a', { x: 1 });
    server.publish('cmd.b', { y: 1 });
    const s = await RawSse.open(server.port, '/sse');
    await waitFor(() => s.events.length > 0, 5_000, 'the first event');
    const path = `/sse/${s.session}`;
    expect(await post(server.port, path, [{ type: 'subscribe', id: 7, topics: ['cmd.*'], maxRate: 0 }, { type: 'pause', id: 7 }])).toEqual({ status: 202, body: { accepted: 2 } });
    await waitFor(() => s.messages('ack').length === 2, 5_000, 'both acks');
    expect(s.messages('snapshot').map((m) => m.topic).sort()).toEqual(['cmd.a', 'cmd.b']);
    server.publish('cmd.a', { x: 2 }); // held back while paused
    await post(server.port, path, [{ type: 'resume', id: 7 }, { type: 'publish', id: 8, topic: 'cmd.c', fields: { z: { $bigint: '1234567890123456789' } } }]);
    await waitFor(() => s.messages('ack').some((a) => a.id === 8), 5_000, 'the publish ack');
    expect(applyAll(s.events, 'cmd.a').state).toEqual({ x: 2 });
    expect(server.store.get('cmd.c')!.state.get('z')).toBe(1234567890123456789n);
    // Errors carry the protocol codes, on the stream (bad pattern) or as the HTTP answer (bad command).
    await post(server.port, path, { type: 'subscribe', id: 9, topics: ['px.>.x'] });
    await waitFor(() => s.messages('error').length === 1, 5_000, 'the error');
    expect(s.messages('error')[0]).toMatchObject({ code: 11, name: 'TICKFAN_ERR_BAD_PATTERN', id: 9 });
    expect(await post(server.port, path, '{nope')).toMatchObject({ status: 400, body: { error: { code: 3 } } });
    expect(await post(server.port, path, { type: 'launch' })).toMatchObject({ status: 400, body: { error: { code: 2 } } });
    expect(await post(server.port, '/sse/AAAAAAAAAAAAAAAA', { type: 'ping' })).toMatchObject({ status: 404 });
    // DELETE ends the session: the stream's last event says so.
    expect(await post(server.port, path, '', 'DELETE')).toEqual({ status: 200, body: { closed: true } });
    await waitFor(() => s.ended, 5_000, 'the stream to end');
    expect(s.messages('close')).toEqual([{ type: 'close', code: 1000, reason: 'session closed by the client' }]);
    expect(await post(server.port, path, { type: 'ping' })).toMatchObject({ status: 404 });
  });

  it('a command body that never finishes is answered 408 after bodyTimeoutMs (the POST /publish answer) and the stream goes on', async () => {
    const server = await h.server({ bodyTimeoutMs: 300 });
    const s = await RawSse.open(server.port, '/sse');
    await waitFor(() => s.events.length > 0, 5_000, 'the first event');
    const t0 = Date.now();
    const answer = await new Promise<{ status: number; body: any; ms: number }>((resolve, reject) => {
      const headers = { 'content-type': 'application/json', 'content-length': 1000 };
      const req = request({ host: '127.0.0.1', port: server.port, path: `/sse/${s.session}`, method: 'POST', agent: false, headers }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text), ms: Date.now() - t0 }));
      });
      req.on('error', reject);
      req.write('[{"type":"subscribe","id":5,"topics":["px.>"]'); // the rest never comes
      cleanup.push(() => req.destroy());
    });
    expect(answer.status).toBe(408);
    expect(answer.body).toEqual({ error: { code: ErrorCode.BAD_REQUEST, name: errorCodeName(ErrorCode.BAD_REQUEST), message: 'the request body did not arrive within 300 ms' } });
    expect(answer.ms).toBeGreaterThanOrEqual(250);
    expect(answer.ms).toBeLessThan(1_500);
    // The half-sent command did nothing; the session still takes commands.
    expect(await post(server.port, `/sse/${s.session}`, { type: 'ping', nonce: 7 })).toEqual({ status: 202, body: { accepted: 1 } });
    await waitFor(() => s.messages('pong').length === 1, 5_000, 'the pong');
    expect(s.messages('ack')).toEqual([]);
    expect(s.ended).toBe(false);
  });

  it('applies the admission rules of WebSocket upgrades: origins and tokens (?token=)', async () => {
    const secret = 'sse-test-secret-that-is-at-least-32-characters';
    const server = await h.server({ allowedOrigins: ['https://desk.example'], auth: { secret } });
    server.publish('adm.a', { a: 1 });
    const jwt = await new SignJWT({ subscribe: ['adm.>'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('t').sign(new TextEncoder().encode(secret));

    const noToken = await RawSse.open(server.port, '/sse?topics=adm.a');
    await waitFor(() => noToken.ended, 5_000, 'the refusal');
    expect(noToken.status).toBe(401);
    expect(JSON.parse(noToken.body).error.code).toBe(21);

    const badOrigin = await RawSse.open(server.port, `/sse?topics=adm.a&token=${jwt}`, { origin: 'https://evil.example' });
    await waitFor(() => badOrigin.ended, 5_000, 'the refusal');
    expect(badOrigin.status).toBe(403);

    const ok = await RawSse.open(server.port, `/sse?topics=adm.a&token=${jwt}`, { origin: 'https://desk.example' });
    expect(ok.status).toBe(200);
    expect(ok.headers['access-control-allow-origin']).toBe('https://desk.example');
    await waitFor(() => ok.messages('snapshot').length === 1, 5_000, 'the snapshot');
    // The grants apply: outside them is a permission error on the stream.
    await post(server.port, `/sse/${ok.session}`, { type: 'subscribe', id: 2, topics: ['px.>'] });
    await waitFor(() => ok.messages('error').length === 1, 5_000, 'the permission error');
    expect(ok.messages('error')[0]).toMatchObject({ code: 20, id: 2 });
  });

  it('survives streams and commands dropped by the client mid-request (during token checks, resumes, body reads)', async () => {
    const secret = 'sse-test-secret-that-is-at-least-32-characters';
    const server = await h.server({ auth: { secret } });
    server.publish('ab.a', { a: 1 });
    const jwt = await new SignJWT({ subscribe: ['>'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('t').sign(new TextEncoder().encode(secret));
    const live = await RawSse.open(server.port, `/sse?topics=ab.a&token=${jwt}`);
    await waitFor(() => live.messages('snapshot').length === 1, 5_000, 'a healthy stream');
    const errors: unknown[] = [];
    const onError = (err: unknown) => errors.push(err);
    process.on('uncaughtException', onError);
    process.on('unhandledRejection', onError);
    try {
      const drops: Promise<void>[] = [];
      for (let i = 0; i < 200; i++) {
        drops.push(
          new Promise<void>((resolve) => {
            const resume = i % 2 ? { 'last-event-id': live.events.at(-1)!.id.replace(/\.\d+$/, '.1') } : {};
            const req = request({ host: '127.0.0.1', port: server.port, path: `/sse?topics=ab.a&token=${jwt}`, agent: false, headers: resume });
            req.on('error', () => resolve());
            req.on('close', () => resolve());
            req.end();
            setTimeout(() => req.destroy(), i % 7);
          }),
        );
        if (i % 3 === 0) {
          drops.push(
            new Promise<void>((resolve) => {
              const req = request({ host: '127.0.0.1', port: server.port, path: `/sse/${live.session}`, method: 'POST', agent: false, headers: { 'content-length': 1000 } });
              req.on('error', () => resolve());
              req.on('close', () => resolve());
              req.write('[{"type":"ping"');
              setTimeout(() => req.destroy(), i % 5);
            }),
          );
        }
      }
      await Promise.all(drops);
      // Still serving, with the handlers above still listening: a command and a new stream (through the
      // same token check) made after the drops are answered, so the server has run past the dropped ones.
      expect((await post(server.port, '/sse/AAAAAAAAAAAAAAAA', [])).status).toBe(404);
      const after = await RawSse.open(server.port, `/sse?topics=ab.a&token=${jwt}`);
      await waitFor(() => after.messages('snapshot').length === 1, 5_000, 'a new stream');
      after.abort();
    } finally {
      process.off('uncaughtException', onError);
      process.off('unhandledRejection', onError);
    }
    expect(errors).toEqual([]);
    // Every dropped stream forgotten.
    live.abort();
    await waitFor(() => server.stats.connections === 0, 5_000, 'every connection to be forgotten');
  });

  it('counts towards the connection caps', async () => {
    const server = await h.server({ maxConnections: 1 });
    const first = await RawSse.open(server.port, '/sse');
    expect(first.status).toBe(200);
    await waitFor(() => server.stats.connections === 1, 5_000, 'the stream to count');
    const second = await RawSse.open(server.port, '/sse');
    await waitFor(() => second.ended, 5_000, 'the refusal');
    expect(second.status).toBe(503);
    first.abort();
    await waitFor(() => server.stats.connections === 0, 5_000, 'the stream to be forgotten');
    const third = await RawSse.open(server.port, '/sse');
    expect(third.status).toBe(200);
  });
});

describe('SSE backpressure', () => {
  // Large values so that kernel socket buffers fill after a few MB.
  const BLOB = 'x'.repeat(19_990);
  const blob = (i: number): string => BLOB + String(i).padStart(10, '0');

  async function stalled(server: TickfanServer, topic: string): Promise<{ s: RawSse; i: number }> {
    server.publish(topic, { n: 0, blob: blob(0) });
    const s = await RawSse.open(server.port, `/sse?topics=${topic}`);
    await waitFor(() => s.messages('ack').length === 1, 5_000, 'the subscription');
    s.pause();
    const before = server.stats.slowLaneEntries;
    let i = 1;
    while (server.stats.slowLaneEntries === before) {
      if (i > 3_000) throw new Error('the stream never entered the slow lane');
      for (let k = 0; k < 10; k++, i++) server.publish(topic, { n: i, blob: blob(i) });
      await sleep(1); // pacing, not a wait: publish until the stream enters the slow lane
    }
    return { s, i };
  }

  it('a stalled reader leaves the fast path, holds no more than the threshold, and on drain gets one exact catch-up', async () => {
    const server = await h.server({ slowThresholdBytes: 64 * 1024, slowTimeoutMs: 8_000 });
    const topic = 'bp.drain';
    const { s, i } = await stalled(server, topic);
    const bytesAtSlow = server.stats.bytesOut;
    for (let k = 0; k < 50; k++) server.publish(topic, { n: i + k, blob: blob(i + k), [`late${k % 3}`]: k });
    await http(server.port, 'GET', '/healthz'); // a round trip: the server has run past those publishes and anything it queued for them
    // Updates while in the slow lane are held back, not queued.
    expect(server.stats.bytesOut - bytesAtSlow).toBeLessThan(64 * 1024);
    s.resume();
    await waitFor(() => applyAll(s.events, topic).version === server.store.get(topic)!.version, 10_000, 'the catch-up after the drain');
    const want = serverState(server, topic);
    expect(applyAll(s.events, topic).state).toEqual(want.state);
    expect(server.stats.slowDisconnects).toBe(0);
    const jumps = s.messages().filter((m) => m.topic === topic && (m.type === 'snapshot' || m.updates > 1));
    expect(jumps).toHaveLength(2); // the first image, then the one catch-up
  });

  it('a reader stalled past slowTimeoutMs is cut, and the server forgets the connection', async () => {
    const server = await h.server({ slowThresholdBytes: 64 * 1024, slowTimeoutMs: 1_000 });
    const { s } = await stalled(server, 'bp.cut');
    const t0 = Date.now();
    await waitFor(() => server.stats.slowDisconnects === 1, 5_000, 'the slow-consumer disconnect');
    expect(Date.now() - t0).toBeLessThan(3_000);
    await waitFor(() => server.stats.connections === 0, 5_000, 'the connection to be forgotten');
    s.resume();
    await waitFor(() => s.ended, 10_000, 'the client to see the stream end');
  });
});

describe('SDK over SSE', () => {
  /** fetch() that records every command POSTed. */
  function recordingFetch(): { fetch: FetchLike; commands: Json[] } {
    const commands: Json[] = [];
    const f: FetchLike = (url, init) => {
      if (init?.method === 'POST' && typeof init.body === 'string') commands.push(...JSON.parse(init.body));
      return fetch(url, init);
    };
    return { fetch: f, commands };
  }

  it("transport: 'sse' subscribes, publishes, pauses, and after a cut resumes its session by merged delta", async () => {
    const server = await h.server();
    const topic = 'sdk.sse';
    server.publish(topic, { bid: 100, n: 0, ...STATICS });
    const proxy = await TcpProxy.start(server.port);
    cleanup.push(() => proxy.close());
    const rec = recordingFetch();
    const client = h.client(proxy.port, { transport: 'sse', fetch: rec.fetch });
    const sub = client.subscribe(topic);
    const ups = record(sub);
    await sub.ready;
    expect(client.transport).toBe('sse');
    const ack = await client.publish(topic, { bid: 101, n: 1 });
    expect(ack).toMatchObject({ topic, version: 2 });
    sub.pause();
    server.publish(topic, { n: 2 });
    server.publish(topic, { n: 3 });
    sub.resume();
    await waitFor(() => caughtUp(client, server, topic), 5_000, 'the catch-up after resume');

    const sent = rec.commands.length;
    proxy.cut();
    for (let k = 0; k < 10; k++) server.publish(topic, { bid: 99, gapFill: k });
    await waitFor(() => client.stats.reconnects === 1 && client.state === 'connected', 5_000, 'the reconnect');
    await waitFor(() => caughtUp(client, server, topic), 5_000, 'the resumed client to catch up');

    // The server restored the subscription from Last-Event-ID: the SDK did not send it again.
    expect(rec.commands.slice(sent).filter((c) => c.type === 'subscribe')).toEqual([]);
    expect(client.transport).toBe('sse');
    expect(client.stats).toMatchObject({ gaps: 0, sequenceGaps: 0, reconnects: 1, catchUpSnapshots: 0 });
    expect(client.stats.catchUpDeltas).toBe(2); // after resume(), and after the reconnect
    expect(chainProblem(ups)).toBeNull();
    expect(ups.at(-1)!.state).toEqual(serverState(server, topic).state);
  });

  it('when the server forgot the session, the SDK resubscribes with the versions it holds', async () => {
    const server = await h.server();
    const topic = 'sdk.forgot';
    server.publish(topic, { n: 0, ...STATICS });
    const proxy = await TcpProxy.start(server.port);
    cleanup.push(() => proxy.close());
    const client = h.client(proxy.port, { transport: 'sse' });
    const sub = client.subscribe(topic);
    await sub.ready;
    await waitFor(() => client.state === 'connected', 5_000, 'connected');
    // End the session from the side (as a TTL expiry would), then cut the stream.
    const sid = (client as unknown as { conn: { session: string } }).conn.session;
    expect((await post(server.port, `/sse/${sid}`, '', 'DELETE')).status).toBe(200);
    for (let k = 1; k <= 5; k++) server.publish(topic, { n: k });
    await waitFor(() => client.stats.reconnects === 1 && caughtUp(client, server, topic), 5_000, 'the resubscribe');
    expect(client.stats).toMatchObject({ catchUpDeltas: 1, catchUpSnapshots: 0, gaps: 0 });
    expect(client.stateOf(topic)!.state).toEqual(serverState(server, topic).state);
  });

  it('carries every value type exactly (bigint, bytes, -0, NaN, ±Infinity, strings, booleans, deletes)', async () => {
    const server = await h.server();
    const topic = 'sdk.values';
    const values: Record<string, FieldValue> = {
      big: 2n ** 62n + 1n,
      neg: -(2n ** 60n),
      bytes: new Uint8Array([0, 1, 2, 250, 255]),
      negZero: -0,
      nan: NaN,
      inf: Infinity,
      ninf: -Infinity,
      float: 0.1 + 0.2,
      int: 42,
      text: 'a "quoted" line\nand ünïcödé ✓',
      yes: true,
      no: false,
      ['__proto__']: 'a field, not a prototype',
    };
    server.publish(topic, { ...values, gone: 1 });
    server.publish(topic, { gone: null });
    const client = h.client(server, { transport: 'sse' });
    const sub = client.subscribe(topic);
    await sub.ready;
    const held = client.stateOf(topic)!.state;
    for (const [k, v] of Object.entries(values)) {
      if (v instanceof Uint8Array) expect([...(held[k] as Uint8Array)]).toEqual([...v]);
      else expect(Object.is(held[k], v), `${k}: ${String(held[k])} vs ${String(v)}`).toBe(true);
    }
    expect('gone' in held).toBe(false);
    // And up: a publish over SSE lands exactly.
    await client.publish('sdk.values.up', values);
    const up = server.store.get('sdk.values.up')!.state;
    for (const [k, v] of Object.entries(values)) {
      if (v instanceof Uint8Array) expect([...(up.get(k) as Uint8Array)]).toEqual([...v]);
      else expect(Object.is(up.get(k), v), k).toBe(true);
    }
  });

  it("'auto' falls back to SSE when the WebSocket cannot open, and stays on WebSocket when it can", async () => {
    const server = await h.server();
    server.publish('auto.a', { a: 1 });
    // A WebSocket that a proxy kills before it opens.
    class Blocked {
      binaryType = 'arraybuffer';
      readyState = 0;
      onopen: (() => void) | null = null;
      onmessage = null;
      onerror: (() => void) | null = null;
      onclose: ((ev: { code: number; reason: string }) => void) | null = null;
      constructor() {
        setTimeout(() => this.onclose?.({ code: 1006, reason: '' }), 5);
      }
      send(): void {}
      close(): void {}
    }
    const fallback: TickfanClient = h.client(server, { WebSocket: Blocked as unknown as WebSocketCtor });
    const sub = fallback.subscribe('auto.a');
    await sub.ready;
    expect(fallback.transport).toBe('sse');
    expect(fallback.stats.reconnects).toBe(0); // the first connection is the SSE one

    const direct = h.client(server);
    const sub2 = direct.subscribe('auto.a');
    await sub2.ready;
    expect(direct.transport).toBe('ws');
  });
});

describe('SSE with fan-out workers', () => {
  it('commands reach the session whichever worker they land on, and a reconnect on another worker resumes it', async () => {
    const server = await h.server({ workers: 2 });
    const topic = 'wk.sse';
    server.publish(topic, { n: 0, ...STATICS });
    const workerOf = (s: RawSse) => s.messages('welcome')[0]?.server as string;
    let s = await RawSse.open(server.port, `/sse?topics=${topic}`);
    await waitFor(() => s.messages('ack').length === 1, 5_000, 'the subscription');
    // Each POST is a new TCP connection: the kernel spreads them over both workers.
    for (let id = 2; id <= 13; id++) {
      expect((await post(server.port, `/sse/${s.session}`, { type: 'subscribe', id, topics: [topic] })).status).toBe(202);
    }
    await waitFor(() => s.messages('ack').length === 13, 5_000, 'every command answered on the stream');
    expect(s.messages('error')).toEqual([]);

    // Reconnects (Last-Event-ID) until one lands on the other worker: it takes the session over.
    const sid = s.session;
    const imageOf = (held: { epoch: number; version: number; state: Json }): SseEvent => ({ id: '', seq: 0, data: [{ type: 'snapshot', topic, ...held, fields: held.state }] });
    let history: SseEvent[] = s.events;
    let moved = false;
    for (let attempt = 0; attempt < 20 && !moved; attempt++) {
      await waitFor(() => applyAll(history, topic).version === server.store.get(topic)!.version, 5_000, 'the stream to be current');
      const from = workerOf(s);
      const held = applyAll(history, topic);
      const id = s.events.at(-1)!.id;
      s.abort();
      for (let k = 0; k < 3; k++) server.publish(topic, { n: held.version + k });
      const next = await RawSse.open(server.port, `/sse?topics=${topic}`, { 'last-event-id': id });
      await waitFor(() => next.messages('ack').length === 13, 5_000, 'the restored subscriptions');
      expect(next.events[0]!.data[0]).toMatchObject({ type: 'session', session: sid, resumed: true });
      // Read the stream's events afresh each time: deltas may still be on their way.
      const resumed = () => [imageOf(held), ...next.events];
      await waitFor(() => applyAll(resumed(), topic).version === server.store.get(topic)!.version, 5_000, 'the resumed stream to catch up');
      history = resumed();
      // It went on from exactly what the client held: no snapshot, the first delta starts there.
      // (Workers get updates from the sequencer a moment later: the catch-up may be merged or live deltas.)
      const first = next.messages().find((m) => m.topic === topic && (m.type === 'delta' || m.type === 'snapshot'))!;
      expect(first).toMatchObject({ type: 'delta', base: held.version });
      moved = workerOf(next) !== from;
      s = next;
    }
    expect(moved, 'a reconnect landed on the other worker').toBe(true);
    expect(applyAll(history, topic).state).toEqual(serverState(server, topic).state);
  });
});
