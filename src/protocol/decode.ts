// Decodes size-prefix-stripped FlatBuffers messages into the plain objects of
// messages.ts, after the verifier has checked every offset. Pure: no I/O.

import { ByteBuffer } from 'flatbuffers';
import * as fb from './generated/tickfan.js';
import { ErrorCode, TickfanError } from './codes.js';
import { MessageKind } from './kinds.js';
import type { AnyMessage, Delta2Msg, Payload, ResumePoint, Snapshot2Msg, TopicState } from './messages.js';
import { readPacked } from './packed.js';
import type { Changes, FieldValue, State } from './values.js';
import { DELTA2, KEYED_DELTA2, KEYED_SNAPSHOT2, SNAPSHOT2, UnknownTypeError, verifyMessage, type TableSpec } from './verify.js';
import { decodeKeyedBody2, decodeKeyedDelta2, decodeKeyedSnapshot2, keyedBatchOf, tableViewsOf } from './keyed-decode.js';

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

const TWO_32 = 2 ** 32;
const EMPTY = new Uint8Array(0);

function num(n: bigint): number {
  return n > MAX_SAFE ? Number.MAX_SAFE_INTEGER : Number(n);
}

/** A generated table: its buffer and position (for reading 64-bit fields without a BigInt). */
interface Table {
  bb: ByteBuffer | null;
  bb_pos: number;
}

/**
 * An unsigned 64-bit field at vtable `slot` as a number (past 2^53 - 1:
 * 2^53 - 1, as num() does), read as two 32-bit halves: the generated
 * accessor would make a BigInt for every version, epoch and base.
 */
function u64(t: Table, slot: number): number {
  const bb = t.bb!;
  const o = bb.__offset(t.bb_pos, slot);
  if (!o) return 0;
  const at = t.bb_pos + o;
  const hi = bb.readUint32(at + 4);
  return hi < 0x200000 ? hi * TWO_32 + bb.readUint32(at) : Number.MAX_SAFE_INTEGER;
}

/** Field.i (vtable slot 10): a number when it is a safe integer, else a bigint — only then is a BigInt made. */
function fieldInt(f: fb.Field): number | bigint {
  const bb = f.bb!;
  const o = bb.__offset(f.bb_pos, 10);
  if (!o) return 0;
  const at = f.bb_pos + o;
  const hi = bb.readInt32(at + 4);
  if (hi >= -0x200000 && hi < 0x200000) {
    const v = hi * TWO_32 + bb.readUint32(at);
    if (v >= -Number.MAX_SAFE_INTEGER) return v;
  }
  return bb.readInt64(at);
}

function decodeValue(f: fb.Field): FieldValue | null {
  switch (f.kind()) {
    case fb.ValueKind.Delete:
      return null;
    case fb.ValueKind.Float:
      return f.f();
    case fb.ValueKind.Int:
      return fieldInt(f);
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

/** Subscribe's keyed parts, only when present (plain subscriptions decode as before). */
function keyedViews(s: fb.Subscribe): { tables?: ReturnType<typeof tableViewsOf>; checksums?: boolean } {
  const tables = tableViewsOf(s);
  const out: { tables?: ReturnType<typeof tableViewsOf>; checksums?: boolean } = {};
  if (tables) out.tables = tables;
  if (s.checksums()) out.checksums = true;
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
        maxProtocol: Math.max(1, w.maxProtocol()),
      };
    }
    case fb.Body.Subscribe: {
      const s = msg.body(new fb.Subscribe()) as fb.Subscribe;
      const resume: ResumePoint[] = [];
      for (let i = 0; i < s.resumeLength(); i++) {
        const r = s.resume(i)!;
        resume.push({ topic: r.topic()!, epoch: u64(r, 6), version: u64(r, 8) });
      }
      return {
        type: 'subscribe',
        id: s.id(),
        topics: stringList(s.topicsLength(), (i) => s.topics(i)),
        maxRate: s.maxRate(),
        fields: stringList(s.fieldsLength(), (i) => s.fields(i)),
        resume,
        timestamps: s.timestamps(),
        ...keyedViews(s),
      };
    }
    case fb.Body.Unsubscribe:
      return { type: 'unsubscribe', id: (msg.body(new fb.Unsubscribe()) as fb.Unsubscribe).id() };
    case fb.Body.Publish: {
      const p = msg.body(new fb.Publish()) as fb.Publish;
      const keyed = keyedBatchOf(p);
      const changes = readFields(p.fieldsLength(), (i, o) => p.fields(i, o), true);
      return keyed ? { type: 'publish', id: p.id(), topic: p.topic()!, changes, keyed } : { type: 'publish', id: p.id(), topic: p.topic()!, changes };
    }
    case fb.Body.CatchUp: {
      const c = msg.body(new fb.CatchUp()) as fb.CatchUp;
      return { type: 'catchUp', topic: c.topic()!, epoch: u64(c, 6), version: u64(c, 8) };
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
        epoch: u64(s, 6),
        version: u64(s, 8),
        fields: readFields(s.fieldsLength(), (i, o) => s.fields(i, o), false) as State,
        ts: s.ts(),
      };
    }
    case fb.Body.Delta: {
      const d = msg.body(new fb.Delta()) as fb.Delta;
      return {
        type: 'delta',
        topic: d.topic()!,
        epoch: u64(d, 6),
        base: u64(d, 8),
        version: u64(d, 10),
        updates: d.updates(),
        changes: readFields(d.changesLength(), (i, o) => d.changes(i, o), true) as Changes,
        ts: d.ts(),
      };
    }
    case fb.Body.TopicStatus: {
      const t = msg.body(new fb.TopicStatus()) as fb.TopicStatus;
      return { type: 'topicStatus', topic: t.topic()!, state: t.state() as TopicState, epoch: u64(t, 8), version: u64(t, 10) };
    }
    case fb.Body.Ack: {
      const a = msg.body(new fb.Ack()) as fb.Ack;
      return { type: 'ack', id: a.id(), topic: a.topic() ?? '', epoch: u64(a, 8), version: u64(a, 10), count: a.count() };
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
        versions.push({ topic: v.topic()!, epoch: u64(v, 6), version: u64(v, 8) });
      }
      return { type: 'heartbeat', time: h.time(), versions };
    }
    case fb.Body.Serve: {
      const v = msg.body(new fb.Serve()) as fb.Serve;
      return { type: 'serve', id: v.id(), service: v.service()! };
    }
    case fb.Body.Unserve:
      return { type: 'unserve', id: (msg.body(new fb.Unserve()) as fb.Unserve).id() };
    case fb.Body.Request: {
      const r = msg.body(new fb.Request()) as fb.Request;
      return { type: 'request', id: r.id(), service: r.service()!, payload: payloadOf(r), timeoutMs: r.timeoutMs() };
    }
    case fb.Body.ServiceRequest: {
      const r = msg.body(new fb.ServiceRequest()) as fb.ServiceRequest;
      return {
        type: 'serviceRequest',
        correlation: num(r.correlation()),
        serveId: r.serveId(),
        service: r.service()!,
        requester: r.requester() ?? '',
        payload: payloadOf(r),
        timeoutMs: r.timeoutMs(),
      };
    }
    case fb.Body.Reply: {
      const r = msg.body(new fb.Reply()) as fb.Reply;
      return { type: 'reply', correlation: num(r.correlation()), payload: payloadOf(r), failed: r.failed(), error: r.error() ?? '' };
    }
    case fb.Body.Response: {
      const r = msg.body(new fb.Response()) as fb.Response;
      return { type: 'response', id: r.id(), code: r.code(), message: r.message() ?? '', payload: payloadOf(r), responder: r.responder() ?? '' };
    }
    default:
      throw new TickfanError(ErrorCode.UNKNOWN_MESSAGE, `unknown message type ${msg.bodyType()}`);
  }
}

/** version_hi * 2^32 + version, refused past 2^53 (it would not be exact: versions are kept below it). */
function version2(hi: number, lo: number): number {
  const v = hi * TWO_32 + lo;
  if (v > Number.MAX_SAFE_INTEGER) throw new TickfanError(ErrorCode.BAD_FRAME, `version ${hi} * 2^32 + ${lo} is past 2^53`);
  return v;
}

function decodeSnapshot2(bytes: Uint8Array): Snapshot2Msg {
  const s = fb.Snapshot2.getRootAsSnapshot2(new ByteBuffer(bytes));
  return {
    type: 'snapshot2',
    topicId: s.topicId(),
    topic: s.topic()!,
    epoch: u64(s, 12),
    version: version2(s.versionHi(), s.version()),
    entries: readPacked(s.valuesArray() ?? EMPTY),
    ts: s.ts(),
  };
}

function decodeDelta2(bytes: Uint8Array): Delta2Msg {
  const d = fb.Delta2.getRootAsDelta2(new ByteBuffer(bytes));
  const version = version2(d.versionHi(), d.version());
  const span = d.span();
  if (span > version) throw new TickfanError(ErrorCode.BAD_FRAME, `delta2 span ${span} is larger than its version ${version}`);
  return {
    type: 'delta2',
    topicId: d.topicId(),
    topic: d.topic(),
    epoch: u64(d, 16),
    base: version - span,
    version,
    updates: span,
    entries: readPacked(d.changesArray() ?? EMPTY),
    ts: d.ts(),
  };
}

/** A payload from a table with `fields` and `data`: bytes when `data` is present, else the field map. */
function payloadOf(t: { dataArray(): Uint8Array | null; fieldsLength(): number; fields(i: number, obj?: fb.Field): fb.Field | null }): Payload {
  const data = t.dataArray();
  if (data) {
    if (t.fieldsLength() > 0) throw new TickfanError(ErrorCode.BAD_REQUEST, 'a payload is fields or bytes, not both');
    return { fields: null, data: data.slice() };
  }
  return { fields: readFields(t.fieldsLength(), (i, o) => t.fields(i, o), true) as Changes, data: null };
}

/** Verifies, then decodes; any failure becomes a typed TickfanError. */
function checked<T>(bytes: Uint8Array, spec: TableSpec | undefined | null, decode: (b: Uint8Array) => T): T {
  try {
    // null: not FlatBuffers (kind 5: the decoder checks every length itself).
    if (spec !== null) verifyMessage(bytes, spec);
  } catch (err) {
    if (err instanceof UnknownTypeError) throw new TickfanError(ErrorCode.UNKNOWN_MESSAGE, err.message, { cause: err });
    throw new TickfanError(ErrorCode.BAD_FRAME, `malformed message: ${(err as Error).message}`, { cause: err });
  }
  try {
    return decode(bytes);
  } catch (err) {
    if (err instanceof TickfanError) throw err;
    throw new TickfanError(ErrorCode.BAD_FRAME, `malformed message: ${(err as Error).message}`, { cause: err });
  }
}

/** Decodes one Message after checking every offset in it. */
export function decodeMessage(bytes: Uint8Array): AnyMessage {
  return checked(bytes, undefined, decodeOne);
}

/** Decodes one message of a protocol-2 frame: its kind byte, then the root it names. */
export function decodeMessage2(bytes: Uint8Array): AnyMessage {
  if (bytes.byteLength === 0) throw new TickfanError(ErrorCode.BAD_FRAME, 'empty protocol-2 message');
  const body = bytes.subarray(1);
  switch (bytes[0]) {
    case MessageKind.MESSAGE:
      return decodeMessage(body);
    case MessageKind.SNAPSHOT2:
      return checked(body, SNAPSHOT2, decodeSnapshot2);
    case MessageKind.DELTA2:
      return checked(body, DELTA2, decodeDelta2);
    case MessageKind.KEYED_SNAPSHOT2:
      return checked(body, KEYED_SNAPSHOT2, decodeKeyedSnapshot2);
    case MessageKind.KEYED_DELTA2:
      return checked(body, KEYED_DELTA2, decodeKeyedDelta2);
    case MessageKind.KEYED_BODY2:
      return checked(body, null, decodeKeyedBody2);
    default:
      throw new TickfanError(ErrorCode.UNKNOWN_MESSAGE, `unknown protocol-2 message kind ${bytes[0]}`);
  }
}

/** Decodes a message as the Encoder made it (u32 size, then a Message or a protocol-2 kind and root). */
export function decodeEncoded(encoded: Uint8Array): AnyMessage {
  return (encoded[3]! & 0x80) !== 0 ? decodeMessage2(encoded.subarray(4)) : decodeMessage(encoded.subarray(4));
}
