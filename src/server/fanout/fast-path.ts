// The native fast path: every channel is a uWebSockets.js topic, and once per
// event-loop turn each channel with news publishes ONE frame holding all of
// it, so the per-subscriber loop runs in C++. Published frames carry sequence
// 0 ("count me"); this file counts, per connection, the frames it received,
// and keeps uWS from dropping a frame it counted (HOLD_TOPIC).

import { FrameWriter, FrameWriter2 } from '../../protocol/index.js';
import type { ServerStats } from '../stats.js';
import type { Channel, Conn, TopicSub } from './state.js';
import { Form } from './wire.js';
import { STAGED, Stage } from './stage.js';

/**
 * A uWS topic nothing is ever published to. A socket that leaves its last
 * channel joins it first: uWebSockets.js (20.30) frees a socket's subscriber
 * when it unsubscribes from its last topic, and with it every frame published
 * to the socket but not yet drained into it (drains happen at the end of the
 * loop iteration, or before a direct send) — frames already counted in its
 * sequence. Held until the socket joins a channel again.
 */
export const HOLD_TOPIC = 'hold';

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

  constructor(
    private readonly stats: ServerStats,
    /** Something was queued: a flush must run later in this turn. */
    private readonly schedule: () => void,
  ) {}

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
    native.subscribe(ch.uwsTopic);
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
    ts.fast = false;
    ch.fast--;
    if (--ts.conn.fastCount === 0) this.connCount--;
    ch.outside.add(ts);
    ts.conn.retiredFrames += ch.frames - ts.frameBase;
    if (this.sticky.size) {
      const missed = this.sticky.get(ch);
      if (missed && this.onMissed) for (const m of missed) this.onMissed(ts.conn, m);
    }
    ts.sentEpoch = ch.topic.epoch;
    ts.sentVersion = Math.max(ts.sentVersion, ch.publishedVersion); // its stream brought it what was published
    const native = ts.conn.closed ? undefined : ts.conn.sink?.native;
    if (!native) return;
    if (ts.conn.fastCount === 0 && !ts.conn.holding) {
      native.subscribe(HOLD_TOPIC);
      ts.conn.holding = true;
    }
    native.unsubscribe(ch.uwsTopic);
  }

  /** Published frames a connection has received (through channels it is in or has left). */
  frames(conn: Conn): number {
    let n = conn.retiredFrames;
    if (conn.fastCount === 0) return n;
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
      if (n === 0) continue;
      const staged = this.stagedAny ? this.stagedOf.get(ch) : undefined;
      if (ch.fast > 0 && this.broadcast) {
        const frame =
          ch.form === Form.P1 ? this.writer.write(0, ch.queue, n) : staged?.n ? this.stage.frame2(0, ch.queue, n, staged.at) : this.writer2.write(0, ch.queue, n);
        this.broadcast(ch.uwsTopic, frame);
        published += frame.byteLength;
        ch.frames++;
        this.stats.frames++;
        this.stats.deliveries += (n - (this.owedSet.size && this.owedSet.has(ch) ? 1 : 0)) * ch.fast;
        this.stats.bytesOut += frame.byteLength * ch.fast;
      }
      // Drop the references, keep the slots.
      for (let i = 0; i < n; i++) ch.queue[i] = SENT;
      ch.queueLength = 0;
      if (staged) staged.n = 0;
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
