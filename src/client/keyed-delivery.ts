// Keyed topics between the client and its subscriptions: the delivery of one
// applied keyed update — one `update` event per version per subscription, with the
// summary changes (cut to the subscription's fields) and every row change —
// after which, and only after which, the held version advances.

import type { KeyedDeltaMsg, KeyedSnapshotMsg } from '../protocol/messages.js';
import type { KeyedReplica, KeyedResult } from './keyed-replica.js';
import type { Router } from './router.js';

/**
 * Delivers an applied keyed update of `r` to every active subscription of
 * its topic, then commits it (the held version advances). A listener that
 * throws does not stop the others (the Emitter rethrows its error
 * asynchronously); the update still counts as delivered and the version
 * still advances, since the view is exact either way and the same update
 * delivered again would only throw again.
 */
export function deliverKeyed(router: Router, r: KeyedReplica, m: KeyedSnapshotMsg | KeyedDeltaMsg, res: Extract<KeyedResult, { kind: 'applied' }>): void {
  const snapshot = m.type === 'keyedSnapshot';
  const head = { topic: m.topic, epoch: r.viewEpoch, version: r.viewVersion, snapshot, updates: snapshot ? 0 : m.updates, ts: m.ts, rows: res.rows };
  try {
    for (const sub of router.subscribersOf(r.topic)) {
      if (!sub.active) continue;
      const fields = sub.fieldSet;
      let changes = res.changes;
      if (fields) {
        changes = Object.create(null);
        let any = false;
        for (const k in res.changes) if (fields.has(k)) (changes[k] = res.changes[k]!), (any = true);
        if (!any && !snapshot && res.rows.length === 0) {
          sub.topics.add(r.topic);
          continue;
        }
      }
      let state: ReturnType<KeyedReplica['view']> | undefined;
      sub.deliver({
        ...head,
        changes,
        get state() {
          return (state ??= r.view(fields));
        },
      });
    }
  } finally {
    r.commit();
  }
}
