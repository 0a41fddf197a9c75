// Catch-up planning: brings one subscriber from the (epoch, version) it was
// last sent to the topic's current version with ONE message — a merged delta
// from the history ring or a snapshot, whichever is smaller. Plans and
// encodings are shared by every subscriber resuming from the same point.

import type { ServerStats } from '../stats.js';
import { effectiveFields, type TopicSub } from './state.js';
import type { FastPath } from './fast-path.js';
import type { Outbox } from './outbox.js';
import type { SnapshotCache } from './snapshot-cache.js';
import { Form, type Wire } from './wire.js';
import { KeyedViews } from './views.js';

export class CatchUps {
  constructor(
    private readonly wire: Wire,
    private readonly snapshots: SnapshotCache,
    private readonly stats: ServerStats,
    private readonly fast: FastPath,
    private readonly outbox: Outbox,
    private readonly views: KeyedViews | null = null,
  ) {}

  /** Withholds updates from a subscriber: it is owed one catch-up. */
  markDirty(ts: TopicSub): void {
    if (ts.dirty) return;
    ts.dirty = true;
    (ts.conn.dirtySubs ??= new Set()).add(ts);
  }

  /**
   * Brings one subscriber from its sent (epoch, version) to the current
   * version. With `confirmCurrent` (an explicit request) a subscriber that is
   * already current gets an empty delta from the current version to itself.
   */
  catchUp(ts: TopicSub, confirmCurrent = false): void {
    this.fast.leave(ts);
    const topic = ts.topic;
    const fields = ts.channel ? ts.channel.fields : effectiveFields(ts);
    const form = ts.channel ? ts.channel.form : ts.conn.protocol > 1 ? Form.P2 : Form.P1;
    ts.dirty = false;
    ts.conn.dirtySubs?.delete(ts);
    if (this.views && KeyedViews.keyed(ts.channel)) return this.keyed(ts, this.views, confirmCurrent);
    if (ts.sentEpoch === topic.epoch && ts.sentVersion === topic.version) {
      // Protocol 2 also confirms a topic whose id this connection has not had bound yet.
      if (confirmCurrent || !ts.bound) {
        this.outbox.queue(ts.conn, this.wire.confirm(form, topic));
        ts.bound = true;
      }
      this.fast.join(ts);
      return;
    }
    // Same epoch, same base, same version: every client resuming there shares
    // one plan and one encoding (a reconnect storm encodes each once).
    const base = ts.sentEpoch === topic.epoch ? ts.sentVersion : -1;
    const { kind, bytes: msg } = this.snapshots.catchUp(topic, fields, form, base, () => {
      const plan = topic.plan(ts.sentEpoch, ts.sentVersion);
      const snap = this.snapshots.get(topic, fields, form);
      if (plan.kind !== 'delta') return { kind: 'snapshot', bytes: snap };
      const delta = this.wire.catchUpDelta(form, topic, plan, fields);
      return delta.byteLength <= snap.byteLength ? { kind: 'delta', bytes: delta } : { kind: 'snapshot', bytes: snap };
    });
    if (kind === 'snapshot') this.stats.catchUpSnapshots++;
    else this.stats.catchUpDeltas++;
    ts.sentEpoch = topic.epoch;
    ts.sentVersion = topic.version;
    ts.bound = true;
    this.outbox.queue(ts.conn, msg);
    this.fast.join(ts);
  }

  /** A keyed topic's catch-up: a merged view delta or a view snapshot (in parts), at the topic's version. */
  private keyed(ts: TopicSub, views: KeyedViews, confirmCurrent: boolean): void {
    const topic = ts.topic;
    const made = views.catchUp(ts, ts.channel!, confirmCurrent);
    if (made) {
      if (made.kind === 'snapshot') this.stats.catchUpSnapshots++;
      else if (made.kind === 'delta') this.stats.catchUpDeltas++;
      // Parts go out one after another: nothing of this topic reaches the connection between them.
      for (const p of made.parts) this.outbox.queue(ts.conn, p);
    }
    ts.sentEpoch = topic.epoch;
    ts.sentVersion = topic.version;
    ts.bound = true;
    this.fast.join(ts);
  }
}
