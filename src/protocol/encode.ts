// Encodes tickfan messages as size-prefixed FlatBuffers with one reused
// Builder per hot path. Pure: no I/O. Refuses (BAD_FIELD) any value a field
// cannot hold rather than write something else in its place.

import type { Builder, Offset } from 'flatbuffers';
import { createByteVectorOf, finishBare, finishBareInto, ReusingBuilder, type ByteSink } from './builder.js';
import * as fb from './generated/tickfan.js';
import { KeyedEncoder, publishKeyed, tableViewsVector } from './keyed-encode.js';
import { MAX_PROTOCOL, PROTOCOL_VERSION, type AnyMessage, type TopicRef, type KeyedBatchMsg, type TableViewRequest, type Delta2Msg, type Payload, type ResumePoint, type Snapshot2Msg, type TopicState } from './messages.js';
import { ErrorCode, TickfanError } from './codes.js';
import { MessageKind } from './kinds.js';
import { PackWriter } from './packed.js';
import { checkFieldValue, type FieldValue } from './values.js';

export type { TopicRef } from './messages.js';

function u64(n: number): bigint {
  return BigInt(n);
}

type FieldEntries = Iterable<readonly [string, FieldValue | null]>;

const TWO_32 = 2 ** 32;


/** How a protocol-2 delta is written. */
export interface Delta2Options {
  /** Entries whose field id is at least this carry their names (1: every name, as catch-ups do). */
  namesFrom: number;
  /** Carry the topic's name and epoch (binding topic_id): catch-ups do. */
  bind: boolean;
  /** The publish time, for subscriptions that asked for timestamps. */
  ts?: number;
}

/**
 * Builds size-prefixed messages with one reused Builder. Every method returns
 * a fresh Uint8Array the caller owns (safe to cache and share between sockets).
 */
export class Encoder {
  private readonly b: Builder;
  private offsets: Offset[] = [];
  private readonly pack = new PackWriter();
  private keyed: KeyedEncoder | undefined;

  constructor(initialSize = 4096) {
    this.b = new ReusingBuilder(initialSize);
  }

  /** Capacity of the reused builder (tests check it stays stable). */
  get capacity(): number {
    return this.b.dataBuffer().capacity();
  }

  private finish(type: fb.Body, body: Offset): Uint8Array {
    const b = this.b;
    const root = fb.Message.createMessage(b, type, body);
    b.finishSizePrefixed(root);
    const out = b.asUint8Array().slice();
    b.clear();
    return out;
  }

  /** A protocol-2 root of its own (no Message around it), in the in-memory form framing.ts describes. */
  private finishBare(kind: MessageKind, root: Offset): Uint8Array {
    return finishBare(this.b, kind, root);
  }

  private field(name: string, v: FieldValue | null): Offset {
    // Checked before touching the builder, so a refused value cannot leave it mid-object.
    checkFieldValue(name, v);
    const b = this.b;
    const n = b.createString(name);
    let s = 0;
    let data = 0;
    if (typeof v === 'string') s = b.createString(v);
    else if (v instanceof Uint8Array) data = fb.Field.createDataVector(b, v);
    fb.Field.startField(b);
    fb.Field.addName(b, n);
    if (v === null) {
      // kind defaults to Delete
    } else if (typeof v === 'number') {
      if (Number.isSafeInteger(v) && !Object.is(v, -0)) {
        fb.Field.addKind(b, fb.ValueKind.Int);
        fb.Field.addI(b, BigInt(v));
      } else {
        fb.Field.addKind(b, fb.ValueKind.Float);
        // The builder skips values equal to the default (0.0), and -0 == 0:
        // force it, or -0 would arrive as +0.
        if (Object.is(v, -0)) b.forceDefaults(true);
        fb.Field.addF(b, v);
        b.forceDefaults(false);
      }
    } else if (typeof v === 'bigint') {
      fb.Field.addKind(b, fb.ValueKind.Int);
      fb.Field.addI(b, v);
    } else if (typeof v === 'string') {
      fb.Field.addKind(b, fb.ValueKind.String);
      fb.Field.addS(b, s);
    } else if (typeof v === 'boolean') {
      fb.Field.addKind(b, fb.ValueKind.Bool);
      fb.Field.addB(b, v);
    } else {
      fb.Field.addKind(b, fb.ValueKind.Bytes);
      fb.Field.addData(b, data);
    }
    return fb.Field.endField(b);
  }

  /** Field vector; `only` restricts it to a field subset. */
  private fields(entries: FieldEntries, only?: ReadonlySet<string>): Offset {
    const offs = this.offsets;
    offs.length = 0;
    try {
      for (const [k, v] of entries) if (!only || only.has(k)) offs.push(this.field(k, v));
    } catch (err) {
      this.b.clear(); // drop the refused message's partial bytes
      throw err;
    }
    const b = this.b;
    b.startVector(4, offs.length, 4);
    for (let i = offs.length - 1; i >= 0; i--) b.addOffset(offs[i]!);
    return b.endVector();
  }

  private strings(list: readonly string[]): Offset {
    const offs = list.map((s) => this.b.createString(s));
    return fb.Subscribe.createTopicsVector(this.b, offs);
  }

  /** Any message from its plain-object form (a Welcome always carries this build's PROTOCOL_VERSION). */
  message(m: AnyMessage): Uint8Array {
    switch (m.type) {
      case 'hello':
        return this.hello(m.protocol, m.client, m.token);
      case 'welcome':
        return this.welcome(m.server, m.heartbeatMs, m.maxFrame, m.rateTiers, m.protocol);
      case 'subscribe':
        return this.subscribe(m.id, m.topics, m.maxRate, m.fields, m.resume, m.timestamps, m.tables, m.checksums);
      case 'unsubscribe':
        return this.unsubscribe(m.id);
      case 'publish':
        return this.publish(m.id, m.topic, m.changes, m.keyed);
      case 'catchUp':
        return this.catchUp(m.topic, m.epoch, m.version);
      case 'pause':
        return this.pause(m.id);
      case 'resume':
        return this.resume(m.id);
      case 'ping':
        return this.ping(m.nonce);
      case 'pong':
        return this.pong(m.nonce);
      case 'snapshot':
        return this.snapshot(m.topic, m.epoch, m.version, m.fields, m.ts);
      case 'delta':
        return this.delta(m.topic, m.epoch, m.base, m.version, m.updates, m.changes, m.ts);
      case 'topicStatus':
        return this.topicStatus(m.topic, m.state, m.epoch, m.version);
      case 'ack':
        return this.ack(m.id, m.topic, m.epoch, m.version, m.count);
      case 'error':
        return this.error(m.code, m.id, m.topic, m.message);
      case 'heartbeat':
        return this.heartbeat(m.time, m.versions);
      case 'snapshot2':
      case 'delta2':
        return this.fromEntries(m);
      case 'keyedSnapshot2':
      case 'keyedDelta2':
        return (this.keyed ??= new KeyedEncoder()).message(m);
      case 'keyedSnapshot':
      case 'keyedDelta':
        throw new TickfanError(ErrorCode.UNKNOWN_MESSAGE, `${m.type} is a resolved message: it travels as keyedSnapshot2 / keyedDelta2 or JSON`);
      case 'serve':
        return this.serve(m.id, m.service);
      case 'unserve':
        return this.unserve(m.id);
      case 'request':
        return this.request(m.id, m.service, m.payload, m.timeoutMs);
      case 'serviceRequest':
        return this.serviceRequest(m.correlation, m.serveId, m.service, m.requester, m.payload, m.timeoutMs);
      case 'reply':
        return this.reply(m.correlation, m.payload, m.failed, m.error);
      case 'response':
        return this.response(m.id, m.code, m.message, m.payload, m.responder);
    }
  }

  // ---------------------------------------------------------------- request-reply

  /** A payload's two vectors: fields (0 when bytes) and data (0 when fields). */
  private payload(p: Payload): [Offset, Offset] {
    if (p.data !== null) return [0, this.b.createByteVector(p.data)];
    return [this.fields(p.fields), 0];
  }

  serve(id: number, service: string): Uint8Array {
    const s = this.b.createString(service);
    return this.finish(fb.Body.Serve, fb.Serve.createServe(this.b, id, s));
  }

  unserve(id: number): Uint8Array {
    return this.finish(fb.Body.Unserve, fb.Unserve.createUnserve(this.b, id));
  }

  request(id: number, service: string, payload: Payload, timeoutMs: number): Uint8Array {
    const s = this.b.createString(service);
    const [f, d] = this.payload(payload);
    return this.finish(fb.Body.Request, fb.Request.createRequest(this.b, id, s, f, d, timeoutMs));
  }

  serviceRequest(correlation: number, serveId: number, service: string, requester: string, payload: Payload, timeoutMs: number): Uint8Array {
    const b = this.b;
    const s = b.createString(service);
    const r = b.createString(requester);
    const [f, d] = this.payload(payload);
    return this.finish(fb.Body.ServiceRequest, fb.ServiceRequest.createServiceRequest(b, u64(correlation), serveId, s, r, f, d, timeoutMs));
  }

  reply(correlation: number, payload: Payload, failed: boolean, error: string): Uint8Array {
    const b = this.b;
    const [f, d] = this.payload(payload);
    const e = error ? b.createString(error) : 0;
    return this.finish(fb.Body.Reply, fb.Reply.createReply(b, u64(correlation), f, d, failed, e));
  }

  response(id: number, code: number, message: string, payload: Payload, responder: string): Uint8Array {
    const b = this.b;
    const m = message ? b.createString(message) : 0;
    const [f, d] = this.payload(payload);
    const r = responder ? b.createString(responder) : 0;
    return this.finish(fb.Body.Response, fb.Response.createResponse(b, id, code, m, f, d, r));
  }

  hello(protocol: number, client: string, token: string): Uint8Array {
    const c = this.b.createString(client);
    const t = this.b.createString(token);
    return this.finish(fb.Body.Hello, fb.Hello.createHello(this.b, protocol, c, t));
  }

  /** `protocol`: the protocol of the frames that follow this Welcome's frame. */
  welcome(server: string, heartbeatMs: number, maxFrame: number, rateTiers: readonly number[], protocol = PROTOCOL_VERSION): Uint8Array {
    const s = this.b.createString(server);
    const r = fb.Welcome.createRateTiersVector(this.b, [...rateTiers]);
    return this.finish(fb.Body.Welcome, fb.Welcome.createWelcome(this.b, protocol, s, heartbeatMs, maxFrame, r, MAX_PROTOCOL));
  }

  subscribe(
    id: number,
    topics: readonly string[],
    maxRate: number,
    fields: readonly string[],
    resume: readonly ResumePoint[],
    timestamps = false,
    tables?: readonly TableViewRequest[],
    checksums = false,
  ): Uint8Array {
    const b = this.b;
    const t = this.strings(topics);
    const f = fields.length ? this.strings(fields) : 0;
    let r = 0;
    if (resume.length) {
      const offs = resume.map((p) => fb.ResumePoint.createResumePoint(b, b.createString(p.topic), u64(p.epoch), u64(p.version)));
      r = fb.Subscribe.createResumeVector(b, offs);
    }
    const tv = tableViewsVector(b, tables);
    return this.finish(fb.Body.Subscribe, fb.Subscribe.createSubscribe(b, id, t, maxRate, f, r, timestamps, tv, checksums));
  }

  unsubscribe(id: number): Uint8Array {
    return this.finish(fb.Body.Unsubscribe, fb.Unsubscribe.createUnsubscribe(this.b, id));
  }

  /** `keyed`: a keyed batch (declarations and row ops), one version with `changes`. */
  publish(id: number, topic: string, changes: FieldEntries, keyed?: KeyedBatchMsg): Uint8Array {
    const t = this.b.createString(topic);
    const f = this.fields(changes);
    const [tables, ops] = keyed ? publishKeyed(this.b, this.pack, keyed) : [0, 0];
    return this.finish(fb.Body.Publish, fb.Publish.createPublish(this.b, id, t, f, tables, ops));
  }

  catchUp(topic: string, epoch: number, version: number): Uint8Array {
    const t = this.b.createString(topic);
    return this.finish(fb.Body.CatchUp, fb.CatchUp.createCatchUp(this.b, t, u64(epoch), u64(version)));
  }

  pause(id: number): Uint8Array {
    return this.finish(fb.Body.Pause, fb.Pause.createPause(this.b, id));
  }

  resume(id: number): Uint8Array {
    return this.finish(fb.Body.Resume, fb.Resume.createResume(this.b, id));
  }

  ping(nonce: bigint): Uint8Array {
    return this.finish(fb.Body.Ping, fb.Ping.createPing(this.b, nonce));
  }

  pong(nonce: bigint): Uint8Array {
    return this.finish(fb.Body.Pong, fb.Pong.createPong(this.b, nonce));
  }

  snapshot(topic: string, epoch: number, version: number, state: FieldEntries, ts: number, only?: ReadonlySet<string>): Uint8Array {
    const t = this.b.createString(topic);
    const f = this.fields(state, only);
    return this.finish(fb.Body.Snapshot, fb.Snapshot.createSnapshot(this.b, t, u64(epoch), u64(version), f, ts));
  }

  delta(
    topic: string,
    epoch: number,
    base: number,
    version: number,
    updates: number,
    changes: FieldEntries,
    ts: number,
    only?: ReadonlySet<string>,
  ): Uint8Array {
    const t = this.b.createString(topic);
    const f = this.fields(changes, only);
    return this.finish(fb.Body.Delta, fb.Delta.createDelta(this.b, t, u64(epoch), u64(base), u64(version), updates, f, ts));
  }

  /** Packed entries of `entries` (restricted to `only`) into the builder; names for ids ≥ namesFrom. */
  private packed(t: TopicRef, entries: FieldEntries, namesFrom: number, only?: ReadonlySet<string>): Offset {
    const w = this.pack;
    w.reset();
    // A Map by keys() + get(): no [name, value] array per field (this runs once per publish).
    if (entries instanceof Map) for (const name of entries.keys()) this.packEntry(t, name, entries.get(name)!, namesFrom, only);
    else for (const [name, v] of entries) this.packEntry(t, name, v, namesFrom, only);
    return createByteVectorOf(this.b, w.bytes, w.length);
  }

  private packEntry(t: TopicRef, name: string, v: FieldValue | null, namesFrom: number, only?: ReadonlySet<string>): void {
    if (only && !only.has(name)) return;
    const id = t.fieldId(name);
    this.pack.entry(id, name, id >= namesFrom, v);
  }

  /** A protocol-2 message from decoded entries as they are (ids and names kept): tests and tools. */
  private fromEntries(m: Snapshot2Msg | Delta2Msg): Uint8Array {
    const b = this.b;
    const w = this.pack;
    w.reset();
    for (const e of m.entries) w.entry(e.id, e.name ?? '', e.name !== undefined, e.value);
    const packed = b.createByteVector(w.take());
    const name = m.topic !== null ? b.createString(m.topic) : 0;
    const hi = Math.floor(m.version / TWO_32);
    if (m.type === 'snapshot2') {
      return this.finishBare(MessageKind.SNAPSHOT2, fb.Snapshot2.createSnapshot2(b, m.topicId, m.version % TWO_32, packed, name, u64(m.epoch), hi, m.ts));
    }
    fb.Delta2.startDelta2(b);
    fb.Delta2.addTs(b, m.ts);
    fb.Delta2.addEpoch(b, u64(m.epoch));
    fb.Delta2.addTopicId(b, m.topicId);
    fb.Delta2.addVersion(b, m.version % TWO_32);
    fb.Delta2.addChanges(b, packed);
    // Span 1 is the default; written anyway, harmless for tools. Only the
    // scalar is forced: a forced absent topic would be written as offset 0.
    b.forceDefaults(true);
    fb.Delta2.addSpan(b, m.version - m.base);
    b.forceDefaults(false);
    fb.Delta2.addVersionHi(b, hi);
    if (name) fb.Delta2.addTopic(b, name);
    return this.finishBare(MessageKind.DELTA2, fb.Delta2.endDelta2(b));
  }

  /** Protocol 2: the whole state, binding t.id to its name and epoch; every entry named. */
  snapshot2(t: TopicRef, version: number, state: FieldEntries, ts: number, only?: ReadonlySet<string>): Uint8Array {
    const b = this.b;
    const values = this.packed(t, state, 1, only);
    const name = b.createString(t.name);
    const hi = Math.floor(version / TWO_32);
    return this.finishBare(MessageKind.SNAPSHOT2, fb.Snapshot2.createSnapshot2(b, t.id, version % TWO_32, values, name, u64(t.epoch), hi, ts));
  }

  /** Protocol 2: from `base` to `version` (span = version − base publishes merged). */
  delta2(t: TopicRef, base: number, version: number, changes: FieldEntries, o: Delta2Options, only?: ReadonlySet<string>): Uint8Array {
    return this.finishBare(MessageKind.DELTA2, this.delta2Root(t, base, version, changes, o, only));
  }

  /** delta2() written into `sink` (fan-out's per-turn stage) instead of a fresh array; returns where it starts there. */
  delta2Into(sink: ByteSink, t: TopicRef, base: number, version: number, changes: FieldEntries, o: Delta2Options, only?: ReadonlySet<string>): number {
    return finishBareInto(this.b, MessageKind.DELTA2, this.delta2Root(t, base, version, changes, o, only), sink);
  }

  private delta2Root(t: TopicRef, base: number, version: number, changes: FieldEntries, o: Delta2Options, only?: ReadonlySet<string>): Offset {
    const b = this.b;
    const packed = this.packed(t, changes, o.namesFrom, only);
    const name = o.bind ? b.createString(t.name) : 0;
    const hi = Math.floor(version / TWO_32);
    const epoch = o.bind ? u64(t.epoch) : 0n;
    const span = version - base;
    fb.Delta2.startDelta2(b);
    // Scalars first by size: the table stays as small as FlatBuffers allows.
    if (o.ts !== undefined) fb.Delta2.addTs(b, o.ts);
    if (o.bind) fb.Delta2.addEpoch(b, epoch);
    fb.Delta2.addTopicId(b, t.id);
    fb.Delta2.addVersion(b, version % TWO_32);
    fb.Delta2.addChanges(b, packed);
    if (span !== 1) {
      b.forceDefaults(true);
      fb.Delta2.addSpan(b, span);
      b.forceDefaults(false);
    }
    if (hi) fb.Delta2.addVersionHi(b, hi);
    if (name) fb.Delta2.addTopic(b, name);
    return fb.Delta2.endDelta2(b);
  }

  topicStatus(topic: string, state: TopicState, epoch: number, version: number): Uint8Array {
    const t = this.b.createString(topic);
    return this.finish(fb.Body.TopicStatus, fb.TopicStatus.createTopicStatus(this.b, t, state, u64(epoch), u64(version)));
  }

  ack(id: number, topic: string, epoch: number, version: number, count: number): Uint8Array {
    const t = topic ? this.b.createString(topic) : 0;
    return this.finish(fb.Body.Ack, fb.Ack.createAck(this.b, id, t, u64(epoch), u64(version), count));
  }

  error(code: number, id: number, topic: string, message: string): Uint8Array {
    const t = topic ? this.b.createString(topic) : 0;
    const m = this.b.createString(message);
    return this.finish(fb.Body.Error, fb.Error.createError(this.b, code, id, t, m));
  }

  heartbeat(time: number, versions: readonly ResumePoint[]): Uint8Array {
    const b = this.b;
    const offs = versions.map((p) => fb.TopicVersion.createTopicVersion(b, b.createString(p.topic), u64(p.epoch), u64(p.version)));
    const v = fb.Heartbeat.createVersionsVector(b, offs);
    return this.finish(fb.Body.Heartbeat, fb.Heartbeat.createHeartbeat(b, time, v));
  }
}
