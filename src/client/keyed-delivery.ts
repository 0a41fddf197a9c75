// Keyed topics between the client and its subscriptions: the delivery of one
// applied keyed update — at most one `update` event per version per
// subscription, with the summary changes (cut to the subscription's fields)
// and the row changes of *its* view (keyed-view.ts: its tables, depth and
// fields, cut from the connection's widest view) — after which, and only
// after which, the held version advances.

import type { FieldValue } from '../protocol/index.js';
import type { KeyedDeltaMsg, KeyedSnapshotMsg } from '../protocol/messages.js';
import type { KeyedReplica, KeyedResult } from './keyed-replica.js';
import type { RowUpdate } from './keyed-table.js';
import type { Router } from './router.js';
import type { Subscription } from './subscription.js';

interface Planned {
  readonly sub: Subscription;
  readonly snapshot: boolean;
  readonly rows: readonly RowUpdate[];
}

/**
 * Delivers an applied keyed update of `r` to every active subscription of
 * its topic, then commits it (the held version advances). Every
 * subscription's view is brought to the new version first, then the
 * listeners run (one reading another subscription's table sees this version
 * too). A listener that throws does not stop the others (the Emitter
 * rethrows its error asynchronously); the update still counts as delivered
 * and the version still advances, since the view is exact either way and the
 * same update delivered again would only throw again.
 */
export function deliverKeyed(router: Router, r: KeyedReplica, m: KeyedSnapshotMsg | KeyedDeltaMsg, res: Extract<KeyedResult, { kind: 'applied' }>): void {
  try {
    const planned: Planned[] = [];
    for (const sub of router.subscribersOf(r.topic)) {
      if (!sub.active) continue;
      const u = sub.keyedViews.update(r, m.type === 'keyedSnapshot', res.rows);
      if (u !== null) planned.push({ sub, snapshot: u.snapshot, rows: u.rows });
    }
    const head = { topic: m.topic, epoch: r.viewEpoch, version: r.viewVersion, ts: m.ts };
    const updates = m.type === 'keyedSnapshot' ? 0 : m.updates;
    for (const { sub, snapshot, rows } of planned) {
      const fields = sub.fieldSet;
      // A snapshot of its view while the connection's was a delta (its first view, cut now): every summary field.
      let changes = snapshot && m.type !== 'keyedSnapshot' ? (r.view(fields) as Record<string, FieldValue | null>) : res.changes;
      if (fields && changes === res.changes) {
        changes = Object.create(null) as Record<string, FieldValue | null>;
        let any = false;
        for (const k in res.changes) if (fields.has(k)) (changes[k] = res.changes[k]!), (any = true);
        if (!any && !snapshot && rows.length === 0) {
          sub.topics.add(r.topic);
          continue;
        }
      }
      let state: Record<string, FieldValue> | undefined;
      sub.deliver({
        ...head,
        snapshot,
        updates: snapshot ? 0 : updates,
        changes,
        rows,
        get state() {
          return (state ??= r.view(fields));
        },
      });
    }
  } finally {
    r.commit();
  }
}
