// Every topic the client holds, kept exact: a delta is applied only when its
// base is the held version in the same epoch; anything else — or a heartbeat
// ahead, or a lost frame — is a gap, healed by one catch-up request (asked
// again if it does not arrive in time). Counts what it sees in ClientStats.
// Keyed topics follow the same rules (keyed-replica.ts); a view that failed
// its checksum is not trusted: its catch-up and resume ask for a snapshot.

import type { ClientMessage, DeltaMsg, HeartbeatMsg, ResumePoint, SnapshotMsg } from '../protocol/index.js';
import type { KeyedDeltaMsg, KeyedSnapshotMsg } from '../protocol/messages.js';
import { KeyedReplica, type KeyedResult } from './keyed-replica.js';
import { TopicReplica } from './replica.js';
import type { ClientStats } from './stats.js';

/** What gap healing needs from the client. */
export interface HealerHost {
  /** Sends a catch-up request now, or when the connection is back. */
  send(m: ClientMessage): void;
  /** True when the server sends `topic` at full rate (one delta per version). */
  fullRate(topic: string): boolean;
}

export class GapHealer {
  private readonly replicas = new Map<string, TopicReplica>();

  constructor(
    private readonly stats: ClientStats,
    private readonly host: HealerHost,
    private readonly catchUpTimeoutMs: number,
  ) {}

  /** The replica of `topic` once its state is held. */
  held(topic: string): TopicReplica | undefined {
    const r = this.replicas.get(topic);
    return r?.held ? r : undefined;
  }

  /** Applies a snapshot (first image or catch-up); returns the replica to deliver from. */
  applySnapshot(m: SnapshotMsg): TopicReplica {
    const r = this.replicaFor(m.topic);
    const wasHeld = r.held;
    if (r.healingSince) this.stats.gapsHealed++;
    r.snapshot(m.epoch, m.version, m.fields);
    this.stats.snapshots++;
    if (r.expectCatchUp || wasHeld) {
      r.expectCatchUp = false;
      this.stats.catchUps++;
      this.stats.catchUpSnapshots++;
    }
    return r;
  }

  /** Applies a delta if it follows the held version; null when there is nothing to deliver. */
  applyDelta(m: DeltaMsg): TopicReplica | null {
    const r = this.replicaFor(m.topic);
    const healing = r.healingSince !== 0;
    if (m.version === m.base && m.changes.size === 0 && r.held && r.epoch === m.epoch && r.version === m.version) {
      // "You hold the current version" (a resume or catch-up with nothing new,
      // or protocol 2 binding a topic id): nothing to deliver.
      if (healing) this.stats.gapsHealed++;
      r.healingSince = 0;
      r.expectCatchUp = false;
      return null;
    }
    const result = r.delta(m.epoch, m.base, m.version, m.changes);
    if (result === 'duplicate') {
      this.stats.duplicates++;
      return null;
    }
    if (result === 'gap') {
      if (!r.healingSince) this.gap(r);
      return null;
    }
    this.stats.deltas++;
    if (healing) this.stats.gapsHealed++;
    // A full-rate topic gets one delta per version; a longer one is a catch-up.
    if (r.expectCatchUp || (m.version - m.base > 1 && this.host.fullRate(m.topic))) {
      r.expectCatchUp = false;
      this.stats.catchUps++;
      this.stats.catchUpDeltas++;
    }
    return r;
  }

  /** Applies a keyed snapshot part (the snapshot itself with its last part); `applied`: deliver, then `r.commit()`. */
  applyKeyedSnapshot(m: KeyedSnapshotMsg): { r: KeyedReplica; res: KeyedResult } {
    const r = this.keyedFor(m.topic);
    const wasHeld = r.held;
    const res = r.keyedSnapshot(m);
    if (res.kind !== 'applied') return this.keyedTrouble(r, res);
    if (r.healingSince) this.stats.gapsHealed++;
    this.stats.snapshots++;
    if (r.expectCatchUp || wasHeld) {
      r.expectCatchUp = false;
      this.stats.catchUps++;
      this.stats.catchUpSnapshots++;
    }
    return { r, res };
  }

  /** Applies a keyed delta if it follows the held version (and its checksum, if any, matches). */
  applyKeyedDelta(m: KeyedDeltaMsg): { r: KeyedReplica; res: KeyedResult } {
    const r = this.keyedFor(m.topic);
    const healing = r.healingSince !== 0;
    const res = r.keyedDelta(m);
    if (res.kind === 'current') {
      if (healing) this.stats.gapsHealed++;
      r.healingSince = 0;
      r.expectCatchUp = false;
    }
    if (res.kind !== 'applied') return this.keyedTrouble(r, res);
    this.stats.deltas++;
    if (healing) this.stats.gapsHealed++;
    if (r.expectCatchUp || (m.version - m.base > 1 && this.host.fullRate(m.topic))) {
      r.expectCatchUp = false;
      this.stats.catchUps++;
      this.stats.catchUpDeltas++;
    }
    return { r, res };
  }

  /** The keyed replica of a topic, even before its first image (for reads during its first delivery). */
  keyed(topic: string): KeyedReplica | undefined {
    const r = this.replicas.get(topic);
    return r instanceof KeyedReplica ? r : undefined;
  }

  private keyedFor(topic: string): KeyedReplica {
    const r = this.replicas.get(topic);
    if (r instanceof KeyedReplica) return r;
    // A topic seen flat so far: its next image is keyed (a snapshot); healing state carries over.
    const k = new KeyedReplica(topic);
    if (r) Object.assign(k, { healingSince: r.healingSince, expectCatchUp: r.expectCatchUp, stale: r.stale, staleEpoch: r.staleEpoch });
    this.replicas.set(topic, k);
    return k;
  }

  private keyedTrouble(r: KeyedReplica, res: KeyedResult): { r: KeyedReplica; res: KeyedResult } {
    if (res.kind === 'duplicate') this.stats.duplicates++;
    else if (res.kind === 'gap' && !r.healingSince) this.gap(r);
    else if (res.kind === 'mismatch') {
      // Asked now even if a catch-up is on its way: that one was asked from a view that is wrong.
      this.stats.checksumMismatches++;
      this.gap(r);
    }
    return { r, res };
  }

  /** Marks a topic stale or fresh as of `epoch` (kept even before its first image). */
  stale(topic: string, stale: boolean, epoch: number): void {
    const r = this.replicas.get(topic);
    if (!r) return;
    r.stale = stale;
    r.staleEpoch = epoch;
  }

  /**
   * After a snapshot: a stale flag that named an older epoch (its history
   * ended: a restart) does not carry over to the new one. True when it was
   * cleared, so that subscribers hear "ok".
   */
  freshEpoch(r: TopicReplica): boolean {
    if (!r.stale || r.staleEpoch >= r.epoch) return false;
    r.stale = false;
    return true;
  }

  /** The server sent a later version than we hold: the last update(s) were lost. */
  heartbeat(m: HeartbeatMsg): void {
    for (const v of m.versions) {
      const r = this.replicas.get(v.topic);
      if (r?.held && !r.healingSince && (v.epoch !== r.epoch || v.version > r.version)) this.gap(r);
    }
  }

  /** Something of `topic` arrived that could not be applied: one catch-up, unless one is on its way. */
  lost(topic: string): void {
    const r = this.replicaFor(topic);
    if (!r.healingSince) this.gap(r);
  }

  /** A frame went missing: ask for every held topic. */
  sequenceGap(): void {
    for (const r of this.replicas.values()) if (r.held) this.gap(r);
  }

  /** Asks again for catch-ups that have not arrived in time. */
  tick(now: number): void {
    for (const r of this.replicas.values()) {
      if (r.healingSince && now - r.healingSince > this.catchUpTimeoutMs) this.requestCatchUp(r);
    }
  }

  /** Resume points of the held `topics` for a (re)subscribe; their next image is a catch-up. */
  resumePoints(topics: Iterable<string>): ResumePoint[] {
    const resume: ResumePoint[] = [];
    for (const t of topics) {
      const r = this.replicas.get(t);
      if (r?.held && !untrusted(r)) {
        resume.push({ topic: t, epoch: r.epoch, version: r.version });
        r.expectCatchUp = true;
      }
    }
    return resume;
  }

  /** A paused subscription resumes: the server sends one catch-up per topic. */
  resuming(topics: Iterable<string>): void {
    for (const t of topics) this.replicaFor(t).expectCatchUp = true;
  }

  /** The server restored a subscription (SSE session resume): catch-ups follow for what is held. */
  restored(topics: Iterable<string>): void {
    for (const t of topics) {
      const r = this.replicas.get(t);
      if (r?.held) r.expectCatchUp = true;
    }
  }

  /** A subscription was acknowledged: its catch-ups came first, so a topic that got none was current. */
  acked(topics: Iterable<string>): void {
    for (const t of topics) {
      const r = this.replicas.get(t);
      if (r && !r.healingSince) r.expectCatchUp = false;
    }
  }

  /** Drops the topics no subscription covers any more. */
  forget(topics: Iterable<string>, covered: (topic: string) => boolean): void {
    for (const t of topics) if (!covered(t)) this.replicas.delete(t);
  }

  private replicaFor(topic: string): TopicReplica {
    let r = this.replicas.get(topic);
    if (!r) this.replicas.set(topic, (r = new TopicReplica(topic)));
    return r;
  }

  private gap(r: TopicReplica): void {
    this.stats.gaps++;
    this.requestCatchUp(r);
  }

  private requestCatchUp(r: TopicReplica): void {
    r.healingSince = Date.now();
    r.expectCatchUp = true;
    // (epoch 0, version 0) holds nothing: the server answers with a snapshot.
    const from = r.held && !untrusted(r);
    this.host.send({ type: 'catchUp', topic: r.topic, epoch: from ? r.epoch : 0, version: from ? r.version : 0 });
  }
}

/** A keyed view that failed its checksum: only a snapshot can repair it. */
function untrusted(r: TopicReplica): boolean {
  return r instanceof KeyedReplica && r.resync;
}
