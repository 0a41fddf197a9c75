// Connection tokens and per-topic permissions (RELIABILITY 8–10): every bad
// token is refused (0 accepted), a token expiring mid-session ends it on time
// with 4010, and every subscribe or publish outside the grant is answered with
// PERMISSION_DENIED for that topic while nothing about the topic leaks.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { CloseCode, ErrorCode, TickfanError } from '../../src/index.js';
import { Encoder, PROTOCOL_VERSION, type AnyMessage } from '../../src/protocol/index.js';
import { Harness, RawClient, http, isType, sleep, waitFor, wsUrl } from './helpers.js';
import { SECRET, b64url, closed, controlSubscriber, token, upgrade } from './security-helpers.js';

const h = new Harness();
const raws: RawClient[] = [];
afterEach(async () => {
  await Promise.all(raws.splice(0).map((r) => r.close()));
  await h.close();
});

const enc = new Encoder();

async function raw(url: string): Promise<RawClient> {
  const r = await RawClient.open(url);
  raws.push(r);
  await waitFor(() => r.frames.length > 0, 5_000, 'Welcome');
  return r;
}

/** Sends messages and waits for the Error or Ack answering `id`. */
async function ask(r: RawClient, id: number, ...msgs: Uint8Array[]): Promise<AnyMessage> {
  const before = r.lastSeq;
  r.send(...msgs);
  const { message } = await r.next((m): m is AnyMessage => (m.type === 'error' || m.type === 'ack') && m.id === id, before, 3_000);
  return message;
}

/** Every topic name the client was told anything about (snapshots, deltas, statuses, acks, heartbeats). */
function topicsSeen(r: RawClient): Set<string> {
  const out = new Set<string>();
  for (const m of r.messages) {
    if ((m.type === 'snapshot' || m.type === 'delta' || m.type === 'topicStatus') && m.topic) out.add(m.topic);
    if (m.type === 'heartbeat') for (const v of m.versions) out.add(v.topic);
  }
  return out;
}

function httpAuth(port: number, method: string, path: string, jwt: string | null, body?: unknown) {
  return new Promise<{ status: number; body: { error?: { code: number } } & Record<string, unknown> }>((resolve, reject) => {
    void import('node:http').then(({ request }) => {
      const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const headers: Record<string, string | number> = data ? { 'content-type': 'application/json', 'content-length': data.length } : {};
      if (jwt) headers.authorization = `Bearer ${jwt}`;
      const req = request({ host: '127.0.0.1', port, method, path, agent: false, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString() || '{}') }));
      });
      req.on('error', reject);
      req.end(data);
    });
  });
}

const GRANTS = { subscribe: ['px.*', 'book.>'], publish: ['px.MINE'] };

/** The token cases that must all be refused, built against SECRET. */
async function badTokens(): Promise<[string, string][]> {
  const valid = await token(GRANTS, { expSec: 600 });
  const [header, , sig] = valid.split('.');
  const widened = b64url(JSON.stringify({ subscribe: ['>'], publish: ['>'], sub: 'tester', exp: Math.floor(Date.now() / 1000) + 600 }));
  return [
    ['expired', await token(GRANTS, { expSec: -30 })],
    ['alg: none', `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64url(JSON.stringify({ ...GRANTS, sub: 'x' }))}.`],
    ['wrong key', await token(GRANTS, { expSec: 600, secret: 'another-secret-that-is-also-32-characters-long!!' })],
    ['tampered claims', `${header}.${widened}.${sig}`],
    ['not yet valid (nbf)', await token(GRANTS, { expSec: 600, nbfSec: 300 })],
    ['garbage', 'not.a.jwt'],
    ['grant claim not a list', await token({ subscribe: '>' }, { expSec: 600 })],
    ['grant claim with a bad pattern', await token({ subscribe: ['px.>.x'] }, { expSec: 600 })],
  ];
}

describe('connection tokens (HS256)', () => {
  it('a valid token works in ?token=, Authorization: Bearer and Hello, with its grants', async () => {
    const server = await h.server({ auth: { secret: SECRET } });
    server.publish('px.AAPL', { bid: 1 });
    const jwt = await token(GRANTS, { expSec: 600 });

    const viaQuery = await raw(`${wsUrl(server)}?token=${jwt}`);
    expect(await ask(viaQuery, 1, enc.subscribe(1, ['px.AAPL'], 0, [], []))).toMatchObject({ type: 'ack', id: 1, count: 1 });

    const viaHeader = await upgrade(wsUrl(server), { authorization: `Bearer ${jwt}` });
    expect(viaHeader.ok).toBe(true);
    if (viaHeader.ok) viaHeader.ws.close();

    const viaHello = await h.connected(server, { token: jwt, reconnect: false });
    const sub = viaHello.subscribe('px.AAPL');
    await sub.ready;
    expect(sub.state).toEqual({ bid: 1 });
    await expect(viaHello.publish('px.MINE', { bid: 2 })).resolves.toMatchObject({ topic: 'px.MINE', version: 1 });
  });

  it('expired, alg: none, wrong key, tampered claims and other bad tokens are refused at the upgrade: 401, code 21, 0 accepted', async () => {
    const server = await h.server({ auth: { secret: SECRET } });
    const control = await controlSubscriber(h, server, { client: { token: await token({ subscribe: ['ctl.>'] }, { expSec: 600 }) } });
    for (const [label, bad] of await badTokens()) {
      for (const how of ['query', 'header'] as const) {
        const u = how === 'query' ? await upgrade(`${wsUrl(server)}?token=${encodeURIComponent(bad)}`) : await upgrade(wsUrl(server), { authorization: `Bearer ${bad}` });
        expect(u.ok, `${label} via ${how}`).toBe(false);
        if (u.ok) continue;
        expect(u.status, `${label} via ${how}`).toBe(401);
        expect(u.body.error, `${label} via ${how}`).toMatchObject({ code: ErrorCode.UNAUTHORIZED, name: 'TICKFAN_ERR_UNAUTHORIZED' });
      }
    }
    expect(server.stats.connections).toBe(1); // the control only
    await control.check();
  });

  it('bad tokens in Hello get an UNAUTHORIZED error and close 4001; what waited for the token is never served', async () => {
    const server = await h.server({ auth: { secret: SECRET } });
    server.publish('px.AAPL', { bid: 1 });
    for (const [label, bad] of await badTokens()) {
      const r = await raw(wsUrl(server));
      // Hello and a Subscribe in one frame: the Subscribe waits for the token's verdict.
      r.send(enc.hello(PROTOCOL_VERSION, 'test', bad), enc.subscribe(1, ['px.AAPL'], 0, [], []));
      await waitFor(() => r.closeCode !== null, 3_000, `${label}: the close`);
      expect(r.closeCode, label).toBe(CloseCode.UNAUTHORIZED);
      const errors = r.messages.filter(isType('error'));
      expect(errors.map((e) => e.code), label).toEqual([ErrorCode.UNAUTHORIZED]);
      expect(r.messages.some((m) => m.type === 'ack' || m.type === 'snapshot'), label).toBe(false);
    }
    expect(server.stats.subscriptions).toBe(0);
  });

  it('without a token (and no anonymous access) nothing is served, and the connection is closed 4001 after authTimeoutMs', async () => {
    const server = await h.server({ auth: { secret: SECRET }, authTimeoutMs: 300 });
    server.publish('px.AAPL', { bid: 1 });
    const r = await raw(wsUrl(server));
    const opened = Date.now();
    expect(await ask(r, 1, enc.subscribe(1, ['px.AAPL'], 0, [], []))).toMatchObject({ type: 'error', code: ErrorCode.UNAUTHORIZED });
    expect(await ask(r, 2, enc.publish(2, 'px.AAPL', [['bid', 2]]))).toMatchObject({ type: 'error', code: ErrorCode.UNAUTHORIZED });
    await waitFor(() => r.closeCode !== null, 3_000, 'the close');
    expect(r.closeCode).toBe(CloseCode.UNAUTHORIZED);
    expect(Date.now() - opened).toBeGreaterThanOrEqual(250);
    expect(server.store.get('px.AAPL')!.version).toBe(1);
    expect(r.messages.some((m) => m.type === 'snapshot')).toBe(false);
  });

  it('a token expiring mid-session ends it on time with 4010 (upgrade token and Hello token); other sessions carry on', async () => {
    const server = await h.server({ auth: { secret: SECRET } });
    const control = await controlSubscriber(h, server, { client: { token: await token({ subscribe: ['ctl.>'] }, { expSec: 600 }) } });
    server.publish('px.AAPL', { bid: 0 });
    // exp has one-second resolution: expire at the next whole second at least 1.2 s away.
    const exp = Math.ceil((Date.now() + 1_200) / 1000);
    const short = await token(GRANTS, { exp });

    const viaQuery = await raw(`${wsUrl(server)}?token=${short}`);
    expect(await ask(viaQuery, 1, enc.subscribe(1, ['px.AAPL'], 0, [], []))).toMatchObject({ type: 'ack' });
    const viaHello = await h.connected(server, { token: short, reconnect: false });
    const ended: { code: number; at: number }[] = [];
    viaHello.on('disconnect', (e) => ended.push({ code: e.code, at: Date.now() }));
    const sub = viaHello.subscribe('px.AAPL');
    await sub.ready;
    let rawClosedAt = 0;
    viaQuery.ws.once('close', () => (rawClosedAt = Date.now()));

    // Updates flow until the expiry. Time is the signal here (the token's exp): publish at a steady pace until just before it.
    for (let i = 1; Date.now() < exp * 1000 - 150; i++) {
      server.publish('px.AAPL', { bid: i });
      await sleep(50);
    }
    expect(sub.version).toBeGreaterThan(3);
    expect(viaQuery.closeCode).toBeNull();
    await waitFor(() => viaQuery.closeCode !== null && ended.length > 0, 3_000, 'both sessions to end');
    expect(viaQuery.closeCode).toBe(CloseCode.TOKEN_EXPIRED);
    expect(ended[0]!.code).toBe(CloseCode.TOKEN_EXPIRED);
    for (const at of [rawClosedAt, ended[0]!.at]) {
      expect(at).toBeGreaterThanOrEqual(exp * 1000 - 20);
      expect(at).toBeLessThan(exp * 1000 + 500);
    }
    expect(viaQuery.messages.filter(isType('error')).map((e) => e.code)).toEqual([ErrorCode.UNAUTHORIZED]);
    await control.check();
  });

  it('RS256 with a PEM public key and ES256 with a JWKS file; wrong key pairs and HS256 signed with the public key are refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tickfan-keys-'));
    const rsa = await generateKeyPair('RS256', { extractable: true });
    const ec = await generateKeyPair('ES256', { extractable: true });
    const otherRsa = await generateKeyPair('RS256');
    const pem = await exportSPKI(rsa.publicKey);
    writeFileSync(join(dir, 'rsa.pem'), pem);
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(ec.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] }));
    const sign = (alg: string, key: Parameters<SignJWT['sign']>[0], kid?: string) =>
      new SignJWT(GRANTS).setProtectedHeader({ alg, ...(kid ? { kid } : {}) }).setExpirationTime('10m').sign(key);

    const rsServer = await h.server({ auth: { publicKey: `@${join(dir, 'rsa.pem')}` } });
    expect((await upgrade(`${wsUrl(rsServer)}?token=${await sign('RS256', rsa.privateKey)}`)).ok).toBe(true);
    const refused = [
      ['another RSA key', await sign('RS256', otherRsa.privateKey)],
      ['HS256 with the public key as secret', await sign('HS256', new TextEncoder().encode(pem))],
      ['ES256 token', await sign('ES256', ec.privateKey)],
    ] as const;
    for (const [label, jwt] of refused) {
      const u = await upgrade(`${wsUrl(rsServer)}?token=${jwt}`);
      expect(u.ok ? 101 : u.status, label).toBe(401);
    }

    const esServer = await h.server({ auth: { jwks: `@${join(dir, 'jwks.json')}` } });
    const ok = await upgrade(`${wsUrl(esServer)}?token=${await sign('ES256', ec.privateKey, 'k1')}`);
    expect(ok.ok).toBe(true);
    if (ok.ok) ok.ws.close();
    const wrong = await upgrade(`${wsUrl(esServer)}?token=${await sign('RS256', rsa.privateKey, 'k1')}`);
    expect(wrong.ok ? 101 : wrong.status).toBe(401);
    expect(rsServer.stats.connections + esServer.stats.connections).toBeLessThanOrEqual(2);
  });
});

describe('per-topic permissions', () => {
  it('a subscription outside the grant gets PERMISSION_DENIED for that topic, not a disconnect, and leaks nothing', async () => {
    const server = await h.server({ auth: { secret: SECRET } });
    for (const t of ['px.AAPL', 'fx.EURUSD', 'secret.X', 'px.AAPL.deep', 'book.BTC.L2']) server.publish(t, { v: 1 });
    const r = await raw(`${wsUrl(server)}?token=${await token(GRANTS, { expSec: 600 })}`);
    // Grant: subscribe px.* and book.>. Each of these would reach past it.
    const outside: [string[], string][] = [
      [['fx.EURUSD'], 'fx.EURUSD'],
      [['fx.NOPE'], 'fx.NOPE'],
      [['>'], '>'],
      [['px.>'], 'px.>'],
      [['*.AAPL'], '*.AAPL'],
      [['*.*'], '*.*'],
      [['px.*.*'], 'px.*.*'],
      [['px.AAPL.deep'], 'px.AAPL.deep'],
      [['book'], 'book'],
      [['px.AAPL', 'secret.X'], 'secret.X'],
    ];
    const messages: string[] = [];
    for (const [i, [topics, denied]] of outside.entries()) {
      const answer = await ask(r, 100 + i, enc.subscribe(100 + i, topics, 0, [], []));
      expect(answer, topics.join(',')).toMatchObject({ type: 'error', code: ErrorCode.PERMISSION_DENIED, id: 100 + i, topic: denied });
      if (answer.type === 'error') messages.push(answer.message.replaceAll(denied, '<t>'));
    }
    // Whether a denied topic exists is not told: same answer for fx.EURUSD and fx.NOPE.
    expect(messages[0]).toBe(messages[1]);
    expect(r.closeCode).toBeNull();
    expect(server.stats.subscriptions).toBe(0);

    // Inside the grant: served.
    expect(await ask(r, 1, enc.subscribe(1, ['px.*'], 0, [], []))).toMatchObject({ type: 'ack', count: 1 });
    expect(await ask(r, 2, enc.subscribe(2, ['book.*.L2'], 0, [], []))).toMatchObject({ type: 'ack', count: 1 });
    for (const t of ['fx.EURUSD', 'fx.NOPE', 'secret.X', 'px.AAPL.deep', 'px.AAPL']) server.publish(t, { v: 2 });
    const before = r.lastSeq;
    await r.next((m): m is AnyMessage => m.type === 'delta' && m.topic === 'px.AAPL', before - 1);
    await r.roundTrip(); // anything the server sent about those publishes is here by now
    expect([...topicsSeen(r)].sort()).toEqual(['book.BTC.L2', 'px.AAPL']);
    expect(r.closeCode).toBeNull();
  });

  it('a publish outside the grant is refused (WebSocket: code 20; HTTP: 403) and changes nothing; bad HTTP tokens get 401', async () => {
    const server = await h.server({ auth: { secret: SECRET } });
    server.publish('px.AAPL', { bid: 1 });
    const jwt = await token(GRANTS, { expSec: 600 });
    const r = await raw(`${wsUrl(server)}?token=${jwt}`);
    expect(await ask(r, 1, enc.publish(1, 'px.AAPL', [['bid', 666]]))).toMatchObject({ type: 'error', code: ErrorCode.PERMISSION_DENIED, topic: 'px.AAPL' });
    expect(await ask(r, 2, enc.publish(2, 'fx.NEW', [['bid', 666]]))).toMatchObject({ type: 'error', code: ErrorCode.PERMISSION_DENIED });
    expect(await ask(r, 3, enc.publish(3, 'px.MINE', [['bid', 1]]))).toMatchObject({ type: 'ack', version: 1 });
    expect(r.closeCode).toBeNull();

    const port = server.port;
    expect(await httpAuth(port, 'POST', '/publish/px.AAPL', jwt, { bid: 666 })).toMatchObject({ status: 403, body: { error: { code: ErrorCode.PERMISSION_DENIED } } });
    expect(await httpAuth(port, 'POST', '/publish/px.MINE', null, { bid: 666 })).toMatchObject({ status: 401, body: { error: { code: ErrorCode.UNAUTHORIZED } } });
    for (const [label, bad] of await badTokens()) {
      const res = await httpAuth(port, 'POST', '/publish/px.MINE', bad, { bid: 666 });
      expect(res.status, label).toBe(401);
      expect(res.body.error?.code, label).toBe(ErrorCode.UNAUTHORIZED);
    }
    expect(await httpAuth(port, 'POST', '/publish/px.MINE', jwt, { bid: 2 })).toMatchObject({ status: 200, body: { topic: 'px.MINE', version: 2 } });
    expect(server.store.get('px.AAPL')!.version).toBe(1);
    expect(server.store.get('px.AAPL')!.state.get('bid')).toBe(1);
    expect(server.store.get('fx.NEW')).toBeUndefined();
    expect(server.store.get('px.MINE')!.state.get('bid')).toBe(2);
  });

  it('HTTP snapshot and topic listing answer only inside the subscribe grant, and do not tell whether a denied topic exists', async () => {
    const server = await h.server({ auth: { secret: SECRET } });
    for (const t of ['px.AAPL', 'fx.EURUSD', 'book.BTC.L2']) server.publish(t, { v: 1 });
    const jwt = await token(GRANTS, { expSec: 600 });
    const port = server.port;
    expect(await httpAuth(port, 'GET', '/snapshot/px.AAPL', jwt)).toMatchObject({ status: 200, body: { topic: 'px.AAPL', version: 1 } });
    const denied = await httpAuth(port, 'GET', '/snapshot/fx.EURUSD', jwt);
    const missing = await httpAuth(port, 'GET', '/snapshot/fx.NOPE', jwt);
    expect(denied.status).toBe(403);
    expect(missing.status).toBe(403);
    expect(await httpAuth(port, 'GET', '/snapshot/px.AAPL', null)).toMatchObject({ status: 401 });
    const listed = await httpAuth(port, 'GET', '/topics', jwt);
    expect((listed.body.topics as { topic: string }[]).map((t) => t.topic).sort()).toEqual(['book.BTC.L2', 'px.AAPL']);
  });
});

describe('anonymous access', () => {
  it('is off unless configured; when on it is read-only by default, and tokens still grant more', async () => {
    const server = await h.server({ auth: { secret: SECRET, anonymous: true } });
    server.publish('px.AAPL', { bid: 1 });
    const anon = await h.connected(server, { reconnect: false });
    const sub = anon.subscribe('px.AAPL');
    await sub.ready;
    expect(sub.state).toEqual({ bid: 1 });
    const err = await anon.publish('px.AAPL', { bid: 2 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TickfanError);
    expect(err).toMatchObject({ errorCode: ErrorCode.PERMISSION_DENIED });
    expect(anon.state).toBe('connected');
    expect((await http(server.port, 'POST', '/publish/px.AAPL', { bid: 2 })).status).toBe(403);
    const publisher = await h.connected(server, { token: await token({ publish: ['px.>'] }, { expSec: 600 }), reconnect: false });
    await expect(publisher.publish('px.AAPL', { bid: 3 })).resolves.toMatchObject({ version: 2 });
    await waitFor(() => sub.version === 2, 2_000, 'the anonymous subscriber to see v2');
  });

  it('anonymousGrants widen or narrow what anonymous connections may do', async () => {
    const server = await h.server({ auth: { secret: SECRET, anonymous: true, anonymousGrants: { subscribe: ['pub.>'], publish: ['sandbox.>'] } } });
    server.publish('px.AAPL', { bid: 1 });
    const anon = await h.connected(server, { reconnect: false });
    await expect(anon.publish('sandbox.x', { a: 1 })).resolves.toMatchObject({ version: 1 });
    await expect(anon.subscribe('px.AAPL').ready).rejects.toMatchObject({ errorCode: ErrorCode.PERMISSION_DENIED });
  });

  it('anonymous mode without any key is read-only too, and a token cannot lift it', async () => {
    const server = await h.server({ auth: { anonymous: true } });
    server.publish('px.AAPL', { bid: 1 });
    const c = await h.connected(server, { token: await token({ publish: ['>'] }, { expSec: 600 }), reconnect: false });
    await expect(c.publish('px.AAPL', { bid: 2 })).rejects.toMatchObject({ errorCode: ErrorCode.PERMISSION_DENIED });
    await expect(c.subscribe('px.AAPL').ready).resolves.toBeUndefined();
  });
});

describe('origin allow-list', () => {
  it('refuses upgrades from other origins (403, code 20); listed origins and clients that send none get in', async () => {
    const server = await h.server({ allowedOrigins: ['https://desk.example.com'] });
    const evil = await upgrade(wsUrl(server), { origin: 'https://evil.example.com' });
    expect(evil.ok).toBe(false);
    if (!evil.ok) expect(evil).toMatchObject({ status: 403, body: { error: { code: ErrorCode.PERMISSION_DENIED } } });
    const good = await upgrade(wsUrl(server), { origin: 'https://desk.example.com' });
    const none = await upgrade(wsUrl(server));
    expect([good.ok, none.ok]).toEqual([true, true]);
    for (const u of [good, none]) if (u.ok) u.ws.close();
    for (const u of [good, none]) if (u.ok) await closed(u.ws);
    expect(server.stats.connections).toBe(0);
  });
});
