// Protocol 2 over real sockets, feature by feature: negotiation (Hello after a
// protocol-1 Welcome; refused after a subscribe or past the highest version),
// patterns, field subsets, rate tiers (conflation exact), catch-ups by merged
// delta and by snapshot, pause/resume, heartbeats with versions, sequence
// numbers (a dropped frame is detected), timestamps only when asked, field
// names on the stream (a new field; a field id a late joiner never learnt
// heals with one catch-up), fan-out workers (resume on the other worker), and
// a guard on bytes per delta. Checked with a raw protocol-2 client (today's
// Encoder, ServerFrameReader and Protocol2Reader) and with the SDK.

import WebSocket from 'ws';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ServerOptions, TickfanServer } from '../../src/index.js';
import { connect, type TickfanClient, type WebSocketCtor } from '../../src/client/index.js';
import {
  CloseCode,
  Encoder,
  ErrorCode,
  Protocol2Reader,
  ServerFrameReader,
  clientFrame,
  decodeServerFrame,
  type AnyMessage,
  type DeltaMsg,
  type Delta2Msg,
  type FieldValue,
  type SnapshotMsg,
  type Snapshot2Msg,
  type Unresolved,
  type WelcomeMsg,
} from '../../src/protocol/index.js';
import { encodeP1, P1Client } from '../compat/protocol1/client.js';
import { Harness, Truth, caughtUp, chainProblem, http, record, roundTrip, serverState, sleep, waitFor, wsUrl } from './helpers.js';

const h = new Harness();
const raws: Raw2[] = [];
const others: { close(): unknown }[] = [];

afterEach(async () => {
  const problems: string[] = [];
  for (const [i, r] of raws.entries()) for (const p of r.problems) problems.push(`raw protocol-2 client #${i}: ${p}`);
  await Promise.all(raws.map((r) => r.close()));
  for (const o of others) await o.close();
  raws.length = others.length = 0;
  await h.close();
  expect(problems).toEqual([]);
});

const enc = new Encoder();

type Mode = { name: string; opts: Partial<ServerOptions> };
const MODES: Mode[] = [
  { name: 'single thread', opts: {} },
  { name: 'fan-out workers (2)', opts: { workers: 2 } },
];

// ------------------------------------------------------------------ a raw protocol-2 client

type Image = SnapshotMsg | DeltaMsg;

interface Frame2 {
  seq: number;
  published: boolean;
  /** Framing this frame was read with. */
  protocol: number;
  bytes: number;
  /** As decoded: snapshot2 / delta2 as they travelled. */
  messages: AnyMessage[];
}

interface Replica {
  epoch: number;
  version: number;
  state: Map<string, FieldValue>;
  /** Every snapshot and delta applied, with the state after it. */
  applied: { image: Image; state: Record<string, FieldValue> }[];
  healing: boolean;
}

/**
 * A protocol-2 client without the SDK: reads frames with ServerFrameReader,
 * checks their numbers (0 = published to many, counted), resolves
 * Snapshot2/Delta2 with a Protocol2Reader and keeps a replica per topic that
 * takes a delta only when its base is the held version in the same epoch; a
 * delta that does not apply, or names a field id it never learnt, is healed
 * with one CatchUp.
 */
class Raw2 {
  readonly frames: Frame2[] = [];
  readonly problems: string[] = [];
  readonly unresolved: Unresolved[] = [];
  readonly gaps: string[] = [];
  readonly replicas = new Map<string, Replica>();
  readonly reader = new ServerFrameReader();
  readonly topics = new Protocol2Reader();
  closeCode: number | null = null;
  confirmations = 0;
  duplicates = 0;
  private expectedSeq = 1;
  private static nonces = 1n << 40n;

  private constructor(readonly ws: WebSocket) {
    ws.binaryType = 'arraybuffer';
    ws.on('message', (data: ArrayBuffer) => this.onData(new Uint8Array(data)));
    ws.on('close', (code) => (this.closeCode = code));
  }

  /** Opens a connection; with `protocol` 2 (default) says Hello{2} and waits for the second Welcome. */
  static async open(server: TickfanServer, protocol: number | null = 2): Promise<Raw2> {
    const ws = new WebSocket(wsUrl(server));
    const r = new Raw2(ws);
    raws.push(r);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    await waitFor(() => r.frames.length > 0, 5_000, 'the first Welcome');
    if (protocol !== null) {
      r.send(enc.hello(protocol, 'raw2', ''));
      if (protocol === 2) await waitFor(() => r.reader.protocol === 2, 5_000, 'the Welcome announcing protocol 2');
    }
    return r;
  }

  get messages(): AnyMessage[] {
    return this.frames.flatMap((f) => f.messages);
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  get tcp(): Socket {
    return (this.ws as unknown as { _socket: Socket })._socket;
  }

  send(...msgs: Uint8Array[]): void {
    this.ws.send(clientFrame(msgs), { binary: true });
  }

  async next<T extends AnyMessage>(pred: (m: AnyMessage) => m is T, from = 0, timeoutMs = 5_000): Promise<T> {
    let found: T | undefined;
    await waitFor(() => (found = this.messages.slice(from).find(pred) as T | undefined) !== undefined, timeoutMs, 'a matching server message');
    return found!;
  }

  async subscribe(id: number, topics: string[], o: { maxRate?: number; fields?: string[]; resume?: { topic: string; epoch: number; version: number }[]; timestamps?: boolean } = {}): Promise<void> {
    const from = this.messages.length;
    this.send(enc.subscribe(id, topics, o.maxRate ?? 0, o.fields ?? [], o.resume ?? [], o.timestamps ?? false));
    const m = await this.next((x): x is Extract<AnyMessage, { type: 'ack' | 'error' }> => (x.type === 'ack' || x.type === 'error') && x.id === id, from);
    if (m.type === 'error') throw new Error(`subscribe refused: ${m.code} ${m.message}`);
  }

  catchUp(topic: string, epoch: number, version: number): void {
    this.replicaOf(topic).healing = true;
    this.send(enc.catchUp(topic, epoch, version));
  }

  hold(topic: string, held: { epoch: number; version: number; state: Record<string, FieldValue> }): void {
    const r = this.replicaOf(topic);
    r.epoch = held.epoch;
    r.version = held.version;
    r.state = new Map(Object.entries(held.state));
  }

  async roundTrip(): Promise<void> {
    const nonce = ++Raw2.nonces;
    const from = this.messages.length;
    this.send(enc.ping(nonce));
    await this.next((m): m is Extract<AnyMessage, { type: 'pong' }> => m.type === 'pong' && m.nonce === nonce, from);
  }

  stateOf(topic: string): { epoch: number; version: number; state: Record<string, FieldValue> } | undefined {
    const r = this.replicas.get(topic);
    return r && r.version > 0 ? { epoch: r.epoch, version: r.version, state: Object.fromEntries(r.state) } : undefined;
  }

  /** Protocol-2 snapshots and deltas of `topic` (as they travelled) from message index `from` on. */
  images2(topic: string, from = 0): (Snapshot2Msg | Delta2Msg)[] {
    const id = this.topicId(topic);
    return this.messages.slice(from).filter((m): m is Snapshot2Msg | Delta2Msg => (m.type === 'snapshot2' || m.type === 'delta2') && m.topicId === id);
  }

  topicId(topic: string): number | undefined {
    for (const m of this.messages) if ((m.type === 'snapshot2' || m.type === 'delta2') && m.topic === topic) return m.topicId;
    return undefined;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.ws.readyState === WebSocket.CLOSED) return resolve();
      const t = setTimeout(() => (this.ws.terminate(), resolve()), 1_000);
      this.ws.once('close', () => (clearTimeout(t), resolve()));
      this.ws.close();
    });
  }

  private replicaOf(topic: string): Replica {
    let r = this.replicas.get(topic);
    if (!r) this.replicas.set(topic, (r = { epoch: 0, version: 0, state: new Map(), applied: [], healing: false }));
    return r;
  }

  private onData(bytes: Uint8Array): void {
    const protocol = this.reader.protocol;
    let f: { seq: number; messages: AnyMessage[]; error: unknown };
    try {
      f = this.reader.read(bytes);
    } catch (err) {
      this.problems.push(`unreadable frame: ${(err as Error).message}`);
      return;
    }
    if (f.error) this.problems.push(`frame ${this.frames.length + 1}: ${(f.error as Error).message}`);
    const n = this.expectedSeq;
    if (f.seq === 0) this.expectedSeq++;
    else {
      if (f.seq !== n) this.problems.push(`frame ${this.frames.length + 1} has sequence ${f.seq}, expected ${n}`);
      this.expectedSeq = f.seq + 1;
    }
    this.frames.push({ seq: f.seq === 0 ? n : f.seq, published: f.seq === 0, protocol, bytes: bytes.byteLength, messages: f.messages });
    for (const m of f.messages) {
      if (m.type === 'snapshot2' || m.type === 'delta2') {
        const r = this.topics.read(m);
        if (r.type === 'unresolved') this.onUnresolved(r);
        else if (r.type === 'snapshot') this.applySnapshot(r);
        else this.applyDelta(r);
      } else if (m.type === 'snapshot') this.applySnapshot(m);
      else if (m.type === 'delta') this.applyDelta(m);
      else if (m.type === 'ping') this.send(enc.pong(m.nonce));
    }
  }

  private onUnresolved(u: Unresolved): void {
    this.unresolved.push(u);
    if (u.topic === null) return void this.problems.push(`unresolvable protocol-2 message: ${u.reason}`);
    const r = this.replicaOf(u.topic);
    if (!r.healing) this.catchUp(u.topic, r.version ? r.epoch : 0, r.version);
  }

  private applySnapshot(m: SnapshotMsg): void {
    const r = this.replicaOf(m.topic);
    r.epoch = m.epoch;
    r.version = m.version;
    r.state = new Map(m.fields);
    r.healing = false;
    r.applied.push({ image: m, state: Object.fromEntries(r.state) });
  }

  private applyDelta(m: DeltaMsg): void {
    const r = this.replicaOf(m.topic);
    const held = r.version > 0;
    if (held && r.epoch === m.epoch && m.base === r.version) {
      r.healing = false;
      if (m.version === m.base) {
        if (m.changes.size) this.problems.push(`${m.topic}: a span-0 delta carries changes`);
        this.confirmations++;
        return;
      }
      for (const [k, v] of m.changes) {
        if (v === null) r.state.delete(k);
        else r.state.set(k, v);
      }
      r.version = m.version;
      r.applied.push({ image: m, state: Object.fromEntries(r.state) });
    } else if (held && r.epoch === m.epoch && m.version <= r.version) {
      this.duplicates++;
    } else {
      this.gaps.push(`${m.topic}: delta ${m.epoch}:${m.base}->${m.version} on ${held ? `${r.epoch}:${r.version}` : 'nothing'}`);
      if (!r.healing) this.catchUp(m.topic, held ? r.epoch : 0, r.version);
    }
  }
}

// ------------------------------------------------------------------ helpers

/** An SDK client whose frames are also read here (protocol reached, message types seen). */
function sdk(server: TickfanServer, opts: { protocol?: 1 | 2; WebSocket?: new (url: string) => WebSocket } = {}): { client: TickfanClient; wires: { reader: ServerFrameReader; types: Set<string> }[] } {
  const wires: { reader: ServerFrameReader; types: Set<string> }[] = [];
  const Base = (opts.WebSocket ?? WebSocket) as typeof WebSocket;
  class Recording extends Base {
    constructor(url: string) {
      super(url);
      const w = { reader: new ServerFrameReader(), types: new Set<string>() };
      wires.push(w);
      this.on('message', (data: ArrayBuffer) => {
        for (const m of w.reader.read(new Uint8Array(data)).messages) w.types.add(m.type);
      });
    }
  }
  const client = h.client(server, { WebSocket: Recording as unknown as WebSocketCtor, ...(opts.protocol ? { protocol: opts.protocol } : {}) });
  return { client, wires };
}

function pick(state: Record<string, FieldValue>, fields: readonly string[]): Record<string, FieldValue> {
  return Object.fromEntries(Object.entries(state).filter(([k]) => fields.includes(k)));
}

function jsonOf(state: Record<string, FieldValue>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(state)) {
    if (typeof v === 'bigint') out[k] = { $bigint: v.toString() };
    else if (v instanceof Uint8Array) out[k] = { $bytes: Buffer.from(v).toString('base64') };
    else out[k] = v;
  }
  return out;
}

/** GET /snapshot/<topic> once the answering thread holds `version`. */
async function snapshotAt(server: TickfanServer, topic: string, version: number): Promise<{ epoch: number; version: number; fields: Record<string, unknown> }> {
  for (let i = 0; i < 200; i++) {
    const res = await http(server.port, 'GET', `/snapshot/${topic}`);
    const body = res.body as { epoch: number; version: number; fields: Record<string, unknown> };
    if (res.status === 200 && body.version === version) return body;
    await sleep(10);
  }
  throw new Error(`GET /snapshot/${topic} never reached v${version}`);
}

/** Waits for every client at the server's version of `topic`, then checks each against GET /snapshot (restricted to `fields`). */
async function exact(server: TickfanServer, topic: string, rawClients: Raw2[], clients: TickfanClient[], fields?: string[]): Promise<void> {
  const want = serverState(server, topic);
  await waitFor(
    () => rawClients.every((r) => r.stateOf(topic)?.version === want.version) && clients.every((c) => caughtUp(c, server, topic)),
    8_000,
    `every client at ${topic} v${want.version}`,
  );
  const snap = await snapshotAt(server, topic, want.version);
  const expected = fields ? Object.fromEntries(Object.entries(snap.fields).filter(([k]) => fields.includes(k))) : snap.fields;
  for (const held of [...rawClients.map((r) => r.stateOf(topic)!), ...clients.map((c) => c.stateOf(topic)!)]) {
    expect({ epoch: held.epoch, version: held.version }).toEqual({ epoch: snap.epoch, version: snap.version });
    expect(jsonOf(held.state)).toEqual(expected);
  }
}

/** A price-like update with decimals, sizes, a string, a bool, deletes, a big int and bytes now and then. */
function update(i: number): Record<string, FieldValue | null> {
  const c: Record<string, FieldValue | null> = {
    bid: Number((308.81 + i / 100).toFixed(2)),
    ask: Number((308.85 + i / 100).toFixed(2)),
    bidSize: 100 * ((i % 50) + 1),
  };
  if (i % 3 === 0) c.last = Number((308.83 + i / 100).toFixed(2));
  if (i % 5 === 0) c.note = i % 10 === 0 ? null : `n${i}`;
  if (i % 7 === 0) c.halted = i % 14 === 0;
  if (i % 11 === 0) c.big = 2n ** 60n + BigInt(i);
  if (i % 13 === 0) c.raw = new Uint8Array([i & 255, 0, 255]);
  if (i % 17 === 0) c.ratio = 1 / (i + 3);
  return c;
}

const isType =
  <K extends AnyMessage['type']>(type: K) =>
  (m: AnyMessage): m is Extract<AnyMessage, { type: K }> =>
    m.type === type;

// ------------------------------------------------------------------ negotiation

describe('protocol 2: negotiation', () => {
  it('the first Welcome says protocol 1 (max 2); Hello{2} is answered by a Welcome{2} in protocol-1 framing, and protocol-2 frames follow', async () => {
    const server = await h.server();
    server.publish('n2.A', { bid: 1.25 });
    const r = await Raw2.open(server, null);
    const first = r.messages.find(isType('welcome'))!;
    expect({ protocol: first.protocol, maxProtocol: first.maxProtocol }).toEqual({ protocol: 1, maxProtocol: 2 });
    r.send(enc.hello(2, 'raw2', ''));
    await waitFor(() => r.reader.protocol === 2, 5_000, 'Welcome{2}');
    const second = r.frames[1]!;
    expect(second.protocol).toBe(1);
    // The frame holding Welcome{2} decodes with protocol-1 framing.
    expect(second.messages.map((m) => m.type)).toEqual(['welcome']);
    expect((second.messages[0] as WelcomeMsg).protocol).toBe(2);
    await r.subscribe(1, ['n2.A']);
    server.publish('n2.A', { bid: 1.5 });
    await exact(server, 'n2.A', [r], []);
    const after = r.frames.slice(2);
    expect(after.every((f) => f.protocol === 2)).toBe(true);
    const types = new Set(after.flatMap((f) => f.messages.map((m) => m.type)));
    expect(types.has('snapshot2') && types.has('delta2')).toBe(true);
    expect(types.has('snapshot') || types.has('delta')).toBe(false);
  });

  it('Hello{2} after a subscribe is refused with PROTOCOL_VERSION, and the connection keeps working in protocol 1', async () => {
    const server = await h.server();
    server.publish('n2.B', { bid: 1 });
    const r = await Raw2.open(server, null);
    await r.subscribe(1, ['n2.B']);
    const from = r.messages.length;
    r.send(enc.hello(2, 'late', ''));
    const err = await r.next(isType('error'), from);
    expect(err.code).toBe(ErrorCode.PROTOCOL_VERSION);
    for (let i = 2; i <= 5; i++) server.publish('n2.B', { bid: i });
    await exact(server, 'n2.B', [r], []);
    await r.roundTrip();
    expect(r.open).toBe(true);
    expect(r.reader.protocol).toBe(1);
    expect(r.messages.filter(isType('welcome'))).toHaveLength(1);
    expect(r.frames.every((f) => f.protocol === 1)).toBe(true);
    expect(r.messages.filter(isType('delta')).map((d) => d.version)).toEqual([2, 3, 4, 5]);
    expect(r.messages.some((m) => m.type === 'delta2' || m.type === 'snapshot2')).toBe(false);
  });

  it('Hello{3} is refused with PROTOCOL_VERSION and the connection is closed (1002)', async () => {
    const server = await h.server();
    const r = await Raw2.open(server, null);
    r.send(enc.hello(3, 'future', ''));
    const err = await r.next(isType('error'));
    expect(err.code).toBe(ErrorCode.PROTOCOL_VERSION);
    await waitFor(() => r.closeCode !== null, 5_000, 'the close');
    expect(r.closeCode).toBe(CloseCode.PROTOCOL_ERROR);
    expect(r.reader.protocol).toBe(1);
  });

  it('connect(url, {protocol: 1}) still works: protocol-1 frames, exact, beside a protocol-2 SDK client', async () => {
    const server = await h.server();
    server.publish('n2.C', update(1));
    const one = sdk(server, { protocol: 1 });
    const two = sdk(server);
    const s1 = one.client.subscribe('n2.C');
    const s2 = two.client.subscribe('n2.C');
    const [u1, u2] = [record(s1), record(s2)];
    await Promise.all([s1.ready, s2.ready]);
    for (let i = 2; i <= 50; i++) server.publish('n2.C', update(i));
    await exact(server, 'n2.C', [], [one.client, two.client]);
    expect(one.wires[0]!.reader.protocol).toBe(1);
    expect(one.wires[0]!.types.has('delta')).toBe(true);
    expect(one.wires[0]!.types.has('delta2')).toBe(false);
    expect(two.wires[0]!.reader.protocol).toBe(2);
    expect(two.wires[0]!.types.has('delta2')).toBe(true);
    expect(chainProblem(u1, { full: true })).toBeNull();
    expect(chainProblem(u2, { full: true })).toBeNull();
    expect(u1.map((u) => [u.version, u.state])).toEqual(u2.map((u) => [u.version, u.state]));
    expect(u1).toHaveLength(50);
  });
});

// ------------------------------------------------------------------ features

describe.each(MODES)('protocol 2 ($name)', ({ opts }) => {
  it('patterns: every matching topic bound by a Snapshot2 to its id, those created later too, exact', async () => {
    const server = await h.server(opts);
    server.publish('p2p.A', update(1));
    server.publish('p2p.B', update(2));
    const r = await Raw2.open(server);
    await r.subscribe(1, ['p2p.*']);
    const { client } = sdk(server);
    const sub = client.subscribe('p2p.*');
    await sub.ready;
    for (let i = 3; i <= 80; i++) {
      server.publish(['p2p.A', 'p2p.B', 'p2p.C', 'p2p.C.deep', 'p2q.A'][i % 5]!, update(i));
      if (i % 20 === 0) await sleep(2);
    }
    for (const t of ['p2p.A', 'p2p.B', 'p2p.C']) {
      await exact(server, t, [r], [client]);
      // The topic's id is the sequencer's, bound by a snapshot carrying name and epoch.
      expect(r.topicId(t)).toBe(server.store.get(t)!.id);
      const first = r.images2(t)[0]!;
      expect(first).toMatchObject({ type: 'snapshot2', topic: t, epoch: server.store.get(t)!.epoch });
    }
    expect(new Set(['p2p.A', 'p2p.B', 'p2p.C'].map((t) => r.topicId(t))).size).toBe(3);
    // Stream deltas name their topic by id only.
    const streamed = r.messages.filter(isType('delta2'));
    expect(streamed.length).toBeGreaterThan(40);
    expect(streamed.every((d) => d.topic === null)).toBe(true);
    expect(r.unresolved).toEqual([]);
    expect([...r.replicas.keys()].sort()).toEqual(['p2p.A', 'p2p.B', 'p2p.C']);
    expect(client.stateOf('p2p.C.deep')).toBeUndefined();
  });

  it('field subsets: only those fields travel, exact at every version', async () => {
    const server = await h.server(opts);
    const fields = ['bid', 'ask'];
    const truth = new Truth(server, 'p2f.A');
    truth.publish({ bid: 10.25, ask: 10.5, last: 10.3, vol: 5, note: 'open' });
    const r = await Raw2.open(server);
    await r.subscribe(1, ['p2f.A'], { fields });
    const { client } = sdk(server);
    const sub = client.subscribe('p2f.A', { fields });
    const ups = record(sub);
    await sub.ready;
    for (let i = 1; i <= 80; i++) {
      if (i % 4 === 0) truth.publish({ vol: i, note: `n${i}` });
      else if (i % 9 === 0) truth.publish({ ask: null, last: i });
      else truth.publish({ bid: 10 + i / 8, ask: 10.5 + i / 8 });
      if (i % 20 === 0) await sleep(2);
    }
    truth.publish({ bid: 99.125 });
    await exact(server, 'p2f.A', [r], [client], fields);
    const names = new Set(r.images2('p2f.A').flatMap((m) => m.entries.map((e) => e.name)).filter((n) => n !== undefined));
    expect([...names].sort()).toEqual(['ask', 'bid']);
    for (const a of r.replicas.get('p2f.A')!.applied) {
      expect([...(a.image.type === 'snapshot' ? a.image.fields : a.image.changes).keys()].every((k) => fields.includes(k))).toBe(true);
      expect(a.state, `v${a.image.version}`).toEqual(pick(truth.at.get(a.image.version)!, fields));
    }
    for (const u of ups) expect(u.state, `SDK v${u.version}`).toEqual(pick(truth.at.get(u.version)!, fields));
  });

  it('rate tiers: a burst becomes a few conflated Delta2s (span = updates merged), each exact', async () => {
    const server = await h.server(opts);
    const truth = new Truth(server, 'p2r.A');
    truth.publish({ bid: 1.1, ask: 1.2, ...Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`lvl.${i}`, i])) });
    const r = await Raw2.open(server);
    await r.subscribe(1, ['p2r.A'], { maxRate: 10 });
    const full = await Raw2.open(server);
    await full.subscribe(1, ['p2r.A']);
    const { client } = sdk(server);
    const sub = client.subscribe('p2r.A', { maxRate: 10 });
    const ups = record(sub);
    await sub.ready;
    for (let batch = 0; batch < 6; batch++) {
      for (let j = 0; j < 40; j++) {
        const i = batch * 40 + j;
        truth.publish({ bid: 1.1 + i / 1e4, ask: 1.2 + i / 1e4, [`lvl.${i % 10}`]: i % 3 === 0 ? null : i, [`new.${i % 7}`]: i });
      }
      await sleep(40); // time is the signal: the burst spans a few 100 ms flushes
    }
    await exact(server, 'p2r.A', [r, full], [client]);
    const deltas = r.replicas.get('p2r.A')!.applied.slice(1);
    expect(deltas.length).toBeGreaterThan(0);
    expect(deltas.length).toBeLessThan(40);
    expect(deltas.some((d) => (d.image as DeltaMsg).updates > 1)).toBe(true);
    for (const d of deltas) {
      const m = d.image as DeltaMsg;
      expect(m.updates).toBe(m.version - m.base);
      expect(d.state, `conflated state at v${m.version}`).toEqual(truth.at.get(m.version)!);
    }
    for (const u of ups) expect(u.state, `SDK v${u.version}`).toEqual(truth.at.get(u.version)!);
    expect(chainProblem(ups)).toBeNull();
    // The full-rate stream beside it got every version.
    expect(full.replicas.get('p2r.A')!.applied.map((a) => a.image.version)).toEqual(Array.from({ length: 241 }, (_, i) => i + 1));
    expect(r.unresolved).toEqual([]);
    expect(full.unresolved).toEqual([]);
  });

  it('catch-ups: by merged Delta2 (bound, every entry named) from a version in history, by Snapshot2 when too old or another epoch', async () => {
    const server = await h.server({ ...opts, limits: { historySize: 16 } });
    const topic = 'p2c.A';
    const truth = new Truth(server, topic);
    for (let i = 1; i <= 20; i++) truth.publish(update(i));
    const { epoch } = serverState(server, topic);
    const r = await Raw2.open(server);
    await r.subscribe(1, [topic]);
    const tracked: WebSocket[] = [];
    class Tracked extends WebSocket {
      constructor(url: string) {
        super(url);
        tracked.push(this);
      }
    }
    const { client } = sdk(server, { WebSocket: Tracked });
    const sub = client.subscribe(topic);
    const ups = record(sub);
    await sub.ready;

    // From v12 (in history): one Delta2 12 -> 20 binding the topic, every entry named.
    r.hold(topic, { epoch, version: 12, state: truth.at.get(12)! });
    let from = r.messages.length;
    r.catchUp(topic, epoch, 12);
    await r.roundTrip();
    let got = r.images2(topic, from);
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ type: 'delta2', topic, epoch, base: 12, version: 20, updates: 8 });
    expect(got[0]!.entries.every((e) => e.name !== undefined)).toBe(true);
    await exact(server, topic, [r], [client]);

    // A new connection resuming from v15: one merged Delta2.
    const b = await Raw2.open(server);
    b.hold(topic, { epoch, version: 15, state: truth.at.get(15)! });
    await b.subscribe(1, [topic], { resume: [{ topic, epoch, version: 15 }] });
    expect(b.images2(topic)).toHaveLength(1);
    expect(b.images2(topic)[0]).toMatchObject({ type: 'delta2', topic, base: 15, version: 20 });

    // The SDK client drops while 5 updates go by: merged delta. Then while 20 go by (past history): snapshot.
    tracked.at(-1)!.terminate();
    for (let i = 21; i <= 25; i++) truth.publish(update(i));
    await exact(server, topic, [r, b], [client]);
    expect(client.stats.catchUpDeltas).toBe(1);
    tracked.at(-1)!.terminate();
    for (let i = 26; i <= 45; i++) truth.publish(update(i));
    await exact(server, topic, [r, b], [client]);
    expect(client.stats.catchUpSnapshots).toBe(1);

    // From v3 (no longer in history): a Snapshot2.
    r.hold(topic, { epoch, version: 3, state: truth.at.get(3)! });
    from = r.messages.length;
    r.catchUp(topic, epoch, 3);
    await r.roundTrip();
    got = r.images2(topic, from);
    expect(got.map((m) => [m.type, m.version])).toEqual([['snapshot2', 45]]);

    // Another epoch: a Snapshot2 of the current one.
    r.hold(topic, { epoch: epoch + 1, version: 45, state: truth.at.get(45)! });
    from = r.messages.length;
    r.catchUp(topic, epoch + 1, 45);
    await r.roundTrip();
    got = r.images2(topic, from);
    expect(got.map((m) => [m.type, m.epoch, m.version])).toEqual([['snapshot2', epoch, 45]]);

    // Holding the current version: an empty span-0 Delta2 confirming it.
    from = r.messages.length;
    const confirmations = r.confirmations;
    r.catchUp(topic, epoch, 45);
    await r.roundTrip();
    got = r.images2(topic, from);
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ type: 'delta2', base: 45, version: 45, updates: 0, entries: [] });
    expect(r.confirmations).toBe(confirmations + 1);

    await exact(server, topic, [r, b], [client]);
    for (const u of ups) expect(u.state, `SDK v${u.version}`).toEqual(truth.at.get(u.version)!);
    expect(chainProblem(ups)).toBeNull();
  });

  it('pause and resume: nothing while paused, then one exact catch-up', async () => {
    const server = await h.server(opts);
    const topic = 'p2s.A';
    server.publish(topic, update(0));
    server.publish('p2s.Z', { n: 0 });
    const r = await Raw2.open(server);
    await r.subscribe(1, [topic]);
    await r.subscribe(2, ['p2s.Z']);
    const { client } = sdk(server);
    const sub = client.subscribe(topic);
    const sz = client.subscribe('p2s.Z');
    const ups = record(sub);
    await Promise.all([sub.ready, sz.ready]);
    for (let i = 1; i <= 5; i++) server.publish(topic, update(i));
    await exact(server, topic, [r], [client]);
    const pausedAt = serverState(server, topic).version;

    r.send(enc.pause(1));
    sub.pause();
    await r.roundTrip();
    await roundTrip(client);
    const from = r.messages.length;
    const seen = ups.length;
    for (let i = 6; i <= 30; i++) server.publish(topic, update(i));
    // Barrier: a later update of another topic reached both clients, so these would have.
    server.publish('p2s.Z', { n: 1 });
    await exact(server, 'p2s.Z', [r], [client]);
    expect(r.images2(topic, from)).toEqual([]);
    expect(ups.length).toBe(seen);

    const catchUps = client.stats.catchUps;
    r.send(enc.resume(1));
    sub.resume();
    await exact(server, topic, [r], [client]);
    await r.roundTrip();
    const after = r.images2(topic, from);
    expect(after).toHaveLength(1);
    expect(after[0]!.version).toBe(pausedAt + 25);
    if (after[0]!.type === 'delta2') expect(after[0]).toMatchObject({ base: pausedAt, topic, updates: 25 });
    expect(ups.slice(seen).map((u) => u.version)).toEqual([pausedAt + 25]);
    expect(client.stats.catchUps).toBe(catchUps + 1);
  });

  it('heartbeats carry the versions of the connection’s topics, in protocol-2 frames', async () => {
    const server = await h.server({ ...opts, heartbeatMs: 50 });
    server.publish('p2h.A', { bid: 1.25 });
    server.publish('p2h.B', { bid: 2.5 });
    server.publish('p2h.B', { bid: 2.75 });
    const r = await Raw2.open(server);
    await r.subscribe(1, ['p2h.*']);
    const beats = (from: number) => r.messages.slice(from).filter(isType('heartbeat'));
    let from = r.messages.length;
    await waitFor(() => beats(from).length >= 2, 5_000, 'two heartbeats');
    const hb = beats(from).at(-1)!;
    expect(Math.abs(hb.time - Date.now())).toBeLessThan(5_000);
    for (const t of ['p2h.A', 'p2h.B']) {
      const { epoch, version } = serverState(server, t);
      expect(hb.versions.find((v) => v.topic === t)).toEqual({ topic: t, epoch, version });
    }
    // After Welcome{2} (a heartbeat may come before the Hello is read: protocol-1 framing then),
    // heartbeats travel in protocol-2 frames, sent to the connection alone (explicit numbers).
    const welcome2 = r.frames.findIndex((f) => f.messages.some((m) => m.type === 'welcome' && m.protocol === 2));
    const beatFrames = r.frames.slice(welcome2 + 1).filter((f) => f.messages.some((m) => m.type === 'heartbeat'));
    expect(beatFrames.length).toBeGreaterThanOrEqual(2);
    expect(beatFrames.every((f) => f.protocol === 2 && !f.published)).toBe(true);
    server.publish('p2h.A', { bid: 1.5 });
    from = r.messages.length;
    await waitFor(() => beats(from).some((b) => b.versions.some((v) => v.topic === 'p2h.A' && v.version === 2)), 5_000, 'a heartbeat with p2h.A v2');
  });

  it('sequence numbers: frames go 1, 2, 3, … (varints past 127, published frames counted); a dropped frame is detected and healed', async () => {
    const server = await h.server({ ...opts, heartbeatMs: 50 });
    server.publish('p2q.A', { bid: 1 });
    const r = await Raw2.open(server);
    await r.subscribe(1, ['p2q.A']);
    for (let i = 2; i <= 300; i++) {
      server.publish('p2q.A', { bid: i / 4 });
      await sleep(i % 3 === 0 ? 1 : 0); // many frames, some alone, some published to many
    }
    await exact(server, 'p2q.A', [r], []);
    await r.roundTrip();
    expect(r.frames.length).toBeGreaterThan(140);
    expect(r.frames.map((f) => f.seq)).toEqual(r.frames.map((_, i) => i + 1));
    expect(r.frames.some((f) => f.published)).toBe(true);
    expect(r.frames.some((f) => !f.published && f.seq > 127)).toBe(true);
    expect(r.gaps).toEqual([]);

    // An SDK client that loses one frame: it sees the number jump, heals, and ends exact.
    let armed = false;
    let dropped = 0;
    class Dropping extends WebSocket {
      override emit(event: string | symbol, ...args: unknown[]): boolean {
        if (event === 'message' && armed) {
          armed = false;
          dropped++;
          return false;
        }
        return super.emit(event, ...args);
      }
    }
    const client = connect(wsUrl(server), { WebSocket: Dropping as unknown as WebSocketCtor, backoff: { initialMs: 10, maxMs: 50 } });
    others.push(client);
    const sub = client.subscribe('p2q.A');
    await sub.ready;
    armed = true;
    server.publish('p2q.A', { bid: 1000, ask: 1001 });
    await waitFor(() => dropped === 1, 5_000, 'one frame dropped');
    for (let i = 0; i < 5; i++) server.publish('p2q.A', { bid: 1001 + i });
    await waitFor(() => client.stats.sequenceGaps === 1, 5_000, 'the sequence gap to be seen');
    await exact(server, 'p2q.A', [], [client]);
    expect(client.stats.gapsHealed).toBeGreaterThanOrEqual(1);
    expect(sub.state).toEqual(serverState(server, 'p2q.A').state);
    expect(client.stats.sequenceGaps).toBe(1);
  });

  it('timestamps only when asked: update.ts > 0 with {timestamps: true}, 0 on deltas without', async () => {
    const server = await h.server(opts);
    server.publish('p2t.A', { bid: 1 });
    const withTs = sdk(server).client;
    const without = sdk(server).client;
    const s1 = withTs.subscribe('p2t.A', { timestamps: true });
    const s2 = without.subscribe('p2t.A');
    const [u1, u2] = [record(s1), record(s2)];
    const rt = await Raw2.open(server);
    await rt.subscribe(1, ['p2t.A'], { timestamps: true });
    const rn = await Raw2.open(server);
    await rn.subscribe(1, ['p2t.A']);
    await Promise.all([s1.ready, s2.ready]);
    const before = Date.now();
    for (let i = 2; i <= 20; i++) server.publish('p2t.A', { bid: i });
    await exact(server, 'p2t.A', [rt, rn], [withTs, without]);
    const d1 = u1.filter((u) => !u.snapshot);
    const d2 = u2.filter((u) => !u.snapshot);
    expect(d1).toHaveLength(19);
    expect(d2).toHaveLength(19);
    expect(d1.every((u) => u.ts >= before - 1_000 && u.ts <= Date.now() + 1_000)).toBe(true);
    expect(d2.every((u) => u.ts === 0)).toBe(true);
    const raw = (c: Raw2) => c.messages.filter(isType('delta2'));
    expect(raw(rt).every((d) => d.ts > 0)).toBe(true);
    expect(raw(rn).every((d) => d.ts === 0)).toBe(true);
    expect(raw(rn).length).toBeGreaterThan(0);
  });

  it('a field added later gets its name on the stream once, then travels by id', async () => {
    const server = await h.server(opts);
    server.publish('p2n.A', { bid: 1.25, ask: 1.5 });
    const r = await Raw2.open(server);
    await r.subscribe(1, ['p2n.A']);
    const slow = await Raw2.open(server);
    await slow.subscribe(1, ['p2n.A'], { maxRate: 50 });
    const { client } = sdk(server);
    const sub = client.subscribe('p2n.A');
    await sub.ready;
    const from = r.messages.length;
    server.publish('p2n.A', { bid: 1.3 });
    server.publish('p2n.A', { bid: 1.35, venue: 'XNAS' });
    server.publish('p2n.A', { venue: 'XNYS', bid: 1.4 });
    await exact(server, 'p2n.A', [r, slow], [client]);
    const id = server.store.get('p2n.A')!.fieldId('venue');
    expect(id).toBeGreaterThan(0);
    const entries = r.images2('p2n.A', from).map((m) => m.entries);
    expect(entries).toHaveLength(3);
    expect(entries[0]!.every((e) => e.name === undefined)).toBe(true); // bid: known from the snapshot
    expect(entries[1]!.find((e) => e.id === id)).toEqual({ id, name: 'venue', value: 'XNAS' });
    expect(entries[2]!.find((e) => e.id === id)).toEqual({ id, name: undefined, value: 'XNYS' });
    // The throttled stream named it too (in whichever delta first carried it).
    const slowEntries = slow.messages.filter(isType('delta2')).flatMap((m) => m.entries.filter((e) => e.id === id));
    expect(slowEntries[0]!.name).toBe('venue');
    expect(client.stateOf('p2n.A')!.state.venue).toBe('XNYS');
    expect(r.unresolved).toEqual([]);
    expect(slow.unresolved).toEqual([]);
    expect(client.stats.gaps).toBe(0);
  });

  it('a field deleted, then re-added after a late joiner’s snapshot (its id unknown to that client), heals with one catch-up and ends exact', async () => {
    const server = await h.server(opts);
    const topic = 'p2d.A';
    server.publish(topic, { bid: 1.25, ask: 1.5, venue: 'XNAS' });
    const early = sdk(server).client;
    const se = early.subscribe(topic);
    await se.ready;
    server.publish(topic, { venue: null, bid: 1.3 });
    await exact(server, topic, [], [early]);
    // The late joiners' snapshot has no venue: its id is never named to them.
    const late = sdk(server).client;
    const sl = late.subscribe(topic);
    const ul = record(sl);
    await sl.ready;
    const r = await Raw2.open(server);
    await r.subscribe(1, [topic]);
    expect(late.stats.gaps).toBe(0);
    server.publish(topic, { venue: 'XNYS', bid: 1.35 });
    server.publish(topic, { bid: 1.4 });
    await exact(server, topic, [r], [late, early]);
    // The raw client could not resolve the stream delta: one unresolved, one catch-up.
    expect(r.unresolved.map((u) => u.topic)).toEqual([topic]);
    expect(r.unresolved[0]!.reason).toMatch(/field id \d+ is not known/);
    expect(late.stats).toMatchObject({ gaps: 1, catchUps: 1, gapsHealed: 1, sequenceGaps: 0 });
    expect(early.stats.gaps).toBe(0);
    expect(sl.state).toEqual({ bid: 1.4, ask: 1.5, venue: 'XNYS' });
    expect(chainProblem(ul)).toBeNull();
  });
});

// ------------------------------------------------------------------ workers

describe('protocol 2 with fan-out workers (2)', () => {
  /** Worker name from a connection's first Welcome. */
  function workerOf(first: Uint8Array): string {
    const w = decodeServerFrame(first).messages.find(isType('welcome'));
    return w?.server ?? '?';
  }

  it('clients on both workers get the same Delta2s; an SDK client that reconnects onto the other worker resumes exactly', async () => {
    const server = await h.server({ workers: 2 });
    const topic = 'p2w.A';
    const truth = new Truth(server, topic);
    truth.publish({ ...Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`ref${i}`, `static ${i}`])), bid: 0 });
    // One raw protocol-2 client on each worker.
    const byWorker = new Map<string, Raw2>();
    for (let i = 0; i < 60 && byWorker.size < 2; i++) {
      const r = await Raw2.open(server);
      const name = (r.messages.find(isType('welcome')) as WelcomeMsg).server;
      if (!byWorker.has(name)) byWorker.set(name, r);
    }
    expect(byWorker.size).toBe(2);
    const [a, b] = [...byWorker.values()];
    for (const r of [a!, b!]) await r.subscribe(1, [topic]);

    const sockets: WebSocket[] = [];
    const workers: string[] = [];
    class Tracking extends WebSocket {
      constructor(url: string) {
        super(url);
        sockets.push(this);
        this.once('message', (data: ArrayBuffer) => workers.push(workerOf(new Uint8Array(data))));
      }
    }
    const { client, wires } = sdk(server, { WebSocket: Tracking });
    const sub = client.subscribe(topic);
    const ups = record(sub);
    await sub.ready;
    for (let attempt = 0; attempt < 30 && new Set(workers).size < 2; attempt++) {
      const seen = workers.length;
      sockets.at(-1)!.terminate();
      for (let i = 0; i < 5; i++) truth.publish({ bid: truth.at.size + i / 8, [`n${attempt % 3}`]: attempt });
      await waitFor(() => workers.length > seen && client.state === 'connected', 5_000, 'the reconnect');
      await waitFor(() => caughtUp(client, server, topic), 5_000, 'the resume');
    }
    expect(new Set(workers).size, 'the client reconnected onto both workers').toBe(2);
    expect(client.stats.reconnects).toBeGreaterThan(0);
    expect(client.stats.catchUpDeltas).toBe(client.stats.reconnects);
    expect(client.stats.catchUpSnapshots).toBe(0);
    expect(wires.every((w) => w.reader.protocol === 2)).toBe(true);
    await exact(server, topic, [a!, b!], [client]);
    for (const u of ups) expect(u.state, `SDK v${u.version}`).toEqual(truth.at.get(u.version)!);
    expect(chainProblem(ups)).toBeNull();
    // Both workers sent the same deltas: same topic id, versions, entries (ids and names).
    const deltas = (r: Raw2) => r.messages.filter(isType('delta2')).map((d) => [d.topicId, d.base, d.version, d.entries]);
    expect(deltas(a!)).toEqual(deltas(b!));
    expect(deltas(a!).length).toBe(serverState(server, topic).version - 1);
  });
});

// ------------------------------------------------------------------ bytes

describe('protocol 2: bytes on the wire (a guard, not a benchmark)', () => {
  it('a delta of 6 price fields is under 80 bytes in protocol 2 and over 300 in protocol 1', async () => {
    const server = await h.server({ heartbeatMs: 60_000 });
    const topic = 'px.AAPL';
    const prices = (i: number) => ({
      bid: 308.81 + i / 100,
      ask: 308.85 + i / 100,
      last: 308.83 + i / 100,
      change: -1.27 + i / 100,
      high: 311.55,
      low: 305.02 + i / 100,
    });
    const round2 = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Number(v.toFixed(2))]));
    server.publish(topic, round2(prices(0)));
    const two = await Raw2.open(server);
    await two.subscribe(1, [topic]);
    const one = await P1Client.open(wsUrl(server));
    others.push(one);
    one.send(encodeP1.hello(1));
    await one.subscribe(1, [topic]);
    await two.roundTrip();
    await one.roundTrip();
    const tcpOf = (c: P1Client) => (c.ws as unknown as { _socket: Socket })._socket;
    const wire = { p1: [] as number[], p2: [] as number[] };
    for (let i = 1; i <= 5; i++) {
      const [b1, b2] = [tcpOf(one).bytesRead, two.tcp.bytesRead];
      const [f1, f2] = [one.frames.length, two.frames.length];
      const version = server.publish(topic, round2(prices(i))).version;
      await waitFor(() => one.stateOf(topic)?.version === version && two.stateOf(topic)?.version === version, 5_000, `v${version} on both`);
      // Exactly one frame holding one delta arrived on each connection.
      expect(one.frames.length - f1).toBe(1);
      expect(two.frames.length - f2).toBe(1);
      expect(two.frames.at(-1)!.messages.map((m) => m.type)).toEqual(['delta2']);
      expect(one.frames.at(-1)!.messages.map((m) => m.type)).toEqual(['delta']);
      wire.p1.push(tcpOf(one).bytesRead - b1);
      wire.p2.push(two.tcp.bytesRead - b2);
    }
    if (process.env.TICKFAN_SHOW_BYTES) console.log(`bytes per delta on the wire: protocol 1 ${wire.p1}, protocol 2 ${wire.p2}`);
    expect(Math.max(...wire.p2), `protocol-2 bytes per delta: ${wire.p2}`).toBeLessThan(80);
    expect(Math.min(...wire.p1), `protocol-1 bytes per delta: ${wire.p1}`).toBeGreaterThan(300);
    expect(two.stateOf(topic)!.state).toEqual(serverState(server, topic).state);
    expect(one.stateOf(topic)!.state).toEqual(serverState(server, topic).state);
  });
});
