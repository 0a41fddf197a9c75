// An edge's replicas: sequenced updates from NATS applied in version order
// and handed to fan-out, exactly as a fan-out worker does with its ring. A
// gap (a version skipped, another epoch: an origin restart) is healed the way
// a client heals: one image request to the topic's origin, then every client
// gets its catch-up. Updates that arrive while a topic waits for its image
// are kept and replayed on it (heal-buffer.ts): a replica is never called
// current below a version this edge has seen. Origins' version heartbeats
// (version-beats.ts) show a replica that fell behind on a quiet topic. NATS
// lost: every replica is flagged stale; back: every one is healed by image
// and flagged ok. Nothing wrong is ever delivered.

import type { Msg, Subscription } from '@nats-io/transport-node';
import { TopicPattern, isPattern, type Topic, type TopicStore } from '../engine/index.js';
import { decodeEncoded, type Delta2Msg, type ResumePoint } from '../protocol/index.js';
import type { Conn, Fanout } from '../server/fanout/index.js';
import type { LogFn } from '../server/options.js';
import { applyUpdate, readUpdate, type TopicImage } from '../server/replication.js';
import type { ServerStats } from '../server/stats.js';
import type { ClusterStats, HealKind } from './cluster-stats.js';
import type { EdgeInterest } from './edge-interest.js';
import { HealBuffer } from './heal-buffer.js';
import { fetchImages } from './image-fetch.js';
import type { Layout } from './layout.js';
import { STATUS_HEADER, decodeJson, encodeJson } from './messages.js';
import type { NatsLink } from './nats-link.js';
import { shardOf, type Shard } from './shard.js';
import type { Subjects } from './subjects.js';
import { readBeat } from './version-beats.js';

const RETRY_MAX_MS = 5_000;
/** A name or pattern no client wants any more is still followed this long (clients that come back soon find it current). */
export const LINGER_MS = 5_000;

export class Replicas {
  /** Topics waiting for an image: their updates are kept in `held` and replayed on it. */
  private readonly healing = new Set<string>();
  private readonly held = new HealBuffer();
  private beatSub: Subscription | null = null;
  /** Clients that resumed a topic this edge does not hold yet, until the image on its way says whether the origin has it. */
  private readonly awaiting = new Map<string, { conn: Conn; point: ResumePoint }[]>();
  private readonly gaps = new Map<string, HealKind>();
  private gapTimer: NodeJS.Timeout | null = null;
  /** Per shard, the patterns of image requests on their way: a gap they cover waits for them. */
  private readonly pending = new Map<number, TopicPattern[]>();
  private closed = false;
  /** True while this class itself flags a replica (see localStale). */
  private flagging = false;
  /** Sources nobody wants, still followed until their timer ends. */
  private readonly lingering = new Map<string, NodeJS.Timeout>();
  interest!: EdgeInterest;

  constructor(
    private readonly store: TopicStore,
    private readonly fanout: Fanout,
    private readonly stats: ServerStats,
    private readonly cstats: ClusterStats,
    private readonly link: NatsLink,
    private readonly subjects: Subjects,
    private readonly layout: Layout,
    private readonly own: Shard | null,
    private readonly log: LogFn,
  ) {}

  private owned(name: string): boolean {
    return this.own !== null && shardOf(name, this.own.of) === this.own.index;
  }

  /** Replica topics this edge follows now (not its own shard's). */
  private *followed(): Generator<Topic> {
    for (const t of this.store.all()) if (!this.owned(t.name) && this.interest.follows(t.name)) yield t;
  }

  /** Flags a replica stale or ok for this edge's own reasons (not a local publisher's: see localStale). */
  private flag(t: Topic, stale: boolean): void {
    this.flagging = true;
    try {
      this.fanout.setStale(t, stale);
    } finally {
      this.flagging = false;
    }
  }

  /**
   * A replica went stale here for a reason of this node's clients (their
   * publisher left, its time-to-live passed): the origin is told, so that
   * every edge flags it, not only this one.
   */
  localStale(t: Topic, stale: boolean): void {
    if (this.flagging || !stale || this.owned(t.name) || !this.layout.of || this.link.state !== 'connected') return;
    this.link.nc.publish(this.subjects.stale(shardOf(t.name, this.layout.of)), encodeJson({ topic: t.name, epoch: t.epoch, version: t.version }));
  }

  private setHealing(name: string, on: boolean): void {
    if (on) this.healing.add(name);
    else this.healing.delete(name);
    this.cstats.healing = this.healing.size;
  }

  // ------------------------------------------------------------ what happens

  /** A client wants `source` and none did: follow it and take the images of what exists. */
  wanted(source: string): void {
    if (!isPattern(source) && this.owned(source)) return; // sequenced here
    const lingering = this.lingering.get(source);
    if (lingering) {
      clearTimeout(lingering);
      this.lingering.delete(source);
      return;
    }
    if (this.interest.add(source)) this.refresh([source], 'interest', false);
  }

  /** Its last client left: after a while, stop following; replicas nobody follows any more go stale (they are not updated). */
  unwanted(source: string): void {
    if (!this.interest.has(source) || this.lingering.has(source)) return;
    const t = setTimeout(() => {
      this.lingering.delete(source);
      this.unfollow(source);
    }, LINGER_MS);
    t.unref();
    this.lingering.set(source, t);
  }

  private unfollow(source: string): void {
    this.interest.remove(source);
    for (const t of this.store.matching(TopicPattern.parse(source, this.store.limits.maxTopicLength))) {
      if (this.owned(t.name) || this.interest.follows(t.name)) continue;
      this.setHealing(t.name, false);
      this.held.forget(t.name);
      if (!t.stale) this.flag(t, true);
    }
  }

  /** NATS lost: nothing can be known to be current. */
  down(): void {
    for (const t of this.followed()) if (!t.stale) this.flag(t, true);
  }

  /** NATS back (after a restart, a cut, or a slow-consumer drop): every replica healed by image. */
  up(): void {
    this.refresh(this.interest.sources(), 'reconnect', true);
  }

  /** A new or restarted origin sequences `shard`. */
  arrived(shard: number): void {
    this.refresh(this.interest.sources(), 'origin', true, [shard]);
  }

  /** The origin of `shard` left or went quiet. */
  gone(shard: number): void {
    for (const t of this.followed()) if (shardOf(t.name, this.layout.of) === shard && !t.stale) this.flag(t, true);
  }

  /** One message on an update subject: a sequenced update, or a status change (header). */
  onMessage(msg: Msg): void {
    const name = this.subjects.topicOf(msg.subject);
    if (this.owned(name) || this.closed) return;
    const status = msg.headers?.get(STATUS_HEADER);
    if (status) return this.status(name, status === 'stale', msg.data);
    let u: ReturnType<typeof readUpdate>;
    let d: Delta2Msg;
    try {
      u = readUpdate(msg.data);
      d = decodeEncoded(u.delta2) as Delta2Msg;
    } catch (err) {
      this.log('error', `undecodable update on ${msg.subject}: ${(err as Error).message}`);
      return this.gap(name, 'gap');
    }
    if (this.healing.has(name)) return this.hold(name, u.epoch, d.version, msg.data);
    const t = this.store.get(name);
    if (t && t.epoch === u.epoch && d.version <= t.version) {
      this.cstats.duplicates++; // also subscribed by another pattern, or already in an image
      return;
    }
    const a = t || d.version === 1 ? applyUpdate(this.store, u, d) : null;
    if (a) {
      this.cstats.applied(u.ts);
      this.stats.publishes++;
      // Copied: fan-out may keep it past this turn.
      this.fanout.accepted(a, u.delta2.slice());
      return;
    }
    // Not the next version: kept, so that the image it waits for is never taken as current below it.
    this.hold(name, u.epoch, d.version, msg.data);
    if (!this.covered(name)) this.gap(name, t && t.epoch !== u.epoch ? 'epoch' : 'gap');
  }

  private hold(name: string, epoch: number, version: number, body: Uint8Array): void {
    this.held.hold(name, epoch, version, body);
    this.cstats.heldWhileHealing++;
  }

  /**
   * A client resumed topics this edge does not hold. Where an image is on its
   * way, it waits for it; otherwise the origin does not hold them either (an
   * origin restart ended their history): the client is told GONE.
   */
  unheld(conn: Conn, points: ResumePoint[]): void {
    const now: ResumePoint[] = [];
    for (const point of points) {
      if (this.owned(point.topic) || !(this.covered(point.topic) || this.healing.has(point.topic))) now.push(point);
      else {
        const list = this.awaiting.get(point.topic) ?? [];
        list.push({ conn, point });
        this.awaiting.set(point.topic, list);
      }
    }
    if (now.length) this.fanout.gone(conn, now);
  }

  /** Images for `patterns` arrived: clients waiting on a topic they did not bring are told GONE. */
  private settle(patterns: TopicPattern[]): void {
    for (const [name, list] of this.awaiting) {
      if (!patterns.some((p) => p.matches(name)) || this.covered(name) || this.healing.has(name)) continue;
      this.awaiting.delete(name);
      if (this.store.get(name)) continue; // it exists: the image brought its catch-up
      for (const { conn, point } of list) this.fanout.gone(conn, [point]);
    }
  }

  /** Follows the origins' version heartbeats (see version-beats.ts). */
  start(): void {
    this.beatSub = this.link.nc.subscribe(this.subjects.beat('*'), { callback: (err, m) => void (err || this.onBeat(m.data)) });
  }

  /** An origin's version heartbeat: a followed replica older than it (or missing) heals by image. */
  onBeat(data: Uint8Array): void {
    if (this.closed) return;
    let entries: ReturnType<typeof readBeat>;
    try {
      entries = readBeat(data);
    } catch (err) {
      this.log('warn', `bad version heartbeat: ${(err as Error).message}`);
      return;
    }
    this.cstats.beats++;
    let behind = 0;
    let example = '';
    for (const [name, epoch, version] of entries) {
      if (this.owned(name) || this.healing.has(name) || !this.interest.follows(name) || this.covered(name)) continue;
      const t = this.store.get(name);
      // Current, or newer than a late beat of an origin that has since restarted.
      if (t && (t.epoch > epoch || (t.epoch === epoch && t.version >= version))) continue;
      behind++;
      example ||= `${name} at ${t ? `${t.epoch}/${t.version}` : 'nothing'} here, ${epoch}/${version} at its origin`;
      this.gap(name, t && t.epoch !== epoch ? 'epoch' : 'beat');
    }
    if (behind) {
      this.cstats.behindAtBeat += behind;
      this.log('warn', `version heartbeat: ${behind} replica topic(s) behind their origin (${example}): healing`);
    }
  }

  private status(name: string, stale: boolean, data: Uint8Array): void {
    const t = this.store.get(name);
    const at = decodeJson<{ epoch: number; version: number }>(data, 'a status change');
    // For another version the replica is not at, an image brings the flag.
    if (t && t.epoch === at.epoch && t.version === at.version && t.stale !== stale) this.flag(t, stale);
  }

  // ------------------------------------------------------------ healing

  private covered(name: string): boolean {
    if (!this.layout.of) return false;
    return this.pending.get(shardOf(name, this.layout.of))?.some((p) => p.matches(name)) ?? false;
  }

  /** Not the next version: one image request for the topic, shared with other gaps of this turn. */
  private gap(name: string, kind: HealKind): void {
    this.setHealing(name, true);
    this.gaps.set(name, kind);
    this.gapTimer ??= setTimeout(() => this.flushGaps(), 1);
  }

  private flushGaps(): void {
    this.gapTimer = null;
    if (!this.layout.of) return; // no origin heard of yet: its arrival heals everything
    const byShard = new Map<string, string[]>();
    for (const [name, kind] of this.gaps) {
      const key = `${shardOf(name, this.layout.of)} ${kind}`;
      byShard.set(key, [...(byShard.get(key) ?? []), name]);
    }
    this.gaps.clear();
    for (const [key, names] of byShard) {
      const [shard, kind] = key.split(' ') as [string, HealKind];
      void this.request(Number(shard), names, kind, true);
    }
  }

  /** Asks every shard concerned (or `shards`) for the images of `sources`. */
  private refresh(sources: string[], kind: HealKind, exhaustive: boolean, shards?: number[]): void {
    const n = this.layout.of;
    if (!sources.length || !n) return;
    for (const shard of shards ?? Array.from({ length: n }, (_, i) => i + 1)) {
      if (this.own?.index === shard) continue;
      const mine = sources.filter((s) => isPattern(s) || shardOf(s, n) === shard);
      if (mine.length) void this.request(shard, mine, kind, exhaustive);
    }
  }

  /**
   * One image request to the origin of `shard`. `exhaustive`: a followed
   * topic of those patterns that the origin does not hold (it restarted
   * without it) is flagged stale. Retried with backoff while still wanted.
   */
  private async request(shard: number, sources: string[], kind: HealKind, exhaustive: boolean, attempt = 0): Promise<void> {
    const max = this.store.limits.maxTopicLength;
    const patterns = sources.map((s) => TopicPattern.parse(s, max));
    const list = this.pending.get(shard) ?? [];
    list.push(...patterns);
    this.pending.set(shard, list);
    this.cstats.imageRequests++;
    let answered = false;
    try {
      const images = await fetchImages(this.link, this.subjects, shard, sources);
      if (this.closed) return;
      const got = new Set<string>();
      for (const img of images ?? []) {
        got.add(img.name);
        this.apply(img, kind);
      }
      // Updates kept for a topic this answer left out (it began after the image was taken): replayed, or healed again.
      for (const name of this.held.names()) if (!got.has(name) && !this.healing.has(name) && patterns.some((p) => p.matches(name))) this.replay(name);
      // No origin for the shard now (null) or it lacks some: what this edge holds of them is not current.
      if (exhaustive || images === null) this.notHeld(shard, patterns, got);
      answered = true;
      this.cstats.imageAnswers++;
    } catch (err) {
      this.cstats.imageFailures++;
      if (this.closed) return;
      this.notHeld(shard, patterns, new Set(), true);
      // Reconnecting: up() asks again for everything.
      if (this.link.state !== 'connected') return;
      const still = sources.filter((s) => this.interest.has(s) || this.interest.follows(s));
      const wait = Math.min(RETRY_MAX_MS, 250 * 2 ** attempt);
      this.log('warn', `image request to shard ${shard} failed (${(err as Error).message}); again in ${wait} ms`);
      if (still.length) setTimeout(() => void this.request(shard, still, kind, exhaustive, attempt + 1), wait).unref();
    } finally {
      for (const p of patterns) list.splice(list.indexOf(p), 1);
      if (answered && this.awaiting.size) this.settle(patterns);
    }
  }

  /** Followed topics of `patterns` in `shard` that the answer did not include: flagged stale (`keepHealing`: an answer is still to come). */
  private notHeld(shard: number, patterns: TopicPattern[], got: Set<string>, keepHealing = false): void {
    const n = this.layout.of;
    for (const t of this.store.all()) {
      if (got.has(t.name) || this.owned(t.name) || shardOf(t.name, n) !== shard || !patterns.some((p) => p.matches(t.name))) continue;
      if (!keepHealing) {
        this.setHealing(t.name, false);
        this.held.forget(t.name);
      }
      if (!t.stale) this.flag(t, true);
    }
  }

  /**
   * Sets a replica to the origin's exact image (fan-out gives each client its
   * catch-up), then replays the updates that arrived while it was awaited.
   */
  private apply(img: TopicImage, kind: HealKind): void {
    if (this.owned(img.name)) return;
    this.setHealing(img.name, false);
    const t = this.store.get(img.name);
    if (t && t.epoch === img.epoch && t.version >= img.version) {
      if (t.version === img.version && t.stale !== img.stale) this.flag(t, img.stale);
    } else {
      if (t && t.epoch === img.epoch) this.cstats.healedVersions += img.version - t.version;
      const { topic, created } = this.store.resetTopic(img.name, img.epoch, img.version, img.state, img.ts, img.id, img.fieldNames, img.tables);
      this.fanout.resynced(topic, created);
      if (topic.stale !== img.stale) this.flag(topic, img.stale);
      this.cstats.heals[kind]++;
    }
    this.replay(img.name);
  }

  /**
   * The updates kept while `name` healed, applied in order on top of its
   * image; those the image already holds are dropped. If the replica is then
   * still below the newest version this edge heard of (one did not chain on,
   * or more arrived than were kept), it is not current: it heals again.
   */
  private replay(name: string): void {
    const held = this.held.take(name);
    if (!held) return;
    if (!this.store.get(name)) return this.gap(name, 'gap');
    for (const h of held.updates) {
      const t = this.store.get(name)!;
      if (h.epoch === t.epoch && h.version <= t.version) {
        this.cstats.droppedWhileHealing++;
        continue;
      }
      const u = readUpdate(h.body);
      const a = applyUpdate(this.store, u, decodeEncoded(u.delta2) as Delta2Msg);
      if (!a) {
        this.cstats.droppedWhileHealing++;
        break;
      }
      this.cstats.applied(u.ts);
      this.stats.publishes++;
      // `h.body` is this buffer's own copy: fan-out may keep it.
      this.fanout.accepted(a, u.delta2);
    }
    const t = this.store.get(name)!;
    const { epoch, version } = held.last;
    if (epoch > t.epoch || (epoch === t.epoch && version > t.version)) this.gap(name, epoch === t.epoch ? 'gap' : 'epoch');
  }

  close(): void {
    this.closed = true;
    for (const t of this.lingering.values()) clearTimeout(t);
    this.lingering.clear();
    if (this.gapTimer) clearTimeout(this.gapTimer);
    this.beatSub?.unsubscribe();
    this.held.clear();
    this.awaiting.clear();
    this.interest.close();
  }
}
