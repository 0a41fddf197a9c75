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
    const keyedSnapshot = m.type === 'keyedSnapshot';
    // Views first (each subscription's at this version), then the listeners.
    const subs: Subscription[] = [];
    const rowsOf: (readonly RowUpdate[])[] = [];
    const snapshots: boolean[] = [];
    for (const sub of router.subscribersOf(r.topic)) {
      if (!sub.active) continue;
      // A subscription added to a topic held already, following summary fields the connection may not be sent
      // yet: it waits for the server's snapshot of the new union (as for table views: keyed-view.ts).
      if (!keyedSnapshot && !sub.keyedViews.holds(r.topic) && !summaryHeld(router, r.topic, sub)) continue;
      const rows = sub.keyedViews.update(r, keyedSnapshot, res.rows, sub.fieldSet);
      if (rows === null) continue;
      subs.push(sub);
      rowsOf.push(rows);
      snapshots.push(sub.keyedViews.snapshot);
    }
    const epoch = r.viewEpoch;
    const version = r.viewVersion;
    const updates = keyedSnapshot ? 0 : m.updates;
    for (let i = 0; i < subs.length; i++) {
      const sub = subs[i]!;
      const rows = rowsOf[i]!;
      const snapshot = snapshots[i]!;
      const fields = sub.fieldSet;
      // A snapshot of its view while the connection's was a delta (its first view, cut now): every summary field.
      let changes = snapshot && !keyedSnapshot ? (r.view(fields) as Record<string, FieldValue | null>) : res.changes;
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
        topic: m.topic,
        epoch,
        version,
        ts: m.ts,
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

/**
 * True when the summary fields `sub` follows are among those the connection
 * is sent: those of the subscriptions holding a view of the topic (the
 * server has served them, so what it sends covers their fields).
 */
function summaryHeld(router: Router, topic: string, sub: Subscription): boolean {
  const want = sub.fieldSet;
  const have = new Set<string>();
  for (const s of router.subscribersOf(topic)) {
    if (s === sub || !s.active || !s.keyedViews.holds(topic)) continue;
    if (s.fieldSet === null) return true;
    for (const f of s.fieldSet) have.add(f);
  }
  if (want === null) return false;
  for (const f of want) if (!have.has(f)) return false;
  return true;
}
