// The main thread's side of request-reply with fan-out workers: one router
// for every worker's responders and requesters, so a request finds a
// responder on any worker (fewest in flight first, as in one thread).

import { TopicPattern } from '../engine/index.js';
import { realClock } from '../server/fanout/index.js';
import type { ServerStats } from '../server/stats.js';
import { ServiceRouter, type ResponderLink } from '../server/services/index.js';
import type { ServiceToMain, ServiceToWorker } from './messages.js';

export class ServiceHub {
  readonly router: ServiceRouter;
  /** Per worker: its responders (by its link id) and its requesters (by its id). */
  private readonly links: Map<number, ResponderLink>[] = [];
  private readonly requesters: Map<number, object>[] = [];

  constructor(
    workers: number,
    private readonly post: (worker: number, m: ServiceToWorker) => void,
    stats: ServerStats,
    requestTimeoutMs: number,
  ) {
    this.router = new ServiceRouter(realClock, requestTimeoutMs, stats);
    for (let i = 0; i < workers; i++) this.links.push(new Map()), this.requesters.push(new Map());
  }

  private link(worker: number, id: number): ResponderLink {
    const links = this.links[worker]!;
    let link = links.get(id);
    if (!link) links.set(id, (link = { deliver: (delivery) => this.post(worker, { type: 'svc.deliver', link: id, delivery }) }));
    return link;
  }

  private requester(worker: number, id: number): object {
    const rs = this.requesters[worker]!;
    let r = rs.get(id);
    if (!r) rs.set(id, (r = {}));
    return r;
  }

  /** One message from worker `worker`. */
  handle(worker: number, m: ServiceToMain): void {
    const router = this.router;
    switch (m.type) {
      case 'svc.serve':
        // The worker checked the name, the grant and the id already.
        router.serve(this.link(worker, m.link), m.serveId, TopicPattern.parse(m.service), m.subject);
        this.post(worker, { type: 'svc.served', link: m.link, serveId: m.serveId });
        return;
      case 'svc.unserve':
        try {
          router.unserve(this.link(worker, m.link), m.serveId);
        } catch {
          // already gone with its responder
        }
        return;
      case 'svc.request':
        router.request(this.requester(worker, m.requester), m.who, m.service, m.payload, m.timeoutMs, (o) =>
          this.post(worker, { type: 'svc.outcome', request: m.request, outcome: o.ok ? o : { ok: false, code: o.error.errorCode, message: o.error.message } }),
        );
        return;
      case 'svc.reply':
        router.reply(this.link(worker, m.link), m.correlation, m.outcome);
        return;
      case 'svc.responderGone': {
        const link = this.links[worker]!.get(m.link);
        if (!link) return;
        this.links[worker]!.delete(m.link);
        router.responderGone(link);
        return;
      }
      case 'svc.requesterGone': {
        const r = this.requesters[worker]!.get(m.requester);
        if (!r) return;
        this.requesters[worker]!.delete(m.requester);
        router.requesterGone(r);
        return;
      }
    }
  }

  /** A worker is gone: its responders and requesters with it. */
  workerGone(worker: number): void {
    for (const link of this.links[worker]!.values()) this.router.responderGone(link);
    for (const r of this.requesters[worker]!.values()) this.router.requesterGone(r);
    this.links[worker]!.clear();
    this.requesters[worker]!.clear();
  }

  close(): void {
    this.router.close();
  }
}
