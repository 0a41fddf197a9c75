// Fan-out: from accepted publishes to framed bytes on sockets. This class
// wires the parts of this folder together and is the one API the transports,
// the node and the ingests call: connections open and close, subscriptions
// come and go, accepted publishes arrive in version order.
//
// Each update is encoded once per channel (topic × rate tier × field subset)
// and reaches fast-path subscribers by one native publish per channel (or
// shared channel set) per turn (the publishing callback: clock.ts); everyone
// else is served directly, with exact sequence numbers.

import { mergeChanges, type Accepted, type Topic, type TopicPattern, type TopicStore } from '../../engine/index.js';
import { CloseCode, Encoder, ErrorCode, TickfanError, TopicState, type ResumePoint } from '../../protocol/index.js';
import type { LogFn } from '../options.js';
import type { ServerStats } from '../stats.js';
import { CatchUps } from './catch-up.js';
import { Channels } from './channel.js';
import { realClock, type Clock } from './clock.js';
import { ClientSub, type Channel, type Conn, type TopicSub } from './state.js';
import { FastPath, type Broadcast } from './fast-path.js';
import { Interest } from './interest.js';
import { Liveness } from './liveness.js';
import { Outbox } from './outbox.js';
import { RateTiers } from './rate-tiers.js';
import { SlowLane } from './slow-lane.js';
import { SnapshotCache } from './snapshot-cache.js';
import type { Sink } from '../sink.js';
import { Subscriptions } from './subscriptions.js';
import { LoadGauge } from './load-gauge.js';
import { Form, Wire } from './wire.js';
import { KeyedViews, keyedNeedsProtocol2, type ViewReq } from './views.js';

/** The server options fan-out reads. */
export interface FanoutOptions {
  name: string;
  heartbeatMs: number;
  maxPayloadBytes: number;
  rateTiers: readonly number[];
  maxSubscriptionsPerConnection: number;
  slowThresholdBytes: number;
  hardCapBytes: number;
  slowTimeoutMs: number;
  topicTtlMs: number;
  /** Publishes per turn (callback) flushed at once (the rest at the turn's end). */
  eagerFlushes: number;
  /** Loop load (percent) from which a turn's publishes are batched; below it every one goes out at once (load-gauge.ts). 0: off. */
  eagerBelowLoad?: number;
  /** Connections on the same two or more channels from which the set shares a uWS topic (fast-groups.ts); 0 or absent: never. */
  groupMinConnections?: number;
  log: LogFn;
}

export class Fanout {
  readonly encoder = new Encoder();
  readonly conns = new Set<Conn>();
  readonly snapshots: SnapshotCache;
  private readonly channels = new Channels((ch) => this.views.release(ch));
  private readonly views: KeyedViews;
  private readonly interest: Interest;
  private readonly outbox: Outbox;
  private readonly fast: FastPath;
  private readonly catchUps: CatchUps;
  private readonly slow: SlowLane;
  private readonly tiers: RateTiers;
  private readonly liveness: Liveness;
  private readonly subscriptions: Subscriptions;
  private readonly wire: Wire;
  private flushScheduled = false;
  /**
   * Publishes left in this turn that go out at once (all while `load` says the loop is light); the
   * rest wait for its end, one frame per channel (what keeps a busy server's frames few). Refilled each turn.
   */
  private eagerLeft: number;
  private readonly load: LoadGauge | null;
  /** shared(): one frozen [pattern] per parsed pattern, dropped with it. */
  private readonly onePattern = new WeakMap<TopicPattern, readonly TopicPattern[]>();

  constructor(
    private readonly store: TopicStore,
    private readonly opts: FanoutOptions,
    readonly stats: ServerStats,
    private readonly clock: Clock = realClock,
  ) {
    const enc = this.encoder;
    this.load = opts.eagerBelowLoad ? new LoadGauge(clock, opts.eagerBelowLoad) : null;
    this.eagerLeft = opts.eagerFlushes;
    const schedule = () => this.scheduleFlush();
    const wire = (this.wire = new Wire(enc));
    this.snapshots = new SnapshotCache(wire, stats);
    this.interest = new Interest(store.limits.maxTopicLength, (name) => store.get(name) !== undefined);
    this.fast = new FastPath(stats, schedule, opts.groupMinConnections ?? 0, () => clock.now());
    this.outbox = new Outbox(stats, {
      fastFrames: (conn) => this.fast.frames(conn),
      dropped: (conn) => this.slow.disconnect(conn, 'buffered data passed the hard cap'),
      sent: (conn) => this.slow.sent(conn),
      schedule,
    });
    this.views = new KeyedViews(stats);
    this.catchUps = new CatchUps(wire, this.snapshots, stats, this.fast, this.outbox, this.views);
    this.slow = new SlowLane(this.conns, opts, clock, stats, this.fast, this.catchUps);
    this.tiers = new RateTiers(opts.rateTiers, clock, (ch) => this.flushChannel(ch));
    this.liveness = new Liveness(store, this.channels, this.conns, enc, this.outbox, stats, clock, opts, this.fast);
    this.subscriptions = new Subscriptions(
      this.channels,
      this.tiers,
      this.fast,
      this.catchUps,
      (ts) => this.outbox.queue(ts.conn, this.liveness.statusOf(ts.topic)),
      (cs, topic) => this.outbox.queue(cs.conn, this.encoder.error(ErrorCode.PROTOCOL_VERSION, cs.id, topic.name, keyedNeedsProtocol2(topic.name).message)),
    );
  }

  /**
   * Cluster hooks: `interest` hears a subscription name or pattern gain its
   * first subscriber or lose its last (an edge follows what its clients want);
   * `stale` hears a topic's stale flag change (an origin passes it on).
   */
  watch(hooks: {
    interest?: (source: string, wanted: boolean) => void;
    stale?: (topic: Topic, stale: boolean) => void;
    /** Resume points naming topics this node does not hold (see `gone`); without it they are told GONE at once. */
    unheld?: (conn: Conn, points: ResumePoint[]) => void;
  }): void {
    if (hooks.interest) this.interest.onChange = hooks.interest;
    if (hooks.stale) this.liveness.onChange = hooks.stale;
    if (hooks.unheld) this.onUnheld = hooks.unheld;
  }
  private onUnheld: ((conn: Conn, points: ResumePoint[]) => void) | null = null;

  /**
   * Tells `conn` that topics it resumed from are not held here: their
   * history ended (the server or the topic's origin restarted, a new epoch)
   * and nothing has been published since. TopicStatus GONE with the epoch and
   * version the client holds: what it holds is not current (the SDK flags it
   * stale) until the topic is published again, which sends a snapshot.
   */
  gone(conn: Conn, points: readonly ResumePoint[]): void {
    if (conn.closed) return;
    for (const p of points) this.outbox.queue(conn, this.encoder.topicStatus(p.topic, TopicState.GONE, p.epoch, p.version));
  }

  /** Enables the native fast path: `publish` is the uWS app's topic publish. */
  setBroadcaster(publish: Broadcast): void {
    this.fast.setBroadcaster(publish);
  }

  // ------------------------------------------------------------ connections

  open(conn: Conn, sink: Sink): void {
    conn.sink = sink;
    this.conns.add(conn);
    this.stats.connections++;
    this.outbox.queue(conn, this.encoder.welcome(this.opts.name, this.opts.heartbeatMs, this.opts.maxPayloadBytes, this.opts.rateTiers));
  }

  /**
   * The client's Hello asked for `protocol` (2): a Welcome announcing it
   * goes out in the frame it knows, and every later frame uses the new one.
   * Only before any subscription (channels are per protocol).
   */
  setProtocol(conn: Conn, protocol: number): void {
    if (conn.protocol === protocol || conn.closed) return;
    if (conn.subs.size > 0) throw new TickfanError(ErrorCode.PROTOCOL_VERSION, 'Hello must come before any subscription to change the protocol');
    this.outbox.queue(conn, this.encoder.welcome(this.opts.name, this.opts.heartbeatMs, this.opts.maxPayloadBytes, this.opts.rateTiers, protocol));
    this.outbox.flushConn(conn);
    conn.protocol = protocol;
  }

  /** Forgets everything about a closed connection. Never touches its socket. */
  closed(conn: Conn): void {
    if (conn.closed) return;
    conn.closed = true;
    conn.sink = null;
    this.conns.delete(conn);
    this.stats.connections--;
    for (const cs of conn.subs.values()) this.interest.drop(cs);
    for (const ts of conn.topics.values()) this.subscriptions.setChannel(ts, null);
    this.stats.subscriptions -= conn.subs.size;
    conn.clearSubs();
    conn.dirtySubs = null;
    conn.outbox.length = 0;
    this.liveness.publisherGone(conn);
  }

  /** Ends a connection with a close code, after what is queued for it (its close handler then calls closed()). */
  end(conn: Conn, code: number, reason: string): void {
    if (conn.closed || !conn.sink) return;
    const sink = conn.sink;
    this.outbox.flushConn(conn);
    sink.end(code, reason);
  }

  /** The transport drained: a slow connection may get its catch-ups. */
  drain(conn: Conn): void {
    this.slow.drain(conn);
  }

  // ------------------------------------------------------------ requests

  /** Validates and parses subscription names (shared, cached); throws TickfanError. */
  parsePatterns(names: readonly string[]): TopicPattern[] {
    return this.interest.parse(names);
  }

  /**
   * Subscribes a connection to `patterns` (from parsePatterns, permission
   * already checked by the caller). Returns how many existing topics matched.
   */
  subscribe(
    conn: Conn,
    id: number,
    patterns: readonly TopicPattern[],
    maxRate: number,
    fields: readonly string[],
    resume: readonly ResumePoint[],
    timestamps = false,
    /** Keyed topics: table views and checksums (views.ts#viewReq). */
    views: ViewReq | null = null,
  ): number {
    if (conn.subs.has(id)) throw new TickfanError(ErrorCode.BAD_REQUEST, `subscription id ${id} is already in use on this connection`);
    if (conn.subs.size >= this.opts.maxSubscriptionsPerConnection) {
      throw new TickfanError(ErrorCode.TOO_MANY_SUBSCRIPTIONS, `a connection may hold ${this.opts.maxSubscriptionsPerConnection} subscriptions`);
    }
    if (!Number.isFinite(maxRate) || maxRate < 0) throw new TickfanError(ErrorCode.BAD_REQUEST, 'maxRate must be 0 (every update) or a positive rate');
    const maxField = this.store.limits.maxFieldNameLength;
    for (const f of fields) {
      if (!f || f.length > maxField) throw new TickfanError(ErrorCode.BAD_FIELD, `field subset: names must be 1–${maxField} characters`);
    }
    const cs = new ClientSub(conn, id, this.shared(patterns), this.tiers.pick(maxRate), fields.length ? new Set(fields) : null, timestamps, views);
    conn.setSub(cs);
    this.stats.subscriptions++;
    this.interest.add(cs);
    const at = new Map(resume.map((r) => [r.topic, r]));
    let count = 0;
    const seen = new Set<Topic>();
    for (const p of patterns) {
      for (const topic of this.store.matching(p)) {
        if (seen.has(topic)) continue;
        seen.add(topic);
        if (conn.protocol > 1 || conn.json || topic.tables === undefined) count++;
        this.subscriptions.attach(cs, topic, at.get(topic.name));
      }
    }
    // Resumed topics this node does not hold: said before the Ack, which would otherwise mean "current".
    if (resume.length) {
      const unheld = resume.filter((r) => !this.store.get(r.topic) && patterns.some((p) => p.matches(r.topic)));
      if (unheld.length) (this.onUnheld ?? ((c, pts) => this.gone(c, pts)))(conn, unheld);
    }
    return count;
  }

  /** A one-pattern list shared by every subscription to that pattern (parsed patterns are shared already; their arrays were not). */
  private shared(patterns: readonly TopicPattern[]): readonly TopicPattern[] {
    if (patterns.length !== 1) return patterns;
    const p = patterns[0]!;
    let one = this.onePattern.get(p);
    if (!one) this.onePattern.set(p, (one = Object.freeze([p])));
    return one;
  }

  unsubscribe(conn: Conn, id: number): void {
    const cs = this.clientSub(conn, id);
    conn.deleteSub(id);
    this.stats.subscriptions--;
    this.interest.drop(cs);
    this.subscriptions.detach(cs);
  }

  setPaused(conn: Conn, id: number, paused: boolean): void {
    const cs = this.clientSub(conn, id);
    cs.paused = paused;
    for (const ts of conn.topics.values()) if (ts.hasSid(cs)) this.subscriptions.recompute(ts);
  }

  private clientSub(conn: Conn, id: number): ClientSub {
    const cs = conn.subs.get(id);
    if (!cs) throw new TickfanError(ErrorCode.UNKNOWN_SUBSCRIPTION, `no subscription ${id} on this connection`);
    return cs;
  }

  /** The client says it holds (epoch, version) of a topic and wants to be current. */
  catchUpRequest(conn: Conn, name: string, epoch: number, version: number): void {
    const ts = conn.topics.get(name);
    if (!ts) {
      if (!this.store.get(name)) throw new TickfanError(ErrorCode.UNKNOWN_TOPIC, `no topic ${name}`);
      throw new TickfanError(ErrorCode.BAD_REQUEST, `catch-up for ${name}: this connection is not subscribed to it`);
    }
    this.fast.leave(ts);
    // A subscription owed a whole image (its field set widened) keeps that
    // debt: what the client holds lacks fields, whatever version it names.
    if (ts.sentVersion >= 0) {
      ts.sentEpoch = epoch;
      ts.sentVersion = version;
    }
    if (conn.slow) this.catchUps.markDirty(ts);
    else this.catchUps.catchUp(ts, true);
  }

  /** Queues a direct message (ack, error, pong) for a connection. */
  reply(conn: Conn, msg: Uint8Array): void {
    this.outbox.queue(conn, msg);
  }

  /** Records that `conn` made this version of a topic (for "publisher gone"). */
  publishedBy(conn: Conn, name: string, epoch: number, version: number): void {
    this.liveness.publishedBy(conn, name, epoch, version);
  }

  // ------------------------------------------------------------ publishing

  /**
   * Called for every accepted publish, in version order. Never waits on a
   * subscriber. `delta2`: this publish already encoded for full-rate,
   * all-field protocol-2 channels (by the workers' sequencer).
   */
  accepted(a: Accepted, delta2?: Uint8Array): void {
    const { topic } = a;
    if (a.created) return this.onCreated(topic); // its subscribers were just sent this version (as in resynced)
    if (topic.stale) this.liveness.setStale(topic, false);
    // Keyed topics: each shared view (unused ones kept for resumes too) takes the version once (views.ts).
    const keyed = topic.tables !== undefined;
    if (keyed) this.views.advance(a, this.channels.of(topic) ?? []);
    const chans = this.channels.of(topic);
    if (!chans) return;
    for (const ch of chans) {
      if (keyed && !ch.keyed) {
        this.rekey(ch);
        continue;
      }
      if (ch.tier === 0) {
        // With workers the sequencer already encoded the full-field delta once for all of them.
        let buf = ch.fields || ch.form !== Form.P2 || keyed ? undefined : delta2;
        if (ch.keyed) buf = this.views.streamDelta(ch, a);
        else if (!buf) {
          // Read by the native stream alone: encoded into the turn's stage (stage.ts), else an array of its own.
          if (this.fast.canStage(ch)) buf = this.fast.staged(ch, this.wire.stageDelta(this.fast.stage, ch.form, topic, a.base, a.version, a.changes, a.namesFrom, ch.fields));
          else buf = this.wire.streamDelta(ch.form, topic, a.base, a.version, 1, a.changes, a.namesFrom, ch.fields);
          this.stats.encodes++;
        }
        if (ch.fast > 0) this.fast.queue(ch, buf);
        else ch.publishedVersion = a.version;
        this.deliverOutside(ch, a.base, a.version, buf);
        // Only now: a subscriber served above must not join the stream before this update is in it.
        ch.flushedVersion = a.version;
      } else {
        mergeChanges(ch.pending, a.changes);
        if (ch.keyed) this.views.pend(ch, a);
        ch.pendingUpdates++;
        this.stats.conflated++;
        this.tiers.schedule(ch);
      }
    }
    // One of the turn's first publishes: out now (see eagerLeft).
    if (this.flushScheduled && (this.eagerLeft-- > 0 || this.load?.light)) this.flush();
  }

  /**
   * A channel of a topic that became keyed (its first tables) or of a keyed
   * topic not yet carrying views: protocol 1 is refused; protocol 2 gets its
   * views and every subscriber a whole view image.
   */
  private rekey(ch: Channel): void {
    const subs = [...ch.subs];
    if (ch.form === Form.P1) {
      for (const ts of subs) {
        // A JSON sink (SSE, STOMP) moves to the topic's keyed JSON channel, with a whole view image.
        if (ts.conn.json && this.subscriptions.reform(ts)) continue;
        this.subscriptions.setChannel(ts, null);
        ts.conn.deleteTopic(ts.topic.name);
        ts.conn.dirtySubs?.delete(ts);
        this.outbox.queue(ts.conn, this.encoder.error(ErrorCode.PROTOCOL_VERSION, ts.firstSid.id, ch.topic.name, keyedNeedsProtocol2(ch.topic.name).message));
      }
      return;
    }
    this.views.ensure(ch);
    ch.resetPending(ch.topic.version);
    for (const ts of subs) {
      this.fast.leave(ts);
      ts.sentEpoch = 0;
      ts.sentVersion = -1;
      if (ts.paused || ts.conn.slow) this.catchUps.markDirty(ts);
      else this.catchUps.catchUp(ts);
    }
  }

  /**
   * A replica topic was reset to its sequencer's image (worker resync): every
   * subscriber not at that exact version gets a catch-up.
   */
  resynced(topic: Topic, created: boolean): void {
    if (created) return this.onCreated(topic);
    const chans = this.channels.of(topic);
    if (!chans) return;
    for (const ch of chans) {
      for (const ts of [...ch.subs]) this.fast.leave(ts);
      ch.resetPending(topic.version);
      this.views.resetPending(ch);
      ch.publishedVersion = topic.version;
      for (const ts of ch.subs) {
        if (ts.sentEpoch === topic.epoch && ts.sentVersion === topic.version) {
          this.fast.join(ts);
          continue;
        }
        if (ts.paused || ts.conn.slow) this.catchUps.markDirty(ts);
        else this.catchUps.catchUp(ts);
      }
    }
  }

  /** Flags a topic stale (its publisher went quiet or away) or fresh, to its subscribers. */
  setStale(topic: Topic, stale: boolean): void {
    this.liveness.setStale(topic, stale);
  }

  private onCreated(topic: Topic): void {
    for (const cs of this.interest.wanting(topic.name)) this.subscriptions.attach(cs, topic, undefined);
  }

  /** A throttled channel's turn: its merged changes as one delta. */
  private flushChannel(ch: Channel): void {
    const topic = ch.topic;
    if (ch.pendingUpdates === 0 || ch.subs.size === 0) {
      this.views.resetPending(ch);
      return ch.resetPending(topic.version);
    }
    const base = ch.flushedVersion;
    let buf: Uint8Array;
    if (ch.keyed) buf = this.views.flushDelta(ch, base, topic.version, ch.pending);
    else {
      buf = this.wire.streamDelta(ch.form, topic, base, topic.version, ch.pendingUpdates, ch.pending, ch.namesFrom, ch.fields);
      this.stats.encodes++;
    }
    ch.resetPending(topic.version);
    if (ch.fast > 0) this.fast.queue(ch, buf);
    else ch.publishedVersion = topic.version;
    // The next merged delta starts here: a subscriber served below may join the stream at once.
    this.deliverOutside(ch, base, topic.version, buf);
  }

  /** One encoded update to each subscriber of the channel outside its native stream. */
  private deliverOutside(ch: Channel, base: number, version: number, buf: Uint8Array): void {
    // Copied because deliver() may move a subscriber onto the fast path; skipped when nobody is outside.
    if (ch.outside.size) for (const ts of [...ch.outside]) this.deliver(ts, base, version, buf);
  }

  /** Gives one shared message to one subscriber, or owes it a catch-up. */
  private deliver(ts: TopicSub, base: number, version: number, buf: Uint8Array): void {
    const conn = ts.conn;
    if (ts.paused || conn.slow) return this.catchUps.markDirty(ts);
    const topic = ts.topic;
    if (ts.sentEpoch === topic.epoch && ts.bound) {
      if (ts.sentVersion === base) {
        ts.sentVersion = version;
        this.stats.deliveries++;
        this.outbox.queue(conn, buf);
        this.fast.join(ts);
        return;
      }
      if (ts.sentVersion >= version) return; // already has it (joined later)
    }
    this.catchUps.catchUp(ts);
  }

  // ------------------------------------------------------------ sending

  private scheduleFlush(): void {
    this.flushScheduled = true;
    if (this.endScheduled) return;
    this.endScheduled = true;
    this.clock.afterCallback(this.endOfTurn);
  }

  private endScheduled = false;
  /** The turn's end (the publishing callback returned): what is still queued goes out, and the next turn may send its first publishes at once again. */
  private readonly endOfTurn = (): void => {
    this.endScheduled = false;
    this.eagerLeft = this.opts.eagerFlushes;
    if (this.flushScheduled) this.flush();
  };

  /**
   * Sends every queued frame, once per turn with work: direct
   * frames first (a catch-up must reach its connection before the stream it
   * rejoins continues past it), then one native publish per channel.
   */
  readonly flush = (): void => {
    this.flushScheduled = false;
    this.outbox.flushAll();
    this.slow.published(this.fast.publish());
  };

  /** Going away: every client is told to reconnect elsewhere and resume. */
  shutdown(code: number = CloseCode.GOING_AWAY, reason = 'server shutting down'): void {
    this.slow.stop();
    this.liveness.stop();
    this.tiers.stop();
    this.load?.close();
    for (const conn of [...this.conns]) this.end(conn, code, reason);
  }
}
