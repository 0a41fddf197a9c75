// The SDK's token handling with fake timers and fake transports: when a
// refresh is sent (before exp by a margin and a jitter), how refused ones are
// retried (bounded by the old token's exp), and that a token the server
// refuses — close 4001 over WebSocket, HTTP 401 before an SSE stream opens,
// whether the EventSource tells the status or hides it — ends the client
// with a ClientError after a bounded number of tries, never a backoff for ever.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { ClientError, ClientErrorCode, HttpStatusError, connect, type EventSourceLike, type TickfanClient, type WebSocketCtor } from '../../src/client/index.js';
import { TOKEN_ATTEMPTS, TokenKeeper, liftToken, tokenExpiry } from '../../src/client/tokens.js';
import { CloseCode, Encoder, ErrorCode, type ClientMessage } from '../../src/protocol/index.js';
import { FakeWs } from './fake-ws.js';

const enc = new Encoder();

/** An unsigned JWT-shaped token (the SDK reads exp, never verifies). */
function jwt(expMs: number | null, tag = 'x'): string {
  const b = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b({ alg: 'HS256' })}.${b({ sub: tag, ...(expMs === null ? {} : { exp: Math.floor(expMs / 1000) }) })}.sig`;
}

const subOf = (token: string): string => (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { sub: string }).sub;

const clients: TickfanClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  FakeWs.all = [];
  vi.restoreAllMocks();
  vi.useRealTimers();
});

describe('reading tokens', () => {
  it('tokenExpiry reads exp (ms) from the payload, null without one or for what is not a JWT; liftToken moves ?token= out of a URL', () => {
    expect(tokenExpiry(jwt(1_700_000_000_000))).toBe(1_700_000_000_000);
    expect(tokenExpiry(jwt(null))).toBeNull();
    expect(tokenExpiry('not a token')).toBeNull();
    expect(tokenExpiry('a.!!!.c')).toBeNull();
    expect(liftToken('ws://h/ws?token=abc&x=1')).toEqual({ url: 'ws://h/ws?x=1', token: 'abc' });
    expect(liftToken('ws://h/ws')).toEqual({ url: 'ws://h/ws', token: '' });
  });
});

describe('TokenKeeper: when refreshes go out', () => {
  function keeper(tokens: () => string) {
    const sent: { at: number; token: string }[] = [];
    const errors: Error[] = [];
    const k = new TokenKeeper(tokens, { refresh: (t) => (sent.push({ at: Date.now(), token: t }), true), error: (e) => errors.push(e) });
    return { k, sent, errors };
  }

  it.each([
    ['no jitter', 0],
    ['the most jitter', 0.999],
  ])('a 60 s token is refreshed between 40 s and 35 s before exp (a third of the time left, up to a tenth earlier): %s', async (_label, random) => {
    vi.useFakeTimers({ now: 1_000_000_000_000 });
    vi.spyOn(Math, 'random').mockReturnValue(random);
    const t0 = Date.now();
    const { k, sent } = keeper(() => jwt(Date.now() + 60_000, 'next'));
    const first = await k.forConnect();
    expect(first).toMatchObject({ ok: true });
    k.accepted();
    await vi.advanceTimersByTimeAsync(34_000);
    expect(sent).toEqual([]);
    await vi.advanceTimersByTimeAsync(6_100);
    expect(sent).toHaveLength(1);
    const at = sent[0]!.at - t0;
    expect(at).toBeGreaterThanOrEqual(random === 0 ? 40_000 : 34_000);
    expect(at).toBeLessThanOrEqual(random === 0 ? 40_100 : 35_100);
    k.close();
  });

  it('an hour-long token is refreshed 30 to 35 s before exp; each accepted refresh plans the next from the new token', async () => {
    vi.useFakeTimers({ now: 1_000_000_000_000 });
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    const { k, sent } = keeper(() => jwt(Date.now() + 3_600_000));
    await k.forConnect();
    k.accepted();
    await vi.advanceTimersByTimeAsync(3_600_000 - 33_000);
    expect(sent).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(sent).toHaveLength(1);
    expect(1_000_000_000_000 + 3_600_000 - sent[0]!.at).toBe(32_500);
    k.refreshAccepted();
    await vi.advanceTimersByTimeAsync(3_600_000 - 30_000);
    expect(sent).toHaveLength(2);
    // Planned from the new token (minted at the first refresh, exp to the second): its hour less the same margin and jitter.
    expect(sent[1]!.at - sent[0]!.at).toBeGreaterThanOrEqual(3_600_000 - 32_500 - 1_000);
    expect(sent[1]!.at - sent[0]!.at).toBeLessThanOrEqual(3_600_000 - 32_500);
    k.close();
  });

  it('a refused refresh is tried again at half the time left, and not once less than 2 s are left: a handful of tries, then exp', async () => {
    vi.useFakeTimers({ now: 1_000_000_000_000 });
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const exp = Date.now() + 60_000;
    const { k, sent } = keeper(() => jwt(exp + 60_000));
    // The connection's token, refused at every refresh.
    (k as unknown as { token: string }).token = jwt(exp);
    k.accepted();
    for (let i = 0; i < 1_000 && Date.now() < exp + 10_000; i++) {
      const before = sent.length;
      await vi.advanceTimersByTimeAsync(250);
      if (sent.length > before) k.refreshRefused();
    }
    const left = sent.map((s) => exp - s.at);
    // First at 40 s before exp, then 20, 10, 5, 2.5 (each half of what was left) — none under 2 s.
    expect(left[0]).toBe(20_000);
    expect(left.length).toBeLessThanOrEqual(6);
    expect(Math.min(...left)).toBeGreaterThanOrEqual(1_000);
    for (let i = 1; i < left.length; i++) expect(left[i]).toBeLessThan(left[i - 1]!);
    k.close();
  });

  it('a function that fails or hangs is reported, and at connect counted: the third failure in a row is the stop', async () => {
    vi.useFakeTimers({ now: 1_000_000_000_000 });
    let n = 0;
    const k = new TokenKeeper(() => (++n === 2 ? new Promise<string>(() => {}) : Promise.reject(new Error('down'))), { refresh: () => true, error: () => {} });
    const a = await k.forConnect();
    expect(a).toMatchObject({ ok: false, stop: null });
    const pending = k.forConnect();
    await vi.advanceTimersByTimeAsync(10_001);
    expect(await pending).toMatchObject({ ok: false, stop: null, error: { message: /no token within 10000 ms/ } });
    const c = await k.forConnect();
    expect(c.ok).toBe(false);
    expect(!c.ok && c.stop).toBeInstanceOf(ClientError);
    expect(!c.ok && c.stop && c.stop.code).toBe(ClientErrorCode.TOKEN_UNAVAILABLE);
  });
});

// ------------------------------------------------------------------ through the client


function wsClient(token: string | (() => string | Promise<string>)): { c: TickfanClient; errors: Error[] } {
  const c = connect('ws://fake/ws', { WebSocket: FakeWs as unknown as WebSocketCtor, backoff: { initialMs: 100, maxMs: 1_000 }, token, protocol: 1 });
  clients.push(c);
  const errors: Error[] = [];
  c.on('error', (e) => errors.push(e));
  return { c, errors };
}

describe('the client: refused tokens end in a ClientError, never a backoff for ever', () => {
  it('a token function whose tokens the server refuses (4001) is asked 3 times, then the client stops with TOKEN_REFUSED; an hour later nothing more was tried', async () => {
    vi.useFakeTimers({ now: 1_000_000_000_000 });
    let calls = 0;
    const { c, errors } = wsClient(() => jwt(Date.now() + 60_000, `t${++calls}`));
    for (let i = 0; i < 10 && c.state !== 'closed'; i++) {
      await vi.advanceTimersByTimeAsync(1_100);
      const ws = FakeWs.last();
      if (ws.readyState === 0) {
        ws.open();
        ws.deliver(enc.error(ErrorCode.UNAUTHORIZED, 0, '', 'the token signature does not verify'));
        ws.drop(CloseCode.UNAUTHORIZED);
      }
    }
    expect(c.state).toBe('closed');
    expect(calls).toBe(TOKEN_ATTEMPTS);
    // Each connection brought a token of its own.
    expect(FakeWs.all.map((w) => subOf(w.hellos()[0]!))).toEqual(['t1', 't2', 't3']);
    expect(errors.at(-1)).toMatchObject({ code: ClientErrorCode.TOKEN_REFUSED, closeCode: CloseCode.UNAUTHORIZED });
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(FakeWs.all).toHaveLength(TOKEN_ATTEMPTS);
    expect(calls).toBe(TOKEN_ATTEMPTS);
  });

  it('the Pong after Hello proves a token passed: failures start over, so a later refusal gets its 3 tries again', async () => {
    vi.useFakeTimers({ now: 1_000_000_000_000 });
    const { c } = wsClient(() => jwt(Date.now() + 600_000));
    await vi.advanceTimersByTimeAsync(1);
    const refuse = () => {
      const ws = FakeWs.last();
      ws.open();
      ws.drop(CloseCode.UNAUTHORIZED);
    };
    refuse();
    await vi.advanceTimersByTimeAsync(1_100);
    refuse();
    await vi.advanceTimersByTimeAsync(1_100);
    // Accepted this time: the Ping that followed Hello is answered.
    const ws = FakeWs.last();
    ws.open();
    const probe = ws.sent.find((m): m is Extract<ClientMessage, { type: 'ping' }> => m.type === 'ping')!;
    expect(ws.sent.map((m) => m.type).slice(0, 2)).toEqual(['hello', 'ping']);
    ws.deliver(enc.pong(probe.nonce));
    ws.drop(CloseCode.UNAUTHORIZED);
    await vi.advanceTimersByTimeAsync(1_100);
    refuse();
    await vi.advanceTimersByTimeAsync(1_100);
    expect(c.state).not.toBe('closed');
  });

  it('a refresh goes out on the open connection as a Hello with the new token; Welcome takes it, Error 21 leaves the old one', async () => {
    vi.useFakeTimers({ now: 1_000_000_000_000 });
    vi.spyOn(Math, 'random').mockReturnValue(0);
    let n = 0;
    wsClient(() => jwt(Date.now() + 30_000, `t${++n}`));
    await vi.advanceTimersByTimeAsync(1);
    const ws = FakeWs.last();
    ws.open();
    ws.deliver(enc.pong(ws.sent.find((m): m is Extract<ClientMessage, { type: 'ping' }> => m.type === 'ping')!.nonce));
    await vi.advanceTimersByTimeAsync(20_000);
    expect(ws.hellos()).toHaveLength(2);
    expect(ws.sent.at(-1)).toMatchObject({ type: 'hello', protocol: 0 });
    ws.deliver(enc.welcome('fake', 60_000, 1 << 20, []));
    // The next is planned from the new token (exp 30 s after it was minted): 20 s on.
    await vi.advanceTimersByTimeAsync(19_900);
    expect(ws.hellos()).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(200);
    expect(ws.hellos()).toHaveLength(3);
    ws.deliver(enc.error(ErrorCode.UNAUTHORIZED, 0, '', 'refused'));
    // Refused: again at half of the ~10 s left.
    await vi.advanceTimersByTimeAsync(5_100);
    expect(ws.hellos()).toHaveLength(4);
    expect(FakeWs.all).toHaveLength(1);
  });
});

describe('HTTP 401 before an SSE stream opens', () => {
  /** An EventSource that fails at once, telling the status (as FetchEventSource does) or hiding it (as browsers do). */
  function failingEs(status: number, tells: boolean) {
    const opened: string[] = [];
    class Es implements EventSourceLike {
      onmessage: ((ev: { data: string; lastEventId: string }) => void) | null = null;
      onerror: ((ev: unknown) => void) | null = null;
      constructor(url: string) {
        opened.push(url);
        queueMicrotask(() => this.onerror?.(tells ? new HttpStatusError(status, '{"error":{"code":21,"message":"the token signature does not verify"}}', `HTTP ${status}`) : { type: 'error' }));
      }
      close(): void {}
    }
    return { Es, opened };
  }
  const answer = (status: number) => async () => new Response(JSON.stringify({ error: { code: 21, message: 'the token signature does not verify' } }), { status });

  it.each([
    ['tells the status', true],
    ['hides it (a probe asks)', false],
  ])('a string token refused with 401 stops the client with TOKEN_REFUSED after one try: the EventSource %s', async (_label, tells) => {
    vi.useFakeTimers({ now: 1_000_000_000_000 });
    const { Es, opened } = failingEs(401, tells);
    const c = connect('http://fake/sse', { transport: 'sse', EventSource: Es, fetch: answer(401), token: 'bad.token.x', backoff: { initialMs: 100, maxMs: 1_000 } });
    clients.push(c);
    const errors: Error[] = [];
    c.on('error', (e) => errors.push(e));
    await vi.advanceTimersByTimeAsync(60_000);
    expect(c.state).toBe('closed');
    expect(opened).toHaveLength(1);
    expect(errors.at(-1)).toMatchObject({ code: ClientErrorCode.TOKEN_REFUSED, closeCode: CloseCode.UNAUTHORIZED });
    expect((errors.at(-1) as Error).message).toMatch(/signature/);
  });

  it('anything else (a 502, an unreachable server) is a network failure: retried with the backoff', async () => {
    vi.useFakeTimers({ now: 1_000_000_000_000 });
    const { Es, opened } = failingEs(502, false);
    const c = connect('http://fake/sse', { transport: 'sse', EventSource: Es, fetch: answer(502), token: 'a.b.c', backoff: { initialMs: 100, maxMs: 1_000 } });
    clients.push(c);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(c.state).not.toBe('closed');
    expect(opened.length).toBeGreaterThan(5);
  });
});
