// Keyed topics between the client and its subscriptions: the table options
// of a subscribe as the wire asks for them, and the delivery of one applied
// keyed update — one `update` event per version per subscription, with the
// summary changes (cut to the subscription's fields) and every row change —
// after which, and only after which, the held version advances.

import type { KeyedDeltaMsg, KeyedSnapshotMsg, TableViewRequest } from '../protocol/messages.js';
import { ClientError, ClientErrorCode } from './errors.js';
import type { KeyedReplica, KeyedResult } from './keyed-replica.js';
import type { Router } from './router.js';

/** How a subscription views one table: the top `depth` rows (0 or absent: every row) with `fields` (absent: all). */
export interface TableOptions {
  depth?: number;
  fields?: string[];
}

/** The `tables` of a Subscribe from `subscribe()`'s options; throws BAD_OPTION for a depth that is not an integer ≥ 0. */
export function tableRequests(tables: Record<string, TableOptions> | undefined): TableViewRequest[] | undefined {
  if (tables === undefined) return undefined;
  return Object.keys(tables).map((table) => {
    const o = tables[table]!;
    const depth = o.depth ?? 0;
    if (!Number.isSafeInteger(depth) || depth < 0) {
      throw new ClientError(ClientErrorCode.BAD_OPTION, `tables.${table}.depth must be an integer ≥ 0 (0: every row; got ${JSON.stringify(o.depth)})`);
    }
    return { table, depth, fields: [...(o.fields ?? [])] };
  });
}

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
