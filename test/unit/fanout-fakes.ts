// Fan-out without sockets or real time: a deterministic clock (timers by due
// time, intervals, a defer queue), sinks that decode every frame and check it as
// a careful client would — in protocol 1, or in protocol 2 once the Welcome
// announcing it arrived (topic ids and field dictionaries through a
// Protocol2Reader, as the SDK does) — and uWS's topic publish. `rig()` wires
// them to a real Fanout. The uWS stand-in is in fanout-fake-uws.ts.

import { TopicStore, type Accepted, type EngineLimits } from '../../src/engine/index.js';
import {
  FrameWriter,
  FrameWriter2,
  Protocol2Reader,
  ServerFrameReader,
  decodeServerFrame,
  decodeServerFrame2,
  sameValue,
  type AnyMessage,
  type Changes,
  type Delta2Msg,
  type Snapshot2Msg,
  type Unresolved,
  type FieldValue,
  type ResumePoint,
  type ServerMessage,
  type State,
} from '../../src/protocol/index.js';
import { Conn, Fanout, type Clock, type FanoutOptions, type TimerHandle } from '../../src/server/fanout/index.js';
import { SendStatus, type NativeTopics, type Sink } from '../../src/server/sink.js';
import { ServerStats } from '../../src/server/stats.js';
import { FakeUws } from './fanout-fake-uws.js';

// ------------------------------------------------------------------ clock

interface Timer {
  readonly id: number;
  due: number;
  /** Creation order: timers due at the same instant run in the order they were set. */
  order: number;
  readonly fn: () => void;
  /** Repeat period for intervals, null for one-shot timers. */
  readonly every: number | null;
  active: boolean;
}

/**
 * A clock that moves only when told. `advance(ms)` first runs the work
 * deferred so far (the rest of the current turn), then, in due order, every
 * timer that falls due (the clock reads the timer's due time while it runs),
 * each group of timers due at one instant followed by the deferred work it
 * caused, like Node's timers phase followed by its check (setImmediate)
 * phase. Unlike Node, a 0 ms timeout is not clamped to 1 ms: it runs on the
 * next turn (`runTurn()`), so a timer meant to fire "at once" is told apart
 * from one that waits.
 */
export class FakeClock implements Clock {
  private mono: number;
  private readonly wall0: number;
  private timers: Timer[] = [];
  private deferred: (() => void)[] = [];
  private nextId = 1;
  private order = 0;

  constructor(start = 1_000, wallStart = Date.UTC(2025, 0, 2, 9, 30)) {
    this.mono = start;
    this.wall0 = wallStart - start;
  }

  now(): number {
    return this.mono;
  }

  wallNow(): number {
    return this.wall0 + this.mono;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.add(fn, Math.max(0, ms || 0), null);
  }

  setInterval(fn: () => void, ms: number): TimerHandle {
    const every = Math.max(1, ms || 0);
    return this.add(fn, every, every);
  }

  clearTimeout(handle: TimerHandle): void {
    const t = handle as Timer | null | undefined;
    if (t && typeof t === 'object') t.active = false;
    this.timers = this.timers.filter((x) => x.active);
  }

  clearInterval(handle: TimerHandle): void {
    this.clearTimeout(handle);
  }

  defer(fn: () => void): void {
    this.deferred.push(fn);
  }

  /** The end of the callback running now: modelled as the end of the turn (one callback per turn here). */
  afterCallback(fn: () => void): void {
    this.deferred.push(fn);
  }

  /** Timers still set (intervals included). */
  get pendingTimers(): number {
    return this.timers.length;
  }

  /** Deferred callbacks waiting for the end of the turn. */
  get pendingDeferred(): number {
    return this.deferred.length;
  }

  /** Due times of the timers still set, soonest first (for tests of the fake itself). */
  dueTimes(): number[] {
    return this.sorted().map((t) => t.due);
  }

  /** Ends the current turn: its deferred work, then timers already due (0 ms), then theirs. */
  runTurn(): void {
    this.advance(0);
  }

  /** Moves time forward by `ms`, running everything that falls due on the way. */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new Error(`FakeClock.advance: ms must be >= 0 (got ${ms})`);
    const target = this.mono + ms;
    this.runDeferred();
    for (;;) {
      const next = this.sorted()[0];
      if (!next || next.due > target) break;
      this.mono = Math.max(this.mono, next.due);
      // Every timer due by now, in order; those set while these run wait for the next round.
      const batch = this.sorted().filter((t) => t.due <= this.mono);
      for (const t of batch) {
        if (!t.active) continue;
        if (t.every === null) {
          t.active = false;
        } else {
          t.due += t.every;
          t.order = this.order++;
        }
        t.fn();
      }
      this.timers = this.timers.filter((t) => t.active);
      this.runDeferred();
    }
    this.mono = target;
  }

  private add(fn: () => void, delay: number, every: number | null): Timer {
    const t: Timer = { id: this.nextId++, due: this.mono + delay, order: this.order++, fn, every, active: true };
    this.timers.push(t);
    return t;
  }

  private sorted(): Timer[] {
    return this.timers.filter((t) => t.active).sort((a, b) => a.due - b.due || a.order - b.order);
  }

  /**
   * While true, deferred work waits (timers still fire) until
   * runDeferredOnce() runs one turn's worth: tests of work split over turns.
   */
  holdDeferred = false;

  /** Runs the work deferred so far (one turn's check phase); what it defers waits for the next call. */
  runDeferredOnce(): void {
    for (const fn of this.deferred.splice(0)) fn();
  }

  private runDeferred(): void {
    if (this.holdDeferred) return;
    for (let rounds = 0; this.deferred.length; rounds++) {
      if (rounds > 10_000) throw new Error('FakeClock: deferred work keeps deferring more work (no progress)');
      const batch = this.deferred.splice(0);
      for (const fn of batch) fn();
    }
  }
}

// ------------------------------------------------------------------ uWS stand-in

// FakeUws lives in fanout-fake-uws.ts (with its drain-later mode, uWS 20.30's timing).
export { FakeUws };

// ------------------------------------------------------------------ sink and client view

/** Shared: every frame is copied out of them at once. */
const writer = new FrameWriter();
const writer2 = new FrameWriter2();

export interface ReceivedFrame {
  seq: number;
  messages: ServerMessage[];
  /** Came through a native topic publish (sequence 0), not a direct send. */
  published: boolean;
  /** Bytes on the wire. */
  bytes: number;
  /** Clock time it arrived (from the sink's time source). */
  at: number;
}

export interface HeldTopic {
  epoch: number;
  version: number;
  state: State;
}

/** A protocol-2 message the client could not resolve (a field id it never learnt, an unbound topic id). */
export interface UnresolvedNote {
  topic: string | null;
  reason: string;
  /** Ids the delta used without a name that no message of this epoch had named to this client. */
  unshown: number[];
  /** Some of them were assigned after the client's latest image of the topic (it should have been told their names). */
  late: boolean;
}

/**
 * A socket as fan-out sees it, and the client at its other end: it decodes
 * every frame, checks the sequence numbers the way a client counting frames
 * does, and applies snapshots and deltas only when their base is what it
 * holds (anything else is recorded as a gap, never applied).
 */
export class FakeSink implements Sink {
  readonly native?: NativeTopics;
  readonly frames: ReceivedFrame[] = [];
  /** Frames refused with DROPPED (never reached the client). */
  readonly dropped: { seq: number; messages: ServerMessage[] }[] = [];
  /** Bytes the transport holds unsent; tests set it to play a slow reader. */
  bufferedBytes = 0;
  /** What send() answers: a status, or a function of the frame's size. */
  policy: SendStatus | ((bytes: number) => SendStatus) = SendStatus.SENT;
  /** Set by end(): the close code and reason. */
  closed: { code: number; reason: string } | null = null;
  /** Called by end(), like uWS calling the close handler from ws.end(). */
  onEnd: (() => void) | null = null;
  /** uWS topics this socket is subscribed to. */
  readonly uwsTopics = new Set<string>();
  /** Held (epoch, version, state) per topic. */
  readonly held = new Map<string, HeldTopic>();
  /** Sequence or version problems a client would notice. */
  readonly problems: string[] = [];
  /** Heartbeat entries naming another (epoch, version) than the one held when it arrived. */
  readonly heartbeatMismatches: string[] = [];
  /** Deltas that arrived for versions already held (ignored, as the protocol allows). */
  duplicates = 0;
  private received = 0;
  /** How the client reads frames: protocol 1 until a Welcome announces 2. */
  readonly reader = new ServerFrameReader();
  /** Protocol 2: topic-id bindings (this connection) and field dictionaries (kept across connections, as the SDK does). */
  readonly topics: Protocol2Reader;
  /** Deltas skipped while healing (they follow an unresolved one). */
  healingGaps = 0;
  /** Protocol-2 snapshots and deltas received (before resolving). */
  p2Messages = 0;
  /** The last protocol-2 snapshots and deltas as they came (ids, names), for tests of what travels. */
  readonly raw2: (Snapshot2Msg | Delta2Msg)[] = [];
  /** Protocol-2 messages it could not resolve; each makes the topic heal. */
  readonly unresolved: UnresolvedNote[] = [];
  /** Topics waiting for a catch-up the client asked for (a gap while healing is expected, not a problem). */
  readonly healing = new Set<string>();
  /** Catch-ups the client wants to send (the test hands them to fanout.catchUpRequest: `rig.heal()`). */
  healRequests: string[] = [];
  /** Per topic, the epoch and the field ids whose names reached this client in it. */
  private readonly shown = new Map<string, { epoch: number; ids: Set<number> }>();
  /** Per topic, the server's next field id when the latest image (snapshot or catch-up) arrived: ids below it may be unknown. */
  private readonly idsAtImage = new Map<string, number>();
  /** Set by the rig: the server's next field id of a topic now (Topic.fieldIdsEnd). */
  idsEnd: ((topic: string) => number) | null = null;

  constructor(
    private readonly uws: FakeUws | null,
    private readonly time: () => number = () => 0,
    /** A reconnect: the client that held these topics before (its state and its field dictionaries carry over). */
    previous?: FakeSink,
  ) {
    this.topics = previous?.topics ?? new Protocol2Reader();
    this.topics.reset();
    if (previous) {
      for (const [k, h] of previous.held) this.held.set(k, { epoch: h.epoch, version: h.version, state: new Map(h.state) });
      for (const [k, v] of previous.shown) this.shown.set(k, v);
      for (const [k, v] of previous.idsAtImage) this.idsAtImage.set(k, v);
    }
    if (uws) {
      this.native = {
        subscribe: (t) => {
          if (this.closed) throw new Error(`native subscribe(${t}) on a closed socket`);
          this.uwsTopics.add(t);
          uws.join(this, t);
        },
        unsubscribe: (t) => {
          if (this.closed) throw new Error(`native unsubscribe(${t}) on a closed socket`);
          this.uwsTopics.delete(t);
          uws.leave(this, t);
        },
      };
    }
  }

  send(seq: number, messages: readonly Uint8Array[], protocol = 1): SendStatus {
    // uWS throws on a closed WebSocket; so do we, so a send after end() fails the test.
    if (this.closed) throw new Error(`send(seq ${seq}) after end(${this.closed.code})`);
    // uWS sends what was published to the socket before a direct frame.
    this.uws?.drainSocket(this);
    if (seq <= 0) this.problems.push(`direct frame with sequence ${seq}`);
    const frame = (protocol === 2 ? writer2 : writer).write(seq, messages).slice();
    const status = typeof this.policy === 'function' ? this.policy(frame.byteLength) : this.policy;
    if (status === SendStatus.DROPPED) {
      // Never reaches the client (nor its frame reader): read here for the record only.
      const decoded = protocol === 2 ? decodeServerFrame2(frame) : decodeServerFrame(frame);
      this.dropped.push({ seq, messages: decoded.messages as ServerMessage[] });
      return status;
    }
    if (protocol !== this.reader.protocol) this.problems.push(`frame ${seq} in protocol ${protocol} framing, the client reads ${this.reader.protocol}`);
    this.acceptFrame(frame, false);
    return status;
  }

  buffered(): number {
    return this.bufferedBytes;
  }

  end(code: number, reason: string): void {
    if (this.closed) throw new Error(`end(${code}) on a socket already ended with ${this.closed.code}`);
    this.closed = { code, reason };
    for (const t of this.uwsTopics) this.uws?.leave(this, t);
    this.uwsTopics.clear();
    this.uws?.free(this);
    this.onEnd?.();
  }

  /** A frame published to a uWS topic this socket is in (`drained`: was in when it was published, may have left since). */
  receivePublished(uwsTopic: string, frame: Uint8Array, drained = false): void {
    if (!drained && !this.uwsTopics.has(uwsTopic)) throw new Error(`published frame for ${uwsTopic}, which this socket is not in`);
    this.acceptFrame(frame, true);
  }

  /** Reads a frame as the client does (its framing, then protocol 2's ids resolved). */
  private acceptFrame(frame: Uint8Array, published: boolean): void {
    const { seq, messages, error } = this.reader.read(frame);
    if (error) this.problems.push(`frame ${seq}: ${String(error)}`);
    if (published && seq !== 0) this.problems.push(`published frame with sequence ${seq} (expected 0)`);
    this.accept(seq, this.resolve(messages), published, frame.byteLength);
  }

  /** Protocol 2's snapshots and deltas, named through the Protocol2Reader; what it cannot resolve heals its topic (in apply). */
  private resolve(messages: AnyMessage[]): (ServerMessage | Unresolved)[] {
    const out: (ServerMessage | Unresolved)[] = [];
    for (const m of messages) {
      if (m.type !== 'snapshot2' && m.type !== 'delta2') {
        out.push(m as ServerMessage);
        continue;
      }
      this.p2Messages++;
      this.raw2.push(m);
      if (this.raw2.length > 1000) this.raw2.splice(0, 500);
      // What this client was shown: every named entry, per topic and epoch (as the reader keeps its dictionary).
      if (m.topic !== null) {
        this.bindings.set(m.topicId, m.topic);
        // Received in the turn it was made: the dictionary can only have grown since (an upper bound).
        if (this.idsEnd) this.idsAtImage.set(m.topic, this.idsEnd(m.topic));
      }
      const name = m.topic ?? this.boundName(m.topicId);
      let unshown: number[] = [];
      if (name !== undefined) {
        const epoch = m.topic !== null ? m.epoch : this.shown.get(name)?.epoch;
        let shown = this.shown.get(name);
        if (epoch !== undefined && (!shown || shown.epoch !== epoch)) this.shown.set(name, (shown = { epoch, ids: new Set() }));
        unshown = m.entries.filter((e) => e.name === undefined && !shown?.ids.has(e.id)).map((e) => e.id);
        for (const e of m.entries) if (e.name !== undefined && e.id > 0) shown?.ids.add(e.id);
      }
      const r = this.topics.read(m);
      if (r.type !== 'unresolved') {
        out.push(r);
        continue;
      }
      const atImage = (r.topic !== null && this.idsAtImage.get(r.topic)) || Infinity;
      this.unresolved.push({ topic: r.topic, reason: r.reason, unshown, late: unshown.some((id) => id >= atImage) });
      out.push(r);
    }
    return out;
  }

  /** Topic ids bound on this connection, as the client tracks them (for bookkeeping only). */
  private readonly bindings = new Map<number, string>();

  private boundName(topicId: number): string | undefined {
    return this.bindings.get(topicId);
  }

  // ---------------------------------------------------------------- reading what arrived

  /** Every message received, in order. */
  messages(): ServerMessage[] {
    return this.frames.flatMap((f) => f.messages);
  }

  /** Messages of one type (optionally for one topic), in order. */
  ofType<T extends ServerMessage['type']>(type: T, topic?: string): Extract<ServerMessage, { type: T }>[] {
    return this.messages().filter(
      (m): m is Extract<ServerMessage, { type: T }> => m.type === type && (topic === undefined || (m as { topic?: string }).topic === topic),
    );
  }

  /** Snapshots and deltas of one topic, in order. */
  updates(topic: string): ServerMessage[] {
    return this.messages().filter((m) => (m.type === 'snapshot' || m.type === 'delta') && m.topic === topic);
  }

  /** The state the client holds of a topic, as a plain object. */
  stateOf(topic: string): Record<string, FieldValue> | undefined {
    const h = this.held.get(topic);
    return h && Object.fromEntries(h.state);
  }

  private accept(seq: number, items: (ServerMessage | Unresolved)[], published: boolean, bytes: number): void {
    this.received++;
    // A direct frame's number counts every frame this connection received, itself included.
    if (!published && seq !== this.received) this.problems.push(`frame #${this.received} carries sequence ${seq}`);
    const messages = items.filter((m): m is ServerMessage => m.type !== 'unresolved');
    this.frames.push({ seq, messages, published, bytes, at: this.time() });
    // In order: an unresolved delta starts healing after the messages before it in the frame.
    for (const m of items) this.apply(m);
  }

  private apply(m: ServerMessage | Unresolved): void {
    if (m.type === 'unresolved') {
      if (m.topic === null) this.problems.push(`unbound topic id: ${m.reason}`);
      else if (!this.healing.has(m.topic)) {
        this.healing.add(m.topic);
        this.healRequests.push(m.topic);
      }
      return;
    }
    if (m.type === 'heartbeat') {
      for (const p of m.versions) {
        const h = this.held.get(p.topic);
        if (this.healing.has(p.topic)) continue; // behind on purpose: a catch-up is on its way
        if (!h || h.epoch !== p.epoch || h.version !== p.version) {
          this.heartbeatMismatches.push(`${p.topic}: heartbeat says ${p.epoch}/${p.version}, holds ${h ? `${h.epoch}/${h.version}` : 'nothing'}`);
        }
      }
      return;
    }
    if (m.type === 'snapshot') {
      this.held.set(m.topic, { epoch: m.epoch, version: m.version, state: new Map(m.fields) });
      this.healing.delete(m.topic);
      return;
    }
    if (m.type !== 'delta') return;
    // One version per publish: a delta from base to version carries version - base updates.
    if (m.updates !== m.version - m.base) this.problems.push(`${m.topic}: delta ${m.base}→${m.version} claims ${m.updates} update(s)`);
    const h = this.held.get(m.topic);
    if (!h) {
      this.problems.push(`${m.topic}: delta ${m.base}→${m.version} before any image`);
      return;
    }
    if (h.epoch === m.epoch && m.base === h.version) {
      for (const [k, v] of m.changes) {
        if (v === null) h.state.delete(k);
        else h.state.set(k, v);
      }
      h.version = m.version;
      this.healing.delete(m.topic);
      return;
    }
    if (h.epoch === m.epoch && m.version <= h.version) {
      this.duplicates++;
      return;
    }
    if (this.healing.has(m.topic)) {
      // Behind an unresolved protocol-2 delta: expected until the catch-up arrives.
      this.healingGaps++;
      return;
    }
    this.problems.push(`${m.topic}: gap, holds ${h.epoch}/${h.version}, got delta ${m.epoch}/${m.base}→${m.version}`);
  }
}

// ------------------------------------------------------------------ the rig

export const TEST_OPTIONS: Omit<FanoutOptions, 'log'> = {
  name: 'fanout-test',
  heartbeatMs: 1_000,
  maxPayloadBytes: 1 << 20,
  rateTiers: [10, 4, 1],
  maxSubscriptionsPerConnection: 100,
  slowThresholdBytes: 64 * 1024,
  hardCapBytes: 1024 * 1024,
  slowTimeoutMs: 2_000,
  topicTtlMs: 0,
  // Per-turn batching only, as most tests count frames per turn; eager flushes have their own tests.
  eagerFlushes: 0,
};

export interface Client {
  conn: Conn;
  sink: FakeSink;
}

export interface SubscribeOptions {
  id?: number;
  maxRate?: number;
  fields?: readonly string[];
  resume?: ResumePoint[];
  /** Protocol 2: deltas carry their publish time. */
  timestamps?: boolean;
}

export interface ConnectOptions {
  /** 2: the client's Hello asks for protocol 2 (before any subscription). */
  protocol?: 1 | 2;
  /** A reconnect: the client state (held topics, field dictionaries) of this earlier connection carries over. */
  previous?: FakeSink;
}

/** A real Fanout and TopicStore on a FakeClock, with sockets played by FakeSinks. */
export function rig(options: Partial<Omit<FanoutOptions, 'log'>> = {}, limits: Partial<EngineLimits> = {}) {
  const clock = new FakeClock();
  const store = new TopicStore(limits);
  const stats = new ServerStats();
  const logs: string[] = [];
  const opts: FanoutOptions = { ...TEST_OPTIONS, ...options, log: (level, msg) => void logs.push(`${level}: ${msg}`) };
  const fanout = new Fanout(store, opts, stats, clock);
  const uws = new FakeUws();
  fanout.setBroadcaster(uws.broadcast);
  let nextConn = 1;
  let nextSub = 1;

  return {
    clock,
    store,
    stats,
    fanout,
    uws,
    logs,
    opts,

    /** Opens a connection; `native: false` plays a transport without uWS topics (SSE). */
    connect(native = true, o: ConnectOptions = {}): Client {
      const id = nextConn++;
      const conn = new Conn(id, `10.0.0.${id}:5${id}`);
      const sink = new FakeSink(native ? uws : null, () => clock.now(), o.previous);
      // uWS calls the close handler from inside ws.end().
      sink.onEnd = () => fanout.closed(conn);
      sink.idsEnd = (t) => store.get(t)?.fieldIdsEnd ?? 0;
      fanout.open(conn, sink);
      if (o.protocol === 2) fanout.setProtocol(conn, 2); // its Hello
      return { conn, sink };
    },

    subscribe(c: Client, topics: readonly string[], o: SubscribeOptions = {}): number {
      return fanout.subscribe(c.conn, o.id ?? nextSub++, fanout.parsePatterns(topics), o.maxRate ?? 0, o.fields ?? [], o.resume ?? [], o.timestamps ?? false);
    },

    /** The clients' catch-up requests for what they could not resolve reach the server (from the version each holds). */
    heal(clients: readonly Client[]): number {
      let n = 0;
      for (const c of clients) {
        const asked = c.sink.healRequests.splice(0);
        for (const name of asked) {
          const h = c.sink.held.get(name);
          if (c.conn.closed || !h || !c.conn.topics.has(name)) {
            c.sink.healing.delete(name);
            continue;
          }
          fanout.catchUpRequest(c.conn, name, h.epoch, h.version);
          n++;
        }
      }
      return n;
    },

    /** What LocalIngest does: sequence the publish in the store, hand it to fan-out. */
    publish(topic: string, fields: Record<string, FieldValue | null>): Accepted {
      const a = store.publish(topic, new Map(Object.entries(fields)) as Changes, clock.wallNow());
      fanout.accepted(a);
      return a;
    },

    /** The server's state of a topic, as a plain object. */
    stateOf(topic: string): Record<string, FieldValue> {
      return Object.fromEntries(store.get(topic)!.state);
    },
  };
}

export type Rig = ReturnType<typeof rig>;

/** Same fields, same values (bytes by content). */
export function sameState(a: ReadonlyMap<string, FieldValue> | undefined, b: ReadonlyMap<string, FieldValue> | undefined): boolean {
  if (!a || !b || a.size !== b.size) return false;
  for (const [k, v] of a) if (!b.has(k) || !sameValue(v, b.get(k))) return false;
  return true;
}
