// Fan-out: from accepted publishes to framed bytes on sockets. Owns channels
// (topic × rate tier × field subset), per-connection topic subscriptions, the
// rate-tier conflation timers, the slow lane, catch-ups and heartbeats.
//
// Each update is encoded once per channel. The fast path is uWebSockets.js'
// native topic publish: every channel is a uWS topic, and once per event-loop
// turn each channel with news publishes ONE frame holding all of it, so the
// per-subscriber loop runs in C++. A subscriber leaves the fast path while it
// is slow, paused or not yet aligned with the channel's stream, and is served
// directly (catch-ups) until it can rejoin. Frames published to many carry
// sequence 0 ("count me"); every frame sent to one connection carries its
// exact sequence number, which counts the published frames it received.

import { mergeChanges, TopicPattern, isPattern, validateTopic, type Accepted, type Topic, type TopicStore } from '../engine/index.js';
import {
  CloseCode,
  Encoder,
  ErrorCode,
  FrameWriter,
  SERVER_FRAME_HEADER,
  TickfanError,
  TopicState,
  type Changes,
  type ClientMessage,
  type ResumePoint,
} from '../protocol/index.js';
import { SendStatus, type Sink } from './sink.js';
import { maySubscribe, type Grants } from './auth.js';
import type { ServerOptions } from './options.js';
import { SnapshotCache } from './snapshot-cache.js';
import { ServerStats } from './stats.js';


/** Rate tier 0 is "every update"; others are updates per second. */
type Tier = number;

/** One client subscription (one Subscribe message). */
export class ClientSub {
  paused = false;
  constructor(
    readonly conn: Conn,
    readonly id: number,
    readonly patterns: readonly TopicPattern[],
    readonly tier: Tier,
    readonly fields: ReadonlySet<string> | null,
  ) {}
}

/** What one connection receives of one topic: the merge of its ClientSubs. */
export class TopicSub {
  /** The client subscriptions covering this topic (usually one: an array is lighter than a Set). */
  readonly sids: ClientSub[] = [];
  channel: Channel | null = null;
  /** The (epoch, version) this connection was last sent (or told it holds). */
  sentEpoch = 0;
  sentVersion = -1;
  paused = false;
  /** Updates were withheld (slow lane or paused): owes one catch-up. */
  dirty = false;
  /** On the native fast path: subscribed to its channel's uWS topic. */
  fast = false;
  /** The channel's frame count when this subscriber joined its uWS topic. */
  frameBase = 0;
  constructor(
    readonly conn: Conn,
    readonly topic: Topic,
  ) {}
}

/** Per-connection state (a WebSocket's user data, or an SSE stream's). */
export class Conn {
  sink: Sink | null = null;
  closed = false;
  /** Frames this connection was sent, as of its last direct frame. */
  seq = 0;
  /** Published frames received through channels it has since left. */
  retiredFrames = 0;
  /** fastFrames() when its last direct frame went out. */
  fastAtLastSend = 0;
  /** Its topic subscriptions on the fast path. */
  fastCount = 0;
  readonly subs = new Map<number, ClientSub>();
  readonly topics = new Map<string, TopicSub>();
  outbox: Uint8Array[] = [];
  outboxBytes = 0;
  queued = false;
  slow = false;
  slowSince = 0;
  /** Topic subscriptions owed a catch-up (allocated when first needed). */
  dirtySubs: Set<TopicSub> | null = null;
  badFrames = 0;
  /** What this connection may do; null until a token is verified. */
  grants: Grants | null = null;
  /** Publish rate limit: tokens left and when they were last refilled. */
  publishTokens = 0;
  publishRefillAt = 0;
  /** Ends the session when its token expires. */
  expiryTimer: NodeJS.Timeout | null = null;
  /** Messages that arrived while a Hello token was being verified. */
  authWaiting: ClientMessage[] | null = null;
  /** Topics this connection published to (checked for "publisher gone" when it closes). */
  published: Set<string> | null = null;
  constructor(
    readonly id: number,
    readonly remote: string,
  ) {}
}

/** All subscribers of one topic at one rate tier with one field subset. */
class Channel {
  readonly subs = new Set<TopicSub>();
  /** Subscribers not on the fast path (served one by one). */
  readonly outside = new Set<TopicSub>();
  /** Subscribers on the fast path. */
  fast = 0;
  /** Throttled tiers: changes merged since the last flush. */
  pending: Changes = new Map();
  pendingUpdates = 0;
  /** The version the channel's stream has reached (queued or published). */
  flushedVersion: number;
  /** The version its published frames have reached. */
  publishedVersion: number;
  /** Messages for the fast path, published at the end of this turn. */
  readonly queue: Uint8Array[] = [];
  queued = false;
  /** Frames published on the uWS topic so far. */
  frames = 0;
  readonly uwsTopic: string;
  /** performance.now() of its last flush (-Infinity: never, so the first goes out at once). */
  lastFlushAt = -Infinity;
  due = false;
  constructor(
    readonly key: string,
    readonly topic: Topic,
    readonly tier: Tier,
    readonly fields: ReadonlySet<string> | null,
    id: number,
  ) {
    this.flushedVersion = this.publishedVersion = topic.version;
    this.uwsTopic = `c${id}`;
  }
}

/** Channels of one throttled tier that have pending changes. */
class TierQueue {
  readonly dirty = new Set<Channel>();
  timer: NodeJS.Timeout | null = null;
  constructor(
    readonly rate: number,
    readonly intervalMs: number,
  ) {}
}

const MAX_FRAME_BYTES = 512 * 1024;

function fieldsKey(fields: ReadonlySet<string> | null): string {
  return fields ? [...fields].sort().join(',') : '*';
}

export class Fanout {
  private readonly enc = new Encoder();
  private readonly writer = new FrameWriter();
  /** Native publish to every member of a uWS topic (set by the app). */
  private broadcast: ((topic: string, frame: Uint8Array) => void) | null = null;
  private nextChannelId = 1;
  /** Bytes published since the fast-path buffers were last checked (an upper bound for any one socket). */
  private publishedSinceCheck = 0;
  private readonly dirtyChannels: Channel[] = [];
  private readonly channels = new Map<Topic, Map<string, Channel>>();
  private readonly tiers = new Map<number, TierQueue>();
  /** Plain-name interest (topics that may not exist yet) and pattern interest. */
  private readonly exactInterest = new Map<string, Set<ClientSub>>();
  private readonly patternInterest = new Set<ClientSub>();
  private readonly dirtyConns: Conn[] = [];
  private flushScheduled = false;
  readonly conns = new Set<Conn>();
  readonly snapshots: SnapshotCache;
  private sweepTimer: NodeJS.Timeout;
  private heartbeatTimer: NodeJS.Timeout;
  private ttlTimer: NodeJS.Timeout | null = null;
  /** Per topic, the connection whose publish made its current version (if one did). */
  private readonly lastPublisher = new Map<string, { conn: Conn; epoch: number; version: number }>();

  constructor(
    private readonly store: TopicStore,
    private readonly opts: ServerOptions,
    readonly stats: ServerStats,
  ) {
    for (const r of opts.rateTiers) this.tiers.set(r, new TierQueue(r, 1000 / r));
    this.snapshots = new SnapshotCache(this.enc, stats);
    // Often enough to see a fast-path socket's buffer grow well before uWS would drop for it.
    this.sweepTimer = setInterval(() => this.sweepSlow(), Math.min(100, Math.max(10, opts.slowTimeoutMs / 4)));
    this.heartbeatTimer = setInterval(() => this.heartbeat(), opts.heartbeatMs);
    this.sweepTimer.unref();
    this.heartbeatTimer.unref();
    if (opts.topicTtlMs > 0) {
      this.ttlTimer = setInterval(() => this.sweepStale(), Math.min(1000, Math.max(20, opts.topicTtlMs / 4)));
      this.ttlTimer.unref();
    }
  }

  /** Enables the native fast path: `publish` is the uWS app's topic publish. */
  setBroadcaster(publish: (topic: string, frame: Uint8Array) => void): void {
    this.broadcast = publish;
  }

  /** Fastest tier not above `maxRate` (0 or less: every update). */
  pickTier(maxRate: number): Tier {
    if (!(maxRate > 0)) return 0;
    const rates = this.opts.rateTiers; // sorted fastest first
    for (const r of rates) if (r <= maxRate) return r;
    return rates[rates.length - 1] ?? 0;
  }

  // ------------------------------------------------------------ connections

  open(conn: Conn, sink: Sink): void {
    conn.sink = sink;
    this.conns.add(conn);
    this.stats.connections++;
    this.queue(conn, this.enc.welcome(this.opts.name, this.opts.heartbeatMs, this.opts.maxPayloadBytes, this.opts.rateTiers));
  }

  /** Forgets everything about a closed connection. Never touches its socket. */
  closed(conn: Conn): void {
    if (conn.closed) return;
    conn.closed = true;
    conn.sink = null;
    if (conn.expiryTimer) clearTimeout(conn.expiryTimer);
    this.conns.delete(conn);
    this.stats.connections--;
    for (const cs of conn.subs.values()) this.dropInterest(cs);
    for (const ts of conn.topics.values()) this.setChannel(ts, null);
    this.stats.subscriptions -= conn.subs.size;
    conn.subs.clear();
    conn.topics.clear();
    conn.dirtySubs = null;
    conn.outbox.length = 0;
    if (conn.published) {
      // Its publisher is gone: a topic nobody has published to since goes stale.
      for (const name of conn.published) {
        const last = this.lastPublisher.get(name);
        if (last?.conn !== conn) continue;
        this.lastPublisher.delete(name);
        const topic = this.store.get(name);
        if (topic && !topic.stale && topic.epoch === last.epoch && topic.version === last.version) this.setStale(topic, true);
      }
      conn.published = null;
    }
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

  /** Ends a connection with a close code (the close handler then calls closed()). */
  end(conn: Conn, code: number, reason: string): void {
    if (conn.closed || !conn.sink) return;
    const sink = conn.sink;
    this.flushConn(conn);
    sink.end(code, reason);
  }

  // ------------------------------------------------------------ requests

  subscribe(conn: Conn, id: number, names: readonly string[], maxRate: number, fields: readonly string[], resume: readonly ResumePoint[]): number {
    if (conn.subs.has(id)) throw new TickfanError(ErrorCode.BAD_REQUEST, `subscription id ${id} is already in use on this connection`);
    if (conn.subs.size >= this.opts.maxSubscriptionsPerConnection) {
      throw new TickfanError(ErrorCode.TOO_MANY_SUBSCRIPTIONS, `a connection may hold ${this.opts.maxSubscriptionsPerConnection} subscriptions`);
    }
    if (names.length === 0) throw new TickfanError(ErrorCode.BAD_REQUEST, 'subscribe needs at least one topic or pattern');
    if (!Number.isFinite(maxRate) || maxRate < 0) throw new TickfanError(ErrorCode.BAD_REQUEST, 'maxRate must be 0 (every update) or a positive rate');
    const maxLen = this.store.limits.maxTopicLength;
    const patterns = names.map((n) => this.pattern(n, maxLen));
    const grants = conn.grants;
    if (!grants) throw new TickfanError(ErrorCode.UNAUTHORIZED, 'send a token (Hello, ?token= or Authorization: Bearer) before subscribing');
    const denied = patterns.find((p) => !maySubscribe(grants, p));
    if (denied) {
      // Says nothing about the topic (whether it exists, its state): only that it is not granted.
      const err = new TickfanError(ErrorCode.PERMISSION_DENIED, `not allowed to subscribe to ${denied.source}: it is not inside this connection's subscribe grants`);
      throw Object.assign(err, { topic: denied.source });
    }
    for (const f of fields) {
      if (!f || f.length > this.store.limits.maxFieldNameLength) throw new TickfanError(ErrorCode.BAD_FIELD, `field subset: names must be 1–${this.store.limits.maxFieldNameLength} characters`);
    }
    const cs = new ClientSub(conn, id, patterns, this.pickTier(maxRate), fields.length ? new Set(fields) : null);
    conn.subs.set(id, cs);
    this.stats.subscriptions++;
    for (const p of patterns) {
      if (isPattern(p.source)) this.patternInterest.add(cs);
      else {
        let set = this.exactInterest.get(p.source);
        if (!set) this.exactInterest.set(p.source, (set = new Set()));
        set.add(cs);
      }
    }
    const at = new Map(resume.map((r) => [r.topic, r]));
    let count = 0;
    const seen = new Set<Topic>();
    for (const p of patterns) {
      for (const topic of this.store.matching(p)) {
        if (seen.has(topic)) continue;
        seen.add(topic);
        count++;
        this.attach(cs, topic, at.get(topic.name));
      }
    }
    return count;
  }

  /** Parsed patterns are shared: thousands of clients subscribe to the same names. */
  private readonly patterns = new Map<string, TopicPattern>();

  private pattern(name: string, maxLen: number): TopicPattern {
    const known = this.patterns.get(name);
    if (known) return known;
    if (!isPattern(name)) validateTopic(name, maxLen);
    const p = TopicPattern.parse(name, maxLen);
    if (this.patterns.size >= 100_000) this.patterns.delete(this.patterns.keys().next().value!);
    this.patterns.set(name, p);
    return p;
  }

  unsubscribe(conn: Conn, id: number): void {
    const cs = conn.subs.get(id);
    if (!cs) throw new TickfanError(ErrorCode.UNKNOWN_SUBSCRIPTION, `no subscription ${id} on this connection`);
    conn.subs.delete(id);
    this.stats.subscriptions--;
    this.dropInterest(cs);
    for (const ts of [...conn.topics.values()]) {
      const at = ts.sids.indexOf(cs);
      if (at < 0) continue;
      ts.sids.splice(at, 1);
      if (ts.sids.length === 0) {
        this.setChannel(ts, null);
        conn.topics.delete(ts.topic.name);
        conn.dirtySubs?.delete(ts);
      } else this.recompute(ts);
    }
  }

  setPaused(conn: Conn, id: number, paused: boolean): void {
    const cs = conn.subs.get(id);
    if (!cs) throw new TickfanError(ErrorCode.UNKNOWN_SUBSCRIPTION, `no subscription ${id} on this connection`);
    cs.paused = paused;
    for (const ts of conn.topics.values()) if (ts.sids.includes(cs)) this.recompute(ts);
  }

  /** The client says it holds (epoch, version) of a topic and wants to be current. */
  catchUpRequest(conn: Conn, name: string, epoch: number, version: number): void {
    const ts = conn.topics.get(name);
    if (!ts) {
      if (!this.store.get(name)) throw new TickfanError(ErrorCode.UNKNOWN_TOPIC, `no topic ${name}`);
      throw new TickfanError(ErrorCode.BAD_REQUEST, `catch-up for ${name}: this connection is not subscribed to it`);
    }
    this.leaveFast(ts);
    ts.sentEpoch = epoch;
    ts.sentVersion = version;
    if (conn.slow) this.markDirty(ts);
    else this.catchUp(ts, true);
  }

  /** Queues a direct message (ack, error, pong) for a connection. */
  reply(conn: Conn, msg: Uint8Array): void {
    this.queue(conn, msg);
  }

  get encoder(): Encoder {
    return this.enc;
  }

  // ------------------------------------------------------------ publishing

  /** Called for every accepted publish, in version order. Never waits on a subscriber. */
  accepted(a: Accepted, encoded?: Uint8Array): void {
    const { topic } = a;
    if (a.created) this.onCreated(topic);
    if (topic.stale) this.setStale(topic, false);
    const chans = this.channels.get(topic);
    if (!chans) return;
    for (const ch of chans.values()) {
      if (ch.tier === 0) {
        // With workers the sequencer already encoded the full-field delta once for all of them.
        let buf = ch.fields ? undefined : encoded;
        if (!buf) {
          buf = this.enc.delta(topic.name, topic.epoch, a.base, a.version, 1, a.changes, topic.ts, ch.fields ?? undefined);
          this.stats.encodes++;
        }
        if (ch.fast > 0) this.queueFast(ch, buf);
        else ch.publishedVersion = a.version;
        // Copied because deliver() may move a subscriber onto the fast path; skipped when nobody is outside.
        if (ch.outside.size) for (const ts of [...ch.outside]) this.deliver(ts, a.base, a.version, buf);
        ch.flushedVersion = a.version;
      } else {
        mergeChanges(ch.pending, a.changes);
        ch.pendingUpdates++;
        this.stats.conflated++;
        this.scheduleTier(ch);
      }
    }
  }

  /**
   * A replica topic was reset to its sequencer's image (worker resync): every
   * subscriber not at that exact version gets a catch-up.
   */
  resynced(topic: Topic, created: boolean): void {
    if (created) return this.onCreated(topic);
    const chans = this.channels.get(topic);
    if (!chans) return;
    for (const ch of chans.values()) {
      for (const ts of [...ch.subs]) this.leaveFast(ts);
      ch.pending = new Map();
      ch.pendingUpdates = 0;
      ch.flushedVersion = ch.publishedVersion = topic.version;
      for (const ts of ch.subs) {
        if (ts.sentEpoch === topic.epoch && ts.sentVersion === topic.version) {
          this.tryFast(ts);
          continue;
        }
        if (ts.paused || ts.conn.slow) this.markDirty(ts);
        else this.catchUp(ts);
      }
    }
  }

  private onCreated(topic: Topic): void {
    const want = new Set<ClientSub>(this.exactInterest.get(topic.name));
    for (const cs of this.patternInterest) if (cs.patterns.some((p) => p.matches(topic.name))) want.add(cs);
    for (const cs of want) this.attach(cs, topic, undefined);
  }

  /** Flags a topic stale (its publisher went quiet or away) or fresh, to its subscribers. */
  setStale(topic: Topic, stale: boolean): void {
    if (topic.stale !== stale) this.stats.staleTopics += stale ? 1 : -1;
    topic.stale = stale;
    const chans = this.channels.get(topic);
    if (!chans) return;
    const msg = this.enc.topicStatus(topic.name, stale ? TopicState.STALE : TopicState.OK, topic.epoch, topic.version);
    for (const ch of chans.values()) for (const ts of ch.subs) this.queue(ts.conn, msg);
  }

  /** Topics not updated within `topicTtlMs` go stale (their next update makes them ok again). */
  private sweepStale(): void {
    const before = Date.now() - this.opts.topicTtlMs;
    for (const topic of this.store.all()) if (!topic.stale && topic.ts < before) this.setStale(topic, true);
  }

  private scheduleTier(ch: Channel): void {
    if (ch.due) return;
    ch.due = true;
    const q = this.tiers.get(ch.tier)!;
    q.dirty.add(ch);
    if (q.timer) return;
    const wait = Math.max(0, ch.lastFlushAt + q.intervalMs - performance.now());
    // Leading edge: a quiet channel goes out at once; a busy one at its rate.
    q.timer = setTimeout(() => this.flushTier(q), Math.min(wait, q.intervalMs));
  }

  private flushTier(q: TierQueue): void {
    q.timer = null;
    const now = performance.now();
    let next = Infinity;
    for (const ch of q.dirty) {
      const dueAt = ch.lastFlushAt + q.intervalMs;
      if (dueAt > now + 1) {
        next = Math.min(next, dueAt);
        continue;
      }
      q.dirty.delete(ch);
      ch.due = false;
      ch.lastFlushAt = now;
      this.flushChannel(ch);
    }
    if (q.dirty.size) q.timer = setTimeout(() => this.flushTier(q), Math.max(1, next - now));
  }

  private flushChannel(ch: Channel): void {
    const topic = ch.topic;
    if (ch.pendingUpdates === 0 || ch.subs.size === 0) {
      ch.pending = new Map();
      ch.pendingUpdates = 0;
      ch.flushedVersion = topic.version;
      return;
    }
    const base = ch.flushedVersion;
    const buf = this.enc.delta(topic.name, topic.epoch, base, topic.version, ch.pendingUpdates, ch.pending, topic.ts, ch.fields ?? undefined);
    this.stats.encodes++;
    ch.pending = new Map();
    ch.pendingUpdates = 0;
    ch.flushedVersion = topic.version;
    if (ch.fast > 0) this.queueFast(ch, buf);
    else ch.publishedVersion = topic.version;
    if (ch.outside.size) for (const ts of [...ch.outside]) this.deliver(ts, base, topic.version, buf);
  }

  /** Gives one shared message to one subscriber, or owes it a catch-up. */
  private deliver(ts: TopicSub, base: number, version: number, buf: Uint8Array): void {
    const conn = ts.conn;
    if (ts.paused || conn.slow) {
      this.markDirty(ts);
      return;
    }
    const topic = ts.topic;
    if (ts.sentEpoch === topic.epoch) {
      if (ts.sentVersion === base) {
        ts.sentVersion = version;
        this.stats.deliveries++;
        this.queue(conn, buf);
        this.tryFast(ts);
        return;
      }
      if (ts.sentVersion >= version) return; // already has it (joined later)
    }
    this.catchUp(ts);
  }

  private markDirty(ts: TopicSub): void {
    if (ts.dirty) return;
    ts.dirty = true;
    (ts.conn.dirtySubs ??= new Set()).add(ts);
  }

  /** Brings one subscriber from its sent (epoch, version) to the current version. */
  catchUp(ts: TopicSub, confirmCurrent = false): void {
    this.leaveFast(ts);
    const topic = ts.topic;
    const fields = ts.channel ? ts.channel.fields : this.effectiveFields(ts);
    ts.dirty = false;
    ts.conn.dirtySubs?.delete(ts);
    if (ts.sentEpoch === topic.epoch && ts.sentVersion === topic.version) {
      // An explicit request gets an answer even when there is nothing new: an
      // empty delta from the current version to itself.
      if (confirmCurrent) this.queue(ts.conn, this.enc.delta(topic.name, topic.epoch, topic.version, topic.version, 0, [], topic.ts));
      this.tryFast(ts);
      return;
    }
    // Same epoch, same base, same version: every client resuming there shares
    // one plan and one encoding (a reconnect storm encodes each once).
    const base = ts.sentEpoch === topic.epoch ? ts.sentVersion : -1;
    const { kind, bytes: msg } = this.snapshots.catchUp(topic, fields, base, () => {
      const plan = topic.plan(ts.sentEpoch, ts.sentVersion);
      const snap = this.snapshots.get(topic, fields);
      if (plan.kind !== 'delta') return { kind: 'snapshot', bytes: snap };
      const delta = this.enc.delta(topic.name, topic.epoch, plan.base, plan.version, plan.updates, plan.changes, topic.ts, fields ?? undefined);
      return delta.byteLength <= snap.byteLength ? { kind: 'delta', bytes: delta } : { kind: 'snapshot', bytes: snap };
    });
    if (kind === 'snapshot') this.stats.catchUpSnapshots++;
    else this.stats.catchUpDeltas++;
    ts.sentEpoch = topic.epoch;
    ts.sentVersion = topic.version;
    this.queue(ts.conn, msg);
    this.tryFast(ts);
  }

  // ------------------------------------------------------------ fast path

  /**
   * Puts a subscriber on its channel's native stream when it holds exactly
   * what that stream continues from: for every update, a version between what
   * the channel has published and what it has queued (earlier deltas then
   * arrive as duplicates the client ignores); for a throttled tier, the
   * version of its last flush (the next merged delta starts there).
   */
  private tryFast(ts: TopicSub): void {
    const ch = ts.channel;
    const conn = ts.conn;
    const native = conn.sink?.native;
    if (ts.fast || !ch || !native || !this.broadcast || conn.slow || ts.paused || ts.dirty || conn.closed) return;
    if (ts.sentEpoch !== ch.topic.epoch) return;
    const v = ts.sentVersion;
    const aligned = ch.tier === 0 ? v >= ch.publishedVersion && v <= ch.flushedVersion : v === ch.flushedVersion;
    if (!aligned) return;
    native.subscribe(ch.uwsTopic);
    ts.fast = true;
    ts.frameBase = ch.frames;
    ch.fast++;
    conn.fastCount++;
    ch.outside.delete(ts);
  }

  /**
   * Takes a subscriber off the native stream; its sent version becomes what
   * the channel has published (queued messages will not reach it).
   */
  private leaveFast(ts: TopicSub): void {
    if (!ts.fast) return;
    const ch = ts.channel!;
    ts.fast = false;
    ch.fast--;
    ts.conn.fastCount--;
    ch.outside.add(ts);
    ts.conn.retiredFrames += ch.frames - ts.frameBase;
    ts.sentEpoch = ch.topic.epoch;
    ts.sentVersion = ch.publishedVersion;
    if (!ts.conn.closed) ts.conn.sink?.native?.unsubscribe(ch.uwsTopic);
  }

  /** Published frames a connection has received (through channels it is in or has left). */
  private fastFrames(conn: Conn): number {
    let n = conn.retiredFrames;
    if (conn.fastCount === 0) return n;
    for (const ts of conn.topics.values()) if (ts.fast) n += ts.channel!.frames - ts.frameBase;
    return n;
  }

  private queueFast(ch: Channel, buf: Uint8Array): void {
    ch.queue.push(buf);
    if (!ch.queued) {
      ch.queued = true;
      this.dirtyChannels.push(ch);
      this.scheduleFlush();
    }
  }

  /** One native publish per channel with news: all of its queued messages in one frame. */
  private publishChannels(): void {
    const chans = this.dirtyChannels.splice(0);
    for (const ch of chans) {
      ch.queued = false;
      const n = ch.queue.length;
      if (n === 0) continue;
      if (ch.fast > 0 && this.broadcast) {
        let bytes = 0;
        for (const m of ch.queue) bytes += m.byteLength;
        this.broadcast(ch.uwsTopic, this.writer.write(0, ch.queue));
        this.publishedSinceCheck += bytes + SERVER_FRAME_HEADER;
        ch.frames++;
        this.stats.frames++;
        this.stats.deliveries += n * ch.fast;
        this.stats.bytesOut += (bytes + SERVER_FRAME_HEADER) * ch.fast;
      }
      ch.queue.length = 0;
      ch.publishedVersion = ch.flushedVersion;
    }
    // Native publishes do not report per socket. Once any socket could have
    // taken half the slow-lane threshold since the last look, look again, long
    // before uWS itself would have to drop at the hard cap.
    if (this.publishedSinceCheck >= this.opts.slowThresholdBytes / 2) this.checkFastBuffers();
  }

  private checkFastBuffers(): void {
    this.publishedSinceCheck = 0;
    for (const conn of this.conns) {
      if (!conn.slow && conn.fastCount > 0 && conn.sink && conn.sink.buffered() > this.opts.slowThresholdBytes) this.enterSlowLane(conn);
    }
  }

  // ------------------------------------------------------------ subscriptions

  private attach(cs: ClientSub, topic: Topic, resume: ResumePoint | undefined): void {
    const conn = cs.conn;
    let ts = conn.topics.get(topic.name);
    const fresh = !ts;
    if (!ts) {
      ts = new TopicSub(conn, topic);
      conn.topics.set(topic.name, ts);
      if (resume) {
        ts.sentEpoch = resume.epoch;
        ts.sentVersion = resume.version;
      }
    }
    if (!ts.sids.includes(cs)) ts.sids.push(cs);
    this.recompute(ts, fresh);
    // A new subscriber of a stale topic learns so right after its image.
    if (fresh && topic.stale) this.queue(conn, this.enc.topicStatus(topic.name, TopicState.STALE, topic.epoch, topic.version));
  }

  private effectiveFields(ts: TopicSub): ReadonlySet<string> | null {
    let union: Set<string> | null = new Set();
    for (const cs of ts.sids) {
      if (!cs.fields) return null;
      for (const f of cs.fields) union.add(f);
    }
    return union;
  }

  /** Re-derives a topic subscription's channel and pause state from its ClientSubs. */
  private recompute(ts: TopicSub, fresh = false): void {
    let tier = -1;
    let paused = true;
    for (const cs of ts.sids) {
      if (cs.paused) continue;
      paused = false;
      if (tier === -1 || cs.tier === 0 || (tier !== 0 && cs.tier > tier)) tier = cs.tier;
    }
    if (tier === -1) tier = ts.channel?.tier ?? ts.sids[0]!.tier;
    const fields = this.effectiveFields(ts);
    const old = ts.channel;
    const ch = this.channelFor(ts.topic, tier, fields);
    this.setChannel(ts, ch);
    // The connection holds only the fields it was sent: under another field set
    // it needs a whole image, or it would lack fields (or keep dead ones).
    if (old && old !== ch && fieldsKey(old.fields) !== fieldsKey(ch.fields)) {
      ts.sentEpoch = 0;
      ts.sentVersion = -1;
    }
    // Changes still pending in the old channel (a throttled tier) never reach
    // this connection through the new one: catch up rather than wait for a
    // publish that may never come.
    const behind = ts.sentEpoch !== ts.topic.epoch || ts.sentVersion !== ts.topic.version;
    const wasPaused = ts.paused;
    if (paused) this.leaveFast(ts);
    ts.paused = paused;
    if (paused) {
      if (fresh || (old !== ch && behind)) this.markDirty(ts);
      return;
    }
    if (fresh || (wasPaused && ts.dirty) || (old !== ch && behind)) {
      if (ts.conn.slow) this.markDirty(ts);
      else this.catchUp(ts);
    }
    this.tryFast(ts);
  }

  private channelFor(topic: Topic, tier: Tier, fields: ReadonlySet<string> | null): Channel {
    let chans = this.channels.get(topic);
    if (!chans) this.channels.set(topic, (chans = new Map()));
    const key = `${tier}|${fieldsKey(fields)}`;
    let ch = chans.get(key);
    if (!ch) chans.set(key, (ch = new Channel(key, topic, tier, fields, this.nextChannelId++)));
    return ch;
  }

  private setChannel(ts: TopicSub, ch: Channel | null): void {
    const old = ts.channel;
    if (old === ch) return;
    if (old) {
      this.leaveFast(ts);
      old.subs.delete(ts);
      old.outside.delete(ts);
      if (old.subs.size === 0) {
        const chans = this.channels.get(old.topic);
        chans?.delete(old.key);
        if (chans && chans.size === 0) this.channels.delete(old.topic);
        if (old.due) {
          this.tiers.get(old.tier)?.dirty.delete(old);
          old.due = false;
        }
      }
    }
    ts.channel = ch;
    ch?.subs.add(ts);
    ch?.outside.add(ts);
  }

  private dropInterest(cs: ClientSub): void {
    this.patternInterest.delete(cs);
    for (const p of cs.patterns) {
      const set = this.exactInterest.get(p.source);
      if (set && set.delete(cs) && set.size === 0) this.exactInterest.delete(p.source);
    }
  }

  // ------------------------------------------------------------ sending

  private queue(conn: Conn, msg: Uint8Array): void {
    if (conn.closed) return;
    conn.outbox.push(msg);
    conn.outboxBytes += msg.byteLength;
    if (!conn.queued) {
      conn.queued = true;
      this.dirtyConns.push(conn);
      this.scheduleFlush();
    }
    if (conn.outboxBytes >= MAX_FRAME_BYTES) this.flushConn(conn);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flush);
  }

  /**
   * Sends every queued frame, once per event-loop turn with work: direct
   * frames first (a catch-up must reach its connection before the stream it
   * rejoins continues past it), then one native publish per channel.
   */
  readonly flush = (): void => {
    this.flushScheduled = false;
    const conns = this.dirtyConns.splice(0);
    for (const conn of conns) {
      conn.queued = false;
      this.flushConn(conn);
    }
    this.publishChannels();
  };

  private flushConn(conn: Conn): void {
    const sink = conn.sink;
    if (conn.closed || !sink || conn.outbox.length === 0) {
      conn.outbox.length = 0;
      conn.outboxBytes = 0;
      return;
    }
    this.stats.frames++;
    this.stats.bytesOut += conn.outboxBytes + SERVER_FRAME_HEADER;
    // Its number counts the published frames it received since its last direct one.
    const fast = sink.native ? this.fastFrames(conn) : 0;
    conn.seq += fast - conn.fastAtLastSend + 1;
    conn.fastAtLastSend = fast;
    const r = sink.send(conn.seq, conn.outbox);
    // A fresh array: an idle connection keeps no backing store from its last burst.
    conn.outbox = [];
    conn.outboxBytes = 0;
    if (r === SendStatus.DROPPED) {
      // Dropped by the transport: past the hard cap. The client's picture can
      // no longer be proven, so it must go (it will resume on reconnect).
      this.slowDisconnect(conn, 'buffered data passed the hard cap');
      return;
    }
    if (!conn.slow && sink.buffered() > this.opts.slowThresholdBytes) this.enterSlowLane(conn);
  }

  /** Leaves the fast path: what it misses from now on is owed as one catch-up per topic. */
  private enterSlowLane(conn: Conn): void {
    conn.slow = true;
    conn.slowSince = performance.now();
    this.stats.slowLaneEntries++;
    for (const ts of conn.topics.values()) {
      if (!ts.fast) continue;
      this.leaveFast(ts);
      this.markDirty(ts);
    }
  }

  /** The transport drained: a slow connection that is below half the threshold gets its catch-ups. */
  drain(conn: Conn): void {
    const sink = conn.sink;
    if (!conn.slow || conn.closed || !sink) return;
    if (sink.buffered() > this.opts.slowThresholdBytes / 2) return;
    conn.slow = false;
    if (conn.dirtySubs) for (const ts of [...conn.dirtySubs]) if (!ts.paused) this.catchUp(ts);
    for (const ts of conn.topics.values()) this.tryFast(ts);
  }

  private slowDisconnect(conn: Conn, why: string): void {
    if (conn.closed || !conn.sink) return;
    this.stats.slowDisconnects++;
    this.opts.log('warn', `closing connection ${conn.id} (${conn.remote}) as a slow consumer: ${why}`);
    conn.outbox.length = 0;
    conn.sink.end(CloseCode.SLOW_CONSUMER, 'slow consumer');
  }

  private sweepSlow(): void {
    const now = performance.now();
    this.checkFastBuffers();
    for (const conn of this.conns) {
      if (!conn.slow || !conn.sink) continue;
      if (conn.sink.buffered() > this.opts.hardCapBytes) this.slowDisconnect(conn, `over ${this.opts.hardCapBytes} bytes buffered`);
      else if (now - conn.slowSince > this.opts.slowTimeoutMs) this.slowDisconnect(conn, `behind for over ${this.opts.slowTimeoutMs} ms`);
      else this.drain(conn);
    }
  }

  /** Every connection gets the versions it was sent of its quiet topics. */
  private heartbeat(): void {
    const now = Date.now();
    const quietBefore = now - this.opts.heartbeatMs / 2;
    // Most connections have no quiet topic to report: they share one encoding.
    let empty: Uint8Array | null = null;
    for (const conn of this.conns) {
      if (conn.slow) continue;
      const versions: ResumePoint[] = [];
      for (const ts of conn.topics.values()) {
        if (ts.topic.ts > quietBefore || ts.paused) continue;
        const version = ts.fast ? ts.channel!.publishedVersion : ts.sentVersion;
        if (version < 0) continue;
        versions.push({ topic: ts.topic.name, epoch: ts.fast ? ts.topic.epoch : ts.sentEpoch, version });
        if (versions.length >= 1000) break;
      }
      this.queue(conn, versions.length ? this.enc.heartbeat(now, versions) : (empty ??= this.enc.heartbeat(now, [])));
    }
  }

  /** Going away: every client is told to reconnect elsewhere and resume. */
  shutdown(code: number = CloseCode.GOING_AWAY, reason = 'server shutting down'): void {
    clearInterval(this.sweepTimer);
    clearInterval(this.heartbeatTimer);
    if (this.ttlTimer) clearInterval(this.ttlTimer);
    for (const q of this.tiers.values()) if (q.timer) clearTimeout(q.timer);
    for (const conn of [...this.conns]) this.end(conn, code, reason);
  }
}
