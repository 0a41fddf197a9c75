// A protocol-1 client as an old SDK would be: it knows only the schema of
// before protocol 2 (tickfan-p1.ts, vendored, never regenerated), the
// flatbuffers runtime and the `ws` package — nothing of src/protocol. It
// encodes Hello / Subscribe / CatchUp / Publish / Pause / Resume / Ping in
// protocol-1 framing, checks and decodes every server frame (u64 seq +
// u32 size-prefixed Messages), counts sequence numbers as the SDK does (0 =
// published to many, counted), and keeps one replica per topic that takes a
// delta only when its base is the version held in the same epoch.
//
// Whatever does not parse as protocol 1 — a varint-framed protocol-2 frame, a
// Message with a body type the old schema does not have, an offset out of
// bounds — is recorded in `problems`; tests expect it to stay empty.

import { Builder, ByteBuffer, type Offset } from 'flatbuffers';
import WebSocket from 'ws';
import * as p1 from './tickfan-p1.js';

export type P1Value = number | bigint | string | boolean | Uint8Array;

export type P1Message =
  | { type: 'welcome'; protocol: number; server: string; heartbeatMs: number; maxFrame: number; rateTiers: number[] }
  | { type: 'snapshot'; topic: string; epoch: number; version: number; fields: Map<string, P1Value>; ts: number }
  | { type: 'delta'; topic: string; epoch: number; base: number; version: number; updates: number; changes: Map<string, P1Value | null>; ts: number }
  | { type: 'topicStatus'; topic: string; state: number; epoch: number; version: number }
  | { type: 'ack'; id: number; topic: string; epoch: number; version: number; count: number }
  | { type: 'error'; code: number; id: number; topic: string; message: string }
  | { type: 'heartbeat'; time: number; versions: { topic: string; epoch: number; version: number }[] }
  | { type: 'ping'; nonce: bigint }
  | { type: 'pong'; nonce: bigint };

export interface P1Frame {
  /** The frame's number on the connection (explicit, or implied when published). */
  seq: number;
  /** Sent to many connections at once (sequence field 0). */
  published: boolean;
  /** Bytes of the WebSocket message. */
  bytes: number;
  messages: P1Message[];
}

/** One snapshot or delta applied to a replica. */
export interface P1Applied {
  snapshot: boolean;
  epoch: number;
  base: number;
  version: number;
  updates: number;
  changes: Map<string, P1Value | null>;
  ts: number;
  /** The replica's state once it was applied. */
  state: Map<string, P1Value>;
}

export interface P1Replica {
  epoch: number;
  version: number;
  state: Map<string, P1Value>;
  /** Every snapshot and delta applied, in order. */
  applied: P1Applied[];
  /** A catch-up was asked for and has not arrived. */
  healing: boolean;
}

export interface SubscribeOpts {
  maxRate?: number;
  fields?: string[];
  resume?: { topic: string; epoch: number; version: number }[];
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** u64 on the wire → number (tickfan keeps versions and epochs below 2^53). */
function num(n: bigint): number {
  return Number(n);
}

// ------------------------------------------------------------------ encoding (client → server)

const b = new Builder(1024);

function finish(type: p1.Body, body: Offset): Uint8Array {
  b.finish(p1.Message.createMessage(b, type, body), undefined, true);
  const out = b.asUint8Array().slice();
  b.clear();
  return out;
}

function strings(list: readonly string[]): Offset {
  const offs = list.map((s) => b.createString(s));
  return p1.Subscribe.createTopicsVector(b, offs);
}

function field(name: string, v: P1Value | null): Offset {
  const n = b.createString(name);
  const s = typeof v === 'string' ? b.createString(v) : 0;
  const data = v instanceof Uint8Array ? p1.Field.createDataVector(b, v) : 0;
  p1.Field.startField(b);
  p1.Field.addName(b, n);
  if (v === null) {
    // kind Delete is the default
  } else if (typeof v === 'number') {
    if (Number.isSafeInteger(v) && !Object.is(v, -0)) {
      p1.Field.addKind(b, p1.ValueKind.Int);
      p1.Field.addI(b, BigInt(v));
    } else {
      p1.Field.addKind(b, p1.ValueKind.Float);
      b.forceDefaults(true);
      p1.Field.addF(b, v);
      b.forceDefaults(false);
    }
  } else if (typeof v === 'bigint') {
    p1.Field.addKind(b, p1.ValueKind.Int);
    p1.Field.addI(b, v);
  } else if (typeof v === 'string') {
    p1.Field.addKind(b, p1.ValueKind.String);
    p1.Field.addS(b, s);
  } else if (typeof v === 'boolean') {
    p1.Field.addKind(b, p1.ValueKind.Bool);
    p1.Field.addB(b, v);
  } else {
    p1.Field.addKind(b, p1.ValueKind.Bytes);
    p1.Field.addData(b, data);
  }
  return p1.Field.endField(b);
}

/** Size-prefixed protocol-1 client messages, made with the vendored schema only. */
export const encodeP1 = {
  hello(protocol: number, client = 'p1-compat', token = ''): Uint8Array {
    const c = b.createString(client);
    const t = b.createString(token);
    return finish(p1.Body.Hello, p1.Hello.createHello(b, protocol, c, t));
  },
  subscribe(id: number, topics: readonly string[], o: SubscribeOpts = {}): Uint8Array {
    const t = strings(topics);
    const f = o.fields?.length ? strings(o.fields) : 0;
    let r = 0;
    if (o.resume?.length) {
      const offs = o.resume.map((p) => p1.ResumePoint.createResumePoint(b, b.createString(p.topic), BigInt(p.epoch), BigInt(p.version)));
      r = p1.Subscribe.createResumeVector(b, offs);
    }
    return finish(p1.Body.Subscribe, p1.Subscribe.createSubscribe(b, id, t, o.maxRate ?? 0, f, r));
  },
  unsubscribe(id: number): Uint8Array {
    return finish(p1.Body.Unsubscribe, p1.Unsubscribe.createUnsubscribe(b, id));
  },
  publish(id: number, topic: string, changes: Record<string, P1Value | null>): Uint8Array {
    const t = b.createString(topic);
    const offs = Object.entries(changes).map(([k, v]) => field(k, v));
    const f = p1.Publish.createFieldsVector(b, offs);
    return finish(p1.Body.Publish, p1.Publish.createPublish(b, id, t, f));
  },
  catchUp(topic: string, epoch: number, version: number): Uint8Array {
    const t = b.createString(topic);
    return finish(p1.Body.CatchUp, p1.CatchUp.createCatchUp(b, t, BigInt(epoch), BigInt(version)));
  },
  pause(id: number): Uint8Array {
    return finish(p1.Body.Pause, p1.Pause.createPause(b, id));
  },
  resume(id: number): Uint8Array {
    return finish(p1.Body.Resume, p1.Resume.createResume(b, id));
  },
  ping(nonce: bigint): Uint8Array {
    return finish(p1.Body.Ping, p1.Ping.createPing(b, nonce));
  },
  pong(nonce: bigint): Uint8Array {
    return finish(p1.Body.Pong, p1.Pong.createPong(b, nonce));
  },
};

// ------------------------------------------------------------------ verifying (the old schema's shape)

type Slot =
  | { k: 'scalar'; size: 1 | 2 | 4 | 8 }
  | { k: 'string'; required?: boolean }
  | { k: 'vector'; elem: 1 | 4 }
  | { k: 'tables'; table: () => Spec }
  | { k: 'union' };
type Spec = readonly Slot[];

const u8: Slot = { k: 'scalar', size: 1 };
const u16: Slot = { k: 'scalar', size: 2 };
const u32: Slot = { k: 'scalar', size: 4 };
const u64: Slot = { k: 'scalar', size: 8 };
const str: Slot = { k: 'string' };
const reqStr: Slot = { k: 'string', required: true };

// Slot order is the field order of schemas/tickfan.fbs at baseline-9 (server → client tables only).
const FIELD: Spec = [reqStr, u8, u64, u64, str, u8, { k: 'vector', elem: 1 }];
const TOPIC_VERSION: Spec = [reqStr, u64, u64];
/** Server → client bodies of protocol 1, by Body type. */
const SERVER_BODIES = new Map<number, Spec>([
  [p1.Body.Welcome, [u16, str, u32, u32, { k: 'vector', elem: 4 }]],
  [p1.Body.Ping, [u64]],
  [p1.Body.Pong, [u64]],
  [p1.Body.Snapshot, [reqStr, u64, u64, { k: 'tables', table: () => FIELD }, u64]],
  [p1.Body.Delta, [reqStr, u64, u64, u64, u32, { k: 'tables', table: () => FIELD }, u64]],
  [p1.Body.TopicStatus, [reqStr, u8, u64, u64]],
  [p1.Body.Ack, [u32, str, u64, u64, u32]],
  [p1.Body.Error, [u16, u32, str, str]],
  [p1.Body.Heartbeat, [u64, { k: 'tables', table: () => TOPIC_VERSION }]],
]);

/** Bounds-checks one Message (without its size prefix) against the old schema; throws saying what is wrong. */
function verifyMessage(buf: Uint8Array): void {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const need = (at: number, n: number, what: string): void => {
    if (at < 0 || at + n > buf.byteLength) throw new Error(`${what} at byte ${at} (+${n}) runs past the message (${buf.byteLength} bytes)`);
  };
  const ref = (at: number, what: string): number => {
    need(at, 4, what);
    return at + v.getUint32(at, true);
  };
  const table = (pos: number, spec: Spec, what: string): void => {
    need(pos, 4, `${what} table`);
    const vt = pos - v.getInt32(pos, true);
    need(vt, 4, `${what} vtable`);
    const vtSize = v.getUint16(vt, true);
    const objSize = v.getUint16(vt + 2, true);
    if (vtSize < 4 || vtSize % 2) throw new Error(`${what}: bad vtable size ${vtSize}`);
    need(vt, vtSize, `${what} vtable`);
    need(pos, objSize, `${what} table body`);
    let unionType = 0;
    spec.forEach((slot, i) => {
      const off = 4 + 2 * i < vtSize ? v.getUint16(vt + 4 + 2 * i, true) : 0;
      if (off === 0) {
        if (slot.k === 'string' && slot.required) throw new Error(`${what}: required field #${i} is missing`);
        return;
      }
      const at = pos + off;
      const w = slot.k === 'scalar' ? slot.size : 4;
      if (off + w > objSize) throw new Error(`${what}: field #${i} lies outside its table`);
      switch (slot.k) {
        case 'scalar':
          if (slot.size === 1) unionType = buf[at]!;
          return;
        case 'string': {
          const s = ref(at, `${what} string #${i}`);
          need(s, 4, `${what} string #${i} length`);
          need(s + 4, v.getUint32(s, true) + 1, `${what} string #${i}`);
          return;
        }
        case 'vector': {
          const s = ref(at, `${what} vector #${i}`);
          need(s, 4, `${what} vector #${i} length`);
          need(s + 4, v.getUint32(s, true) * slot.elem, `${what} vector #${i}`);
          return;
        }
        case 'tables': {
          const s = ref(at, `${what} table vector #${i}`);
          need(s, 4, `${what} table vector #${i} length`);
          const n = v.getUint32(s, true);
          need(s + 4, n * 4, `${what} table vector #${i}`);
          for (let j = 0; j < n; j++) table(ref(s + 4 + 4 * j, `${what}[${j}]`), slot.table(), `${what} #${i}[${j}]`);
          return;
        }
        case 'union': {
          const body = SERVER_BODIES.get(unionType);
          if (!body) throw new Error(`Message body type ${unionType} (${p1.Body[unionType] ?? 'unknown to protocol 1'}) is not a protocol-1 server message`);
          table(ref(at, 'body'), body, p1.Body[unionType] ?? `body ${unionType}`);
          return;
        }
      }
    });
    if (spec === MESSAGE && (4 + 2 * 1 >= vtSize || v.getUint16(vt + 6, true) === 0)) throw new Error('Message without a body');
  };
  table(ref(0, 'root'), MESSAGE, 'Message');
}
const MESSAGE: Spec = [u8, { k: 'union' }];

// ------------------------------------------------------------------ decoding (with the vendored accessors)

function valueOf(f: p1.Field): P1Value | null {
  switch (f.kind()) {
    case p1.ValueKind.Delete:
      return null;
    case p1.ValueKind.Float:
      return f.f();
    case p1.ValueKind.Int: {
      const i = f.i();
      return i >= -MAX_SAFE && i <= MAX_SAFE ? Number(i) : i;
    }
    case p1.ValueKind.String:
      return f.s() ?? '';
    case p1.ValueKind.Bool:
      return f.b();
    case p1.ValueKind.Bytes:
      return (f.dataArray() ?? new Uint8Array(0)).slice();
    default:
      throw new Error(`field ${f.name()}: value kind ${f.kind()} is unknown to protocol 1`);
  }
}

function fieldsOf(n: number, at: (i: number) => p1.Field | null): Map<string, P1Value | null> {
  const out = new Map<string, P1Value | null>();
  for (let i = 0; i < n; i++) {
    const f = at(i)!;
    out.set(f.name()!, valueOf(f));
  }
  return out;
}

/** Decodes one verified Message (without its size prefix). */
function decodeMessage(buf: Uint8Array): P1Message {
  verifyMessage(buf);
  const msg = p1.Message.getRootAsMessage(new ByteBuffer(buf));
  const type = msg.bodyType();
  switch (type) {
    case p1.Body.Welcome: {
      const w = msg.body(new p1.Welcome()) as p1.Welcome;
      return { type: 'welcome', protocol: w.protocol(), server: w.server() ?? '', heartbeatMs: w.heartbeatMs(), maxFrame: w.maxFrame(), rateTiers: [...(w.rateTiersArray() ?? [])] };
    }
    case p1.Body.Snapshot: {
      const s = msg.body(new p1.Snapshot()) as p1.Snapshot;
      const fields = fieldsOf(s.fieldsLength(), (i) => s.fields(i));
      for (const [k, val] of fields) if (val === null) throw new Error(`snapshot of ${s.topic()} deletes field ${k}`);
      return { type: 'snapshot', topic: s.topic()!, epoch: num(s.epoch()), version: num(s.version()), fields: fields as Map<string, P1Value>, ts: s.ts() };
    }
    case p1.Body.Delta: {
      const d = msg.body(new p1.Delta()) as p1.Delta;
      return {
        type: 'delta',
        topic: d.topic()!,
        epoch: num(d.epoch()),
        base: num(d.base()),
        version: num(d.version()),
        updates: d.updates(),
        changes: fieldsOf(d.changesLength(), (i) => d.changes(i)),
        ts: d.ts(),
      };
    }
    case p1.Body.TopicStatus: {
      const t = msg.body(new p1.TopicStatus()) as p1.TopicStatus;
      return { type: 'topicStatus', topic: t.topic()!, state: t.state(), epoch: num(t.epoch()), version: num(t.version()) };
    }
    case p1.Body.Ack: {
      const a = msg.body(new p1.Ack()) as p1.Ack;
      return { type: 'ack', id: a.id(), topic: a.topic() ?? '', epoch: num(a.epoch()), version: num(a.version()), count: a.count() };
    }
    case p1.Body.Error: {
      const e = msg.body(new p1.Error()) as p1.Error;
      return { type: 'error', code: e.code(), id: e.id(), topic: e.topic() ?? '', message: e.message() ?? '' };
    }
    case p1.Body.Heartbeat: {
      const hb = msg.body(new p1.Heartbeat()) as p1.Heartbeat;
      const versions = [];
      for (let i = 0; i < hb.versionsLength(); i++) {
        const tv = hb.versions(i)!;
        versions.push({ topic: tv.topic()!, epoch: num(tv.epoch()), version: num(tv.version()) });
      }
      return { type: 'heartbeat', time: hb.time(), versions };
    }
    case p1.Body.Ping:
      return { type: 'ping', nonce: (msg.body(new p1.Ping()) as p1.Ping).nonce() };
    case p1.Body.Pong:
      return { type: 'pong', nonce: (msg.body(new p1.Pong()) as p1.Pong).nonce() };
    default:
      throw new Error(`body type ${type} is not a protocol-1 server message`);
  }
}

/** A whole protocol-1 server frame: u64 seq, then u32 size-prefixed Messages filling it exactly. */
export function decodeP1Frame(frame: Uint8Array): { seq: number; messages: P1Message[] } {
  if (frame.byteLength < 8 + 4) throw new Error(`frame of ${frame.byteLength} bytes is shorter than a sequence number and one message`);
  const v = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const hi = v.getUint32(4, true);
  if (hi >= 2 ** 21) throw new Error(`sequence number ${hi} * 2^32 + … is not a frame counter (not protocol-1 framing?)`);
  const seq = v.getUint32(0, true) + hi * 2 ** 32;
  const messages: P1Message[] = [];
  let at = 8;
  while (at < frame.byteLength) {
    if (at + 4 > frame.byteLength) throw new Error(`truncated size prefix at byte ${at}`);
    const size = v.getUint32(at, true);
    if (size === 0 || at + 4 + size > frame.byteLength) throw new Error(`size prefix ${size} at byte ${at} runs past the frame (${frame.byteLength} bytes)`);
    messages.push(decodeMessage(frame.subarray(at + 4, at + 4 + size)));
    at += 4 + size;
  }
  return { seq, messages };
}

// ------------------------------------------------------------------ the client

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function until(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`protocol-1 client: timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

export class P1Client {
  readonly frames: P1Frame[] = [];
  /** Every message received, in order. */
  readonly messages: P1Message[] = [];
  /** Undecodable frames, sequence jumps: must stay empty. */
  readonly problems: string[] = [];
  /** Deltas that could not be applied (base ≠ held version, other epoch, no image): each healed by a CatchUp. */
  readonly gaps: string[] = [];
  /** Deltas ignored because they were already held. */
  duplicates = 0;
  /** Empty deltas confirming the held version. */
  confirmations = 0;
  readonly replicas = new Map<string, P1Replica>();
  closeCode: number | null = null;
  /** Ask for a catch-up when a delta does not apply (as the SDK does). */
  autoHeal = true;
  private expectedSeq = 1;
  private nonce = 1n << 40n;

  private constructor(readonly ws: WebSocket) {
    ws.binaryType = 'arraybuffer';
    ws.on('message', (data, isBinary) => this.onData(data as ArrayBuffer, isBinary));
    ws.on('close', (code) => (this.closeCode = code));
  }

  /** Opens a connection and waits for the server's first frame (its Welcome). */
  static async open(url: string): Promise<P1Client> {
    const ws = new WebSocket(url);
    const c = new P1Client(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    await until(() => c.frames.length > 0 || c.problems.length > 0, 5_000, 'the Welcome frame');
    return c;
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** Sends size-prefixed messages as one binary frame. */
  send(...msgs: Uint8Array[]): void {
    let n = 0;
    for (const m of msgs) n += m.byteLength;
    const out = new Uint8Array(n);
    let at = 0;
    for (const m of msgs) out.set(m, at), (at += m.byteLength);
    this.ws.send(out, { binary: true });
  }

  /** Every welcome received (the first one, and any other the server sends). */
  get welcomes(): Extract<P1Message, { type: 'welcome' }>[] {
    return this.messages.filter((m): m is Extract<P1Message, { type: 'welcome' }> => m.type === 'welcome');
  }

  /** Waits for a message matching `pred` among those from index `from` on; returns it and its index. */
  async next<T extends P1Message>(pred: (m: P1Message) => m is T, from = 0, timeoutMs = 5_000): Promise<{ message: T; index: number }> {
    let found: { message: T; index: number } | undefined;
    await until(
      () => {
        for (let i = from; i < this.messages.length; i++) {
          const m = this.messages[i]!;
          if (pred(m)) return (found = { message: m, index: i }), true;
        }
        return false;
      },
      timeoutMs,
      'a matching server message',
    );
    return found!;
  }

  /** Sends a subscribe and waits for its ack (or throws with the server's error). */
  async subscribe(id: number, topics: readonly string[], o: SubscribeOpts = {}): Promise<Extract<P1Message, { type: 'ack' }>> {
    const from = this.messages.length;
    this.send(encodeP1.subscribe(id, topics, o));
    const { message } = await this.next((m): m is Extract<P1Message, { type: 'ack' | 'error' }> => (m.type === 'ack' || m.type === 'error') && m.id === id, from);
    if (message.type === 'error') throw new Error(`subscribe ${id} refused: ${message.code} ${message.message}`);
    return message;
  }

  /** Publishes with an ack id; resolves with the ack (the version the server assigned). */
  async publish(id: number, topic: string, changes: Record<string, P1Value | null>): Promise<Extract<P1Message, { type: 'ack' }>> {
    const from = this.messages.length;
    this.send(encodeP1.publish(id, topic, changes));
    const { message } = await this.next((m): m is Extract<P1Message, { type: 'ack' | 'error' }> => (m.type === 'ack' || m.type === 'error') && m.id === id, from);
    if (message.type === 'error') throw new Error(`publish ${id} refused: ${message.code} ${message.message}`);
    return message;
  }

  /** Asks for the way from what is held of `topic` to its current version. */
  catchUp(topic: string, epoch: number, version: number): void {
    this.replicaOf(topic).healing = true;
    this.send(encodeP1.catchUp(topic, epoch, version));
  }

  /**
   * Sets what the client holds of `topic` (a state kept from earlier, e.g. a
   * checkpoint): the next catch-up or resume starts from it.
   */
  hold(topic: string, held: { epoch: number; version: number; state: Record<string, P1Value> }): void {
    const r = this.replicaOf(topic);
    r.epoch = held.epoch;
    r.version = held.version;
    r.state = new Map(Object.entries(held.state));
  }

  /** A Ping/Pong round trip: whatever the server queued before it read the Ping has arrived once this returns. */
  async roundTrip(timeoutMs = 5_000): Promise<void> {
    const nonce = ++this.nonce;
    const from = this.messages.length;
    this.send(encodeP1.ping(nonce));
    await this.next((m): m is Extract<P1Message, { type: 'pong' }> => m.type === 'pong' && m.nonce === nonce, from, timeoutMs);
  }

  /** The held state of a topic as a plain object, or undefined before its first image. */
  stateOf(topic: string): { epoch: number; version: number; state: Record<string, P1Value> } | undefined {
    const r = this.replicas.get(topic);
    return r && r.version > 0 ? { epoch: r.epoch, version: r.version, state: Object.fromEntries(r.state) } : undefined;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.ws.readyState === WebSocket.CLOSED) return resolve();
      const t = setTimeout(() => {
        this.ws.terminate();
        resolve();
      }, 1_000);
      this.ws.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      this.ws.close();
    });
  }

  private replicaOf(topic: string): P1Replica {
    let r = this.replicas.get(topic);
    if (!r) this.replicas.set(topic, (r = { epoch: 0, version: 0, state: new Map(), applied: [], healing: false }));
    return r;
  }

  private onData(data: ArrayBuffer, isBinary: boolean): void {
    if (!isBinary) {
      this.problems.push('the server sent a text frame');
      return;
    }
    const bytes = new Uint8Array(data);
    let f: { seq: number; messages: P1Message[] };
    try {
      f = decodeP1Frame(bytes);
    } catch (err) {
      this.problems.push(`frame ${this.frames.length + 1} (${bytes.byteLength} bytes) is not protocol 1: ${(err as Error).message}`);
      return;
    }
    const n = this.expectedSeq;
    if (f.seq === 0) this.expectedSeq++;
    else {
      if (f.seq !== n) this.problems.push(`frame ${this.frames.length + 1} has sequence ${f.seq}, expected ${n}`);
      this.expectedSeq = f.seq + 1;
    }
    this.frames.push({ seq: f.seq === 0 ? n : f.seq, published: f.seq === 0, bytes: bytes.byteLength, messages: f.messages });
    for (const m of f.messages) {
      this.messages.push(m);
      if (m.type === 'snapshot') this.applySnapshot(m);
      else if (m.type === 'delta') this.applyDelta(m);
      else if (m.type === 'ping') this.send(encodeP1.pong(m.nonce));
      else if (m.type === 'welcome' && m.protocol !== 1) this.problems.push(`a Welcome announced protocol ${m.protocol}`);
    }
  }

  private applySnapshot(m: Extract<P1Message, { type: 'snapshot' }>): void {
    const r = this.replicaOf(m.topic);
    r.epoch = m.epoch;
    r.version = m.version;
    r.state = new Map(m.fields);
    r.healing = false;
    r.applied.push({ snapshot: true, epoch: m.epoch, base: 0, version: m.version, updates: 0, changes: new Map(m.fields), ts: m.ts, state: new Map(r.state) });
  }

  private applyDelta(m: Extract<P1Message, { type: 'delta' }>): void {
    const r = this.replicaOf(m.topic);
    const held = r.version > 0;
    if (held && r.epoch === m.epoch && m.base === r.version) {
      if (m.version === m.base) {
        if (m.changes.size) this.problems.push(`${m.topic}: an empty-span delta at v${m.version} carries changes`);
        this.confirmations++;
        r.healing = false;
        return;
      }
      for (const [k, v] of m.changes) {
        if (v === null) r.state.delete(k);
        else r.state.set(k, v);
      }
      r.version = m.version;
      r.healing = false;
      r.applied.push({ snapshot: false, epoch: m.epoch, base: m.base, version: m.version, updates: m.updates, changes: new Map(m.changes), ts: m.ts, state: new Map(r.state) });
      return;
    }
    if (held && r.epoch === m.epoch && m.version <= r.version) {
      this.duplicates++;
      return;
    }
    this.gaps.push(`${m.topic}: delta ${m.epoch}:${m.base}->${m.version} does not apply to ${held ? `${r.epoch}:${r.version}` : 'nothing held'}`);
    if (this.autoHeal && !r.healing) this.catchUp(m.topic, held ? r.epoch : 0, held ? r.version : 0);
  }
}
