// The service router without sockets or real time (FakeClock): each request
// goes to exactly one responder — fewest in flight first, then round-robin —
// and its requester hears exactly once: the reply, NO_RESPONDER at once,
// REQUEST_TIMEOUT at exactly its (capped) timeout, RESPONDER_GONE the moment
// its responder goes, RESPONDER_FAILED with the responder's message. Late and
// misdirected replies are dropped and counted, never handed to another request.

import { describe, expect, it } from 'vitest';
import { TopicPattern } from '../../src/engine/index.js';
import { ErrorCode, TickfanError, type FieldValue, type Payload } from '../../src/protocol/index.js';
import { ServiceRouter, type Delivery, type Outcome, type ResponderLink } from '../../src/server/services/index.js';
import { FakeClock } from './fanout-fakes.js';

const MAX_MS = 1_000;

/** A responder that records what it is given; `auto` answers synchronously from inside deliver(). */
class Link implements ResponderLink {
  readonly got: Delivery[] = [];
  auto: ((d: Delivery) => void) | null = null;
  constructor(readonly name: string) {}
  deliver(d: Delivery): void {
    this.got.push(d);
    this.auto?.(d);
  }
  get correlations(): number[] {
    return this.got.map((d) => d.correlation);
  }
}

function fields(o: Record<string, FieldValue>): Payload {
  return { fields: new Map(Object.entries(o)), data: null };
}

function bytes(...b: number[]): Payload {
  return { fields: null, data: new Uint8Array(b) };
}

/** Everything one request heard (must end up with exactly one entry). */
type Heard = Outcome[];

function rig(maxTimeoutMs = MAX_MS) {
  const clock = new FakeClock();
  const router = new ServiceRouter(clock, maxTimeoutMs);
  const requester = { name: 'R' };
  /** Sends a request; what `done` hears lands in the returned list. */
  const ask = (service: string, opts: { payload?: Payload; timeoutMs?: number; from?: object; who?: string } = {}): Heard => {
    const heard: Heard = [];
    router.request(opts.from ?? requester, opts.who ?? 'alice', service, opts.payload ?? fields({ n: 1 }), opts.timeoutMs ?? 0, (o) => heard.push(o));
    return heard;
  };
  const serve = (link: Link, service: string, serveId = 1, subject = link.name) => router.serve(link, serveId, TopicPattern.parse(service), subject);
  const answer = (link: Link, d: Delivery, payload: Payload = fields({ from: link.name, c: d.correlation })) => router.reply(link, d.correlation, { ok: true, payload });
  return { clock, router, requester, ask, serve, answer };
}

function errorOf(heard: Heard): TickfanError {
  expect(heard).toHaveLength(1);
  const o = heard[0]!;
  if (o.ok) throw new Error(`expected an error, got a reply from ${o.responder}`);
  return o.error;
}

function replyOf(heard: Heard): { payload: Payload; responder: string } {
  expect(heard).toHaveLength(1);
  const o = heard[0]!;
  if (!o.ok) throw new Error(`expected a reply, got ${o.error.code}: ${o.error.message}`);
  return o;
}

describe('ServiceRouter: one responder per request', () => {
  it('delivers each request to exactly one responder and each answer to its own requester, once', () => {
    const { router, ask, serve, answer } = rig();
    const links = [new Link('A'), new Link('B'), new Link('C')];
    links.forEach((l) => serve(l, 'orders.submit'));
    const heard: Heard[] = [];
    for (let i = 0; i < 30; i++) heard.push(ask('orders.submit', { payload: fields({ i }), who: `user${i}` }));
    // None answered yet: all 30 spread evenly (fewest in flight first).
    expect(links.map((l) => l.got.length)).toEqual([10, 10, 10]);
    const all = links.flatMap((l) => l.correlations);
    expect(new Set(all).size).toBe(30);
    // Each delivery carries the request's own payload and requester.
    const byI = new Map<number, { link: Link; d: Delivery }>();
    for (const link of links) {
      for (const d of link.got) {
        expect(d.service).toBe('orders.submit');
        expect(d.serveId).toBe(1);
        const i = d.payload.fields!.get('i') as number;
        expect(d.requester).toBe(`user${i}`);
        expect(byI.has(i)).toBe(false);
        byI.set(i, { link, d });
      }
    }
    expect([...byI.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(heard.every((h) => h.length === 0)).toBe(true);
    // Answer in reverse order: every requester gets the answer to its own request.
    for (let i = 29; i >= 0; i--) {
      const { link, d } = byI.get(i)!;
      answer(link, d, fields({ echo: i, by: link.name }));
    }
    for (let i = 0; i < 30; i++) {
      const r = replyOf(heard[i]!);
      expect(Object.fromEntries(r.payload.fields!)).toEqual({ echo: i, by: byI.get(i)!.link.name });
      expect(r.responder).toBe(byI.get(i)!.link.name);
    }
    // A second answer to the same correlation is late: never heard twice.
    const { link, d } = byI.get(0)!;
    answer(link, d);
    expect(heard[0]).toHaveLength(1);
    expect(router.stats).toMatchObject({ requests: 30, replies: 30, lateReplies: 1, requestTimeouts: 0, noResponder: 0 });
  });

  it('round-robins among responders with equally few in flight', () => {
    const { router, ask, serve, answer } = rig();
    const order: string[] = [];
    const links = [new Link('A'), new Link('B'), new Link('C')];
    for (const l of links) {
      l.auto = (d) => (order.push(l.name), answer(l, d));
      serve(l, 'svc.rr');
    }
    const heard = Array.from({ length: 12 }, () => ask('svc.rr'));
    expect(order).toEqual(['A', 'B', 'C', 'A', 'B', 'C', 'A', 'B', 'C', 'A', 'B', 'C']);
    expect(heard.map((h) => replyOf(h).responder)).toEqual(order);
    expect(router.stats.replies).toBe(12);
  });

  it('picks the responder with the fewest requests in flight first', () => {
    const { ask, serve, answer } = rig();
    const [a, b, c] = [new Link('A'), new Link('B'), new Link('C')];
    for (const l of [a, b, c]) serve(l, 'svc.least');
    ask('svc.least');
    ask('svc.least');
    ask('svc.least');
    ask('svc.least'); // A: 2, B: 1, C: 1
    expect([a.got.length, b.got.length, c.got.length]).toEqual([2, 1, 1]);
    answer(c, c.got[0]!); // C: 0
    ask('svc.least');
    expect(c.got.length).toBe(2);
    answer(b, b.got[0]!); // A: 2, B: 0, C: 1
    ask('svc.least');
    expect([a.got.length, b.got.length, c.got.length]).toEqual([2, 2, 2]);
    ask('svc.least'); // A: 2, B: 1, C: 1: B was picked last, C before it → C
    expect([a.got.length, b.got.length, c.got.length]).toEqual([2, 2, 3]);
  });

  it('spreads by answering speed: a fast responder takes most, a stuck one no more than one', () => {
    const { clock, ask, serve, answer } = rig(60_000);
    const [fast, slow, stuck] = [new Link('fast'), new Link('slow'), new Link('stuck')];
    fast.auto = (d) => answer(fast, d);
    slow.auto = (d) => clock.setTimeout(() => answer(slow, d), 10);
    for (const l of [fast, slow, stuck]) serve(l, 'svc.speed');
    const heard: Heard[] = [];
    for (let i = 0; i < 100; i++) {
      heard.push(ask('svc.speed'));
      clock.advance(1);
    }
    clock.advance(20);
    expect(stuck.got.length).toBe(1);
    // slow answers after 10 ms: one request per ~10 ms (it is picked whenever it has none in flight).
    expect(slow.got.length).toBeGreaterThanOrEqual(8);
    expect(slow.got.length).toBeLessThanOrEqual(11);
    expect(fast.got.length).toBe(100 - 1 - slow.got.length);
    expect(heard.filter((h) => h.length === 1 && h[0]!.ok).length).toBe(99);
    expect(heard.filter((h) => h.length === 0).length).toBe(1); // stuck's, still waiting
  });
});

describe('ServiceRouter: typed endings', () => {
  it('NO_RESPONDER at once when nobody serves the name, no timer left behind', () => {
    const { clock, router, ask, serve } = rig();
    serve(new Link('A'), 'orders.*');
    const none = ask('quotes.get');
    const deeper = ask('orders.submit.x'); // * is one level
    for (const h of [none, deeper]) {
      const err = errorOf(h);
      expect(err.errorCode).toBe(ErrorCode.NO_RESPONDER);
    }
    expect(errorOf(none).message).toContain('quotes.get');
    expect(clock.pendingTimers).toBe(0);
    expect(router.stats).toMatchObject({ requests: 2, noResponder: 2 });
  });

  it('REQUEST_TIMEOUT at exactly the requested timeout, not a millisecond before', () => {
    const { clock, router, ask, serve } = rig();
    const a = new Link('A');
    serve(a, 'svc.t');
    const heard = ask('svc.t', { timeoutMs: 250 });
    expect(a.got[0]!.timeoutMs).toBe(250);
    clock.advance(249);
    expect(heard).toHaveLength(0);
    clock.advance(1);
    const err = errorOf(heard);
    expect(err.errorCode).toBe(ErrorCode.REQUEST_TIMEOUT);
    expect(err.message).toContain('250 ms');
    expect(router.stats.requestTimeouts).toBe(1);
    clock.advance(10_000);
    expect(heard).toHaveLength(1);
  });

  it('caps a timeout at maxTimeoutMs, and uses maxTimeoutMs when the request names none (0)', () => {
    for (const asked of [5_000, 0]) {
      const { clock, ask, serve } = rig(MAX_MS);
      const a = new Link('A');
      serve(a, 'svc.t');
      const heard = ask('svc.t', { timeoutMs: asked });
      expect(a.got[0]!.timeoutMs, `asked ${asked}`).toBe(MAX_MS);
      clock.advance(MAX_MS - 1);
      expect(heard, `asked ${asked}`).toHaveLength(0);
      clock.advance(1);
      expect(errorOf(heard).errorCode, `asked ${asked}`).toBe(ErrorCode.REQUEST_TIMEOUT);
      expect(errorOf(heard).message).toContain(`${MAX_MS} ms`);
    }
  });

  it('a reply after the timeout is dropped, counted, and never reaches a later request', () => {
    const { clock, router, ask, serve, answer } = rig();
    const a = new Link('A');
    serve(a, 'svc.late');
    const first = ask('svc.late', { timeoutMs: 100 });
    clock.advance(100);
    expect(errorOf(first).errorCode).toBe(ErrorCode.REQUEST_TIMEOUT);
    const second = ask('svc.late', { timeoutMs: 100 });
    const [d1, d2] = a.got;
    expect(d2!.correlation).not.toBe(d1!.correlation);
    answer(a, d1!, fields({ stale: true }));
    expect(router.stats.lateReplies).toBe(1);
    expect(second).toHaveLength(0);
    expect(first).toHaveLength(1);
    answer(a, d2!, fields({ fresh: true }));
    expect(Object.fromEntries(replyOf(second).payload.fields!)).toEqual({ fresh: true });
    expect(router.stats).toMatchObject({ replies: 1, lateReplies: 1, requestTimeouts: 1 });
  });

  it('never reuses a correlation id, across timeouts, failures and answers', () => {
    const { clock, ask, serve, answer, router } = rig();
    const a = new Link('A');
    serve(a, 'svc.c');
    for (let i = 0; i < 50; i++) {
      ask('svc.c', { timeoutMs: 10 });
      const d = a.got[a.got.length - 1]!;
      if (i % 3 === 0) answer(a, d);
      else if (i % 3 === 1) router.reply(a, d.correlation, { ok: false, message: 'no' });
      else clock.advance(10);
    }
    expect(new Set(a.correlations).size).toBe(50);
  });

  it('a reply from a responder other than the chosen one is dropped; the chosen one still answers', () => {
    const { router, ask, serve, answer } = rig();
    const [a, b] = [new Link('A'), new Link('B')];
    serve(a, 'svc.w');
    serve(b, 'svc.w');
    const heard = ask('svc.w');
    const d = a.got[0]!;
    expect(b.got).toHaveLength(0);
    answer(b, d, fields({ forged: true }));
    router.reply(b, d.correlation, { ok: false, message: 'forged failure' });
    expect(heard).toHaveLength(0);
    expect(router.stats.lateReplies).toBe(2);
    answer(a, d, fields({ real: true }));
    expect(Object.fromEntries(replyOf(heard).payload.fields!)).toEqual({ real: true });
    expect(replyOf(heard).responder).toBe('A');
  });

  it("RESPONDER_FAILED carries the responder's message (and says so when there is none)", () => {
    const { router, ask, serve } = rig();
    const a = new Link('A');
    serve(a, 'svc.f');
    const h1 = ask('svc.f');
    const h2 = ask('svc.f');
    router.reply(a, a.got[0]!.correlation, { ok: false, message: 'insufficient margin' });
    router.reply(a, a.got[1]!.correlation, { ok: false, message: '' });
    expect(errorOf(h1).errorCode).toBe(ErrorCode.RESPONDER_FAILED);
    expect(errorOf(h1).message).toBe('insufficient margin');
    expect(errorOf(h2).errorCode).toBe(ErrorCode.RESPONDER_FAILED);
    expect(errorOf(h2).message.length).toBeGreaterThan(0);
  });

  it('carries bytes payloads both ways untouched', () => {
    const { ask, serve, answer } = rig();
    const a = new Link('A');
    serve(a, 'svc.bin');
    const heard = ask('svc.bin', { payload: bytes(0, 1, 255) });
    expect(a.got[0]!.payload).toEqual(bytes(0, 1, 255));
    answer(a, a.got[0]!, bytes(9, 8));
    expect(replyOf(heard).payload).toEqual(bytes(9, 8));
  });
});

describe('ServiceRouter: responders and requesters that go away', () => {
  it('responderGone fails its in-flight requests at once with RESPONDER_GONE; others are unaffected', () => {
    const { clock, router, ask, serve, answer } = rig();
    const [a, b] = [new Link('A'), new Link('B')];
    serve(a, 'svc.g');
    serve(b, 'svc.g', 7);
    const heard = Array.from({ length: 6 }, () => ask('svc.g', { timeoutMs: 500 }));
    expect([a.got.length, b.got.length]).toEqual([3, 3]);
    const timersBefore = clock.pendingTimers;
    router.responderGone(a);
    // At once: no time passes.
    const ofA = new Set(a.correlations);
    const aHeard = heard.filter((_, i) => ofA.has(i + 1));
    const bHeard = heard.filter((_, i) => !ofA.has(i + 1));
    expect(aHeard).toHaveLength(3);
    for (const h of aHeard) {
      expect(errorOf(h).errorCode).toBe(ErrorCode.RESPONDER_GONE);
    }
    expect(bHeard.every((h) => h.length === 0)).toBe(true);
    expect(clock.pendingTimers).toBe(timersBefore - 3);
    // B's still answer; new requests go to B only; A's late answers are dropped.
    for (const d of b.got) answer(b, d);
    expect(bHeard.every((h) => h.length === 1 && h[0]!.ok)).toBe(true);
    ask('svc.g');
    expect([a.got.length, b.got.length]).toEqual([3, 4]);
    expect(b.got[3]!.serveId).toBe(7);
    answer(a, a.got[0]!);
    expect(router.stats.lateReplies).toBe(1);
    expect(aHeard.every((h) => h.length === 1)).toBe(true);
    clock.advance(1_000);
    expect(router.stats.requestTimeouts).toBe(1); // only B's newest, unanswered
  });

  it('responderGone also fails requests it took before it withdrew its offer (unserve, then disconnect)', () => {
    const { clock, router, ask, serve } = rig();
    const a = new Link('A');
    serve(a, 'svc.u', 1);
    const heard = ask('svc.u', { timeoutMs: 800 });
    router.unserve(a, 1);
    router.responderGone(a);
    // Nobody will ever answer it: the requester must hear now, not after 800 ms.
    expect(heard).toHaveLength(1);
    expect(errorOf(heard).errorCode).toBe(ErrorCode.RESPONDER_GONE);
    clock.advance(800);
    expect(router.stats.requestTimeouts).toBe(0);
  });

  it('responderGone of a link with two offers, one withdrawn: both offers’ requests fail at once', () => {
    const { router, ask, serve } = rig();
    const a = new Link('A');
    serve(a, 'svc.one', 1);
    serve(a, 'svc.two', 2);
    const h1 = ask('svc.one');
    const h2 = ask('svc.two');
    router.unserve(a, 1);
    router.responderGone(a);
    expect(errorOf(h1).errorCode).toBe(ErrorCode.RESPONDER_GONE);
    expect(errorOf(h2).errorCode).toBe(ErrorCode.RESPONDER_GONE);
  });

  it('requesterGone forgets its requests: never heard, their replies count as late, the responder is free again', () => {
    const { clock, router, ask, serve, answer } = rig();
    const [a, b] = [new Link('A'), new Link('B')];
    serve(a, 'svc.r');
    serve(b, 'svc.r');
    const r1 = { name: 'R1' };
    const r2 = { name: 'R2' };
    const h1 = ask('svc.r', { from: r1 }); // → A
    const h2 = ask('svc.r', { from: r2 }); // → B
    const h3 = ask('svc.r', { from: r1 }); // → A (picked longer ago)
    expect([a.got.length, b.got.length]).toEqual([2, 1]);
    router.requesterGone(r1);
    // A has nothing in flight any more: the next request goes to it, not to B.
    const h4 = ask('svc.r', { from: r2 });
    expect([a.got.length, b.got.length]).toEqual([3, 1]);
    answer(a, a.got[0]!);
    answer(a, a.got[1]!);
    expect(router.stats.lateReplies).toBe(2);
    clock.advance(MAX_MS * 2);
    expect(h1).toHaveLength(0);
    expect(h3).toHaveLength(0);
    // R2's requests were untouched (and timed out in the end, having had no answer).
    expect(errorOf(h2).errorCode).toBe(ErrorCode.REQUEST_TIMEOUT);
    expect(errorOf(h4).errorCode).toBe(ErrorCode.REQUEST_TIMEOUT);
    expect(router.stats.requestTimeouts).toBe(2);
  });

  it('unserve: no new requests, but those in flight still get their answers', () => {
    const { router, ask, serve, answer } = rig();
    const a = new Link('A');
    serve(a, 'svc.un', 3);
    const inFlight = ask('svc.un');
    router.unserve(a, 3);
    expect(router.has('svc.un')).toBe(false);
    expect(errorOf(ask('svc.un')).errorCode).toBe(ErrorCode.NO_RESPONDER);
    answer(a, a.got[0]!, fields({ ok: 1 }));
    expect(Object.fromEntries(replyOf(inFlight).payload.fields!)).toEqual({ ok: 1 });
    expect(router.stats.lateReplies).toBe(0);
    expect(() => router.unserve(a, 3)).toThrowError(expect.objectContaining({ errorCode: ErrorCode.UNKNOWN_SUBSCRIPTION }));
    // The id may be used again once withdrawn.
    serve(a, 'svc.un', 3);
    expect(router.has('svc.un')).toBe(true);
  });

  it('a serve id in use on a connection is refused; the same id on another connection is fine', () => {
    const { serve } = rig();
    const [a, b] = [new Link('A'), new Link('B')];
    serve(a, 'svc.x', 1);
    expect(() => serve(a, 'svc.y', 1)).toThrowError(expect.objectContaining({ errorCode: ErrorCode.BAD_REQUEST }));
    expect(() => serve(b, 'svc.x', 1)).not.toThrow();
  });

  it('close() fails everything in flight with RESPONDER_GONE and leaves no timer', () => {
    const { clock, router, ask, serve, answer } = rig();
    const [a, b] = [new Link('A'), new Link('B')];
    serve(a, 'svc.c');
    serve(b, 'svc.*');
    const heard = Array.from({ length: 5 }, () => ask('svc.c'));
    router.close();
    for (const h of heard) expect(errorOf(h).errorCode).toBe(ErrorCode.RESPONDER_GONE);
    expect(clock.pendingTimers).toBe(0);
    answer(a, a.got[0]!);
    expect(router.stats.lateReplies).toBe(1);
    expect(heard.every((h) => h.length === 1)).toBe(true);
  });
});

describe('ServiceRouter: names and patterns', () => {
  it('exact names and patterns (* one level, > the rest) compete for the names they both cover', () => {
    const { router, ask, serve } = rig();
    const [star, exact, tail] = [new Link('star'), new Link('exact'), new Link('tail')];
    serve(star, 'orders.*');
    serve(exact, 'orders.submit');
    serve(tail, 'risk.>');
    ask('orders.cancel');
    expect([star.got.length, exact.got.length]).toEqual([1, 0]);
    expect(star.got[0]!.service).toBe('orders.cancel'); // the name asked, not the pattern
    ask('orders.submit');
    ask('orders.submit');
    // The first submit goes to exact (none in flight); the second finds both with one: star was picked longer ago.
    expect([star.got.length, exact.got.length]).toEqual([2, 1]);
    ask('risk.limits.EU');
    ask('risk.x');
    expect(tail.got.map((d) => d.service)).toEqual(['risk.limits.EU', 'risk.x']);
    expect(errorOf(ask('risk')).errorCode).toBe(ErrorCode.NO_RESPONDER);
    expect(errorOf(ask('orders')).errorCode).toBe(ErrorCode.NO_RESPONDER);
    expect(router.has('orders.anything')).toBe(true);
    expect(router.has('orders.a.b')).toBe(false);
    expect(router.has('risk.a.b.c')).toBe(true);
    router.unserve(star, 1);
    expect(router.has('orders.cancel')).toBe(false);
    expect(router.has('orders.submit')).toBe(true);
  });
});
