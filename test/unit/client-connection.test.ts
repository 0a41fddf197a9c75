// The client SDK against a fake WebSocket: the connection state machine
// (every change emitted once as {from, to}), resubscribe with resume points
// after a reconnect, gap detection and healing, pattern routing with the
// protocol's matcher, publishes that are refused before anything is sent, the
// reconnect backoff (reset only by the Welcome answering Hello) and the close
// codes that end the client instead of reconnecting.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { Backoff, ClientError, DEFAULT_BACKOFF, connect, type ClientOptions, type TickfanClient, type WebSocketCtor } from '../../src/client/index.js';
import { Encoder, type FieldValue } from '../../src/protocol/index.js';
import { FakeWs } from './fake-ws.js';

const enc = new Encoder();


const clients: TickfanClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  FakeWs.all = [];
  vi.restoreAllMocks();
  vi.useRealTimers();
});

function client(): TickfanClient {
  const c = connect('ws://fake/ws', { WebSocket: FakeWs as unknown as WebSocketCtor, backoff: { initialMs: 1, maxMs: 1 } });
  clients.push(c);
  return c;
}

const turn = (): Promise<void> => new Promise((r) => setTimeout(r, 5));

describe('connection state machine', () => {
  it('emits every change once, as {from, to}, through connect, drop, reconnect and close', async () => {
    const c = client();
    const changes: string[] = [];
    const disconnects: number[] = [];
    c.on('state', ({ from, to }) => changes.push(`${from}→${to}`));
    c.on('disconnect', ({ code }) => disconnects.push(code));
    expect(c.state).toBe('connecting');
    expect(c.transport).toBe('ws');
    FakeWs.last().open();
    expect(FakeWs.last().sentOf('hello')).toHaveLength(1);
    FakeWs.last().drop(1006);
    expect(c.state).toBe('disconnected');
    await turn(); // backoff of at most 1 ms
    expect(FakeWs.all).toHaveLength(2);
    FakeWs.last().open();
    c.close();
    c.close(); // once only
    expect(changes).toEqual(['connecting→connected', 'connected→disconnected', 'disconnected→connecting', 'connecting→connected', 'connected→closed']);
    expect(disconnects).toEqual([1006]);
    expect(c.stats.reconnects).toBe(1);
    expect(() => c.subscribe('px.A')).toThrow(/closed/);
  });
});

describe('subscriptions across a reconnect', () => {
  it('resubscribes with the exact (epoch, version) it holds, and counts the answer as a catch-up', async () => {
    const c = client();
    FakeWs.last().open();
    const sub = c.subscribe('px.A', { fields: ['bid'] });
    expect(FakeWs.last().sentOf('subscribe')).toMatchObject([{ topics: ['px.A'], fields: ['bid'], resume: [] }]);
    FakeWs.last().deliver(enc.snapshot('px.A', 7, 3, new Map<string, FieldValue>([['bid', 1], ['ask', 2]]), 0), enc.ack(sub.id, '', 0, 0, 1));
    await sub.ready;
    expect(sub.state).toEqual({ bid: 1 });
    FakeWs.last().drop();
    await turn();
    FakeWs.last().open();
    expect(FakeWs.last().sentOf('subscribe')).toMatchObject([{ id: sub.id, topics: ['px.A'], resume: [{ topic: 'px.A', epoch: 7, version: 3 }] }]);
    FakeWs.last().deliver(enc.delta('px.A', 7, 3, 5, 2, new Map([['bid', 1.5]]), 0), enc.ack(sub.id, '', 0, 0, 1));
    expect(c.stateOf('px.A')).toEqual({ epoch: 7, version: 5, state: { bid: 1.5, ask: 2 } });
    expect(c.stats).toMatchObject({ catchUps: 1, catchUpDeltas: 1, gaps: 0 });
  });
});

describe('gap healing', () => {
  it('never applies a delta whose base is not the held version: it asks for a catch-up and heals', () => {
    const c = client();
    FakeWs.last().open();
    const sub = c.subscribe('px.G');
    const versions: number[] = [];
    sub.on('update', (u) => versions.push(u.version));
    FakeWs.last().deliver(enc.snapshot('px.G', 1, 10, new Map([['n', 10]]), 0));
    FakeWs.last().deliver(enc.delta('px.G', 1, 11, 12, 1, new Map([['n', 12]]), 0)); // 11 is missing
    expect(c.stateOf('px.G')!.version).toBe(10);
    expect(FakeWs.last().sentOf('catchUp')).toEqual([{ type: 'catchUp', topic: 'px.G', epoch: 1, version: 10 }]);
    FakeWs.last().deliver(enc.delta('px.G', 1, 10, 12, 2, new Map([['n', 12]]), 0));
    expect(c.stateOf('px.G')).toEqual({ epoch: 1, version: 12, state: { n: 12 } });
    expect(versions).toEqual([10, 12]);
    expect(c.stats).toMatchObject({ gaps: 1, gapsHealed: 1, catchUps: 1 });
  });
});

describe('pattern routing', () => {
  it('delivers by the protocol matcher: * is one level, > the rest', () => {
    const c = client();
    FakeWs.last().open();
    const seen: Record<string, string[]> = { 'px.*': [], 'px.>': [], '>': [], 'px.A': [] };
    for (const p of Object.keys(seen)) c.subscribe(p).on('update', (u) => seen[p]!.push(u.topic));
    for (const t of ['px.A', 'px.A.B', 'fx.A']) FakeWs.last().deliver(enc.snapshot(t, 1, 1, new Map([['x', 1]]), 0));
    expect(seen).toEqual({ 'px.*': ['px.A'], 'px.>': ['px.A', 'px.A.B'], '>': ['px.A', 'px.A.B', 'fx.A'], 'px.A': ['px.A'] });
  });
});

describe('publish', () => {
  it('refuses a non-field value with BAD_FIELD and queues nothing, even while disconnected', async () => {
    const c = client();
    for (const v of [{}, [], undefined, new Date(0)]) {
      await expect(c.publish('px.P', { bid: v as FieldValue })).rejects.toMatchObject({ code: 'TICKFAN_ERR_BAD_FIELD', message: expect.stringMatching(/^field bid: /) });
    }
    const ok = c.publish('px.P', { bid: 1n, raw: new Uint8Array([1]) });
    FakeWs.last().open();
    const sent = FakeWs.last().sentOf('publish');
    expect(sent).toEqual([{ type: 'publish', id: expect.any(Number), topic: 'px.P', changes: new Map<string, FieldValue>([['bid', 1], ['raw', new Uint8Array([1])]]) }]);
    FakeWs.last().deliver(enc.ack(sent[0]!.id, 'px.P', 1, 1, 1));
    await expect(ok).resolves.toEqual({ topic: 'px.P', epoch: 1, version: 1 });
  });
});

describe('reconnect backoff', () => {
  it('defaults to full jitter under 100 ms × 2^n, capped at 10 s, restarting from 100 ms after reset', () => {
    expect(DEFAULT_BACKOFF).toEqual({ initialMs: 100, maxMs: 10_000, factor: 2 });
    const top = new Backoff(DEFAULT_BACKOFF, () => 0.999_999);
    expect(Array.from({ length: 9 }, () => top.next())).toEqual([99, 199, 399, 799, 1599, 3199, 6399, 9999, 9999]);
    top.reset();
    expect(top.next()).toBe(99);
    const bottom = new Backoff(DEFAULT_BACKOFF, () => 0);
    expect([bottom.next(), bottom.next(), bottom.next()]).toEqual([0, 0, 0]); // full jitter: the window starts at 0
  });

  it('delays even the first reconnect after a drop by a jittered amount (uniform in [0, initialMs]), so clients dropped together do not reconnect together', () => {
    vi.useFakeTimers();
    const random = vi.spyOn(Math, 'random').mockReturnValue(0.5);
    const c = connect('ws://fake/ws', { WebSocket: FakeWs as unknown as WebSocketCtor }); // the default backoff
    clients.push(c);
    FakeWs.last().open();
    FakeWs.last().drop(1006);
    vi.advanceTimersByTime(49);
    expect(FakeWs.all).toHaveLength(1); // not at once: 0.5 × 100 ms
    vi.advanceTimersByTime(1);
    expect(FakeWs.all).toHaveLength(2);
    // That attempt fails before opening: the window doubles.
    random.mockReturnValue(0.999_999);
    FakeWs.last().drop(1006);
    vi.advanceTimersByTime(198);
    expect(FakeWs.all).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(FakeWs.all).toHaveLength(3);
    // A connection the server accepted (its Welcome answering Hello) resets it: the next drop waits within [0, 100 ms] again.
    FakeWs.last().accept();
    FakeWs.last().drop(1006);
    vi.advanceTimersByTime(98);
    expect(FakeWs.all).toHaveLength(3);
    vi.advanceTimersByTime(1);
    expect(FakeWs.all).toHaveLength(4);
    expect(c.state).toBe('connecting');
  });
});

/** With fake timers: ms until the client makes its next connection attempt (-1 if none within `limit`). */
function nextAttemptAfter(limit = 20_000): number {
  const before = FakeWs.all.length;
  for (let ms = 0; ms <= limit; ms++) {
    if (FakeWs.all.length > before) return ms;
    vi.advanceTimersByTime(1);
  }
  return -1;
}

/** A client with the default backoff whose every jitter draw is the top of its window. */
function topOfWindowClient(options: ClientOptions = {}): TickfanClient {
  vi.useFakeTimers();
  vi.spyOn(Math, 'random').mockReturnValue(0.999_999);
  const c = connect('ws://fake/ws', { WebSocket: FakeWs as unknown as WebSocketCtor, ...options });
  clients.push(c);
  return c;
}

describe('backoff resets only once the server accepted the client', () => {
  const DOUBLING = [99, 199, 399, 799, 1599, 3199, 6399, 9999, 9999];

  it.each([
    ['4008 (slow consumer) after the pre-Hello Welcome', 4008, true],
    ['1013 (try again later) before any Welcome', 1013, false],
    ['1001 (going away) before any Welcome', 1001, false],
  ])('a server that opens and then closes with %s: each window doubles instead of restarting at 100 ms', (_what, code, welcome) => {
    const c = topOfWindowClient();
    const delays: number[] = [];
    for (let i = 0; i < DOUBLING.length; i++) {
      FakeWs.last().open(welcome);
      expect(c.state).toBe('connected');
      FakeWs.last().drop(code);
      delays.push(nextAttemptAfter());
    }
    expect(delays).toEqual(DOUBLING);
  });

  it('after the Welcome answering Hello, the next drop waits within [0, 100 ms] again (protocol 2 and protocol 1)', () => {
    for (const protocol of [2, 1] as const) {
      const c = topOfWindowClient({ protocol });
      for (let i = 0; i < 4; i++) {
        FakeWs.last().open(false); // closed before any Welcome
        FakeWs.last().drop(4008);
        nextAttemptAfter();
      }
      FakeWs.last().drop(1006); // a failed attempt that never opened: 1599 ms
      expect(nextAttemptAfter()).toBe(1599);
      FakeWs.last().accept();
      FakeWs.last().drop(1001);
      expect(nextAttemptAfter(), `protocol ${protocol}`).toBe(99);
      // …and the window grows again from there.
      FakeWs.last().drop(1006);
      expect(nextAttemptAfter()).toBe(199);
      c.close();
      vi.restoreAllMocks();
      vi.useRealTimers();
    }
  });
});

describe('terminal close codes', () => {
  it.each([
    [4001, 'tok', 'TICKFAN_ERR_TOKEN_REFUSED', /the server refused the token \(4001 "dropped"\): get a new token and call connect\(\) again/],
    [4001, undefined, 'TICKFAN_ERR_TOKEN_REFUSED', /requires a token and none was given \(4001 "dropped"\): pass options\.token/],
    [4010, 'tok', 'TICKFAN_ERR_TOKEN_EXPIRED', /the connection token expired \(4010 "dropped"\): get a new token/],
    [1008, 'tok', 'TICKFAN_ERR_REFUSED', /refused this client by policy \(1008 "dropped"\)/],
    [1002, 'tok', 'TICKFAN_ERR_PROTOCOL', /protocol error \(1002 "dropped"\)/],
    [4002, 'tok', 'TICKFAN_ERR_PROTOCOL', /could not read this client's frames \(4002 "dropped"\)/],
  ])('%i (token %s): no further attempt, state closed, an error event and rejections with %s', async (code, token, errCode, message) => {
    const c = topOfWindowClient({ token });
    const errors: Error[] = [];
    const states: string[] = [];
    c.on('error', (e) => errors.push(e));
    c.on('state', ({ to }) => states.push(to));
    FakeWs.last().accept();
    const publish = c.publish('px.T', { bid: 1 });
    FakeWs.last().drop(code);
    expect(c.state).toBe('closed');
    expect(states).toEqual(['connected', 'closed']);
    expect(nextAttemptAfter(60_000)).toBe(-1);
    expect(FakeWs.all).toHaveLength(1);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(ClientError);
    expect(errors[0]).toMatchObject({ code: errCode, closeCode: code, message: expect.stringMatching(message) });
    // The publish in flight fails with the same error; later calls say the client is closed, and why.
    await expect(publish).rejects.toBe(errors[0]);
    await expect(c.publish('px.T', { bid: 2 })).rejects.toMatchObject({ code: 'TICKFAN_ERR_CLIENT_CLOSED', message: expect.stringMatching(message), cause: errors[0] });
    expect(() => c.subscribe('px.T')).toThrow(/the client is closed: /);
  });

  it('ends the client even before the Welcome and with reconnect: false', () => {
    const c = topOfWindowClient({ token: 'tok', reconnect: false });
    const errors: Error[] = [];
    c.on('error', (e) => errors.push(e));
    FakeWs.last().open(false);
    FakeWs.last().drop(4001);
    expect(c.state).toBe('closed');
    expect(errors.map((e) => (e as ClientError).code)).toEqual(['TICKFAN_ERR_TOKEN_REFUSED']);
  });

  it.each([1000, 1001, 1006, 1009, 1011, 1012, 1013, 4008])('%i reconnects', (code) => {
    const c = topOfWindowClient({ token: 'tok' });
    const errors: Error[] = [];
    c.on('error', (e) => errors.push(e));
    FakeWs.last().accept();
    FakeWs.last().drop(code);
    expect(c.state).toBe('disconnected');
    expect(nextAttemptAfter()).toBe(99);
    expect(errors).toEqual([]);
  });
});
