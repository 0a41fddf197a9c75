// Protocol 1 stays served: an old client — the frames of the schema as it was
// before protocol 2, built by a test-local encoder from vendored generated
// code (test/compat/protocol1), nothing of src/protocol — subscribes, gets
// snapshots and deltas, catches up, publishes with an ack, pauses and
// resumes, reads heartbeats, against today's server, beside protocol-2 SDK
// clients on the same topics. Every state it holds equals GET /snapshot at
// the same version and the protocol-2 clients' states; every frame it gets is
// numbered without a gap and parses as protocol 1. Single-threaded and with
// fan-out workers (which run dist/: build first).

import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import type { ServerOptions, TickfanServer } from '../../src/index.js';
import type { TickfanClient, WebSocketCtor } from '../../src/client/index.js';
import { ServerFrameReader } from '../../src/protocol/index.js';
import { encodeP1, P1Client, type P1Message, type P1Value } from '../compat/protocol1/client.js';
import { Harness, Truth, caughtUp, chainProblem, http, record, roundTrip, serverState, sleep, waitFor, wsUrl } from './helpers.js';

const h = new Harness();
const p1s: P1Client[] = [];
/** What each protocol-2 SDK connection received, read with today's frame reader. */
const sdkWires: { protocol: () => number; types: Set<string> }[] = [];

afterEach(async () => {
  const problems: string[] = [];
  for (const [i, c] of p1s.entries()) {
    for (const p of c.problems) problems.push(`protocol-1 client #${i}: ${p}`);
    for (const g of c.gaps) problems.push(`protocol-1 client #${i}: gap ${g}`);
    if (c.welcomes.length === 0) problems.push(`protocol-1 client #${i}: no Welcome`);
  }
  for (const [i, w] of sdkWires.entries()) {
    if (w.protocol() !== 2) problems.push(`SDK connection #${i} ended in protocol ${w.protocol()}`);
    if (w.types.has('snapshot') || w.types.has('delta')) problems.push(`SDK connection #${i} got protocol-1 snapshots or deltas`);
  }
  await Promise.all(p1s.map((c) => c.close()));
  p1s.length = 0;
  sdkWires.length = 0;
  await h.close();
  expect(problems).toEqual([]);
});

type Mode = { name: string; opts: Partial<ServerOptions> };
const MODES: Mode[] = [
  { name: 'single thread', opts: {} },
  { name: 'fan-out workers (2)', opts: { workers: 2 } },
];

/** A protocol-1 client that said Hello{protocol 1} (or, with hello false, nothing). */
async function p1(server: TickfanServer, hello = true): Promise<P1Client> {
  const c = await P1Client.open(wsUrl(server));
  p1s.push(c);
  if (hello) c.send(encodeP1.hello(1, 'p1-compat'));
  return c;
}

/** An SDK client (protocol 2, the default) whose frames are also read here, to check it speaks 2. */
function p2Sdk(server: TickfanServer, opts: { WebSocket?: WebSocketCtor } = {}): TickfanClient {
  const Base = (opts.WebSocket ?? WebSocket) as unknown as typeof WebSocket;
  class Recording extends Base {
    constructor(url: string) {
      super(url);
      const reader = new ServerFrameReader();
      const types = new Set<string>();
      sdkWires.push({ protocol: () => reader.protocol, types });
      this.on('message', (data: ArrayBuffer) => {
        try {
          for (const m of reader.read(new Uint8Array(data)).messages) types.add(m.type);
        } catch {
          types.add('undecodable');
        }
      });
    }
  }
  return h.client(server, { WebSocket: Recording as unknown as WebSocketCtor });
}

// ------------------------------------------------------------------ values and states

function b64(u: Uint8Array): string {
  return Buffer.from(u).toString('base64');
}

/** A state in the JSON form of GET /snapshot. */
function json(state: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(state)) {
    if (typeof v === 'bigint') out[k] = { $bigint: v.toString() };
    else if (v instanceof Uint8Array) out[k] = { $bytes: b64(v) };
    else out[k] = v;
  }
  return out;
}

function pick(state: Record<string, unknown>, fields: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(state).filter(([k]) => fields.includes(k)));
}

interface HttpSnapshot {
  topic: string;
  epoch: number;
  version: number;
  fields: Record<string, unknown>;
}

/** GET /snapshot/<topic> once the answering thread holds `version` (a worker may lag the sequencer by a moment). */
async function snapshotAt(server: TickfanServer, topic: string, version: number): Promise<HttpSnapshot> {
  let last: unknown;
  for (let i = 0; i < 200; i++) {
    const res = await http(server.port, 'GET', `/snapshot/${topic}`);
    last = res.body;
    const body = res.body as HttpSnapshot;
    if (res.status === 200 && body.version === version) return body;
    await sleep(10);
  }
  throw new Error(`GET /snapshot/${topic} never answered version ${version} (last: ${JSON.stringify(last)})`);
}

/**
 * Waits until every protocol-1 client and SDK client holds the server's
 * current version of `topic`, then checks each state against GET /snapshot at
 * that version (restricted to `fields` when given) and the clients against
 * each other.
 */
async function exactEverywhere(server: TickfanServer, topic: string, p1c: P1Client[], sdks: TickfanClient[], fields?: string[]): Promise<HttpSnapshot> {
  const want = serverState(server, topic);
  await waitFor(
    () => p1c.every((c) => c.stateOf(topic)?.version === want.version) && sdks.every((c) => caughtUp(c, server, topic)),
    8_000,
    `every client at ${topic} v${want.version}`,
  );
  const snap = await snapshotAt(server, topic, want.version);
  const expected = fields ? pick(snap.fields, fields) : snap.fields;
  for (const c of p1c) {
    const held = c.stateOf(topic)!;
    expect({ epoch: held.epoch, version: held.version }).toEqual({ epoch: snap.epoch, version: snap.version });
    expect(json(held.state), `protocol-1 state of ${topic}`).toEqual(expected);
  }
  for (const c of sdks) {
    const held = c.stateOf(topic)!;
    expect({ epoch: held.epoch, version: held.version }).toEqual({ epoch: snap.epoch, version: snap.version });
    expect(json(held.state), `protocol-2 state of ${topic}`).toEqual(expected);
    if (p1c[0]) expect(held.state).toEqual(p1c[0].stateOf(topic)!.state);
  }
  return snap;
}

const isAck = (id: number) => (m: P1Message): m is Extract<P1Message, { type: 'ack' }> => m.type === 'ack' && m.id === id;

/** Snapshots and deltas of `topic` among a protocol-1 client's messages from index `from` on. */
function imagesOf(c: P1Client, topic: string, from = 0): Extract<P1Message, { type: 'snapshot' | 'delta' }>[] {
  return c.messages.slice(from).filter((m): m is Extract<P1Message, { type: 'snapshot' | 'delta' }> => (m.type === 'snapshot' || m.type === 'delta') && m.topic === topic);
}

/** A price-like update: decimals, sizes, a string, a bool, sometimes a delete, a big int or bytes. */
function tick(i: number): Record<string, P1Value | null> {
  const c: Record<string, P1Value | null> = {
    bid: Number((308.81 + i / 100).toFixed(2)),
    ask: Number((308.85 + i / 100).toFixed(2)),
    bidSize: 100 * ((i % 50) + 1),
  };
  if (i % 3 === 0) c.last = Number((308.83 + i / 100).toFixed(2));
  if (i % 5 === 0) c.note = i % 10 === 0 ? null : `n${i}`;
  if (i % 7 === 0) c.halted = i % 14 === 0;
  if (i % 11 === 0) c.big = 2n ** 60n + BigInt(i);
  if (i % 13 === 0) c.raw = new Uint8Array([i & 255, 0, 255]);
  if (i % 17 === 0) c.neg = -i - 0.5;
  return c;
}

describe.each(MODES)('a protocol-1 client beside protocol-2 clients ($name)', ({ opts }) => {
  it('gets snapshots then every delta, numbered without a gap, in protocol 1 only (with or without Hello), exact like the protocol-2 clients', async () => {
    const server = await h.server({ ...opts, heartbeatMs: 200 });
    server.publish('c1.A', { bid: 308.81, ask: 308.85, sym: 'AAPL', open: true });
    server.publish('c1.B', { px: 1.0845 });
    const a = await p1(server);
    const b = await p1(server, false);
    const x = p2Sdk(server);
    const xa = x.subscribe('c1.A');
    const xb = x.subscribe('c1.B');
    const [ua, ub] = [record(xa), record(xb)];
    const ack = await a.subscribe(1, ['c1.A', 'c1.B']);
    expect(ack.count).toBe(2);
    await b.subscribe(7, ['c1.A']);
    await Promise.all([xa.ready, xb.ready]);

    for (let i = 1; i <= 200; i++) {
      server.publish(i % 4 === 0 ? 'c1.B' : 'c1.A', i % 4 === 0 ? { px: 1.0845 + i / 1e4, n: i } : tick(i));
      if (i % 25 === 0) await sleep(2); // pacing: some updates alone in a frame, others batched
    }
    for (const topic of ['c1.A', 'c1.B']) await exactEverywhere(server, topic, topic === 'c1.A' ? [a, b] : [a], [x]);

    for (const c of [a, b]) {
      // The first image is a snapshot at v1, then one delta per version, each with its publish time.
      const applied = c.replicas.get('c1.A')!.applied;
      expect(applied[0]).toMatchObject({ snapshot: true, version: 1 });
      const deltas = applied.slice(1);
      expect(deltas.map((d) => d.version)).toEqual(Array.from({ length: deltas.length }, (_, i) => i + 2));
      expect(deltas.every((d) => d.base === d.version - 1 && d.updates === 1 && d.ts > 0)).toBe(true);
      expect(deltas.length).toBe(serverState(server, 'c1.A').version - 1);
      // Protocol 1 throughout: only the first Welcome, announcing 1; every frame numbered (checked in afterEach).
      expect(c.welcomes.map((w) => w.protocol)).toEqual([1]);
      expect(c.frames.map((f) => f.seq)).toEqual(c.frames.map((_, i) => i + 1));
      // Deltas came on the native stream too (frames published to all the channel's protocol-1 subscribers at once).
      expect(c.frames.some((f) => f.published)).toBe(true);
    }
    expect(chainProblem(ua, { full: true })).toBeNull();
    expect(chainProblem(ub, { full: true })).toBeNull();
    // The protocol-2 client was told about the same versions.
    expect(ua.map((u) => u.version)).toEqual(a.replicas.get('c1.A')!.applied.map((d) => d.version));
  });

  it('publishes with an ack carrying the version the server assigned; the protocol-2 clients see it there, and it sees theirs', async () => {
    const server = await h.server(opts);
    server.publish('c2.P', { bid: 1 });
    const epoch = serverState(server, 'c2.P').epoch;
    const a = await p1(server);
    await a.subscribe(1, ['c2.P']);
    const x = p2Sdk(server);
    const sx = x.subscribe('c2.P');
    const ux = record(sx);
    await sx.ready;

    const made: { version: number; by: string; changes: Record<string, P1Value | null> }[] = [];
    for (let i = 1; i <= 30; i++) {
      const changes = { bid: 100 + i / 4, who: `w${i}`, ...(i % 6 === 0 ? { bid: null } : {}) };
      if (i % 3 === 0) {
        const ack = await a.publish(100 + i, 'c2.P', changes);
        expect({ topic: ack.topic, epoch: ack.epoch }).toEqual({ topic: 'c2.P', epoch });
        made.push({ version: ack.version, by: 'p1', changes });
      } else if (i % 3 === 1) {
        made.push({ version: (await x.publish('c2.P', changes)).version, by: 'p2', changes });
      } else {
        const res = await http(server.port, 'POST', '/publish/c2.P', changes);
        expect(res.status).toBe(200);
        made.push({ version: (res.body as { version: number }).version, by: 'http', changes });
      }
    }
    expect(made.map((m) => m.version)).toEqual(Array.from({ length: 30 }, (_, i) => i + 2));
    await exactEverywhere(server, 'c2.P', [a], [x]);
    const p1Deltas = new Map(a.replicas.get('c2.P')!.applied.map((d) => [d.version, Object.fromEntries(d.changes)]));
    const p2Updates = new Map(ux.map((u) => [u.version, u.changes]));
    for (const m of made) {
      // Each client saw each publish, whoever made it, at the version its maker was told.
      expect(p1Deltas.get(m.version), `v${m.version} by ${m.by} on protocol 1`).toEqual(m.changes);
      expect(p2Updates.get(m.version), `v${m.version} by ${m.by} on protocol 2`).toEqual(m.changes);
    }
    // A refused publish is answered with an Error naming it.
    const from = a.messages.length;
    a.send(encodeP1.publish(999, 'c2.P', { '': 1 }));
    const { message } = await a.next((m): m is Extract<P1Message, { type: 'error' }> => m.type === 'error' && m.id === 999, from);
    expect(message.code).toBe(14); // BAD_FIELD
    expect(serverState(server, 'c2.P').version).toBe(31);
  });

  it('a pattern subscription: the topics matched now and those created later, exact', async () => {
    const server = await h.server(opts);
    server.publish('c3.A', { bid: 1.5 });
    server.publish('c3.B', { bid: 2.5 });
    const a = await p1(server);
    const ack = await a.subscribe(1, ['c3.*']);
    expect(ack.count).toBe(2);
    const x = p2Sdk(server);
    const sx = x.subscribe('c3.*');
    await sx.ready;
    for (let i = 1; i <= 60; i++) {
      server.publish(['c3.A', 'c3.B', 'c3.C', 'c3.C.deep', 'c9.A'][i % 5]!, tick(i));
      if (i % 20 === 0) await sleep(2);
    }
    for (const t of ['c3.A', 'c3.B', 'c3.C']) await exactEverywhere(server, t, [a], [x]);
    // A topic created after the subscription arrives as a snapshot of its first version.
    expect(a.replicas.get('c3.C')!.applied[0]).toMatchObject({ snapshot: true, version: 1 });
    await a.roundTrip();
    expect([...a.replicas.keys()].sort()).toEqual(['c3.A', 'c3.B', 'c3.C']);
    expect(x.stateOf('c3.C.deep')).toBeUndefined();
  });

  it('a field subset: only those fields, exact at every version it is sent', async () => {
    const server = await h.server(opts);
    const fields = ['bid', 'ask'];
    const truth = new Truth(server, 'c4.F');
    truth.publish({ bid: 10.25, ask: 10.5, last: 10.3, vol: 5, note: 'open' });
    const a = await p1(server);
    const full = await p1(server);
    await a.subscribe(1, ['c4.F'], { fields });
    await full.subscribe(1, ['c4.F']);
    const x = p2Sdk(server);
    const sx = x.subscribe('c4.F', { fields });
    const ux = record(sx);
    await sx.ready;
    for (let i = 1; i <= 80; i++) {
      // Some updates touch only fields outside the subset; the subset's fields are deleted and re-added.
      if (i % 4 === 0) truth.publish({ vol: i, note: `n${i}` });
      else if (i % 9 === 0) truth.publish({ ask: null, last: i });
      else truth.publish({ bid: 10 + i / 8, ask: 10.5 + i / 8 });
      if (i % 20 === 0) await sleep(2);
    }
    truth.publish({ bid: 99.125 });
    await exactEverywhere(server, 'c4.F', [a], [x], fields);
    await exactEverywhere(server, 'c4.F', [full], []);
    const applied = a.replicas.get('c4.F')!.applied;
    for (const d of applied) {
      expect([...d.changes.keys()].every((k) => fields.includes(k)), `v${d.version} carries only ${fields}`).toBe(true);
      expect(json(Object.fromEntries(d.state)), `subset state at v${d.version}`).toEqual(json(pick(truth.at.get(d.version)!, fields)));
    }
    for (const u of ux) expect(u.state, `protocol-2 subset state at v${u.version}`).toEqual(pick(truth.at.get(u.version)!, fields));
    // (A version that changed none of its fields emits no update: versions rise, not always by one.)
    expect(ux.every((u, i) => i === 0 || u.version > ux[i - 1]!.version)).toBe(true);
    expect(ux.at(-1)!.version).toBe(serverState(server, 'c4.F').version);
  });

  it('a rate tier: a burst arrives as a few conflated deltas, each exact, beside a full-rate protocol-2 client', async () => {
    const server = await h.server(opts);
    const truth = new Truth(server, 'c5.R');
    truth.publish({ bid: 1.1, ask: 1.2, ...Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`lvl.${i}`, i])) });
    const a = await p1(server);
    await a.subscribe(1, ['c5.R'], { maxRate: 10 });
    const x = p2Sdk(server);
    const sx = x.subscribe('c5.R', { maxRate: 10 });
    const full = p2Sdk(server);
    const sf = full.subscribe('c5.R');
    const [ux, uf] = [record(sx), record(sf)];
    await Promise.all([sx.ready, sf.ready]);
    for (let batch = 0; batch < 6; batch++) {
      for (let j = 0; j < 40; j++) {
        const i = batch * 40 + j;
        // Field-level conflation with deletes and re-adds along the way.
        truth.publish({ bid: 1.1 + i / 1e4, ask: 1.2 + i / 1e4, [`lvl.${i % 10}`]: i % 3 === 0 ? null : i });
      }
      await sleep(40); // time is the signal: the burst spans a few 100 ms flushes
    }
    await exactEverywhere(server, 'c5.R', [a], [x, full]);
    const deltas = a.replicas.get('c5.R')!.applied.slice(1);
    expect(deltas.length).toBeGreaterThan(0);
    expect(deltas.length).toBeLessThan(40); // 240 updates in ~250 ms at 10/s: a handful
    expect(deltas.some((d) => d.updates > 1)).toBe(true);
    for (const d of deltas) {
      expect(d.updates, `updates of ${d.base}->${d.version}`).toBe(d.version - d.base);
      expect(json(Object.fromEntries(d.state)), `state after the conflated delta to v${d.version}`).toEqual(json(truth.at.get(d.version)!));
    }
    for (const u of ux) expect(json(u.state), `protocol-2 state at v${u.version}`).toEqual(json(truth.at.get(u.version)!));
    expect(chainProblem(ux)).toBeNull();
    expect(chainProblem(uf, { full: true })).toBeNull();
  });

  it('catches up by merged delta (CatchUp, resume) and by snapshot (too old, other epoch), beside protocol-2 clients that reconnect', async () => {
    const server = await h.server({ ...opts, limits: { historySize: 16 } });
    const topic = 'c6.A';
    const truth = new Truth(server, topic);
    for (let i = 1; i <= 10; i++) truth.publish(tick(i));
    const { epoch } = serverState(server, topic);
    const a = await p1(server);
    await a.subscribe(1, [topic]);
    expect(a.replicas.get(topic)!.applied[0]).toMatchObject({ snapshot: true, version: 10 });
    const tracked = trackingCtor();
    const x = p2Sdk(server, { WebSocket: tracked.Ctor });
    const sx = x.subscribe(topic);
    const ux = record(sx);
    await sx.ready;

    // The SDK client loses its connection while 10 updates are published: it resumes by merged delta.
    tracked.current().terminate();
    for (let i = 11; i <= 20; i++) truth.publish(tick(i));
    await exactEverywhere(server, topic, [a], [x]);
    expect(x.stats.catchUpDeltas).toBe(1);

    // CatchUp from a version still in history: one merged delta from there.
    const state = (v: number) => truth.at.get(v)!;
    a.hold(topic, { epoch, version: 12, state: state(12) });
    let from = a.messages.length;
    a.catchUp(topic, epoch, 12);
    await a.roundTrip();
    expect(imagesOf(a, topic, from).map((m) => [m.type, m.type === 'delta' ? m.base : -1, m.version])).toEqual([['delta', 12, 20]]);
    expect(imagesOf(a, topic, from)[0]).toMatchObject({ updates: 8 });
    await exactEverywhere(server, topic, [a], [x]);

    // A new connection resuming from a version still in history: one merged delta.
    const b = await p1(server);
    b.hold(topic, { epoch, version: 15, state: state(15) });
    await b.subscribe(1, [topic], { resume: [{ topic, epoch, version: 15 }] });
    expect(imagesOf(b, topic).map((m) => [m.type, m.type === 'delta' ? m.base : -1, m.version])).toEqual([['delta', 15, 20]]);
    await exactEverywhere(server, topic, [a, b], [x]);

    // The SDK client drops again while 20 updates go by (more than the history holds): a snapshot.
    await waitFor(() => caughtUp(x, server, topic), 5_000, 'the SDK client at v20');
    tracked.current().terminate();
    for (let i = 21; i <= 40; i++) truth.publish(tick(i));
    await exactEverywhere(server, topic, [a, b], [x]);
    expect(x.stats.catchUpSnapshots).toBe(1);

    // CatchUp from a version the history no longer reaches: a snapshot.
    a.hold(topic, { epoch, version: 3, state: state(3) });
    from = a.messages.length;
    a.catchUp(topic, epoch, 3);
    await a.roundTrip();
    expect(imagesOf(a, topic, from).map((m) => [m.type, m.version])).toEqual([['snapshot', 40]]);

    // CatchUp naming another epoch: a snapshot of the current epoch.
    a.hold(topic, { epoch: epoch + 1, version: 40, state: state(40) });
    from = a.messages.length;
    a.catchUp(topic, epoch + 1, 40);
    await a.roundTrip();
    expect(imagesOf(a, topic, from).map((m) => [m.type, m.epoch, m.version])).toEqual([['snapshot', epoch, 40]]);

    // A new connection resuming from too old: a snapshot.
    const c = await p1(server);
    c.hold(topic, { epoch, version: 5, state: state(5) });
    await c.subscribe(1, [topic], { resume: [{ topic, epoch, version: 5 }] });
    expect(imagesOf(c, topic).map((m) => [m.type, m.version])).toEqual([['snapshot', 40]]);

    for (let i = 41; i <= 45; i++) truth.publish(tick(i));
    await exactEverywhere(server, topic, [a, b, c], [x]);
    for (const u of ux) expect(json(u.state), `protocol-2 state at v${u.version}`).toEqual(json(state(u.version)));
    expect(chainProblem(ux)).toBeNull();
  });

  it('pause and resume: nothing while paused, then one exact catch-up, like a protocol-2 client', async () => {
    const server = await h.server(opts);
    const topic = 'c7.A';
    server.publish(topic, tick(0));
    server.publish('c7.Z', { n: 0 });
    const a = await p1(server);
    await a.subscribe(1, [topic]);
    await a.subscribe(2, ['c7.Z']);
    const x = p2Sdk(server);
    const sx = x.subscribe(topic);
    const sz = x.subscribe('c7.Z');
    const ux = record(sx);
    await Promise.all([sx.ready, sz.ready]);
    for (let i = 1; i <= 5; i++) server.publish(topic, tick(i));
    await exactEverywhere(server, topic, [a], [x]);
    const pausedAt = serverState(server, topic).version;

    let from = a.messages.length;
    a.send(encodeP1.pause(1));
    await a.next(isAck(1), from);
    sx.pause();
    await roundTrip(x);
    const pausedFrom = a.messages.length;
    const seenBefore = ux.length;
    for (let i = 6; i <= 30; i++) server.publish(topic, tick(i));
    // The barrier: an update of another topic published after them reached both clients
    // (one sequencer, one ordered stream per connection), so theirs would have too.
    server.publish('c7.Z', { n: 1 });
    await exactEverywhere(server, 'c7.Z', [a], [x]);
    expect(imagesOf(a, topic, pausedFrom)).toEqual([]);
    expect(ux.length).toBe(seenBefore);
    expect(a.stateOf(topic)!.version).toBe(pausedAt);
    expect(x.stateOf(topic)!.version).toBe(pausedAt);

    from = a.messages.length;
    const catchUpsBefore = x.stats.catchUps;
    a.send(encodeP1.resume(1));
    sx.resume();
    await exactEverywhere(server, topic, [a], [x]);
    await a.roundTrip();
    const after = imagesOf(a, topic, from);
    expect(after).toHaveLength(1);
    expect(after[0]!.version).toBe(pausedAt + 25);
    if (after[0]!.type === 'delta') expect(after[0]).toMatchObject({ base: pausedAt, updates: 25 });
    const p2After = ux.slice(seenBefore);
    expect(p2After).toHaveLength(1);
    expect(p2After[0]!.version).toBe(pausedAt + 25);
    expect(x.stats.catchUps).toBe(catchUpsBefore + 1);
    expect(chainProblem(ux)).toBeNull();
  });

  it('heartbeats carry the versions the client holds, and a newer one after a publish', async () => {
    const server = await h.server({ ...opts, heartbeatMs: 50 });
    server.publish('c8.A', { bid: 1.25 });
    server.publish('c8.B', { bid: 2.5 });
    server.publish('c8.B', { bid: 2.75 });
    const a = await p1(server);
    await a.subscribe(1, ['c8.*']);
    const x = p2Sdk(server);
    const sx = x.subscribe('c8.*');
    await sx.ready;
    const beatsFrom = (from: number) => a.messages.slice(from).filter((m): m is Extract<P1Message, { type: 'heartbeat' }> => m.type === 'heartbeat');
    let from = a.messages.length;
    await waitFor(() => beatsFrom(from).length >= 2, 5_000, 'two heartbeats');
    const beat = beatsFrom(from).at(-1)!;
    expect(Math.abs(beat.time - Date.now())).toBeLessThan(5_000);
    const versions = Object.fromEntries(beat.versions.map((v) => [v.topic, [v.epoch, v.version]]));
    for (const t of ['c8.A', 'c8.B']) {
      const held = a.stateOf(t)!;
      expect(versions[t], t).toEqual([held.epoch, held.version]);
      expect(held.version).toBe(serverState(server, t).version);
    }
    // Heartbeats are sent to the connection alone: explicit sequence numbers.
    const beatFrames = a.frames.filter((f) => f.messages.some((m) => m.type === 'heartbeat'));
    expect(beatFrames.every((f) => !f.published)).toBe(true);

    server.publish('c8.A', { bid: 1.5 });
    await exactEverywhere(server, 'c8.A', [a], [x]);
    from = a.messages.length;
    await waitFor(() => beatsFrom(from).some((hb) => hb.versions.some((v) => v.topic === 'c8.A' && v.version === 2)), 5_000, 'a heartbeat with c8.A v2');
    expect(x.stats.gaps).toBe(0);
  });
});

/** A `ws` WebSocket class remembering its instances, so a test can cut the SDK's connection. */
function trackingCtor(): { Ctor: WebSocketCtor; current(): WebSocket } {
  const sockets: WebSocket[] = [];
  class Tracked extends WebSocket {
    constructor(url: string) {
      super(url);
      sockets.push(this);
    }
  }
  return { Ctor: Tracked as unknown as WebSocketCtor, current: () => sockets.at(-1)! };
}

