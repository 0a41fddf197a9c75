// Token refresh on an open connection: what a new token's grants no longer
// cover ends (each subscription and service offer with PERMISSION_DENIED and
// its own id); everything else is left exactly as it was — no resubscribe, no
// catch-up. Sessions.refresh verifies the token and then calls this.

import type { TopicPattern } from '../engine/index.js';
import { ErrorCode } from '../protocol/index.js';
import { maySubscribe, mayServe, type Grants } from './auth.js';
import type { Fanout } from './fanout/index.js';
import type { ResponderLink, ServiceGate } from './services/index.js';
import type { ServerStats } from './stats.js';

/** A session as a responder: how requests reach it, and the offers it made (id → service), so that a refresh can withdraw them. */
export interface Responder extends ResponderLink {
  readonly offers: Map<number, TopicPattern>;
}

/** What narrowing needs of a session (a Session, or the socket uWebSockets.js copied it onto). */
export interface NarrowedSession {
  readonly conn: Parameters<Fanout['unsubscribe']>[0];
  readonly responder: Responder | null;
}

/**
 * Ends every subscription and service offer of `s` that `grants` do not
 * cover: the subscription leaves fan-out (no more updates for it) and the
 * client gets Error 20 with the subscription's (or the offer's) id and the
 * first pattern outside the grants. Returns how many ended.
 */
export function endUngranted(s: NarrowedSession, grants: Grants, fanout: Fanout, services: ServiceGate, stats: ServerStats): number {
  const enc = fanout.encoder;
  const conn = s.conn;
  let ended = 0;
  const deny = (id: number, source: string, what: string) => {
    ended++;
    stats.error(ErrorCode.PERMISSION_DENIED);
    fanout.reply(conn, enc.error(ErrorCode.PERMISSION_DENIED, id, source, `the refreshed token does not grant ${source}: ${what} ${id} ended`));
  };
  // Collected first: unsubscribe changes conn.subs.
  const outside: [number, TopicPattern][] = [];
  for (const cs of conn.subs.values()) {
    const p = cs.patterns.find((x) => !maySubscribe(grants, x));
    if (p) outside.push([cs.id, p]);
  }
  for (const [id, p] of outside) {
    fanout.unsubscribe(conn, id);
    deny(id, p.source, 'subscription');
  }
  const link = s.responder;
  if (link) {
    for (const [id, p] of [...link.offers]) {
      if (mayServe(grants, p)) continue;
      link.offers.delete(id);
      try {
        services.unserve(link, id);
      } catch {
        // Already gone from the router (an offer it refused): the client is told all the same.
      }
      deny(id, p.source, 'service offer');
    }
  }
  return ended;
}
