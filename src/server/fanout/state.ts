// Fan-out's records: a connection (its sink, frame counters, slow-lane
// state), its subscriptions (one ClientSub per Subscribe message, one TopicSub
// per topic they cover) and the channels they share. Who the peer is and what
// it may do belongs to the transport's Session, not here.

import type { Topic, TopicPattern } from '../../engine/index.js';
import type { Changes } from '../../protocol/index.js';
import type { Sink } from '../sink.js';
import type { Form } from './wire.js';
import type { ChannelView, ViewReq } from './view-entry.js';

/**
 * A map that holds its first entry inline and makes a real Map only when a
 * second arrives: most connections hold one subscription of one topic, and
 * an empty Map costs more than the rest of their record. The subset of Map
 * that fan-out, the slow lane and STOMP use.
 */
export class SmallMap<K, V> {
  private k: K | undefined = undefined;
  private v: V | undefined = undefined;
  private m: Map<K, V> | null = null;
  size = 0;

  get(key: K): V | undefined {
    if (this.m) return this.m.get(key);
    return this.size === 1 && this.k === key ? this.v : undefined;
  }

  has(key: K): boolean {
    if (this.m) return this.m.has(key);
    return this.size === 1 && this.k === key;
  }

  set(key: K, value: V): this {
    if (this.m) {
      this.m.set(key, value);
      this.size = this.m.size;
    } else if (this.size === 0 || this.k === key) {
      this.k = key;
      this.v = value;
      this.size = 1;
    } else {
      this.m = new Map([[this.k as K, this.v as V], [key, value]]);
      this.k = this.v = undefined;
      this.size = 2;
    }
    return this;
  }

  delete(key: K): boolean {
    if (this.m) {
      const had = this.m.delete(key);
      this.size = this.m.size;
      return had;
    }
    if (this.size !== 1 || this.k !== key) return false;
    this.k = this.v = undefined;
    this.size = 0;
    return true;
  }

  clear(): void {
    this.m = null;
    this.k = this.v = undefined;
    this.size = 0;
  }

  values(): IterableIterator<V> {
    if (this.m) return this.m.values();
    return (this.size === 1 ? [this.v as V] : []).values();
  }

  keys(): IterableIterator<K> {
    if (this.m) return this.m.keys();
    return (this.size === 1 ? [this.k as K] : []).values();
  }

  entries(): IterableIterator<[K, V]> {
    if (this.m) return this.m.entries();
    return (this.size === 1 ? [[this.k as K, this.v as V] as [K, V]] : []).values();
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }

  /** Whether a real Map was made (tests check the common case stays inline). */
  get spilled(): boolean {
    return this.m !== null;
  }
}

/** One client subscription (one Subscribe message). */
export class ClientSub {
  paused = false;
  constructor(
    readonly conn: Conn,
    readonly id: number,
    readonly patterns: readonly TopicPattern[],
    readonly tier: Tier,
    readonly fields: ReadonlySet<string> | null,
    /** Protocol 2: deltas carry their publish time. */
    readonly timestamps = false,
    /** Keyed topics: the table views and checksums asked for (null: whole tables). */
    readonly views: ViewReq | null = null,
  ) {}
}

/** What one connection receives of one topic: the merge of its ClientSubs. */
export class TopicSub {
  /** The client subscriptions covering this topic (usually one: an array of exactly that length is lighter than a Set). */
  readonly sids: ClientSub[];
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
  /** Protocol 2: the client was told which topic this topic id names (a snapshot or catch-up bound it). */
  bound: boolean;
  constructor(
    readonly conn: Conn,
    readonly topic: Topic,
    first: ClientSub,
  ) {
    // A literal: its backing store holds one slot (push() onto [] reserves 17).
    this.sids = [first];
    this.bound = conn.protocol < 2;
  }
}

/** Per-connection fan-out state (held by a WebSocket's or an SSE stream's session). */
export class Conn {
  sink: Sink | null = null;
  closed = false;
  /** The wire protocol of its frames: 1 until a Hello asks for 2 (before any subscription). */
  protocol = 1;
  /** Its sink writes JSON (SSE, STOMP): keyed topics reach it in the keyed JSON form (wire.ts, Form.JSON). */
  json = false;
  /** Frames this connection was sent, as of its last direct frame. */
  seq = 0;
  /** Published frames received through channels it has since left. */
  retiredFrames = 0;
  /** fastFrames() when its last direct frame went out. */
  fastAtLastSend = 0;
  /** Its topic subscriptions on the fast path. */
  fastCount = 0;
  /** Its socket holds fast-path.ts's HOLD_TOPIC (it left its last channel and has not joined one since). */
  holding = false;
  /** Its client subscriptions by id (inline until a second one). */
  readonly subs = new SmallMap<number, ClientSub>();
  /** Its topic subscriptions by topic name (inline until a second one). */
  readonly topics = new SmallMap<string, TopicSub>();
  outbox: Uint8Array[] = [];
  outboxBytes = 0;
  queued = false;
  slow = false;
  slowSince = 0;
  /** Topic subscriptions owed a catch-up (allocated when first needed). */
  dirtySubs: Set<TopicSub> | null = null;
  /** Topics this connection published to (checked for "publisher gone" when it closes). */
  published: Set<string> | null = null;
  constructor(
    readonly id: number,
    readonly remote: string,
  ) {}
}

/** The fields one connection receives of a topic: the union of its subscriptions' subsets (null: all). */
export function effectiveFields(ts: TopicSub): ReadonlySet<string> | null {
  const union = new Set<string>();
  for (const cs of ts.sids) {
    if (!cs.fields) return null;
    for (const f of cs.fields) union.add(f);
  }
  return union;
}

/** Rate tier 0 is "every update"; others are updates per second. */
export type Tier = number;

/** All subscribers of one topic at one rate tier with one field subset; one uWS topic on the fast path. */
export class Channel {
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
  /**
   * Messages for the fast path, published at the end of this turn: the first
   * `queueLength` of `queue`. The array keeps its slots between turns (setting
   * an array's length to 0 gives its storage back, and the next push
   * allocates it again: once per channel per turn).
   */
  readonly queue: Uint8Array[] = [];
  queueLength = 0;
  queued = false;
  /** Frames published on the uWS topic so far. */
  frames = 0;
  /** The heartbeat walk that last owed this channel its shared heartbeat (liveness.ts). */
  beatWalk = 0;
  readonly uwsTopic: string;
  /** Clock time of its last flush (-Infinity: never, so the first goes out at once). */
  lastFlushAt = -Infinity;
  /** Waiting in its tier's queue for a flush. */
  due = false;
  /** Protocol 2: field ids from this one on were assigned since the stream's last message (they travel named). */
  namesFrom: number;
  /** Keyed topics: the view its subscribers asked for (part of its key; null: whole tables). */
  views: ViewReq | null = null;
  /** Keyed topics on protocol 2: its view entries and bindings (views.ts), made on first use. */
  keyed: ChannelView | null = null;
  constructor(
    readonly key: string,
    readonly topic: Topic,
    readonly tier: Tier,
    readonly fields: ReadonlySet<string> | null,
    /** The wire form its messages are encoded in (wire.ts). */
    readonly form: Form,
    id: number,
  ) {
    this.flushedVersion = this.publishedVersion = topic.version;
    this.namesFrom = topic.fieldIdsEnd;
    this.uwsTopic = `c${id}`;
  }

  /** Forgets changes merged for a flush (the stream continues from `version`). */
  resetPending(version: number): void {
    if (this.pending.size) this.pending.clear(); // reused: encoders never keep it
    this.pendingUpdates = 0;
    this.flushedVersion = version;
    this.namesFrom = this.topic.fieldIdsEnd;
  }
}
