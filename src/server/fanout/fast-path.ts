// The native fast path: every channel is a uWebSockets.js topic, and once per
// event-loop turn each channel with news publishes ONE frame holding all of
// it, so the per-subscriber loop runs in C++. Published frames carry sequence
// 0 ("count me"); this file counts, per connection, the frames it received,
// and keeps uWS from dropping a frame it counted (HOLD_TOPIC). Connections
// that follow the same set of channels may share one uWS topic instead
// (fast-groups.ts): one frame per set per turn, counted per group.

import { FrameWriter, FrameWriter2 } from '../../protocol/index.js';
import type { ServerStats } from '../stats.js';
import type { Channel, Conn, TopicSub } from './state.js';
import { Form } from './wire.js';
import { STAGED, Stage } from './stage.js';
import { Groups, type Group, type Membership } from './fast-groups.js';

/**
 * A uWS topic nothing is ever published to. A socket that leaves its last
 * channel joins it first: uWebSockets.js (20.30) frees a socket's subscriber
 * when it unsubscribes from its last topic, and with it every frame published
 * to the socket but not yet drained into it (drains happen at the end of the
 * loop iteration, or before a direct send) — frames already counted in its
 * sequence. Held until the socket joins a channel again.
 */
export const HOLD_TOPIC = 'hold';

/** Regroup passes are at least this far apart: a changed connection is filed after the next one if its set held still until then. */
export const REGROUP_MS = 100;

/** Settled connections filed per turn at most (≈ 3 µs each: a storm's 10,000 clients are filed over several turns). */
const FILE_PER_TURN = 512;

/** What a sent slot of a channel's queue holds (one shared empty message, not the sent bytes). */
const SENT = new Uint8Array(0);

/** A channel's staged offsets this turn: the first `n` of `at` (kept between turns: `length = 0` would give its storage back). */
class StagedList {
  readonly at: number[] = [];
  n = 0;
}

export type Broadcast = (uwsTopic: string, frame: Uint8Array) => void;

/** Builds a channel's shared heartbeat at the version its stream reaches in this turn's frame. */
export type ChannelHeartbeat = (ch: Channel, version: number) => Uint8Array;

export class FastPath {
  private broadcast: Broadcast | null = null;
  private readonly writer = new FrameWriter();
  private readonly writer2 = new FrameWriter2();
  /** This turn's staged protocol-2 deltas (stage.ts), and each channel's offsets there in queue order. */
  readonly stage = new Stage();
  private readonly stagedOf = new WeakMap<Channel, StagedList>();
  private stagedAny = false;
  private dirty: Channel[] = [];
  /** The other of two arrays `dirty` alternates with (no new array per turn). */
  private spare: Channel[] = [];
  /** Connections with at least one subscription on the fast path (a count: the slow lane looks at them among all connections). */
  connCount = 0;
  /** Channels owed one shared heartbeat in this turn's frame (built at publish, when its version is final). */
  private readonly owed: Channel[] = [];
  private readonly owedSet = new Set<Channel>();
  private heartbeatOf: ChannelHeartbeat | null = null;
  /** Subscribers holding what this turn's frame of their channel brings: they join once it is published. */
  private readonly waiting = new Set<TopicSub>();
  /** Messages every subscriber present when they were queued must get (stale flags), per channel, this turn. */
  private readonly sticky = new Map<Channel, Uint8Array[]>();
  /** A subscriber left a channel before this turn's frame: the sticky messages it would miss. */
  onMissed: ((conn: Conn, msg: Uint8Array) => void) | null = null;
  /** Channel sets shared by connections, one uWS topic each. */
  readonly groups: Groups;
  /** Connections whose set of fast-path channels changed since the last regroup pass. */
  private readonly changed = new Set<Conn>();
  /** Connections whose set has not changed for a whole pass: filed under it, at most FILE_PER_TURN a turn. */
  private readonly settled = new Set<Conn>();
  private lastPass = -Infinity;
  /** Groups with news this turn, and the parts of one group's frame (reused). */
  private readonly groupsDirty: Group[] = [];
  private readonly parts: Uint8Array[] = [];
  private readonly partsStaged: number[] = [];

  constructor(
    private readonly stats: ServerStats,
    /** Something was queued: a flush must run later in this turn. */
    private readonly schedule: () => void,
    /** Connections that share a set of channels before it gets its own uWS topic (0: never). */
    groupMinConnections: number,
    /** Milliseconds (a Clock's now()): when regroup passes are due. */
    private readonly now: () => number,
  ) {
    this.groups = new Groups(groupMinConnections);
  }

  /** Enables the fast path: `publish` is the uWS app's topic publish. */
  setBroadcaster(publish: Broadcast): void {
    this.broadcast = publish;
  }

  /**
   * Puts a subscriber on its channel's native stream when it holds exactly
   * what that stream continues from: the version the channel has published
   * (this turn's frame, if any, starts there), so that the next message it
   * gets of the topic is based at the version it holds — never one it holds
   * already (a wire duplicate), never one past it. A subscriber holding a
   * version this turn's frame brings (a catch-up or snapshot taken while
   * updates were queued) is served directly until the frame has gone out, and
   * joins right after it (`waiting`, in `publish`). So does everyone while a
   * channel with nobody on its stream still holds a queue (its last
   * subscriber left during the turn: the queue continues from no one).
   */
  join(ts: TopicSub): void {
    const ch = ts.channel;
    const conn = ts.conn;
    const native = conn.sink?.native;
    if (ts.fast || !ch || !native || !this.broadcast || conn.slow || ts.paused || ts.dirty || conn.closed || !ts.bound) return;
    if (ts.sentEpoch !== ch.topic.epoch) return;
    const v = ts.sentVersion;
    if (v !== ch.publishedVersion || (ch.fast === 0 && ch.queueLength > 0)) {
      if (ch.queued && v >= ch.publishedVersion) this.waiting.add(ts);
      return;
    }
    const m = this.groups.membership(conn);
    if (m) this.ungroup(conn, m);
    native.subscribe(ch.uwsTopic);
    ch.topicSubs++;
    if (conn.holding) {
      // A channel keeps its subscriber now: leaving the hold topic frees nothing.
      native.unsubscribe(HOLD_TOPIC);
      conn.holding = false;
    }
    ts.fast = true;
    ts.frameBase = ch.frames;
    ch.fast++;
    if (conn.fastCount++ === 0) this.connCount++;
    ch.outside.delete(ts);
    this.setChanged(conn);
  }

  /**
   * Takes a subscriber off the native stream; its sent version becomes what
   * the channel has published (queued messages will not reach it, published
   * ones will, and are counted). Off its last channel, the socket holds
   * HOLD_TOPIC so that uWS keeps the frames published to it but not yet drained.
   */
  leave(ts: TopicSub): void {
    if (!ts.fast) return;
    const ch = ts.channel!;
    const m = this.groups.membership(ts.conn);
    if (m) this.ungroup(ts.conn, m);
    ts.fast = false;
    ch.fast--;
    ch.topicSubs--;
    if (--ts.conn.fastCount === 0) this.connCount--;
    ch.outside.add(ts);
    ts.conn.retiredFrames += ch.frames - ts.frameBase;
    if (this.sticky.size) {
      const missed = this.sticky.get(ch);
      if (missed && this.onMissed) for (const m of missed) this.onMissed(ts.conn, m);
    }
    ts.sentEpoch = ch.topic.epoch;
    ts.sentVersion = Math.max(ts.sentVersion, ch.publishedVersion); // its stream brought it what was published
    this.setChanged(ts.conn);
    const native = ts.conn.closed ? undefined : ts.conn.sink?.native;
    if (!native) return;
    if (ts.conn.fastCount === 0 && !ts.conn.holding) {
      native.subscribe(HOLD_TOPIC);
      ts.conn.holding = true;
    }
    native.unsubscribe(ch.uwsTopic);
  }

  /**
   * A connection's set of fast-path channels changed: it is filed under the
   * new one after the next regroup pass if the set holds still until then (a
   * reconnecting client joins its channels one by one over a few turns:
   * filing every intermediate set made a 10,000-client storm slower).
   */
  private setChanged(conn: Conn): void {
    if (this.groups.minMembers === 0) return;
    this.groups.forget(conn);
    this.settled.delete(conn);
    if (conn.fastCount >= 2) this.changed.add(conn);
    else this.changed.delete(conn);
  }

  /** After a turn's publish: files settled connections (a bounded number); every REGROUP_MS the changed ones become settled. */
  private regroup(): void {
    if (this.settled.size) this.fileSettled();
    if (this.changed.size === 0) return;
    const now = this.now();
    if (now - this.lastPass < REGROUP_MS) return;
    this.lastPass = now;
    for (const conn of this.changed) this.settled.add(conn);
    this.changed.clear();
  }

  /**
   * Out of its group, back on each of its channels' own uWS topics (subscribed
   * before the group's is left: the socket is never without a topic, so uWS
   * keeps what it queued for it). It has the group's frames so far; from now
   * on it counts its channels'.
   */
  private ungroup(conn: Conn, m: Membership): void {
    const native = conn.closed ? undefined : conn.sink?.native;
    for (const ts of conn.topics.values()) {
      if (!ts.fast) continue;
      const ch = ts.channel!;
      ts.frameBase = ch.frames;
      ch.topicSubs++;
      native?.subscribe(ch.uwsTopic);
    }
    conn.retiredFrames += m.group.frames - m.base;
    this.groups.forget(conn);
    this.stats.sharedSets = this.groups.count;
    native?.unsubscribe(m.group.uwsTopic);
  }

  /** Into a group, off its channels' own topics (subscribed to the group's first); it counts the group's frames from now. */
  private enterGroup(conn: Conn, g: Group): void {
    const native = conn.sink!.native!;
    native.subscribe(g.uwsTopic);
    for (const ts of conn.topics.values()) {
      if (!ts.fast) continue;
      const ch = ts.channel!;
      conn.retiredFrames += ch.frames - ts.frameBase;
      ch.topicSubs--;
      native.unsubscribe(ch.uwsTopic);
    }
    this.groups.enter(conn, g);
  }

  /** Files settled connections; one that completes a set's quorum, or finds its group, joins it with the others waiting. */
  private fileSettled(): void {
    const joining: Conn[] = [];
    let budget = FILE_PER_TURN;
    for (const conn of this.settled) {
      if (budget-- === 0) break;
      this.settled.delete(conn);
      if (conn.closed || conn.slow || conn.fastCount < 2 || !conn.sink?.native || this.groups.membership(conn)) continue;
      const chans: Channel[] = [];
      for (const ts of conn.topics.values()) if (ts.fast) chans.push(ts.channel!);
      chans.sort((a, b) => a.id - b.id);
      const g = this.groups.file(conn, chans, joining);
      if (!g) continue;
      this.enterGroup(conn, g);
      for (const c of joining) this.enterGroup(c, g);
      joining.length = 0;
    }
    this.stats.sharedSets = this.groups.count;
  }

  /** Published frames a connection has received (through channels it is in or has left). */
  frames(conn: Conn): number {
    let n = conn.retiredFrames;
    if (conn.fastCount === 0) return n;
    const m = this.groups.membership(conn);
    if (m) return n + m.group.frames - m.base;
    for (const ts of conn.topics.values()) if (ts.fast) n += ts.channel!.frames - ts.frameBase;
    return n;
  }

  /** Queues one shared message for the channel's native stream. */
  queue(ch: Channel, buf: Uint8Array): void {
    ch.queue[ch.queueLength++] = buf;
    if (!ch.queued) {
      ch.queued = true;
      this.dirty.push(ch);
      this.schedule();
    }
  }

  /**
   * Whether the channel's next stream delta may be encoded into the stage:
   * protocol 2, on the native stream, and nobody outside it (who would keep
   * the message past this turn).
   */
  canStage(ch: Channel): boolean {
    return ch.fast > 0 && ch.outside.size === 0 && this.broadcast !== null && (ch.form === Form.P2 || ch.form === Form.P2_TS);
  }

  /**
   * The message just encoded into the stage at `at` for `ch` (see canStage):
   * returns what to queue for it (STAGED, found by its offset at publish).
   * Queue it on `ch` before its next staged message.
   */
  staged(ch: Channel, at: number): Uint8Array {
    let list = this.stagedOf.get(ch);
    if (!list) this.stagedOf.set(ch, (list = new StagedList()));
    list.at[list.n++] = at;
    this.stagedAny = true;
    return STAGED;
  }

  /**
   * Queues a message that is part of the topic's flags (stale, ok) for the
   * channel's stream: a subscriber that leaves the stream before this turn's
   * frame goes out is handed it directly (onMissed) instead of losing it.
   */
  queueSticky(ch: Channel, msg: Uint8Array): void {
    let list = this.sticky.get(ch);
    if (!list) this.sticky.set(ch, (list = []));
    list.push(msg);
    this.queue(ch, msg);
  }

  /**
   * Owes the channel's fast-path subscribers one shared heartbeat in this
   * turn's frame; `build` encodes it at the version the stream has reached
   * once every update of the turn is in (what each of them then holds).
   */
  owe(ch: Channel, build: ChannelHeartbeat): void {
    if (ch.fast === 0 || !this.broadcast || this.owedSet.has(ch)) return;
    this.heartbeatOf = build;
    this.owedSet.add(ch);
    this.owed.push(ch);
    this.schedule();
  }

  /** One native publish per channel with news: all of its queued messages in one frame. Returns the bytes published. */
  publish(): number {
    let published = 0;
    if (this.owed.length) this.addHeartbeats();
    if (this.sticky.size) this.sticky.clear();
    const chans = this.dirty;
    this.dirty = this.spare;
    for (const ch of chans) {
      ch.queued = false;
      const n = ch.queueLength;
      if (n === 0 || ch.fast === 0 || !this.broadcast) continue;
      if (ch.topicSubs > 0) {
        const staged = this.stagedAny ? this.stagedOf.get(ch) : undefined;
        const frame =
          ch.form === Form.P1 ? this.writer.write(0, ch.queue, n) : staged?.n ? this.stage.frame2(0, ch.queue, n, staged.at) : this.writer2.write(0, ch.queue, n);
        this.broadcast(ch.uwsTopic, frame);
        published += frame.byteLength;
        ch.frames++;
        this.stats.frames++;
        this.stats.bytesOut += frame.byteLength * ch.topicSubs;
      }
      this.stats.deliveries += (n - (this.owedSet.size && this.owedSet.has(ch) ? 1 : 0)) * ch.fast;
      const groups = this.groups.of(ch);
      if (groups) {
        for (const g of groups) {
          if (g.queued) continue;
          g.queued = true;
          this.groupsDirty.push(g);
        }
      }
    }
    if (this.groupsDirty.length) published += this.publishGroups();
    for (const ch of chans) {
      const n = ch.queueLength;
      if (n === 0) continue;
      // Drop the references, keep the slots.
      for (let i = 0; i < n; i++) ch.queue[i] = SENT;
      ch.queueLength = 0;
      if (this.stagedAny) {
        const staged = this.stagedOf.get(ch);
        if (staged) staged.n = 0;
      }
      ch.publishedVersion = ch.flushedVersion;
    }
    chans.length = 0;
    this.spare = chans;
    // Every staged message went out (or was dropped with its channel's stream) above.
    if (this.stagedAny) {
      this.stagedAny = false;
      this.stage.reset();
    }
    if (this.owedSet.size) this.owedSet.clear();
    if (this.waiting.size) {
      const joining = [...this.waiting];
      this.waiting.clear();
      for (const ts of joining) this.join(ts);
    }
    if (this.changed.size || this.settled.size) this.regroup();
    return published;
  }

  /** One native publish per group with news: its channels' queued messages, channel by channel, in one frame. Returns the bytes published. */
  private publishGroups(): number {
    let published = 0;
    const parts = this.parts;
    const at = this.partsStaged;
    for (const g of this.groupsDirty) {
      g.queued = false;
      let count = 0;
      let staged = 0;
      for (const ch of g.chans) {
        const n = ch.queueLength;
        if (n === 0) continue;
        for (let i = 0; i < n; i++) parts[count++] = ch.queue[i]!;
        const list = this.stagedAny ? this.stagedOf.get(ch) : undefined;
        if (list) for (let i = 0; i < list.n; i++) at[staged++] = list.at[i]!;
      }
      const frame = g.chans[0]!.form === Form.P1 ? this.writer.write(0, parts, count) : staged ? this.stage.frame2(0, parts, count, at) : this.writer2.write(0, parts, count);
      this.broadcast!(g.uwsTopic, frame);
      published += frame.byteLength;
      g.frames++;
      this.stats.frames++;
      this.stats.bytesOut += frame.byteLength * g.members;
      for (let i = 0; i < count; i++) parts[i] = SENT;
    }
    this.groupsDirty.length = 0;
    return published;
  }

  /** Each owed channel's heartbeat goes last in its frame, at the version the frame brings its subscribers to. */
  private addHeartbeats(): void {
    const build = this.heartbeatOf!;
    for (const ch of this.owed) {
      if (ch.fast === 0) {
        this.owedSet.delete(ch);
        continue;
      }
      ch.queue[ch.queueLength++] = build(ch, ch.flushedVersion);
      if (!ch.queued) {
        ch.queued = true;
        this.dirty.push(ch);
      }
    }
    this.owed.length = 0;
  }
}
