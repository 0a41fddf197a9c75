// A fan-out worker's way to request-reply: its sessions' offers, requests and
// replies go to the main thread's router, so a requester and a responder on
// different workers still meet; deliveries and outcomes come back here.

import { ErrorCode, TickfanError, type Payload } from '../protocol/index.js';
import type { TopicPattern } from '../engine/index.js';
import type { Outcome, ReplyOutcome, ResponderLink, ServiceGate } from '../server/services/index.js';
import type { ServiceToMain, ServiceToWorker } from './messages.js';

export class WorkerServiceGate implements ServiceGate {
  private readonly linkIds = new Map<ResponderLink, number>();
  private readonly links = new Map<number, ResponderLink>();
  /** Offer ids per link, to refuse a reused id here as the router would. */
  private readonly offers = new Map<ResponderLink, Set<number>>();
  private readonly requesterIds = new WeakMap<object, number>();
  private readonly pending = new Map<number, { requester: number; done: (o: Outcome) => void }>();
  private nextId = 1;
  /** Offers sent to the main thread, waiting for its word that the router has them. */
  private readonly serving = new Map<string, () => void>();

  constructor(private readonly post: (m: ServiceToMain) => void) {}

  private linkId(link: ResponderLink): number {
    let id = this.linkIds.get(link);
    if (id === undefined) {
      id = this.nextId++;
      this.linkIds.set(link, id);
      this.links.set(id, link);
    }
    return id;
  }

  /** Resolves once the main thread's router has the offer (requests from any worker then find it). */
  serve(link: ResponderLink, serveId: number, service: TopicPattern, subject: string): Promise<void> {
    let ids = this.offers.get(link);
    if (!ids) this.offers.set(link, (ids = new Set()));
    if (ids.has(serveId)) throw new TickfanError(ErrorCode.BAD_REQUEST, `serve id ${serveId} is already in use on this connection`);
    ids.add(serveId);
    const id = this.linkId(link);
    return new Promise((resolve) => {
      this.serving.set(`${id}:${serveId}`, resolve);
      this.post({ type: 'svc.serve', link: id, serveId, service: service.source, subject });
    });
  }

  unserve(link: ResponderLink, serveId: number): void {
    if (!this.offers.get(link)?.delete(serveId)) throw new TickfanError(ErrorCode.UNKNOWN_SUBSCRIPTION, `no service offer ${serveId} on this connection`);
    this.post({ type: 'svc.unserve', link: this.linkId(link), serveId });
  }

  request(requester: object, who: string, service: string, payload: Payload, timeoutMs: number, done: (o: Outcome) => void): void {
    let rid = this.requesterIds.get(requester);
    if (rid === undefined) this.requesterIds.set(requester, (rid = this.nextId++));
    const request = this.nextId++;
    this.pending.set(request, { requester: rid, done });
    this.post({ type: 'svc.request', request, requester: rid, who, service, payload, timeoutMs });
  }

  reply(link: ResponderLink, correlation: number, outcome: ReplyOutcome): void {
    this.post({ type: 'svc.reply', link: this.linkId(link), correlation, outcome });
  }

  responderGone(link: ResponderLink): void {
    const id = this.linkIds.get(link);
    if (id === undefined) return;
    this.linkIds.delete(link);
    this.links.delete(id);
    this.offers.delete(link);
    this.post({ type: 'svc.responderGone', link: id });
  }

  requesterGone(requester: object): void {
    const rid = this.requesterIds.get(requester);
    if (rid === undefined) return;
    for (const [id, p] of this.pending) if (p.requester === rid) this.pending.delete(id);
    this.post({ type: 'svc.requesterGone', requester: rid });
  }

  /** A message from the main thread's router. */
  fromMain(m: ServiceToWorker): void {
    if (m.type === 'svc.served') {
      const key = `${m.link}:${m.serveId}`;
      this.serving.get(key)?.();
      this.serving.delete(key);
      return;
    }
    if (m.type === 'svc.deliver') {
      // A responder that left since the router chose it: the router hears of it and fails the request.
      this.links.get(m.link)?.deliver(m.delivery);
      return;
    }
    const p = this.pending.get(m.request);
    if (!p) return;
    this.pending.delete(m.request);
    const o = m.outcome;
    p.done(o.ok ? o : { ok: false, error: new TickfanError(o.code as ErrorCode, o.message) });
  }

  close(): void {
    const err = new TickfanError(ErrorCode.RESPONDER_GONE, 'the server is shutting down');
    for (const p of this.pending.values()) p.done({ ok: false, error: err });
    this.pending.clear();
  }
}
