// Subscriptions: which channel each connection's topic subscription belongs
// to. A topic subscription's channel (tier and field subset) and pause state
// are derived from the client subscriptions covering it, and re-derived when
// they change; a change of channel that leaves it behind earns a catch-up.

import type { Topic } from '../../engine/index.js';
import type { ResumePoint } from '../../protocol/index.js';
import type { CatchUps } from './catch-up.js';
import { fieldsKey, type Channels } from './channel.js';
import { TopicSub, effectiveFields, type Channel, type ClientSub } from './state.js';
import type { FastPath } from './fast-path.js';
import type { RateTiers } from './rate-tiers.js';
import { formOf } from './wire.js';
import { mergeViewReqs } from './view-entry.js';

export class Subscriptions {
  constructor(
    private readonly channels: Channels,
    private readonly tiers: RateTiers,
    private readonly fast: FastPath,
    private readonly catchUps: CatchUps,
    /** A new subscriber of a stale topic learns so right after its image. */
    private readonly staleNotice: (ts: TopicSub) => void,
    /** A protocol-1 WebSocket's subscription matched a keyed topic: refused (views.ts). */
    private readonly refuseKeyed: (cs: ClientSub, topic: Topic) => void = () => {},
  ) {}

  /** Adds `topic` to what a client subscription receives (resuming from `resume` when given). */
  attach(cs: ClientSub, topic: Topic, resume: ResumePoint | undefined): void {
    const conn = cs.conn;
    // Keyed topics: protocol 2, or a JSON sink (SSE, STOMP: the keyed JSON form); protocol 1 is refused.
    if (conn.protocol < 2 && !conn.json && topic.tables !== undefined) return this.refuseKeyed(cs, topic);
    let ts = conn.topics.get(topic.name);
    const fresh = !ts;
    if (!ts) {
      ts = new TopicSub(topic, cs);
      conn.setTopic(ts);
      if (resume) {
        ts.sentEpoch = resume.epoch;
        ts.sentVersion = resume.version;
      }
    }
    else ts.addSid(cs);
    this.recompute(ts, fresh);
    if (fresh && topic.stale) this.staleNotice(ts);
  }

  /**
   * A JSON sink's (SSE, STOMP) subscriber of a topic that became keyed: to
   * the topic's keyed JSON channel, owed a whole view image. True (for
   * fan-out's loop over the old channel's subscribers).
   */
  reform(ts: TopicSub): true {
    ts.sentEpoch = 0;
    ts.sentVersion = -1;
    this.recompute(ts);
    return true;
  }

  /** Removes a client subscription from every topic of its connection. */
  detach(cs: ClientSub): void {
    const conn = cs.conn;
    for (const ts of [...conn.topics.values()]) {
      if (!ts.hasSid(cs)) continue;
      if (ts.sids === cs) {
        // Its last client subscription: the topic subscription goes.
        this.setChannel(ts, null);
        conn.deleteTopic(ts.topic.name);
        conn.dirtySubs?.delete(ts);
      } else {
        ts.removeSid(cs);
        conn.compact();
        this.recompute(ts);
      }
    }
  }

  /** Re-derives a topic subscription's channel and pause state from its ClientSubs. */
  recompute(ts: TopicSub, fresh = false): void {
    let tier = -1;
    let paused = true;
    let timestamps = false;
    const sids = ts.sids;
    // One client subscription (the usual case) without an array around it.
    const n = Array.isArray(sids) ? sids.length : 1;
    for (let i = 0; i < n; i++) {
      const cs = Array.isArray(sids) ? sids[i]! : sids;
      timestamps ||= cs.timestamps;
      if (cs.paused) continue;
      paused = false;
      if (tier === -1 || cs.tier === 0 || (tier !== 0 && cs.tier > tier)) tier = cs.tier;
    }
    if (tier === -1) tier = ts.channel?.tier ?? ts.firstSid.tier;
    const old = ts.channel;
    const views = Array.isArray(sids) ? mergeViewReqs(sids.map((cs) => cs.views)) : sids.views;
    const ch = this.channels.get(ts.topic, tier, effectiveFields(ts), formOf(ts.conn.protocol, timestamps, ts.conn.json && ts.topic.tables !== undefined), views);
    this.setChannel(ts, ch);
    // The connection holds only the fields (and table views) it was sent: under
    // others it needs a whole image, or it would lack fields (or keep dead ones).
    if (old && old !== ch && (fieldsKey(old.fields) !== fieldsKey(ch.fields) || old.views?.key !== ch.views?.key)) {
      ts.sentEpoch = 0;
      ts.sentVersion = -1;
    }
    // Leaving the native stream first: what it had queued for this turn will
    // not reach the subscriber, and `behind` must see that.
    if (paused) this.fast.leave(ts);
    // Changes still pending in the old channel (a throttled tier) never reach
    // this connection through the new one: catch up rather than wait for a
    // publish that may never come.
    const behind = ts.sentEpoch !== ts.topic.epoch || ts.sentVersion !== ts.topic.version;
    const wasPaused = ts.paused;
    ts.paused = paused;
    if (paused) {
      // Owed one catch-up on resume whenever it is behind now (a quiet topic would never heal otherwise).
      if (fresh || behind) this.catchUps.markDirty(ts);
      return;
    }
    if (fresh || (wasPaused && ts.dirty) || (old !== ch && behind)) {
      if (ts.conn.slow) this.catchUps.markDirty(ts);
      else this.catchUps.catchUp(ts);
    }
    this.fast.join(ts);
  }

  /** Moves a topic subscription to another channel (null: none); an emptied channel goes. */
  setChannel(ts: TopicSub, ch: Channel | null): void {
    const old = ts.channel;
    if (old === ch) return;
    if (old) {
      this.fast.leave(ts);
      old.subs.delete(ts);
      old.outside.delete(ts);
      if (old.subs.size === 0) {
        this.channels.drop(old);
        this.tiers.forget(old);
      }
    }
    ts.channel = ch;
    ch?.subs.add(ts);
    ch?.outside.add(ts);
  }
}
