// Fan-out's records: a connection (its sink, frame counters, slow-lane
// state), its subscriptions (one ClientSub per Subscribe message, one TopicSub
// per topic they cover) and the channels they share. Who the peer is and what
// it may do belongs to the transport's Session, not here.

import type { Topic, TopicPattern } from '../../engine/index.js';
import type { Changes } from '../../protocol/index.js';
import type { Form } from './wire.js';
import type { ChannelView, ViewReq } from './view-entry.js';
import { ConnState } from './conn-state.js';
import { LinkList } from './link-list.js';
import { noRecords, heldDelete, heldSet, type Held, type RecordMap } from './record-map.js';

export type { RecordMap } from './record-map.js';

const subId = (cs: ClientSub): number => cs.id;
const topicName = (ts: TopicSub): string => ts.topic.name;

/** ClientSub flags. */
const CS_PAUSED = 1;
const CS_TIMESTAMPS = 2;
const CS_COUNTED = 4;

/** One client subscription (one Subscribe message); as a map, the one-entry map of itself by id. */
export class ClientSub implements RecordMap<number, ClientSub> {
  /** paused, timestamps, counted (booleans in one field: one slot per record). */
  private bits: number;
  /** Its rate tier, field subset and table views, when it asked for any (most ask for none). */
  private readonly extra: { tier: Tier; fields: ReadonlySet<string> | null; views: ViewReq | null } | null;
  constructor(
    readonly conn: Conn,
    readonly id: number,
    readonly patterns: readonly TopicPattern[],
    tier: Tier,
    fields: ReadonlySet<string> | null,
    /** Protocol 2: deltas carry their publish time. */
    timestamps = false,
    /** Keyed topics: the table views and checksums asked for (null: whole tables). */
    views: ViewReq | null = null,
  ) {
    this.bits = timestamps ? CS_TIMESTAMPS : 0;
    this.extra = tier !== 0 || fields || views ? { tier, fields, views } : null;
  }

  /** Its rate tier (0: every update). */
  get tier(): Tier {
    return this.extra ? this.extra.tier : 0;
  }

  /** The fields it asked for (null: all). */
  get fields(): ReadonlySet<string> | null {
    return this.extra ? this.extra.fields : null;
  }

  /** Keyed topics: the table views and checksums asked for (null: whole tables). */
  get views(): ViewReq | null {
    return this.extra ? this.extra.views : null;
  }

  get paused(): boolean {
    return (this.bits & CS_PAUSED) !== 0;
  }
  set paused(v: boolean) {
    this.bits = v ? this.bits | CS_PAUSED : this.bits & ~CS_PAUSED;
  }

  /** Protocol 2: deltas carry their publish time. */
  get timestamps(): boolean {
    return (this.bits & CS_TIMESTAMPS) !== 0;
  }

  /** Counted by interest.ts (for its first-subscriber / last-subscriber hooks). */
  get counted(): boolean {
    return (this.bits & CS_COUNTED) !== 0;
  }
  set counted(v: boolean) {
    this.bits = v ? this.bits | CS_COUNTED : this.bits & ~CS_COUNTED;
  }

  // The one-entry map of itself (Conn.subs while it is the connection's only subscription).
  get size(): number {
    return 1;
  }
  get(id: number): ClientSub | undefined {
    return id === this.id ? this : undefined;
  }
  has(id: number): boolean {
    return id === this.id;
  }
  values(): IterableIterator<ClientSub> {
    return [this as ClientSub].values();
  }
  keys(): IterableIterator<number> {
    return [this.id].values();
  }
  entries(): IterableIterator<[number, ClientSub]> {
    return [[this.id, this as ClientSub] as [number, ClientSub]].values();
  }
  [Symbol.iterator](): IterableIterator<[number, ClientSub]> {
    return this.entries();
  }
}

/** Epochs (microseconds, below 2^53) split at 2^26: both halves stay small integers. */
const EPOCH_SPLIT = 2 ** 26;
/** Past every epoch (2^57): a claimed epoch at or above it, or not whole, is held as 2^57 - 1. */
const EPOCH_LIMIT = 2 ** 57;

/** TopicSub flags. */
const TS_PAUSED = 1;
const TS_DIRTY = 2;
const TS_FAST = 4;
const TS_BOUND = 8;
const TS_FLAG_BITS = 4;
const TS_FLAGS = (1 << TS_FLAG_BITS) - 1;

/** What one connection receives of one topic: the merge of its ClientSubs; as a map, the one-entry map of itself by topic name. */
export class TopicSub implements RecordMap<string, TopicSub> {
  /**
   * The client subscriptions covering this topic: usually one, held as is
   * (an array only for two or more).
   */
  sids: ClientSub | ClientSub[];
  /** Its channel, or its topic while it has none (one slot for both: a channel's topic is its subscribers'). */
  private at: Channel | Topic;
  /** Its neighbours in its channel's list of subscribers (Channel.subs). */
  prevLink: TopicSub | null = null;
  nextLink: TopicSub | null = null;
  /** sentEpoch's high half (its low half shares `bits`): a double field would hold a heap number per record. */
  private epochHi = 0;
  sentVersion = -1;
  /** The channel's frame count when this subscriber joined its uWS topic. */
  frameBase = 0;
  /** paused, dirty, fast, bound in the low 4 bits; sentEpoch's low 26 bits above them. */
  private bits: number;
  constructor(topic: Topic, first: ClientSub) {
    this.sids = first;
    this.at = topic;
    this.bits = first.conn.protocol < 2 ? TS_BOUND : 0;
  }

  /** The topic it receives. */
  get topic(): Topic {
    const at = this.at;
    return at instanceof Channel ? at.topic : at;
  }

  /** The channel it receives the topic through (null: none, while it is being set up or taken down). */
  get channel(): Channel | null {
    const at = this.at;
    return at instanceof Channel ? at : null;
  }
  set channel(ch: Channel | null) {
    this.at = ch ?? this.topic;
  }

  /** Its connection (its client subscriptions'). */
  get conn(): Conn {
    const s = this.sids;
    return (Array.isArray(s) ? s[0]! : s).conn;
  }

  /** The epoch of the (epoch, version) this connection was last sent (or told it holds); 0: none. */
  get sentEpoch(): number {
    return this.epochHi * EPOCH_SPLIT + (this.bits >>> TS_FLAG_BITS);
  }
  set sentEpoch(v: number) {
    // `| 0` keeps both halves small integers: a double stored even once would
    // turn the field into a heap number for every record.
    let hi: number;
    let lo: number;
    if (Number.isInteger(v) && v >= 0 && v < EPOCH_LIMIT) {
      hi = Math.floor(v / EPOCH_SPLIT) | 0;
      lo = (v - hi * EPOCH_SPLIT) | 0;
    } else {
      // Not an epoch (they are whole microseconds below 2^53): one that matches none.
      hi = (EPOCH_LIMIT / EPOCH_SPLIT - 1) | 0;
      lo = (EPOCH_SPLIT - 1) | 0;
    }
    this.epochHi = hi;
    this.bits = (this.bits & TS_FLAGS) | (lo << TS_FLAG_BITS);
  }

  get paused(): boolean {
    return (this.bits & TS_PAUSED) !== 0;
  }
  set paused(v: boolean) {
    this.bits = v ? this.bits | TS_PAUSED : this.bits & ~TS_PAUSED;
  }

  /** Updates were withheld (slow lane or paused): owes one catch-up. */
  get dirty(): boolean {
    return (this.bits & TS_DIRTY) !== 0;
  }
  set dirty(v: boolean) {
    this.bits = v ? this.bits | TS_DIRTY : this.bits & ~TS_DIRTY;
  }

  /** On the native fast path: subscribed to its channel's uWS topic. */
  get fast(): boolean {
    return (this.bits & TS_FAST) !== 0;
  }
  set fast(v: boolean) {
    this.bits = v ? this.bits | TS_FAST : this.bits & ~TS_FAST;
  }

  /** Protocol 2: the client was told which topic this topic id names (a snapshot or catch-up bound it). */
  get bound(): boolean {
    return (this.bits & TS_BOUND) !== 0;
  }
  set bound(v: boolean) {
    this.bits = v ? this.bits | TS_BOUND : this.bits & ~TS_BOUND;
  }

  /** Adds a client subscription to those covering this topic (once). */
  addSid(cs: ClientSub): void {
    const s = this.sids;
    if (s === cs) return;
    if (!Array.isArray(s)) this.sids = [s, cs];
    else if (!s.includes(cs)) s.push(cs);
  }

  /** Removes one; false when it did not cover this topic. The last one stays (the caller drops the record). */
  removeSid(cs: ClientSub): boolean {
    const s = this.sids;
    if (!Array.isArray(s)) return s === cs;
    const at = s.indexOf(cs);
    if (at < 0) return false;
    s.splice(at, 1);
    if (s.length === 1) this.sids = s[0]!;
    return true;
  }

  /** Whether `cs` covers this topic. */
  hasSid(cs: ClientSub): boolean {
    const s = this.sids;
    return Array.isArray(s) ? s.includes(cs) : s === cs;
  }

  /** The first client subscription covering this topic. */
  get firstSid(): ClientSub {
    const s = this.sids;
    return Array.isArray(s) ? s[0]! : s;
  }

  // The one-entry map of itself (Conn.topics while it is the connection's only topic).
  get size(): number {
    return 1;
  }
  get(name: string): TopicSub | undefined {
    return name === this.topic.name ? this : undefined;
  }
  has(name: string): boolean {
    return name === this.topic.name;
  }
  values(): IterableIterator<TopicSub> {
    return [this as TopicSub].values();
  }
  keys(): IterableIterator<string> {
    return [this.topic.name].values();
  }
  entries(): IterableIterator<[string, TopicSub]> {
    return [[this.topic.name, this as TopicSub] as [string, TopicSub]].values();
  }
  [Symbol.iterator](): IterableIterator<[string, TopicSub]> {
    return this.entries();
  }
}

/**
 * Per-connection fan-out state (held by a WebSocket's or an SSE stream's
 * session): its counters, flags, outbox and rare fields (ConnState), and its
 * subscriptions and topics, which are the records themselves while there is
 * one of each (RecordMap): an idle connection with one subscription of one
 * topic is this record, one ClientSub and one TopicSub.
 */
export class Conn extends ConnState<TopicSub> {
  /**
   * Its subscriptions and topics in one slot: null (none), a ClientSub (its
   * one subscription, no topic yet), a TopicSub (one subscription covering
   * its one topic: the TopicSub's sids), or ConnRecords for anything else.
   */
  private recs: ClientSub | TopicSub | ConnRecords | null = null;
  constructor(
    readonly id: number,
    readonly remote: string,
  ) {
    super();
  }

  private get subsHeld(): Held<number, ClientSub> {
    const r = this.recs;
    if (r instanceof TopicSub) return r.sids as ClientSub;
    return r instanceof ConnRecords ? r.subs : r;
  }

  private get topicsHeld(): Held<string, TopicSub> {
    const r = this.recs;
    if (r instanceof TopicSub) return r;
    return r instanceof ConnRecords ? r.topics : null;
  }

  /** Holds subscriptions and topics in the smallest form that says them. */
  private hold(subs: Held<number, ClientSub>, topics: Held<string, TopicSub>): void {
    const r = this.recs;
    if (topics === null && !(subs instanceof Map)) this.recs = subs;
    else if (topics instanceof TopicSub && subs instanceof ClientSub && topics.sids === subs) this.recs = topics;
    else if (r instanceof ConnRecords) {
      r.subs = subs;
      r.topics = topics;
    } else this.recs = new ConnRecords(subs, topics);
  }

  /** Its client subscriptions by id. */
  get subs(): RecordMap<number, ClientSub> {
    return this.subsHeld ?? noRecords();
  }
  setSub(cs: ClientSub): void {
    this.hold(heldSet(this.subsHeld, cs.id, cs, subId), this.topicsHeld);
  }
  deleteSub(id: number): void {
    this.hold(heldDelete(this.subsHeld, id, subId), this.topicsHeld);
  }

  /** Its topic subscriptions by topic name. */
  get topics(): RecordMap<string, TopicSub> {
    return this.topicsHeld ?? noRecords();
  }
  setTopic(ts: TopicSub): void {
    this.hold(this.subsHeld, heldSet(this.topicsHeld, ts.topic.name, ts, topicName));
  }
  deleteTopic(name: string): void {
    this.hold(this.subsHeld, heldDelete(this.topicsHeld, name, topicName));
  }

  /** A topic subscription lost a ClientSub: back to the one-slot form when that now applies. */
  compact(): void {
    if (this.recs instanceof ConnRecords) this.hold(this.subsHeld, this.topicsHeld);
  }

  /** Forgets every subscription (the connection closed). */
  clearSubs(): void {
    this.recs = null;
  }

  /** Whether its subscriptions and topics are held in more than one record of their own (tests check the common case is not). */
  get spilled(): boolean {
    return this.recs instanceof ConnRecords;
  }
}

/** A connection's subscriptions and topics when they are not one ClientSub covering one TopicSub (Conn.recs). */
class ConnRecords {
  constructor(
    public subs: Held<number, ClientSub>,
    public topics: Held<string, TopicSub>,
  ) {}
}

/** The fields one connection receives of a topic: the union of its subscriptions' subsets (null: all). */
export function effectiveFields(ts: TopicSub): ReadonlySet<string> | null {
  const s = ts.sids;
  if (!Array.isArray(s)) return s.fields;
  const union = new Set<string>();
  for (const cs of s) {
    if (!cs.fields) return null;
    for (const f of cs.fields) union.add(f);
  }
  return union;
}

/** Rate tier 0 is "every update"; others are updates per second. */
export type Tier = number;

/** All subscribers of one topic at one rate tier with one field subset; one uWS topic on the fast path. */
export class Channel {
  /** Its subscribers (a list through them: no Set entry per subscriber). */
  readonly subs = new LinkList<TopicSub>();
  /** Subscribers not on the fast path (served one by one). */
  readonly outside = new Set<TopicSub>();
  /** Subscribers on the fast path. */
  fast = 0;
  /** Those of them on its own uWS topic (the others get its messages through a group's: fast-groups.ts). */
  topicSubs = 0;
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
    /** Unique among channels (its uWS topic is `c<id>`). */
    readonly id: number,
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
