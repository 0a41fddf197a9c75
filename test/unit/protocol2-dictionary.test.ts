// "A field dictionary survives conflation, catch-up and resume exactly"
// (issue 10). The engine assigns field ids (Topic.fieldId / fieldName /
// fieldIdsEnd, Accepted.namesFrom); the server encodes with them as fan-out
// does (src/server/fanout/wire.ts: stream deltas naming the ids assigned since
// the stream's last message, merged throttled deltas, catch-ups from
// topic.plan() naming every entry and binding the topic id, snapshots); each
// simulated client decodes through its own Protocol2Reader, joins at a random
// point, pauses, reconnects, resumes, sees the server restart with a new epoch
// (new topic and field ids). After every message it applies, it holds exactly
// the server's state at that version; a message it cannot resolve names an id
// it was never shown that was assigned before its latest image, and one
// catch-up heals it.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { EpochClock, TopicStore, type Accepted, type Topic } from '../../src/engine/index.js';
import {
  Encoder,
  ErrorCode,
  FrameWriter2,
  Protocol2Reader,
  TickfanError,
  decodeServerFrame2,
  sameValue,
  type Changes,
  type Delta2Msg,
  type FieldValue,
  type Snapshot2Msg,
  type State,
} from '../../src/protocol/index.js';
import { Form, Wire } from '../../src/server/fanout/wire.js';

// ------------------------------------------------------------------ the engine's dictionary

describe('the engine assigns field ids', () => {
  it('in order of first use, never reused within the epoch (a deleted field keeps its id), namesFrom = first id this publish assigned', () => {
    const store = new TopicStore();
    const a1 = store.publish('px.A', new Map<string, FieldValue | null>([['bid', 1], ['ask', 2]]));
    expect([a1.topic.fieldId('bid'), a1.topic.fieldId('ask')]).toEqual([1, 2]);
    expect(a1.namesFrom).toBe(1);
    const a2 = store.publish('px.A', new Map<string, FieldValue | null>([['bid', null], ['last', 3]]));
    expect(a2.namesFrom).toBe(3);
    expect(a2.topic.fieldId('last')).toBe(3);
    expect(a2.topic.fieldId('bid')).toBe(1); // deleted, still 1
    const a3 = store.publish('px.A', new Map<string, FieldValue | null>([['bid', 5]]));
    expect(a3.namesFrom).toBe(4); // nothing new
    expect(a3.topic.fieldId('bid')).toBe(1);
    expect(a3.topic.fieldIdsEnd).toBe(4);
    expect([1, 2, 3, 4, 0].map((i) => a3.topic.fieldName(i))).toEqual(['bid', 'ask', 'last', undefined, undefined]);
    expect(a3.topic.fieldId('never')).toBe(0);
    // Deleting a field the topic never had gives it no id (images would never name it).
    const a4 = store.publish('px.A', new Map<string, FieldValue | null>([['ghost', null], ['bid', 6]]));
    expect(a4.topic.fieldId('ghost')).toBe(0);
    expect(a4.topic.fieldIdsEnd).toBe(4);
  });

  it('topic ids are 1, 2, 3… in order of creation and stay with the name', () => {
    const store = new TopicStore();
    const ids = ['px.A', 'px.B', 'px.A', 'fx.C'].map((t) => store.publish(t, new Map([['x', 1]])).topic.id);
    expect(ids).toEqual([1, 2, 1, 3]);
  });

  it('past its cap (max(1024, 4 × maxFieldsPerTopic)) a new field gets id 0: its name always travels', () => {
    const store = new TopicStore({ maxFieldsPerTopic: 4 });
    for (let i = 1; i <= 1024; i++) {
      const a = store.publish('px.A', new Map<string, FieldValue | null>(i > 1 ? [[`f${i}`, i], [`f${i - 1}`, null]] : [[`f${i}`, i]]));
      expect(a.topic.fieldId(`f${i}`)).toBe(i);
    }
    const a = store.publish('px.A', new Map<string, FieldValue | null>([['late', 1], ['f1', 2]]));
    expect(a.topic.fieldId('late')).toBe(0);
    expect(a.topic.fieldId('f1')).toBe(1);
    expect(a.topic.fieldIdsEnd).toBe(1025);
    expect(a.namesFrom).toBe(1025);
    // On the wire: `late` named (id 0), f1 by id only.
    const enc = new Encoder();
    const wire = new Wire(enc);
    const m = decodeServerFrame2(new FrameWriter2().write(1, [wire.streamDelta(Form.P2, a.topic, a.base, a.version, 1, a.changes, a.namesFrom, null)])).messages[0] as Delta2Msg;
    expect(m.entries).toEqual([
      { id: 0, name: 'late', value: 1 },
      { id: 1, name: undefined, value: 2 },
    ]);
  });

  it('a replica reset to its sequencer image takes over its dictionary (the same ids)', () => {
    const seq = new TopicStore();
    seq.publish('px.A', new Map([['bid', 1], ['ask', 2]]));
    const t = seq.publish('px.A', new Map<string, FieldValue | null>([['bid', null], ['last', 3]])).topic;
    const replica = new TopicStore();
    const { topic } = replica.resetTopic('px.A', t.epoch, t.version, t.state, t.ts, t.id, t.fieldNames());
    expect(['bid', 'ask', 'last'].map((f) => topic.fieldId(f))).toEqual([1, 2, 3]);
    const a = replica.applySequenced('px.A', t.epoch, t.version + 1, new Map([['new', 1]]), 0, t.id)!;
    expect(a.namesFrom).toBe(4);
    expect(topic.fieldId('new')).toBe(4);
  });
});

// ------------------------------------------------------------------ the model

const TOPICS = ['px.A', 'px.B'];
const POOL = ['a', 'b', 'c', 'd', 'e'];
const MAX_FIELDS = 6;

interface Held {
  epoch: number;
  version: number;
  state: State;
}

/** The server side of one client's subscription to one topic (what fan-out keeps per TopicSub and channel). */
interface Sub {
  topic: string;
  /** 0: every update; otherwise a throttled channel flushed by `flush` ops. */
  tier: 0 | 1;
  fields: ReadonlySet<string> | null;
  form: Form;
  sentEpoch: number;
  sentVersion: number;
  paused: boolean;
  // The throttled channel (one per subscription here: the sharing is fan-out's, tested end to end).
  pending: Changes;
  pendingUpdates: number;
  flushedVersion: number;
  namesFrom: number;
}

class Server {
  store!: TopicStore;
  readonly epochs = new EpochClock(() => 1_700_000_000_000 + this.restarts * 1000);
  restarts = 0;
  readonly wire = new Wire(new Encoder());
  /** State after every version of the current epoch, per topic. */
  states = new Map<string, Map<number, State>>();

  constructor(preChurn: number) {
    this.start(new Map(), preChurn);
  }

  /** A (re)started server: topics re-created from `images` (field order given, so ids differ from the last epoch). */
  start(images: Map<string, [string, FieldValue][]>, preChurn = 0): void {
    this.store = new TopicStore({ maxFieldsPerTopic: MAX_FIELDS, historySize: 16 }, this.epochs);
    this.states = new Map();
    for (const name of images.size ? [...images.keys()] : TOPICS) {
      // Churn through ids first, so the cap (1024) falls inside the run.
      for (let i = 0; i < preChurn; i++) this.publish(name, new Map<string, FieldValue | null>([[`old${i}`, i], ...(i ? [[`old${i - 1}`, null] as [string, null]] : [])]));
      if (preChurn) this.publish(name, new Map([[`old${preChurn - 1}`, null]]));
      const image = images.get(name) ?? [['a', 1]];
      this.publish(name, new Map(image.length ? image : [['a', 1]]));
    }
  }

  restart(): void {
    this.restarts++;
    const images = new Map<string, [string, FieldValue][]>();
    // Re-created in the other order and with fields reversed: other topic ids, other field ids.
    for (const name of [...TOPICS].reverse()) images.set(name, [...this.store.get(name)!.state].reverse());
    this.start(images);
  }

  topic(name: string): Topic {
    return this.store.get(name)!;
  }

  publish(name: string, changes: Changes): Accepted | null {
    let a: Accepted;
    try {
      a = this.store.publish(name, changes, 1_700_000_000_000 + this.restarts);
    } catch (err) {
      if (err instanceof TickfanError && err.errorCode === ErrorCode.TOO_MANY_FIELDS) return null;
      throw err;
    }
    let s = this.states.get(name);
    if (!s) this.states.set(name, (s = new Map()));
    s.set(a.version, new Map(a.topic.state));
    return a;
  }

  stateAt(name: string, epoch: number, version: number): State | undefined {
    if (this.topic(name).epoch !== epoch) return undefined;
    return this.states.get(name)?.get(version);
  }
}

const writer = new FrameWriter2();

class Client {
  readonly reader = new Protocol2Reader();
  connected = false;
  /** Server side: this connection's subscriptions by topic. */
  subs = new Map<string, Sub>();
  /** Client side: what it holds, kept across connections. */
  readonly held = new Map<string, Held>();
  /** Field subsets, fixed for the client's life (a resumed subscription asks for the same fields). */
  readonly fields = new Map<string, ReadonlySet<string> | null>();
  /** Per topic: the epoch and every field id whose name it was shown in that epoch. */
  readonly shown = new Map<string, { epoch: number; ids: Set<number> }>();
  /** Per topic: fieldIdsEnd when its latest image (snapshot or catch-up) was made. */
  readonly idsAtImage = new Map<string, number>();
  /** Server side: topics whose id this connection has had bound. */
  private bound = new Set<string>();
  /** Catch-ups it asked for (sent to the server by `heal` ops or when settling). */
  readonly healing = new Set<string>();
  unresolved = 0;
  applied = 0;
  /** What reached it, by form: the workload must exercise every one. */
  readonly seen = { snapshots: 0, catchUpDeltas: 0, confirms: 0, mergedStream: 0, idZero: 0 };

  constructor(
    readonly who: number,
    private readonly server: Server,
    private readonly issues: string[],
  ) {}

  // ---------------------------------------------------------------- server side

  connect(resume: boolean): void {
    this.reader.reset();
    this.connected = true;
    this.subs = new Map();
    this.bound = new Set();
    this.healing.clear();
    for (const name of this.fields.keys()) this.subscribe(name, this.fields.get(name)!, resume, 0, Form.P2);
  }

  disconnect(): void {
    this.connected = false;
    this.subs = new Map();
  }

  subscribe(name: string, fields: ReadonlySet<string> | null, resume: boolean, tier: 0 | 1, form: Form): void {
    if (!this.connected || this.subs.has(name)) return;
    this.fields.set(name, fields);
    const t = this.server.topic(name);
    const h = this.held.get(name);
    const sub: Sub = {
      topic: name,
      tier,
      fields,
      form,
      sentEpoch: resume && h ? h.epoch : 0,
      sentVersion: resume && h ? h.version : -1,
      paused: false,
      pending: new Map(),
      pendingUpdates: 0,
      flushedVersion: t.version,
      namesFrom: t.fieldIdsEnd,
    };
    this.subs.set(name, sub);
    this.catchUp(sub, false);
  }

  unsubscribe(name: string): void {
    if (!this.subs.delete(name)) return;
    this.fields.delete(name);
    this.held.delete(name);
    this.shown.delete(name);
    this.healing.delete(name);
    this.reader.forget(name);
  }

  /** CatchUps.catchUp: one message from what it was sent to the current version. */
  private catchUp(sub: Sub, confirm: boolean): void {
    const t = this.server.topic(sub.topic);
    let msg: Uint8Array;
    if (sub.sentEpoch === t.epoch && sub.sentVersion === t.version) {
      // Already current: an explicit request, or a resume on a new connection (binding the topic id), is confirmed.
      if (!confirm && sub.flushedVersion === t.version && this.bound.has(sub.topic)) return;
      msg = this.server.wire.confirm(sub.form, t);
    } else {
      const plan = t.plan(sub.sentEpoch, sub.sentVersion);
      msg = plan.kind === 'delta' ? this.server.wire.catchUpDelta(sub.form, t, plan, sub.fields) : this.server.wire.snapshot(sub.form, t, sub.fields);
    }
    sub.sentEpoch = t.epoch;
    sub.sentVersion = t.version;
    sub.pending = new Map();
    sub.pendingUpdates = 0;
    sub.flushedVersion = t.version;
    sub.namesFrom = t.fieldIdsEnd;
    this.idsAtImage.set(sub.topic, t.fieldIdsEnd);
    this.bound.add(sub.topic);
    this.receive(msg);
  }

  /** Fanout.deliver: the stream's message if it continues from what was sent, a catch-up if behind. */
  private deliver(sub: Sub, base: number, version: number, msg: Uint8Array): void {
    if (sub.sentVersion === base && sub.sentEpoch === this.server.topic(sub.topic).epoch) {
      sub.sentVersion = version;
      this.receive(msg);
    } else if (sub.sentVersion < version) this.catchUp(sub, false);
  }

  accepted(a: Accepted): void {
    const sub = this.subs.get(a.topic.name);
    if (!this.connected || !sub) return;
    if (sub.tier === 0) {
      if (sub.paused) return;
      this.deliver(sub, a.base, a.version, this.server.wire.streamDelta(sub.form, a.topic, a.base, a.version, 1, a.changes, a.namesFrom, sub.fields));
      return;
    }
    for (const [k, v] of a.changes) sub.pending.set(k, v);
    sub.pendingUpdates++;
  }

  flush(name: string): void {
    const sub = this.subs.get(name);
    if (!sub || sub.tier === 0 || sub.pendingUpdates === 0 || sub.paused) return;
    const t = this.server.topic(name);
    const base = sub.flushedVersion;
    const msg = this.server.wire.streamDelta(sub.form, t, base, t.version, sub.pendingUpdates, sub.pending, sub.namesFrom, sub.fields);
    sub.pending = new Map();
    sub.pendingUpdates = 0;
    sub.flushedVersion = t.version;
    sub.namesFrom = t.fieldIdsEnd;
    this.deliver(sub, base, t.version, msg);
  }

  setPaused(name: string, paused: boolean): void {
    const sub = this.subs.get(name);
    if (!sub || sub.paused === paused) return;
    sub.paused = paused;
    if (!paused) this.catchUp(sub, false); // one catch-up on resume
  }

  /** The client's CatchUp requests reach the server: from the version it holds. */
  heal(): void {
    for (const name of [...this.healing]) {
      const sub = this.subs.get(name);
      const h = this.held.get(name);
      this.healing.delete(name);
      if (!sub || sub.paused) continue;
      sub.sentEpoch = h?.epoch ?? 0;
      sub.sentVersion = h?.version ?? -1;
      this.catchUp(sub, true);
    }
  }

  // ---------------------------------------------------------------- client side

  private receive(encoded: Uint8Array): void {
    // Through the wire, as a frame.
    const [m] = decodeServerFrame2(writer.write(1, [encoded]).slice()).messages as (Snapshot2Msg | Delta2Msg)[];
    if (!m || (m.type !== 'snapshot2' && m.type !== 'delta2')) return void this.issues.push(`client ${this.who}: got ${(m as { type?: string } | undefined)?.type}`);
    const topicName = m.topic ?? [...this.subs.keys()].find((n) => this.server.topic(n).id === m.topicId) ?? '?';
    // What the reader was shown: every named entry of the epoch it reads.
    const epoch = m.topic !== null ? m.epoch : this.shown.get(topicName)?.epoch;
    let shown = this.shown.get(topicName);
    if (epoch !== undefined && (!shown || shown.epoch !== epoch)) this.shown.set(topicName, (shown = { epoch, ids: new Set() }));
    const unshown = m.entries.filter((e) => e.name === undefined && !shown?.ids.has(e.id)).map((e) => e.id);
    for (const e of m.entries) if (e.name !== undefined && e.id > 0) shown?.ids.add(e.id);

    if (m.type === 'snapshot2') this.seen.snapshots++;
    else if (m.topic !== null) this.seen[m.updates === 0 ? 'confirms' : 'catchUpDeltas']++;
    else if (m.updates > 1) this.seen.mergedStream++;
    this.seen.idZero += m.entries.filter((e) => e.id === 0).length;
    const r = this.reader.read(m);
    const who = `client ${this.who} ${topicName}`;
    if (r.type === 'unresolved') {
      this.unresolved++;
      if (r.topic === null) return void this.issues.push(`${who}: topic id ${m.topicId} unbound (${r.reason})`);
      if (unshown.length === 0) this.issues.push(`${who}: unresolved (${r.reason}) though every id in it was shown its name`);
      const atImage = this.idsAtImage.get(r.topic) ?? 0;
      if (unshown.some((id) => id >= atImage)) this.issues.push(`${who}: unresolved on ids ${unshown} assigned after its latest image (ids then < ${atImage})`);
      this.healing.add(r.topic);
      return;
    }
    const fields = this.fields.get(r.topic);
    const want = (v: number) => {
      const s = this.server.stateAt(r.topic, r.epoch, v);
      return s && onWire(s, fields);
    };
    if (r.type === 'snapshot') {
      this.held.set(r.topic, { epoch: r.epoch, version: r.version, state: new Map(r.fields) });
      this.check(r.topic, want(r.version));
      this.healing.delete(r.topic);
      return;
    }
    const h = this.held.get(r.topic);
    if (h && h.epoch === r.epoch && h.version === r.base) {
      for (const [k, v] of r.changes) {
        if (v === null) h.state.delete(k);
        else h.state.set(k, v);
      }
      h.version = r.version;
      this.applied++;
      this.check(r.topic, want(r.version));
      this.healing.delete(r.topic);
      return;
    }
    if (h && h.epoch === r.epoch && r.version <= h.version) return; // a duplicate
    // A gap: only behind an unresolved message (then a catch-up is on its way).
    if (!this.healing.has(r.topic)) this.issues.push(`${who}: gap, holds ${h?.epoch}/${h?.version}, got ${r.epoch}/${r.base}→${r.version}`);
  }

  private check(name: string, want: State | undefined): void {
    const h = this.held.get(name)!;
    if (!want) return void this.issues.push(`client ${this.who} ${name}: holds ${h.epoch}/${h.version}, which the server never had`);
    if (!sameState(h.state, want)) {
      this.issues.push(`client ${this.who} ${name}@${h.version}: holds ${show(h.state)}, server had ${show(want)}`);
    }
  }
}

/** A state as a client receives it: its field subset, bigints inside ±(2^53 - 1) as numbers (as protocol 1 does). */
function onWire(s: ReadonlyMap<string, FieldValue>, fields: ReadonlySet<string> | null | undefined): State {
  const out: State = new Map();
  for (const [k, v] of s) {
    if (fields && !fields.has(k)) continue;
    out.set(k, typeof v === 'bigint' && v >= -MAX_SAFE && v <= MAX_SAFE ? Number(v) : v);
  }
  return out;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function sameState(a: ReadonlyMap<string, FieldValue>, b: ReadonlyMap<string, FieldValue>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (!b.has(k) || !sameValue(v, b.get(k))) return false;
  return true;
}

const show = (s: ReadonlyMap<string, FieldValue>) => JSON.stringify([...s], (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));

// ------------------------------------------------------------------ the workload

const value: fc.Arbitrary<FieldValue | null> = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: -99_999, max: 99_999 }).map((n) => n / 100) },
  { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.double(), fc.string({ maxLength: 50 }), fc.boolean(), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })) },
  { weight: 2, arbitrary: fc.constant(null) },
);

type Op =
  | { t: 'publish'; topic: number; changes: [number, FieldValue | null][]; fresh: boolean }
  | { t: 'subscribe'; who: number; topic: number; fields: number; tier: 0 | 1; ts: boolean; resume: boolean }
  | { t: 'unsubscribe'; who: number; topic: number }
  | { t: 'flush'; who: number; topic: number }
  | { t: 'pause'; who: number; topic: number; paused: boolean }
  | { t: 'reconnect'; who: number; resume: boolean }
  | { t: 'disconnect'; who: number }
  | { t: 'heal'; who: number }
  | { t: 'restart' };

const CLIENTS = 3;
const who = fc.nat(CLIENTS - 1);
const topicIx = fc.nat(TOPICS.length - 1);
const subscribeOp = fc.record({ t: fc.constant('subscribe' as const), who, topic: topicIx, fields: fc.nat(3), tier: fc.constantFrom(0 as const, 1 as const), ts: fc.boolean(), resume: fc.boolean() });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 16, arbitrary: fc.record({ t: fc.constant('publish' as const), topic: topicIx, changes: fc.array(fc.tuple(fc.nat(POOL.length - 1), value), { minLength: 1, maxLength: 4 }), fresh: fc.boolean() }) },
  { weight: 2, arbitrary: subscribeOp },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('unsubscribe' as const), who, topic: topicIx }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('flush' as const), who, topic: topicIx }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('pause' as const), who, topic: topicIx, paused: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('reconnect' as const), who, resume: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('disconnect' as const), who }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('heal' as const), who }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('restart' as const) }) },
);

/** Field subsets a subscription may ask for. */
const SUBSETS: (ReadonlySet<string> | null)[] = [null, null, new Set(['a', 'b']), new Set(['c', 'n0', 'n1', 'n2', 'n3'])];

type Initial = Extract<Op, { t: 'subscribe' }>;

function run(initial: Initial[], ops: Op[], preChurn: number): { issues: string[]; unresolved: number; applied: number; healed: number; seen: Record<string, number> } {
  const server = new Server(preChurn);
  const issues: string[] = [];
  const clients = Array.from({ length: CLIENTS }, (_, i) => new Client(i, server, issues));
  for (const c of clients) c.connect(false);
  ops = [...initial, ...ops];
  let fresh = 0;
  let n = 0;
  for (const o of ops) {
    switch (o.t) {
      case 'publish': {
        const changes: Changes = new Map(o.changes.map(([f, v]) => [POOL[f]!, v]));
        // A field never seen before (past the cap once the ids ran out: id 0).
        if (o.fresh) changes.set(`n${fresh++ % 40}`, ++n);
        const a = server.publish(TOPICS[o.topic]!, changes);
        if (a) for (const c of clients) c.accepted(a);
        break;
      }
      case 'subscribe': {
        const c = clients[o.who]!;
        const name = TOPICS[o.topic]!;
        // A client's field subset for a topic stays what it first asked for.
        const fields = c.fields.has(name) ? c.fields.get(name)! : SUBSETS[o.fields]!;
        c.subscribe(name, fields, o.resume, o.tier, o.ts ? Form.P2_TS : Form.P2);
        break;
      }
      case 'unsubscribe':
        clients[o.who]!.unsubscribe(TOPICS[o.topic]!);
        break;
      case 'flush':
        clients[o.who]!.flush(TOPICS[o.topic]!);
        break;
      case 'pause':
        clients[o.who]!.setPaused(TOPICS[o.topic]!, o.paused);
        break;
      case 'reconnect':
        clients[o.who]!.connect(o.resume);
        break;
      case 'disconnect':
        clients[o.who]!.disconnect();
        break;
      case 'heal':
        clients[o.who]!.heal();
        break;
      case 'restart':
        server.restart();
        for (const c of clients) c.disconnect();
        break;
    }
  }
  // Settle: everyone connected (resuming), unpaused, flushed, healed.
  let unresolved = 0;
  let healed = 0;
  for (const c of clients) {
    if (!c.connected) c.connect(true);
    for (const name of TOPICS) {
      c.setPaused(name, false);
      c.flush(name);
    }
    for (let round = 0; c.healing.size && round < 3; round++) {
      healed += c.healing.size;
      c.heal();
    }
    if (c.healing.size) issues.push(`client ${c.who}: still healing ${[...c.healing]} after catch-ups`);
    for (const name of c.fields.keys()) {
      const t = server.topic(name);
      const h = c.held.get(name);
      const f = c.fields.get(name);
      const want = onWire(t.state, f);
      if (!h || h.epoch !== t.epoch || h.version !== t.version || !sameState(h.state, want)) {
        issues.push(`client ${c.who} ${name}: ends at ${h?.epoch}/${h?.version} ${h ? show(h.state) : '-'}, server ${t.epoch}/${t.version} ${show(want)}`);
      }
    }
    unresolved += c.unresolved;
  }
  const seen: Record<string, number> = { restarts: server.restarts };
  for (const c of clients) for (const [k, v] of Object.entries(c.seen)) seen[k] = (seen[k] ?? 0) + v;
  return { issues, unresolved, applied: clients.reduce((s, c) => s + c.applied, 0), healed, seen };
}

describe('property: a field dictionary survives conflation, catch-up and resume exactly', () => {
  const totals: Record<string, number> = { runs: 0, unresolved: 0, applied: 0, healed: 0 };

  it('every client holds the server state at each version it applies, and ends current', () => {
    fc.assert(
      fc.property(fc.array(subscribeOp, { minLength: 2, maxLength: 6 }), fc.array(op, { minLength: 10, maxLength: 120 }), fc.constantFrom(0, 0, 1014, 1020, 1030), (initial, ops, preChurn) => {
        const r = run(initial, ops, preChurn);
        totals.runs!++;
        for (const [k, v] of Object.entries({ unresolved: r.unresolved, applied: r.applied, healed: r.healed, ...r.seen })) totals[k] = (totals[k] ?? 0) + v;
        expect(r.issues).toEqual([]);
      }),
      { numRuns: 300, seed: 20260301 },
    );
    // The workload must reach what the property is about: deltas resolved by id, and unresolved ones healed.
    console.log(`dictionary model: ${JSON.stringify(totals)}`);
    expect(totals.applied).toBeGreaterThan(1000);
    expect(totals.unresolved).toBeGreaterThan(10);
    for (const k of ['snapshots', 'catchUpDeltas', 'confirms', 'mergedStream', 'idZero', 'restarts']) expect(totals[k], k).toBeGreaterThan(10);
  });

  it('a field deleted before the client joined and re-added later is unresolved once, then healed by one catch-up', () => {
    const server = new Server(0);
    const issues: string[] = [];
    const c = new Client(0, server, issues);
    c.connect(false);
    const pub = (ch: [string, FieldValue | null][]) => {
      const a = server.publish('px.A', new Map(ch))!;
      c.accepted(a);
      return a;
    };
    pub([['x', 1]]);
    pub([['x', null]]);
    c.subscribe('px.A', null, false, 0, Form.P2); // snapshot without x
    const a = pub([['x', 2]]); // x's id was assigned before: travels by id only
    expect(a.namesFrom).toBeGreaterThan(server.topic('px.A').fieldId('x'));
    expect(c.unresolved).toBe(1);
    expect([...c.healing]).toEqual(['px.A']);
    pub([['a', 5]]); // a gap while the catch-up is on its way
    c.heal();
    expect(c.healing.size).toBe(0);
    expect(c.held.get('px.A')?.state).toEqual(new Map(server.topic('px.A').state));
    pub([['x', 3]]); // now known
    expect(c.unresolved).toBe(1);
    expect(c.held.get('px.A')?.state.get('x')).toBe(3);
    expect(issues).toEqual([]);
  });

  it('a delta that cannot be resolved still teaches the reader the names it carries (the server names a new id once)', () => {
    const reader = new Protocol2Reader();
    const bind: Snapshot2Msg = { type: 'snapshot2', topicId: 4, topic: 'px.A', epoch: 9, version: 1, entries: [{ id: 1, name: 'a', value: 1 }], ts: 0 };
    expect(reader.read(bind)).toMatchObject({ type: 'snapshot', topic: 'px.A' });
    const d = (version: number, entries: Delta2Msg['entries']): Delta2Msg => ({ type: 'delta2', topicId: 4, topic: null, epoch: 0, base: version - 1, version, updates: 1, entries, ts: 0 });
    // id 2 was assigned before the snapshot (and deleted): unknown. id 3 is new: named.
    expect(reader.read(d(2, [{ id: 2, name: undefined, value: 5 }, { id: 3, name: 'c', value: 6 }]))).toMatchObject({ type: 'unresolved', topic: 'px.A' });
    // A later delta using id 3 alone resolves: the name travelled once and was kept.
    expect(reader.read(d(3, [{ id: 3, name: undefined, value: 7 }]))).toMatchObject({ type: 'delta', changes: new Map([['c', 7]]) });
  });

  it('topic ids are bound per connection: after reset() an id bound before means nothing (unresolved, no topic)', () => {
    const reader = new Protocol2Reader();
    const snap: Snapshot2Msg = { type: 'snapshot2', topicId: 4, topic: 'px.A', epoch: 9, version: 1, entries: [{ id: 1, name: 'a', value: 1 }], ts: 0 };
    const stream: Delta2Msg = { type: 'delta2', topicId: 4, topic: null, epoch: 0, base: 1, version: 2, updates: 1, entries: [{ id: 1, name: undefined, value: 2 }], ts: 0 };
    reader.read(snap);
    expect(reader.read(stream)).toMatchObject({ type: 'delta', topic: 'px.A', epoch: 9, changes: new Map([['a', 2]]) });
    reader.reset();
    expect(reader.read({ ...stream, base: 2, version: 3 })).toMatchObject({ type: 'unresolved', topic: null });
    // A catch-up binds it again; the field names of the epoch were kept.
    expect(reader.read({ ...stream, topic: 'px.A', epoch: 9, base: 2, version: 3 })).toMatchObject({ type: 'delta', topic: 'px.A', changes: new Map([['a', 2]]) });
    // forget(): the names go too.
    reader.forget('px.A');
    expect(reader.read({ ...stream, base: 3, version: 4 })).toMatchObject({ type: 'unresolved', topic: 'px.A' });
  });

  it('after a restart the same topic and field names have other ids: the new epoch gets a fresh dictionary', () => {
    const server = new Server(0);
    const issues: string[] = [];
    const c = new Client(0, server, issues);
    c.connect(false);
    c.subscribe('px.A', null, false, 0, Form.P2);
    c.subscribe('px.B', null, false, 0, Form.P2);
    for (const [t, ch] of [['px.A', [['b', 1], ['c', 2]]], ['px.B', [['d', 3]]]] as const) c.accepted(server.publish(t, new Map(ch))!);
    const before = ['a', 'b', 'c'].map((f) => server.topic('px.A').fieldId(f));
    const idA = server.topic('px.A').id;
    server.restart();
    c.disconnect();
    expect(server.topic('px.A').id).not.toBe(idA);
    expect(['a', 'b', 'c'].map((f) => server.topic('px.A').fieldId(f))).not.toEqual(before);
    c.connect(true);
    for (const t of TOPICS) c.accepted(server.publish(t, new Map([['a', 9], ['c', 8]]))!);
    expect(issues).toEqual([]);
    for (const t of TOPICS) expect(c.held.get(t)?.state).toEqual(new Map(server.topic(t).state));
    expect(c.unresolved).toBe(0);
  });
});
