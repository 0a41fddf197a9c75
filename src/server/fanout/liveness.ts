// Liveness: heartbeats that carry the versions of each connection's quiet
// topics (so a client notices a lost last update), and stale flags for topics
// whose publisher went away or that have not updated within their TTL.

import type { Topic, TopicStore } from '../../engine/index.js';
import { TopicState, type Encoder, type ResumePoint } from '../../protocol/index.js';
import type { ServerStats } from '../stats.js';
import type { Channels } from './channel.js';
import type { Clock, TimerHandle } from './clock.js';
import type { Channel, Conn, TopicSub } from './state.js';
import type { FastPath } from './fast-path.js';
import type { Outbox } from './outbox.js';

export interface LivenessOptions {
  heartbeatMs: number;
  /** 0: topics never go stale for being quiet. */
  topicTtlMs: number;
}

/** Versions reported per heartbeat at most. */
const MAX_HEARTBEAT_VERSIONS = 1000;
/**
 * Connections a heartbeat looks at per event-loop turn; the rest wait for the
 * next turn (publishes and I/O go in between), so a heartbeat never stalls
 * the loop for longer than this many connections take, however many there are.
 */
export const HEARTBEAT_SLICE = 512;

export class Liveness {
  private readonly heartbeatTimer: TimerHandle;
  private readonly ttlTimer: TimerHandle | null = null;
  /** Per topic, the connection whose publish made its current version (if one did). */
  private readonly lastPublisher = new Map<string, { conn: Conn; epoch: number; version: number }>();
  /** Told when a topic's flag changes (a cluster origin passes it on to the edges). */
  onChange: ((topic: Topic, stale: boolean) => void) | null = null;
  /** Wall time of the heartbeat being sent (channel heartbeats are built later in the turn). */
  private heartbeatTime = 0;
  /** A channel's shared heartbeat: the one topic's version its stream has reached. */
  private readonly channelHeartbeat = (ch: Channel, version: number): Uint8Array =>
    this.enc.heartbeat(this.heartbeatTime, [{ topic: ch.topic.name, epoch: ch.topic.epoch, version }]);

  constructor(
    private readonly store: TopicStore,
    private readonly channels: Channels,
    private readonly conns: ReadonlySet<Conn>,
    private readonly enc: Encoder,
    private readonly outbox: Outbox,
    private readonly stats: ServerStats,
    private readonly clock: Clock,
    private readonly opts: LivenessOptions,
    private readonly fast: FastPath,
  ) {
    // A stale flag queued on a channel's stream still reaches a subscriber that leaves it before the frame goes out.
    fast.onMissed = (conn, msg) => this.outbox.queue(conn, msg);
    this.heartbeatTimer = clock.setInterval(() => this.heartbeat(), opts.heartbeatMs);
    if (opts.topicTtlMs > 0) this.ttlTimer = clock.setInterval(() => this.sweepStale(), Math.min(1000, Math.max(20, opts.topicTtlMs / 4)));
  }

  /** Flags a topic stale (its publisher went quiet or away) or fresh, to its subscribers. */
  setStale(topic: Topic, stale: boolean): void {
    const changed = topic.stale !== stale;
    if (changed) this.stats.staleTopics += stale ? 1 : -1;
    topic.stale = stale;
    if (changed) this.onChange?.(topic, stale);
    const chans = this.channels.of(topic);
    if (!chans) return;
    // One encoding, published once per channel to its fast-path subscribers
    // (in stream order with its deltas); the others get it one by one.
    const msg = this.statusOf(topic);
    for (const ch of chans) {
      if (ch.fast > 0) this.fast.queueSticky(ch, msg);
      if (ch.outside.size) for (const ts of [...ch.outside]) this.outbox.queue(ts.conn, msg);
    }
  }

  /** The topic's status message (stale or ok, with its version). */
  statusOf(topic: Topic): Uint8Array {
    return this.enc.topicStatus(topic.name, topic.stale ? TopicState.STALE : TopicState.OK, topic.epoch, topic.version);
  }

  /**
   * `conn` made `version` of a topic. Recorded only while nothing newer exists
   * (with workers the acknowledgement may come after later publishes), so the
   * record always names the publisher of the current version or none.
   */
  publishedBy(conn: Conn, name: string, epoch: number, version: number): void {
    if (conn.closed) return;
    const topic = this.store.get(name);
    if (!topic || topic.epoch !== epoch || topic.version !== version) return;
    (conn.published ??= new Set()).add(name);
    this.lastPublisher.set(name, { conn, epoch, version });
  }

  /** Its publisher is gone: a topic nobody has published to since goes stale. */
  publisherGone(conn: Conn): void {
    if (!conn.published) return;
    for (const name of conn.published) {
      const last = this.lastPublisher.get(name);
      if (last?.conn !== conn) continue;
      this.lastPublisher.delete(name);
      const topic = this.store.get(name);
      if (topic && !topic.stale && topic.epoch === last.epoch && topic.version === last.version) this.setStale(topic, true);
    }
    conn.published = null;
  }

  /** Topics not updated within `topicTtlMs` go stale (their next update makes them ok again). */
  private sweepStale(): void {
    const before = this.clock.wallNow() - this.opts.topicTtlMs;
    for (const topic of this.store.all()) if (!topic.stale && topic.ts < before) this.setStale(topic, true);
  }

  /**
   * Every connection learns the versions it was sent of its quiet topics.
   * A connection whose only quiet topic is on the fast path shares its
   * channel's heartbeat (one encoding, one native publish per channel); one
   * whose every topic is on the fast path and busy is skipped (its frames
   * flow); the others get their own, and those with nothing to report share
   * one empty heartbeat. Nothing is allocated for a connection with nothing
   * to report.
   */
  private heartbeat(): void {
    const now = this.clock.wallNow();
    this.heartbeatTime = now;
    this.quietBefore = now - this.opts.heartbeatMs / 2;
    this.emptyHeartbeat = null;
    // A walk still under way (only if it outlasted a whole interval) restarts
    // from the first connection; its next slice, already deferred, goes on with it.
    const underWay = this.walk !== null;
    this.walk = this.conns.values();
    this.walkId++;
    if (!underWay) this.beatSlice();
  }

  /** Where the current heartbeat walk is (null: none under way). */
  private walk: Iterator<Conn> | null = null;
  /** Numbers the walks: a channel is owed one shared heartbeat per walk, however many slices meet its subscribers. */
  private walkId = 0;
  private quietBefore = 0;
  private emptyHeartbeat: Uint8Array | null = null;
  private readonly nextSlice = (): void => this.beatSlice();

  /** Up to HEARTBEAT_SLICE connections' heartbeats; the rest in a later turn. */
  private beatSlice(): void {
    const walk = this.walk;
    if (walk === null) return;
    for (let n = 0; n < HEARTBEAT_SLICE; n++) {
      const r = walk.next();
      if (r.done) {
        this.walk = null;
        return;
      }
      this.beat(r.value);
    }
    this.clock.defer(this.nextSlice);
  }

  private beat(conn: Conn): void {
    const now = this.heartbeatTime;
    const quietBefore = this.quietBefore;
    if (conn.slow || conn.closed) return;
    let quiet = 0;
    let first: TopicSub | null = null;
    for (const ts of conn.topics.values()) {
      if (!reportable(ts, quietBefore)) continue;
      if (quiet++ === 0) first = ts;
      else break;
    }
    if (quiet === 1 && first!.fast) {
      // Once per walk: the channel's subscribers are spread over many slices,
      // and each slice's flush has sent (and forgotten) what it owed.
      const ch = first!.channel!;
      if (ch.beatWalk !== this.walkId) {
        ch.beatWalk = this.walkId;
        this.fast.owe(ch, this.channelHeartbeat);
      }
      return;
    }
    if (quiet === 0) {
      if (conn.topics.size > 0 && conn.fastCount === conn.topics.size) return;
      this.outbox.queue(conn, (this.emptyHeartbeat ??= this.enc.heartbeat(now, [])));
      return;
    }
    const versions: ResumePoint[] = [];
    for (const ts of conn.topics.values()) {
      if (!reportable(ts, quietBefore)) continue;
      versions.push({ topic: ts.topic.name, epoch: ts.fast ? ts.topic.epoch : ts.sentEpoch, version: ts.fast ? ts.channel!.publishedVersion : ts.sentVersion });
      if (versions.length >= MAX_HEARTBEAT_VERSIONS) break;
    }
    this.outbox.queue(conn, this.enc.heartbeat(now, versions));
  }

  stop(): void {
    this.clock.clearInterval(this.heartbeatTimer);
    this.walk = null;
    if (this.ttlTimer) this.clock.clearInterval(this.ttlTimer);
  }
}

/** A quiet (no update for half a heartbeat), unpaused topic this connection was sent a version of. */
function reportable(ts: TopicSub, quietBefore: number): boolean {
  if (ts.topic.ts > quietBefore || ts.paused) return false;
  return (ts.fast ? ts.channel!.publishedVersion : ts.sentVersion) >= 0;
}
