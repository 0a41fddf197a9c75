// Encodes and decodes tickfan messages and frames around the generated
// FlatBuffers code. Pure: no I/O. One Encoder (one reused Builder) per hot path.

import { Builder, ByteBuffer, type Offset } from 'flatbuffers';
import * as fb from './generated/tickfan.js';
import { ErrorCode, TickfanError } from './codes.js';
import type { Changes, FieldValue, State } from './values.js';
import { UnknownTypeError, verifyMessage } from './verify.js';
import type { AnyMessage, ResumePoint, TopicState } from './messages.js';

/** The protocol version this build speaks, exchanged in Hello / Welcome. */
export const PROTOCOL_VERSION = 1;

/** Bytes before the first message of a server frame (the u64 sequence). */
export const SERVER_FRAME_HEADER = 8;

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

function u64(n: number): bigint {
  return BigInt(n);
}

function num(n: bigint): number {
  return n > MAX_SAFE ? Number.MAX_SAFE_INTEGER : Number(n);
}

type FieldEntries = Iterable<readonly [string, FieldValue | null]>;

/**
 * Builds size-prefixed messages with one reused Builder. Every method returns
 * a fresh Uint8Array the caller owns (safe to cache and share between sockets).
 */
export class Encoder {
  private readonly b: Builder;
  private offsets: Offset[] = [];

  constructor(initialSize = 4096) {
    this.b = new Builder(initialSize);
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

  private field(name: string, v: FieldValue | null): Offset {
    // Checked before touching the builder, so a refused value cannot leave it mid-object.
    if (typeof v === 'bigint' && (v < INT64_MIN || v > INT64_MAX)) {
      throw new TickfanError(ErrorCode.BAD_FIELD, `field ${name}: integer out of 64-bit range`);
    }
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

  hello(protocol: number, client: string, token: string): Uint8Array {
    const c = this.b.createString(client);
    const t = this.b.createString(token);
    return this.finish(fb.Body.Hello, fb.Hello.createHello(this.b, protocol, c, t));
  }

  welcome(server: string, heartbeatMs: number, maxFrame: number, rateTiers: readonly number[]): Uint8Array {
    const s = this.b.createString(server);
    const r = fb.Welcome.createRateTiersVector(this.b, [...rateTiers]);
    return this.finish(fb.Body.Welcome, fb.Welcome.createWelcome(this.b, PROTOCOL_VERSION, s, heartbeatMs, maxFrame, r));
  }

  subscribe(id: number, topics: readonly string[], maxRate: number, fields: readonly string[], resume: readonly ResumePoint[]): Uint8Array {
    const b = this.b;
    const t = this.strings(topics);
    const f = fields.length ? this.strings(fields) : 0;
    let r = 0;
    if (resume.length) {
      const offs = resume.map((p) => fb.ResumePoint.createResumePoint(b, b.createString(p.topic), u64(p.epoch), u64(p.version)));
      r = fb.Subscribe.createResumeVector(b, offs);
    }
    return this.finish(fb.Body.Subscribe, fb.Subscribe.createSubscribe(b, id, t, maxRate, f, r));
  }

  unsubscribe(id: number): Uint8Array {
    return this.finish(fb.Body.Unsubscribe, fb.Unsubscribe.createUnsubscribe(this.b, id));
  }

  publish(id: number, topic: string, changes: FieldEntries): Uint8Array {
    const t = this.b.createString(topic);
    const f = this.fields(changes);
    return this.finish(fb.Body.Publish, fb.Publish.createPublish(this.b, id, t, f));
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

// ---------------------------------------------------------------- decoding

function decodeValue(f: fb.Field): FieldValue | null {
  switch (f.kind()) {
    case fb.ValueKind.Delete:
      return null;
    case fb.ValueKind.Float:
      return f.f();
    case fb.ValueKind.Int: {
      const i = f.i();
      return i >= -MAX_SAFE && i <= MAX_SAFE ? Number(i) : i;
    }
    case fb.ValueKind.String:
      return f.s() ?? '';
    case fb.ValueKind.Bool:
      return f.b();
    case fb.ValueKind.Bytes:
      return f.dataArray()?.slice() ?? new Uint8Array(0);
    default:
      throw new TickfanError(ErrorCode.BAD_FIELD, `field ${f.name()}: unknown value kind ${f.kind()}`);
  }
}


const scratchField = new fb.Field();

function readFields(len: number, at: (i: number, obj: fb.Field) => fb.Field | null, deletes: boolean): Map<string, FieldValue | null> {
  const m = new Map<string, FieldValue | null>();
  for (let i = 0; i < len; i++) {
    const f = at(i, scratchField)!;
    const v = decodeValue(f);
    if (v === null && !deletes) continue;
    m.set(f.name()!, v);
  }
  return m;
}

function stringList(len: number, at: (i: number) => string): string[] {
  const out: string[] = [];
  for (let i = 0; i < len; i++) out.push(at(i));
  return out;
}

/** Decodes one verified Message (without its size prefix). */
function decodeOne(bytes: Uint8Array): AnyMessage {
  const bb = new ByteBuffer(bytes);
  const msg = fb.Message.getRootAsMessage(bb);
  switch (msg.bodyType()) {
    case fb.Body.Hello: {
      const h = msg.body(new fb.Hello()) as fb.Hello;
      return { type: 'hello', protocol: h.protocol(), client: h.client() ?? '', token: h.token() ?? '' };
    }
    case fb.Body.Welcome: {
      const w = msg.body(new fb.Welcome()) as fb.Welcome;
      return {
        type: 'welcome',
        protocol: w.protocol(),
        server: w.server() ?? '',
        heartbeatMs: w.heartbeatMs(),
        maxFrame: w.maxFrame(),
        // Read element by element: rateTiersArray() builds a Float32Array view,
        // which throws when the frame does not start 4-byte aligned (ws slices).
        rateTiers: Array.from({ length: w.rateTiersLength() }, (_, i) => w.rateTiers(i)!),
      };
    }
    case fb.Body.Subscribe: {
      const s = msg.body(new fb.Subscribe()) as fb.Subscribe;
      const resume: ResumePoint[] = [];
      for (let i = 0; i < s.resumeLength(); i++) {
        const r = s.resume(i)!;
        resume.push({ topic: r.topic()!, epoch: num(r.epoch()), version: num(r.version()) });
      }
      return {
        type: 'subscribe',
        id: s.id(),
        topics: stringList(s.topicsLength(), (i) => s.topics(i)),
        maxRate: s.maxRate(),
        fields: stringList(s.fieldsLength(), (i) => s.fields(i)),
        resume,
      };
    }
    case fb.Body.Unsubscribe:
      return { type: 'unsubscribe', id: (msg.body(new fb.Unsubscribe()) as fb.Unsubscribe).id() };
    case fb.Body.Publish: {
      const p = msg.body(new fb.Publish()) as fb.Publish;
      return { type: 'publish', id: p.id(), topic: p.topic()!, changes: readFields(p.fieldsLength(), (i, o) => p.fields(i, o), true) };
    }
    case fb.Body.CatchUp: {
      const c = msg.body(new fb.CatchUp()) as fb.CatchUp;
      return { type: 'catchUp', topic: c.topic()!, epoch: num(c.epoch()), version: num(c.version()) };
    }
    case fb.Body.Pause:
      return { type: 'pause', id: (msg.body(new fb.Pause()) as fb.Pause).id() };
    case fb.Body.Resume:
      return { type: 'resume', id: (msg.body(new fb.Resume()) as fb.Resume).id() };
    case fb.Body.Ping:
      return { type: 'ping', nonce: (msg.body(new fb.Ping()) as fb.Ping).nonce() };
    case fb.Body.Pong:
      return { type: 'pong', nonce: (msg.body(new fb.Pong()) as fb.Pong).nonce() };
    case fb.Body.Snapshot: {
      const s = msg.body(new fb.Snapshot()) as fb.Snapshot;
      return {
        type: 'snapshot',
        topic: s.topic()!,
        epoch: num(s.epoch()),
        version: num(s.version()),
        fields: readFields(s.fieldsLength(), (i, o) => s.fields(i, o), false) as State,
        ts: s.ts(),
      };
    }
    case fb.Body.Delta: {
      const d = msg.body(new fb.Delta()) as fb.Delta;
      return {
        type: 'delta',
        topic: d.topic()!,
        epoch: num(d.epoch()),
        base: num(d.base()),
        version: num(d.version()),
        updates: d.updates(),
        changes: readFields(d.changesLength(), (i, o) => d.changes(i, o), true) as Changes,
        ts: d.ts(),
      };
    }
    case fb.Body.TopicStatus: {
      const t = msg.body(new fb.TopicStatus()) as fb.TopicStatus;
      return { type: 'topicStatus', topic: t.topic()!, state: t.state() as TopicState, epoch: num(t.epoch()), version: num(t.version()) };
    }
    case fb.Body.Ack: {
      const a = msg.body(new fb.Ack()) as fb.Ack;
      return { type: 'ack', id: a.id(), topic: a.topic() ?? '', epoch: num(a.epoch()), version: num(a.version()), count: a.count() };
    }
    case fb.Body.Error: {
      const e = msg.body(new fb.Error()) as fb.Error;
      return { type: 'error', code: e.code(), id: e.id(), topic: e.topic() ?? '', message: e.message() ?? '' };
    }
    case fb.Body.Heartbeat: {
      const h = msg.body(new fb.Heartbeat()) as fb.Heartbeat;
      const versions: ResumePoint[] = [];
      for (let i = 0; i < h.versionsLength(); i++) {
        const v = h.versions(i)!;
        versions.push({ topic: v.topic()!, epoch: num(v.epoch()), version: num(v.version()) });
      }
      return { type: 'heartbeat', time: h.time(), versions };
    }
    default:
      throw new TickfanError(ErrorCode.UNKNOWN_MESSAGE, `unknown message type ${msg.bodyType()}`);
  }
}

/** Decodes one Message after checking every offset in it. */
export function decodeMessage(bytes: Uint8Array): AnyMessage {
  try {
    verifyMessage(bytes);
  } catch (err) {
    if (err instanceof UnknownTypeError) throw new TickfanError(ErrorCode.UNKNOWN_MESSAGE, err.message, { cause: err });
    throw new TickfanError(ErrorCode.BAD_FRAME, `malformed message: ${(err as Error).message}`, { cause: err });
  }
  try {
    return decodeOne(bytes);
  } catch (err) {
    if (err instanceof TickfanError) throw err;
    throw new TickfanError(ErrorCode.BAD_FRAME, `malformed message: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Splits a run of size-prefixed messages starting at `offset`. Calls `each`
 * with every message body in order; throws BAD_FRAME on a bad prefix.
 */
export function splitMessages(frame: Uint8Array, offset: number, each: (msg: Uint8Array) => void): void {
  const v = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  let at = offset;
  if (at >= frame.byteLength) throw new TickfanError(ErrorCode.BAD_FRAME, 'empty frame: expected at least one size-prefixed message');
  while (at < frame.byteLength) {
    if (at + 4 > frame.byteLength) throw new TickfanError(ErrorCode.BAD_FRAME, `truncated size prefix at byte ${at}`);
    const size = v.getUint32(at, true);
    if (size === 0 || at + 4 + size > frame.byteLength) {
      throw new TickfanError(ErrorCode.BAD_FRAME, `size prefix ${size} at byte ${at} runs past the frame (${frame.byteLength} bytes)`);
    }
    each(frame.subarray(at + 4, at + 4 + size));
    at += 4 + size;
  }
}

/** Reads the sequence number of a server frame. */
export function frameSeq(frame: Uint8Array): number {
  if (frame.byteLength < SERVER_FRAME_HEADER) throw new TickfanError(ErrorCode.BAD_FRAME, 'server frame shorter than its header');
  const v = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  return v.getUint32(0, true) + v.getUint32(4, true) * 2 ** 32;
}

/** Decodes a whole server frame: its sequence number and messages. */
export function decodeServerFrame(frame: Uint8Array): { seq: number; messages: AnyMessage[] } {
  const seq = frameSeq(frame);
  const messages: AnyMessage[] = [];
  splitMessages(frame, SERVER_FRAME_HEADER, (m) => messages.push(decodeMessage(m)));
  return { seq, messages };
}

/** Concatenates size-prefixed messages into one client frame. */
export function clientFrame(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  let n = 0;
  for (const p of parts) n += p.byteLength;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) out.set(p, at), (at += p.byteLength);
  return out;
}

/**
 * Writes a server frame (sequence + messages) into `scratch`, growing it when
 * needed, and returns the view to send. The view is only valid until the next
 * call: uWebSockets.js copies it on send.
 */
export class FrameWriter {
  private buf = new Uint8Array(64 * 1024);
  private view = new DataView(this.buf.buffer);

  write(seq: number, parts: readonly Uint8Array[], count = parts.length): Uint8Array {
    let n = SERVER_FRAME_HEADER;
    for (let i = 0; i < count; i++) n += parts[i]!.byteLength;
    if (n > this.buf.byteLength) {
      this.buf = new Uint8Array(Math.max(n, this.buf.byteLength * 2));
      this.view = new DataView(this.buf.buffer);
    }
    this.view.setUint32(0, seq >>> 0, true);
    this.view.setUint32(4, Math.floor(seq / 2 ** 32), true);
    let at = SERVER_FRAME_HEADER;
    for (let i = 0; i < count; i++) {
      const p = parts[i]!;
      this.buf.set(p, at);
      at += p.byteLength;
    }
    return this.buf.subarray(0, n);
  }
}

