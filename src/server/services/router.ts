// The service router: responders offer services (names or patterns), each
// request goes to exactly one of them — the one with the fewest requests in
// flight, then round-robin — and its answer goes back to its requester once.
// Timeouts, late answers and vanished responders end a request with a typed
// error. Nothing is queued or stored: non-persistent by design.

import { TopicPattern, isPattern } from '../../engine/index.js';
import { ErrorCode, TickfanError, type Payload, type ServiceRequestMsg } from '../../protocol/index.js';
import type { Clock, TimerHandle } from '../fanout/index.js';

/** What a responder receives: a ServiceRequest (serveId: its own Serve id; requester: the asker's token subject). */
export type Delivery = Omit<ServiceRequestMsg, 'type'>;

/**
 * How the router reaches a responder: a session of this node, or of another
 * worker. Responders on other cluster nodes are not links: the cluster's gate
 * in front of the router (cluster/service-bridge.ts) forwards to their nodes.
 */
export interface ResponderLink {
  deliver(d: Delivery): void;
}

/** The outcome a requester gets: a reply (with who answered) or a typed error. */
export type Outcome = { ok: true; payload: Payload; responder: string } | { ok: false; error: TickfanError };

export interface RouterStats {
  requests: number;
  replies: number;
  lateReplies: number;
  requestTimeouts: number;
  noResponder: number;
}

interface Offer {
  readonly link: ResponderLink;
  readonly serveId: number;
  readonly pattern: TopicPattern;
  /** Who answers (the responder's token subject). */
  readonly subject: string;
  inFlight: number;
  /** When it was last picked (round-robin among equals). */
  lastPick: number;
}

interface InFlight {
  offer: Offer;
  requester: object;
  done: (o: Outcome) => void;
  timer: TimerHandle;
}

/**
 * What a node's sessions use for services: the router itself in one thread;
 * with fan-out workers, a gate that forwards to the main thread's router.
 */
export interface ServiceGate {
  /** Offers a service; settles once the router will route to it (a promise when the router is in another thread). */
  serve(link: ResponderLink, serveId: number, service: TopicPattern, subject: string): void | Promise<void>;
  unserve(link: ResponderLink, serveId: number): void;
  request(requester: object, who: string, service: string, payload: Payload, timeoutMs: number, done: (o: Outcome) => void): void;
  reply(link: ResponderLink, correlation: number, outcome: ReplyOutcome): void;
  responderGone(link: ResponderLink): void;
  requesterGone(requester: object): void;
  close(): void;
}

/** What a responder answered: a payload, or the message of its failure. */
export type ReplyOutcome = { ok: true; payload: Payload } | { ok: false; message: string };

export class ServiceRouter implements ServiceGate {
  private readonly exact = new Map<string, Set<Offer>>();
  private readonly patterns = new Set<Offer>();
  private readonly byLink = new Map<ResponderLink, Map<number, Offer>>();
  private readonly inFlight = new Map<number, InFlight>();
  private nextCorrelation = 1;
  private picks = 0;

  constructor(
    private readonly clock: Clock,
    /** Longest timeout a request may ask for (and the default when it asks for none). */
    private readonly maxTimeoutMs: number,
    readonly stats: RouterStats = { requests: 0, replies: 0, lateReplies: 0, requestTimeouts: 0, noResponder: 0 },
  ) {}

  /** `link` offers to answer `service` (a name or a pattern) under its own id `serveId`. */
  serve(link: ResponderLink, serveId: number, service: TopicPattern, subject: string): void {
    let offers = this.byLink.get(link);
    if (!offers) this.byLink.set(link, (offers = new Map()));
    if (offers.has(serveId)) throw new TickfanError(ErrorCode.BAD_REQUEST, `serve id ${serveId} is already in use on this connection`);
    const offer: Offer = { link, serveId, pattern: service, subject, inFlight: 0, lastPick: 0 };
    offers.set(serveId, offer);
    if (isPattern(service.source)) this.patterns.add(offer);
    else {
      let set = this.exact.get(service.source);
      if (!set) this.exact.set(service.source, (set = new Set()));
      set.add(offer);
    }
  }

  /** Withdraws one offer; requests it is answering still get their answers. */
  unserve(link: ResponderLink, serveId: number): void {
    const offer = this.byLink.get(link)?.get(serveId);
    if (!offer) throw new TickfanError(ErrorCode.UNKNOWN_SUBSCRIPTION, `no service offer ${serveId} on this connection`);
    this.drop(offer);
  }

  private drop(offer: Offer): void {
    const offers = this.byLink.get(offer.link);
    offers?.delete(offer.serveId);
    if (offers && offers.size === 0) this.byLink.delete(offer.link);
    this.patterns.delete(offer);
    const set = this.exact.get(offer.pattern.source);
    if (set && set.delete(offer) && set.size === 0) this.exact.delete(offer.pattern.source);
  }

  /**
   * A responder is gone: its offers end, and what it was answering fails at
   * once with RESPONDER_GONE — also requests taken by an offer it had
   * already withdrawn (unserve keeps those in flight, and nobody else will answer them).
   */
  responderGone(link: ResponderLink): void {
    const offers = this.byLink.get(link);
    if (offers) for (const offer of [...offers.values()]) this.drop(offer);
    for (const [correlation, f] of this.inFlight) {
      if (f.offer.link !== link) continue;
      this.finish(correlation, f, { ok: false, error: new TickfanError(ErrorCode.RESPONDER_GONE, `the responder for ${f.offer.pattern.source} disconnected before answering`) });
    }
  }

  /** A requester is gone: its requests are forgotten (answers to them will be counted as late). */
  requesterGone(requester: object): void {
    for (const [correlation, f] of this.inFlight) {
      if (f.requester !== requester) continue;
      this.clock.clearTimeout(f.timer);
      this.inFlight.delete(correlation);
      f.offer.inFlight--;
    }
  }

  /** True when some responder offers `service` now. */
  has(service: string): boolean {
    if (this.exact.get(service)?.size) return true;
    for (const o of this.patterns) if (o.pattern.matches(service)) return true;
    return false;
  }

  /**
   * Sends one request to exactly one responder. `done` is called exactly once:
   * with its answer, or a typed error (NO_RESPONDER at once, REQUEST_TIMEOUT,
   * RESPONDER_GONE, RESPONDER_FAILED).
   */
  request(requester: object, who: string, service: string, payload: Payload, timeoutMs: number, done: (o: Outcome) => void): void {
    this.stats.requests++;
    const offer = this.pick(service);
    if (!offer) {
      this.stats.noResponder++;
      done({ ok: false, error: new TickfanError(ErrorCode.NO_RESPONDER, `no responder serves ${service} now`) });
      return;
    }
    const ms = timeoutMs > 0 ? Math.min(timeoutMs, this.maxTimeoutMs) : this.maxTimeoutMs;
    const correlation = this.nextCorrelation++;
    const timer = this.clock.setTimeout(() => {
      const f = this.inFlight.get(correlation);
      if (!f) return;
      this.stats.requestTimeouts++;
      this.finish(correlation, f, { ok: false, error: new TickfanError(ErrorCode.REQUEST_TIMEOUT, `${service}: no answer within ${ms} ms`) });
    }, ms);
    offer.inFlight++;
    offer.lastPick = ++this.picks;
    this.inFlight.set(correlation, { offer, requester, done, timer });
    offer.link.deliver({ correlation, serveId: offer.serveId, service, requester: who, payload, timeoutMs: ms });
  }

  /**
   * A responder answers `correlation`. Answers from anyone but the chosen
   * responder, or after the request ended (timeout, requester gone), are
   * dropped and counted as late: never delivered to another request.
   */
  reply(link: ResponderLink, correlation: number, outcome: ReplyOutcome): void {
    const f = this.inFlight.get(correlation);
    if (!f || f.offer.link !== link) {
      this.stats.lateReplies++;
      return;
    }
    this.stats.replies++;
    this.finish(
      correlation,
      f,
      outcome.ok
        ? { ok: true, payload: outcome.payload, responder: f.offer.subject }
        : { ok: false, error: new TickfanError(ErrorCode.RESPONDER_FAILED, outcome.message || 'the responder failed without a message') },
    );
  }

  private finish(correlation: number, f: InFlight, o: Outcome): void {
    this.clock.clearTimeout(f.timer);
    this.inFlight.delete(correlation);
    f.offer.inFlight--;
    f.done(o);
  }

  /** Fewest in flight first, then the one picked longest ago. */
  private pick(service: string): Offer | null {
    let best: Offer | null = null;
    const consider = (o: Offer) => {
      if (!best || o.inFlight < best.inFlight || (o.inFlight === best.inFlight && o.lastPick < best.lastPick)) best = o;
    };
    const exact = this.exact.get(service);
    if (exact) for (const o of exact) consider(o);
    for (const o of this.patterns) if (o.pattern.matches(service)) consider(o);
    return best;
  }

  /** Ends every request (shutdown). */
  close(): void {
    for (const [correlation, f] of this.inFlight) this.finish(correlation, f, { ok: false, error: new TickfanError(ErrorCode.RESPONDER_GONE, 'the server is shutting down') });
  }
}
