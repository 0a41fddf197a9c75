// Hard limits (RELIABILITY 4, 6, 14–16): each violation gets its documented
// error or close code, the offender's other work and every other client carry
// on unchanged (a control subscriber checks it saw every version exactly).

import { request } from 'node:http';
import { connect as tcpConnect } from 'node:net';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { CloseCode, ErrorCode } from '../../src/index.js';
import { Encoder, clientFrame, type AnyMessage } from '../../src/protocol/index.js';
import { Harness, http, isType, sleep, waitFor, wsUrl, type RawClient } from './helpers.js';
import { Op, SECRET, WireClient, closed, controlSubscriber, token, upgrade } from './security-helpers.js';

const h = new Harness();
const extra: { close(): unknown }[] = [];
afterEach(async () => {
  for (const c of extra.splice(0)) await c.close();
  await h.close();
});

const enc = new Encoder();

async function ask(r: RawClient, id: number, ...msgs: Uint8Array[]): Promise<AnyMessage> {
  const before = r.lastSeq;
  r.send(...msgs);
  const { message } = await r.next((m): m is AnyMessage => (m.type === 'error' || m.type === 'ack') && m.id === id, before, 3_000);
  return message;
}

function expectCode(m: AnyMessage, code: number, label = ''): void {
  expect(m, label).toMatchObject({ type: 'error', code });
}

describe('WebSocket limits', () => {
  it('a message over maxPayloadBytes gets VALUE_TOO_LARGE and close 1009; past twice the limit the connection is cut unread', async () => {
    const server = await h.server({ maxPayloadBytes: 4096 });
    const control = await controlSubscriber(h, server);
    const fits = await h.raw(server);
    const before = fits.lastSeq;
    fits.sendRaw(new Uint8Array(4096)); // at the limit: read (and refused as a bad frame), not closed
    await fits.next(isType('error'), before);
    expect(fits.closeCode).toBeNull();

    const over = await h.raw(server);
    over.sendRaw(new Uint8Array(4097));
    await waitFor(() => over.closeCode !== null, 3_000, 'the close');
    expect(over.closeCode).toBe(CloseCode.TOO_BIG);
    expect(over.messages.filter(isType('error')).map((e) => e.code)).toEqual([ErrorCode.VALUE_TOO_LARGE]);

    const huge = await h.raw(server);
    huge.sendRaw(new Uint8Array(64 * 1024));
    await waitFor(() => huge.closeCode !== null, 3_000, 'the cut');
    expect(huge.closeCode).toBe(1006); // no close frame: uWebSockets.js drops it at once
    await waitFor(() => server.stats.connections === 2, 2_000, 'bookkeeping');
    await control.check();
  });

  it('subscriptions per connection: the one past maxSubscriptionsPerConnection gets TOO_MANY_SUBSCRIPTIONS; the others keep working', async () => {
    const server = await h.server({ maxSubscriptionsPerConnection: 3 });
    const control = await controlSubscriber(h, server);
    const r = await h.raw(server);
    for (const id of [1, 2, 3]) expect(await ask(r, id, enc.subscribe(id, [`sl.${id}`], 0, [], []))).toMatchObject({ type: 'ack' });
    expectCode(await ask(r, 4, enc.subscribe(4, ['sl.4'], 0, [], [])), ErrorCode.TOO_MANY_SUBSCRIPTIONS);
    server.publish('sl.2', { v: 1 });
    await r.next((m): m is AnyMessage => m.type === 'snapshot' && m.topic === 'sl.2', 0);
    // Freeing one makes room again.
    expect(await ask(r, 1, enc.unsubscribe(1))).toMatchObject({ type: 'ack' });
    expect(await ask(r, 5, enc.subscribe(5, ['sl.5'], 0, [], []))).toMatchObject({ type: 'ack' });
    expect(r.closeCode).toBeNull();
    await control.check();
  });

  it('topics in total: a publish that would create one past limits.maxTopics gets TOO_MANY_TOPICS (HTTP 507); existing topics carry on', async () => {
    const server = await h.server({ limits: { maxTopics: 4 } });
    const control = await controlSubscriber(h, server); // topic 1
    const r = await h.raw(server);
    for (const id of [1, 2, 3]) expect(await ask(r, id, enc.publish(id, `tt.${id}`, [['v', 1]]))).toMatchObject({ type: 'ack' });
    expectCode(await ask(r, 4, enc.publish(4, 'tt.4', [['v', 1]])), ErrorCode.TOO_MANY_TOPICS);
    expect(await http(server.port, 'POST', '/publish/tt.5', { v: 1 })).toMatchObject({ status: 507, body: { error: { code: ErrorCode.TOO_MANY_TOPICS } } });
    expect(await ask(r, 5, enc.publish(5, 'tt.1', [['v', 2]]))).toMatchObject({ type: 'ack', version: 2 });
    expect(server.store.size).toBe(4);
    await control.check();
  });

  it('fields per topic and field value size: TOO_MANY_FIELDS and VALUE_TOO_LARGE, the topic unchanged', async () => {
    const server = await h.server({ limits: { maxFieldsPerTopic: 4, maxValueBytes: 100 } });
    const control = await controlSubscriber(h, server);
    const r = await h.raw(server);
    expect(await ask(r, 1, enc.publish(1, 'fl.A', [['a', 1], ['b', 2], ['c', 3]]))).toMatchObject({ type: 'ack', version: 1 });
    expectCode(await ask(r, 2, enc.publish(2, 'fl.A', [['d', 4], ['e', 5]])), ErrorCode.TOO_MANY_FIELDS);
    expect(await ask(r, 3, enc.publish(3, 'fl.A', [['d', 4], ['a', null]]))).toMatchObject({ type: 'ack', version: 2 }); // 4 fields less 1: fine
    expectCode(await ask(r, 5, enc.publish(5, 'fl.A', [['s', new Uint8Array(101)]])), ErrorCode.VALUE_TOO_LARGE);
    // Strings count 3 bytes per character (the most UTF-8 can take): 33 fit in 100, 34 do not.
    expect(await ask(r, 6, enc.publish(6, 'fl.A', [['b', 'x'.repeat(33)]]))).toMatchObject({ type: 'ack', version: 3 });
    expectCode(await ask(r, 7, enc.publish(7, 'fl.A', [['s', 'x'.repeat(34)]])), ErrorCode.VALUE_TOO_LARGE);
    expect(await http(server.port, 'POST', '/publish/fl.A', { s: 'y'.repeat(34) })).toMatchObject({ status: 413, body: { error: { code: ErrorCode.VALUE_TOO_LARGE } } });
    expect(Object.fromEntries(server.store.get('fl.A')!.state)).toEqual({ b: 'x'.repeat(33), c: 3, d: 4 });
    expect(r.closeCode).toBeNull();
    await control.check();
  });

  it('topic names: too long or with bad characters get BAD_TOPIC (patterns: BAD_PATTERN)', async () => {
    const server = await h.server({ limits: { maxTopicLength: 20 } });
    const control = await controlSubscriber(h, server);
    const r = await h.raw(server);
    const bad = ['t'.repeat(21), 'bad topic', 'a..b', 'px.AA$PL', '.px', 'px.', 'px.*'];
    for (const [i, name] of bad.entries()) expectCode(await ask(r, 10 + i, enc.publish(10 + i, name, [['v', 1]])), ErrorCode.BAD_TOPIC, name);
    expectCode(await ask(r, 1, enc.subscribe(1, ['p'.repeat(19) + '.*'], 0, [], [])), ErrorCode.BAD_PATTERN);
    expectCode(await ask(r, 2, enc.subscribe(2, ['t'.repeat(21)], 0, [], [])), ErrorCode.BAD_TOPIC);
    expect(await ask(r, 3, enc.publish(3, 't'.repeat(20), [['v', 1]]))).toMatchObject({ type: 'ack' });
    expect((await http(server.port, 'POST', `/publish/${'t'.repeat(21)}`, { v: 1 })).body).toMatchObject({ error: { code: ErrorCode.BAD_TOPIC } });
    expect(server.store.size).toBe(2);
    await control.check();
  });

  it('publishes per second per connection: past maxPublishesPerSecond each gets RATE_LIMITED; the bucket refills; others are not limited', async () => {
    const server = await h.server({ maxPublishesPerSecond: 20 });
    const control = await controlSubscriber(h, server);
    const r = await h.raw(server);
    const other = await h.raw(server);
    const msgs = Array.from({ length: 50 }, (_, i) => enc.publish(i + 1, 'rl.A', [['v', i]]));
    r.send(...msgs);
    await waitFor(() => r.messages.filter((m) => (m.type === 'ack' || m.type === 'error') && m.id > 0).length >= 50, 3_000, '50 answers');
    const answers = r.messages.filter((m): m is Extract<AnyMessage, { type: 'ack' | 'error' }> => (m.type === 'ack' || m.type === 'error') && m.id > 0);
    const acked = answers.filter((m) => m.type === 'ack').length;
    const limited = answers.filter((m) => m.type === 'error' && m.code === ErrorCode.RATE_LIMITED).length;
    const seen = JSON.stringify(answers.map((m) => (m.type === 'ack' ? 'a' : m.code)));
    expect(acked, seen).toBeGreaterThanOrEqual(20);
    expect(acked, seen).toBeLessThanOrEqual(22); // the burst, plus what refilled meanwhile
    expect(acked + limited, seen).toBe(50);
    expect(server.store.get('rl.A')!.version).toBe(acked);
    // Another connection has its own bucket.
    expect(await ask(other, 1, enc.publish(1, 'rl.B', [['v', 1]]))).toMatchObject({ type: 'ack' });
    await sleep(100); // time is the signal: the bucket refills at 20 tokens/s, so 100 ms gives back two
    expect(await ask(r, 100, enc.publish(100, 'rl.A', [['v', 1]]))).toMatchObject({ type: 'ack' });
    expect(r.closeCode).toBeNull();
    await control.check();
  });
});

describe('connection limits', () => {
  it('connection N+1 in total gets 503 with TOO_MANY_CONNECTIONS; a freed slot is usable again', async () => {
    const server = await h.server({ maxConnections: 3 });
    const control = await controlSubscriber(h, server);
    const a = await upgrade(wsUrl(server));
    const b = await upgrade(wsUrl(server));
    const c = await upgrade(wsUrl(server));
    expect([a.ok, b.ok]).toEqual([true, true]);
    expect(c).toMatchObject({ ok: false, status: 503, body: { error: { code: ErrorCode.TOO_MANY_CONNECTIONS } } });
    if (a.ok) {
      a.ws.close();
      await closed(a.ws);
    }
    await waitFor(() => server.stats.connections === 2, 2_000, 'the slot to free');
    const d = await upgrade(wsUrl(server));
    expect(d.ok).toBe(true);
    for (const u of [b, d]) if (u.ok) extra.push({ close: () => (u.ws.close(), closed(u.ws)) });
    await control.check();
  });

  it('connection N+1 from one IP gets 429 with TOO_MANY_CONNECTIONS', async () => {
    const server = await h.server({ maxConnectionsPerIp: 3, maxConnections: 100 });
    const control = await controlSubscriber(h, server); // one of the three
    const ups = [await upgrade(wsUrl(server)), await upgrade(wsUrl(server)), await upgrade(wsUrl(server))];
    expect(ups.map((u) => (u.ok ? 101 : u.status))).toEqual([101, 101, 429]);
    expect(ups[2]).toMatchObject({ body: { error: { code: ErrorCode.TOO_MANY_CONNECTIONS, name: 'TICKFAN_ERR_TOO_MANY_CONNECTIONS' } } });
    for (const u of ups) if (u.ok) extra.push({ close: () => (u.ws.close(), closed(u.ws)) });
    await control.check();
  });

  it('a close storm during publishing: hundreds of subscribers dropped at once, bookkeeping back to baseline, the control exact', async () => {
    const server = await h.server();
    const control = await controlSubscriber(h, server);
    for (let i = 0; i < 20; i++) server.publish(`cs.${i}`, { v: 0 });
    const N = 300;
    const sockets = await Promise.all(
      Array.from(
        { length: N },
        () =>
          new Promise<WebSocket>((resolve, reject) => {
            const ws = new WebSocket(wsUrl(server));
            ws.once('open', () => {
              ws.send(clientFrame([enc.subscribe(1, ['cs.*'], 0, [], [])]));
              resolve(ws);
            });
            ws.once('error', reject);
          }),
      ),
    );
    await waitFor(() => server.stats.subscriptions === N + 1, 5_000, 'every subscription');
    let running = true;
    const feed = (async () => {
      for (let i = 1; running; i++) {
        for (let t = 0; t < 20; t++) server.publish(`cs.${t}`, { v: i });
        await sleep(1); // pacing, not a wait: one round of publishes per turn or so
      }
    })();
    const deliveredBefore = server.stats.deliveries;
    await waitFor(() => server.stats.deliveries - deliveredBefore >= 3 * 20 * N, 5_000, 'three rounds of updates to every subscriber');
    for (const ws of sockets) ws.terminate(); // all at once, mid-stream
    // The server forgets them all while the publishing goes on.
    await waitFor(() => server.stats.connections === 1 && server.stats.subscriptions === 1, 5_000, 'the closes to be handled mid-stream');
    running = false;
    await feed;
    await waitFor(() => server.stats.connections === 1 && server.stats.subscriptions === 1, 5_000, 'bookkeeping back to baseline');
    await control.check();
  });
});

describe('HTTP limits', () => {
  function post(port: number, path: string, head: Record<string, string | number>, body: (req: ReturnType<typeof request>) => void) {
    return new Promise<{ status: number; body: string; sentBytes: number }>((resolve, reject) => {
      let sentBytes = 0;
      const req = request({ host: '127.0.0.1', port, method: 'POST', path, agent: false, headers: head }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), sentBytes }));
      });
      req.on('error', (err) => (sentBytes > 0 ? undefined : reject(err)));
      const write = req.write.bind(req);
      req.write = ((chunk: Buffer, ...rest: never[]) => {
        sentBytes += chunk.length;
        return write(chunk, ...rest);
      }) as typeof req.write;
      body(req);
    });
  }

  it('a body over maxBodyBytes gets 413 (VALUE_TOO_LARGE) and is never read past the limit, with or without Content-Length', async () => {
    const server = await h.server({ maxBodyBytes: 1024 });
    const control = await controlSubscriber(h, server);
    const port = server.port;
    const small = await http(port, 'POST', '/publish/hb.A', JSON.stringify({ s: 'x'.repeat(1000) }));
    expect(small.status).toBe(200);
    const over = await http(port, 'POST', '/publish/hb.A', JSON.stringify({ s: 'x'.repeat(1020) }));
    expect(over).toMatchObject({ status: 413, body: { error: { code: ErrorCode.VALUE_TOO_LARGE } } });

    // 64 MiB declared: answered before the body is sent.
    const declared = await post(port, '/publish/hb.A', { 'content-length': 64 * 1024 * 1024 }, (req) => {
      req.flushHeaders();
    });
    expect(declared.status).toBe(413);
    // Chunked, streamed without end: answered once the limit passes; the rest is never taken.
    const chunk = Buffer.alloc(16 * 1024, 0x20);
    const streamed = await post(port, '/publish/hb.A', { 'transfer-encoding': 'chunked' }, (req) => {
      let n = 0;
      const pump = () => {
        while (n < 4096 && req.write(chunk)) n++;
        if (n < 4096 && !req.destroyed) req.once('drain', pump);
      };
      req.on('response', () => req.destroy());
      pump();
    });
    expect(streamed.status).toBe(413);
    expect(streamed.sentBytes).toBeLessThan(64 * 1024 * 1024);
    expect(server.store.get('hb.A')!.version).toBe(1);
    await control.check();
  });

  it('a body that trickles in is answered 408 after bodyTimeoutMs and the connection closed', async () => {
    const server = await h.server({ bodyTimeoutMs: 300 });
    const control = await controlSubscriber(h, server);
    const s = tcpConnect(server.port, '127.0.0.1');
    let answer = '';
    let ended = false;
    s.on('data', (d: Buffer) => (answer += d.toString()));
    s.on('close', () => (ended = true));
    s.on('error', () => {});
    const t0 = Date.now();
    s.write('POST /publish/sl.A HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"v":');
    const drip = setInterval(() => s.write(' '), 50);
    await waitFor(() => ended, 3_000, 'the server to close the slow request');
    clearInterval(drip);
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    expect(Date.now() - t0).toBeLessThan(1_500);
    expect(server.store.get('sl.A')).toBeUndefined();
    await control.check();
  });
});

describe('aborts mid-handler', () => {
  it('thousands of HTTP requests dropped by the client during async work (token checks, metrics): 0 crashes, 0 writes after abort', async () => {
    const logged: string[] = [];
    const server = await h.server({ auth: { secret: SECRET }, log: (level, msg) => void (level === 'error' && logged.push(msg)) });
    const jwt = await token({ subscribe: ['>'], publish: ['>'] }, { expSec: 600 });
    const control = await controlSubscriber(h, server, { client: { token: jwt } });
    server.publish('ab.A', { v: 1 });
    const requests = [
      `GET /snapshot/ab.A?token=${jwt} HTTP/1.1\r\nHost: x\r\n\r\n`,
      `GET /topics?pattern=ab.*&token=${jwt} HTTP/1.1\r\nHost: x\r\n\r\n`,
      `POST /publish/ab.A HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${jwt}\r\nContent-Length: 9\r\n\r\n{"v":2}  `,
      `POST /publish/ab.B HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${jwt}\r\nContent-Length: 50\r\n\r\n{"v":`,
      'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n',
    ];
    let answered = 0;
    let dropped = 0;
    const one = (i: number) =>
      new Promise<void>((resolve) => {
        const s = tcpConnect(server.port, '127.0.0.1');
        s.on('error', () => {});
        s.on('data', () => answered++);
        s.on('close', () => resolve());
        s.write(requests[i % requests.length]!, () => {
          // Drop it at once, after a tick, or a moment later: mid-verification, mid-render, mid-body.
          const wait = i % 3 === 0 ? 0 : i % 3 === 1 ? 1 : Math.floor(Math.random() * 5);
          setTimeout(() => {
            dropped++;
            s.destroy();
          }, wait);
        });
      });
    for (let i = 0; i < 3_000; i += 100) await Promise.all(Array.from({ length: 100 }, (_, j) => one(i + j)));
    expect(dropped).toBe(3_000);
    // A request of each kind made after the drops is answered: their token checks and renders were queued behind the dropped ones'.
    for (const path of [`/snapshot/ab.A?token=${jwt}`, `/topics?pattern=ab.*&token=${jwt}`, '/metrics', '/healthz']) {
      expect((await http(server.port, 'GET', path)).status, path).toBe(200);
    }
    expect(logged).toEqual([]);
    expect(server.stats.errorsByCode.get(ErrorCode.INTERNAL) ?? 0).toBe(0);
    expect(answered).toBeLessThan(3_000); // most were dropped before their answer
    await control.check();
  });
});

describe('idle timeout', () => {
  it('a peer that goes silent (no pong) is dropped within idleTimeoutSec; one that answers pings stays', async () => {
    const server = await h.server({ idleTimeoutSec: 8 });
    const control = await controlSubscriber(h, server); // the SDK (ws) answers pings
    const silent = await WireClient.open(server.port);
    extra.push({ close: () => silent.destroy() });
    const t0 = Date.now();
    await waitFor(() => silent.ended, 14_000, 'the silent peer to be dropped');
    const after = Date.now() - t0;
    // uWebSockets.js keeps time in 4-second ticks.
    expect(after).toBeGreaterThan(3_000);
    expect(after).toBeLessThan(8_000 + 4_500);
    expect(silent.frames.some((f) => f.opcode === Op.PING)).toBe(true); // it was asked
    await waitFor(() => server.stats.connections === 1, 2_000, 'bookkeeping');
    await control.check();
  }, 20_000);
});
