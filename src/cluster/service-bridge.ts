// Request-reply across cluster nodes. A node's sessions use this gate in
// front of their local router: a request with a local responder stays local;
// one without is forwarded on NATS (`<prefix>.svc.<service>`), where every
// node that has local offers for the service (a name or a pattern) listens in
// one queue group, so exactly one node takes it and its router picks one
// local responder; the answer comes back as the NATS reply. NATS "no
// responders" is NO_RESPONDER at once, no answer within the request's own
// timeout REQUEST_TIMEOUT, and a remote router's typed error (NO_RESPONDER,
// REQUEST_TIMEOUT, RESPONDER_GONE, RESPONDER_FAILED) comes back as it is.

import type { Msg, Subscription } from '@nats-io/transport-node';
import type { TopicPattern } from '../engine/index.js';
import { ErrorCode, TickfanError, type Payload } from '../protocol/index.js';
import type { Outcome, ReplyOutcome, ResponderLink, RouterStats, ServiceGate, ServiceRouter } from '../server/services/index.js';
import type { ClusterStats } from './cluster-stats.js';
import type { NatsLink } from './nats-link.js';
import { encodeForwardedRequest, encodeOutcome, readForwardedRequest, readOutcome } from './service-messages.js';
import type { Subjects } from './subjects.js';

/** Longest the ack of a first offer waits for NATS to confirm its subscription (a hung NATS must not hold the responder). */
const SUBSCRIBE_CONFIRM_MS = 2_000;

/** Answers a forwarded request on NATS; with NATS closed or draining (this node stopping) the requester's node times it out. */
function respond(msg: Msg, o: Outcome): void {
  try {
    msg.respond(encodeOutcome(o));
  } catch {
    // nothing to answer on
  }
}

/** One NATS subscription per offered name or pattern, while this node has at least one offer for it. */
interface Listening {
  sub: Subscription;
  offers: number;
  /** Settles once nats-server has the subscription (or NATS is away: it is sent on reconnect). */
  ready: Promise<void>;
}

/** A request forwarded to another node and not yet answered. */
interface Forwarded {
  requester: object;
  done: (o: Outcome) => void;
  /** Ended: answered, failed, or its requester went away (a later answer is dropped). */
  over: boolean;
}

export class ClusterServices implements ServiceGate {
  private readonly listening = new Map<string, Listening>();
  /** Per responder link: its offers' sources (what to release when it withdraws or goes). */
  private readonly sources = new Map<ResponderLink, Map<number, string>>();
  private readonly forwarded = new Map<object, Set<Forwarded>>();
  /** The requester of every request that came from another node (their answers go back on NATS). */
  private readonly peer = {};
  private closed = false;

  constructor(
    readonly local: ServiceRouter,
    private readonly link: NatsLink,
    private readonly subjects: Subjects,
    private readonly cstats: ClusterStats,
    private readonly stats: RouterStats,
    /** Longest timeout a request may ask for (and the default when it asks for none), as the local router's. */
    private readonly maxTimeoutMs: number,
  ) {}

  /** Offers locally, and listens on NATS for the service's forwarded requests once this node has a first offer for it. */
  serve(link: ResponderLink, serveId: number, service: TopicPattern, subject: string): Promise<void> {
    this.local.serve(link, serveId, service, subject); // throws for a reused id, before anything is counted
    let ids = this.sources.get(link);
    if (!ids) this.sources.set(link, (ids = new Map()));
    ids.set(serveId, service.source);
    return this.listen(service.source);
  }

  unserve(link: ResponderLink, serveId: number): void {
    this.local.unserve(link, serveId);
    const ids = this.sources.get(link);
    const source = ids?.get(serveId);
    ids?.delete(serveId);
    if (ids?.size === 0) this.sources.delete(link);
    if (source !== undefined) this.release(source);
  }

  responderGone(link: ResponderLink): void {
    this.local.responderGone(link);
    const ids = this.sources.get(link);
    this.sources.delete(link);
    if (ids) for (const source of ids.values()) this.release(source);
  }

  requesterGone(requester: object): void {
    this.local.requesterGone(requester);
    const mine = this.forwarded.get(requester);
    if (!mine) return;
    this.forwarded.delete(requester);
    for (const f of mine) f.over = true;
  }

  reply(link: ResponderLink, correlation: number, outcome: ReplyOutcome): void {
    this.local.reply(link, correlation, outcome);
  }

  /** Local when a responder here offers `service`; otherwise forwarded to a node that has one. */
  request(requester: object, who: string, service: string, payload: Payload, timeoutMs: number, done: (o: Outcome) => void): void {
    if (this.closed || this.local.has(service)) return this.local.request(requester, who, service, payload, timeoutMs, done);
    this.stats.requests++;
    if (this.link.state !== 'connected') {
      this.stats.noResponder++;
      this.cstats.requestFailures++;
      done({ ok: false, error: new TickfanError(ErrorCode.NO_RESPONDER, `no responder serves ${service} on this node, and it has lost NATS for now (reconnecting): no other node can be asked`) });
      return;
    }
    const ms = timeoutMs > 0 ? Math.min(timeoutMs, this.maxTimeoutMs) : this.maxTimeoutMs;
    const f: Forwarded = { requester, done, over: false };
    let mine = this.forwarded.get(requester);
    if (!mine) this.forwarded.set(requester, (mine = new Set()));
    mine.add(f);
    this.cstats.requestsOut++;
    let answer: Promise<Msg>;
    try {
      answer = this.link.nc.request(this.subjects.service(service), encodeForwardedRequest({ service, who, timeoutMs: ms, payload }), { timeout: ms });
    } catch (err) {
      answer = Promise.reject(err);
    }
    answer.then(
      (msg) => this.end(f, readOutcome(msg.data)),
      (err) => this.end(f, { ok: false, error: this.natsError(err, service, ms) }),
    );
  }

  private end(f: Forwarded, o: Outcome): void {
    if (f.over) return; // its requester went away, or the node closed: dropped
    f.over = true;
    const mine = this.forwarded.get(f.requester);
    mine?.delete(f);
    if (mine?.size === 0) this.forwarded.delete(f.requester);
    if (!o.ok) {
      this.cstats.requestFailures++;
      if (o.error.errorCode === ErrorCode.NO_RESPONDER) this.stats.noResponder++;
      else if (o.error.errorCode === ErrorCode.REQUEST_TIMEOUT) this.stats.requestTimeouts++;
    }
    f.done(o);
  }

  /** What a failed NATS request means for the requester. */
  private natsError(err: unknown, service: string, ms: number): TickfanError {
    if (err instanceof TickfanError) return err;
    const e = err as Error & { cause?: Error };
    if (e.name === 'NoRespondersError' || e.cause?.name === 'NoRespondersError') return new TickfanError(ErrorCode.NO_RESPONDER, `no responder serves ${service} now (on any node)`);
    if (e.name === 'TimeoutError' || e.cause?.name === 'TimeoutError') return new TickfanError(ErrorCode.REQUEST_TIMEOUT, `${service}: no answer within ${ms} ms (from the node it was forwarded to)`);
    return new TickfanError(ErrorCode.NO_RESPONDER, `${service}: the request could not be forwarded to another node (${e.message})`, { cause: err });
  }

  /** A request from another node: one local responder answers it (or the local router's typed error goes back). */
  private answer(msg: Msg): void {
    if (!msg.reply) return; // not a request (nobody to answer)
    let req;
    try {
      req = readForwardedRequest(msg.data);
    } catch (err) {
      respond(msg, { ok: false, error: err instanceof TickfanError ? err : new TickfanError(ErrorCode.BAD_REQUEST, `cluster: a forwarded request could not be read (${(err as Error).message})`) });
      return;
    }
    this.cstats.requestsIn++;
    this.local.request(this.peer, req.who, req.service, req.payload, req.timeoutMs, (o) => respond(msg, o));
  }

  private listen(source: string): Promise<void> {
    const l = this.listening.get(source);
    if (l) {
      l.offers++;
      return l.ready;
    }
    const nc = this.link.nc;
    let sub: Subscription;
    try {
      sub = nc.subscribe(this.subjects.service(source), { queue: this.subjects.serviceQueue, callback: (err, msg) => void (err || this.answer(msg)) });
    } catch {
      return Promise.resolve(); // NATS closed (this node stopping): the offer is local only
    }
    // nats.js sends the subscription again by itself after a reconnect, on this same connection.
    const ready =
      this.link.state !== 'connected'
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            const t = setTimeout(resolve, SUBSCRIBE_CONFIRM_MS);
            nc.flush().then(
              () => (clearTimeout(t), resolve()),
              () => (clearTimeout(t), resolve()),
            );
          });
    this.listening.set(source, { sub, offers: 1, ready });
    return ready;
  }

  private release(source: string): void {
    const l = this.listening.get(source);
    if (!l || --l.offers > 0) return;
    this.listening.delete(source);
    // Drained, not dropped: a request NATS already handed to this node is answered (NO_RESPONDER when no offer is left), not left to time out.
    if (!this.link.nc.isClosed()) l.sub.drain().catch(() => undefined);
  }

  /** Names and patterns this node listens for on NATS now. */
  listeningTo(): string[] {
    return [...this.listening.keys()];
  }

  close(): void {
    this.closed = true;
    this.local.close();
    const err = new TickfanError(ErrorCode.RESPONDER_GONE, 'the server is shutting down');
    for (const mine of [...this.forwarded.values()]) for (const f of mine) this.end(f, { ok: false, error: err });
    for (const l of this.listening.values()) if (!this.link.nc.isClosed()) l.sub.unsubscribe();
    this.listening.clear();
  }
}
