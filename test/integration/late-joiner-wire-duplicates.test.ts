// Issue 19, "no duplicates and no skipped versions", checked on the wire: the
// SDK ignores a delta whose version it already holds, so it hides duplicates;
// here raw protocol-2 clients decode every frame themselves. 40 WebSocket
// clients connect at random moments while a keyed book and a plain topic are
// published in bursts (10 versions of each per event-loop turn), in one
// thread and with 2 fan-out workers (the native fast path both ways); each
// subscribes right before a burst, so that the server takes its snapshot
// while that burst waits in the channel's queue for the turn's native publish
// (the race this file is about: before the fix, that frame reached the joiner
// too — hundreds of duplicates per run). For each topic a joiner's first
// message must be a snapshot at some version V, and every later message of
// that topic a delta based exactly at the version held before it: never one
// whose versions it already holds (a wire duplicate), never one based past it
// (a skipped version). Full-rate and throttled (maxRate) subscriptions, whole
// tables and depth-10 views; and the joiners do end up on the native stream.

import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import type { ServerOptions, TickfanServer } from '../../src/index.js';
import { Encoder, ServerFrameReader, clientFrame, type AnyMessage } from '../../src/protocol/index.js';
import { Harness, sleep, waitFor, wsUrl } from './helpers.js';
import { rng, seedBatch } from './keyed-acceptance-helpers.js';

const h = new Harness();
const joiners: Joiner[] = [];
afterEach(async () => {
  await Promise.all(joiners.map((j) => j.close()));
  joiners.length = 0;
  await h.close();
});

const enc = new Encoder();
const BOOK = 'wd.book';
const PLAIN = 'wd.plain';
/** How long the updates flow; joiners are created from 100 ms to FLOW_MS − 500 ms. */
const FLOW_MS = 2_500;
const JOINERS = 40;
/** Versions of each topic published per second, in bursts: a 20 ms timer publishes what it owes (10 versions a turn). */
const RATE = 500;
const TICK_MS = 20;

/** What one joiner saw of one topic, frame by frame. */
interface Seen {
  /** Its first message of the topic: a snapshot at this version (null: it began with something else). */
  first: { kind: string; version: number; at: number } | null;
  held: number;
  duplicates: number;
  /** Skipped versions, deltas before a snapshot, snapshots going back. */
  problems: string[];
}

/** A raw protocol-2 WebSocket client counting, per topic, what arrives after its first snapshot. */
class Joiner {
  readonly reader = new ServerFrameReader();
  readonly byId = new Map<number, Seen>();
  readonly byTopic = new Map<string, Seen>();
  readonly problems: string[] = [];
  /** Deltas that came in published frames (the native stream) and in direct ones. */
  readonly deltas = { published: 0, direct: 0 };
  /** Date.now() when it was created. */
  readonly createdAt = Date.now();
  private expectedSeq = 1;
  private inPublished = false;
  private constructor(
    readonly ws: WebSocket,
    /** What it subscribes to: the plain topic at this maxRate, the book at this depth (0: whole tables). */
    readonly plan: { maxRate: number; depth: number },
  ) {
    ws.binaryType = 'arraybuffer';
    ws.on('message', (data: ArrayBuffer) => this.onFrame(new Uint8Array(data)));
  }

  static async open(server: TickfanServer, plan: { maxRate: number; depth: number }): Promise<Joiner> {
    const j = new Joiner(new WebSocket(wsUrl(server)), plan);
    joiners.push(j);
    await new Promise<void>((resolve, reject) => {
      j.ws.once('open', () => resolve());
      j.ws.once('error', reject);
    });
    j.send(enc.hello(2, 'wire-duplicates', ''));
    await waitFor(() => j.reader.protocol === 2, 5_000, 'the Welcome announcing protocol 2');
    return j;
  }

  send(msg: Uint8Array): void {
    this.ws.send(clientFrame([msg]), { binary: true });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.ws.readyState === WebSocket.CLOSED) return resolve();
      const t = setTimeout(() => (this.ws.terminate(), resolve()), 1_000);
      this.ws.once('close', () => (clearTimeout(t), resolve()));
      this.ws.close();
    });
  }

  private onFrame(bytes: Uint8Array): void {
    const f = this.reader.read(bytes);
    if (f.error) this.problems.push(`undecodable message: ${(f.error as Error).message}`);
    // Published frames carry 0 and count as the next number.
    if (f.seq !== 0 && f.seq !== this.expectedSeq) this.problems.push(`frame sequence ${f.seq}, expected ${this.expectedSeq}`);
    this.expectedSeq = (f.seq || this.expectedSeq) + 1;
    this.inPublished = f.seq === 0;
    for (const m of f.messages) this.onMessage(m);
  }

  private onMessage(m: AnyMessage): void {
    if (m.type === 'ping') return this.send(enc.pong(m.nonce));
    if (m.type === 'snapshot2' || m.type === 'keyedSnapshot2') {
      let s = this.byId.get(m.topicId);
      if (!s) {
        s = this.byTopic.get(m.topic) ?? { first: null, held: 0, duplicates: 0, problems: [] };
        this.byId.set(m.topicId, s);
        this.byTopic.set(m.topic, s);
      }
      if (m.type === 'keyedSnapshot2' && m.part > 0) {
        if (m.version !== s.held) s.problems.push(`snapshot part ${m.part} at v${m.version}, its part 0 at v${s.held}`);
        return;
      }
      if (!s.first) s.first = { kind: m.type, version: m.version, at: Date.now() };
      else if (m.version < s.held) s.problems.push(`a snapshot at v${m.version} after v${s.held}`);
      s.held = m.version;
      return;
    }
    if (m.type === 'delta2' || m.type === 'keyedDelta2') {
      const s = this.byId.get(m.topicId);
      if (!s) return void this.problems.push(`a ${m.type} of topic id ${m.topicId} before any snapshot of it`);
      const base = m.version - m.updates;
      this.deltas[this.inPublished ? 'published' : 'direct']++;
      if (m.version <= s.held) s.duplicates++;
      else if (base !== s.held) s.problems.push(`holding v${s.held}, got a delta ${base}→${m.version}`);
      else s.held = m.version;
    }
  }
}

/** `n` plain publishes and `n` keyed batches of 3 row ops near the top. */
function publishSome(server: TickfanServer, r: () => number, n: number): void {
  for (let i = 0; i < n; i++) {
    server.publish(PLAIN, { px: Math.round(r() * 1e6) / 100, n: Math.floor(r() * 1e3) });
    const ops = [];
    for (let k = 0; k < 3; k++) {
      const bid = r() < 0.5;
      const key = bid ? 100_000 - Math.floor(r() * 30) : 100_001 + Math.floor(r() * 30);
      ops.push(r() < 0.2 ? { op: 'delete', table: bid ? 'bids' : 'asks', key } : { op: 'upsert', table: bid ? 'bids' : 'asks', key, fields: { qty: Math.round(r() * 1e4) / 100, n: 1 } });
    }
    server.publishBatch(BOOK, { fields: { last: Math.round(r() * 1e6) / 100 }, tables: { ops } } as never);
  }
}

async function joinDuringFlow(opts: Partial<ServerOptions>): Promise<void> {
  const server = await h.server({ ...opts, maxConnectionsPerIp: 1_000 });
  server.publish(PLAIN, { px: 1, n: 0 });
  server.publishBatch(BOOK, seedBatch(200) as never);
  const r = rng(190019);
  const plan = Array.from({ length: JOINERS }, (_, i) => ({
    at: 100 + Math.round(r() * (FLOW_MS - 600)),
    // Every 4th subscribes to the plain topic throttled; half see the book as depth-10 views, half whole.
    maxRate: i % 4 === 3 ? 50 : 0,
    depth: i % 2 === 0 ? 10 : 0,
  }));
  const all: Joiner[] = [];
  /** Connected joiners waiting for the publisher's next tick to subscribe. */
  const ready: Joiner[] = [];
  let opening = plan.length;
  for (const p of plan) {
    void sleep(p.at).then(async () => {
      const j = await Joiner.open(server, p);
      ready.push(j);
      all.push(j);
      opening--;
    });
  }
  /** Subscribes right before a burst: the server reads the Subscribe in the turn the burst is queued in (the race at stake). */
  const subscribe = (j: Joiner): void => {
    j.send(enc.subscribe(1, [PLAIN], j.plan.maxRate, [], []));
    const tables = j.plan.depth ? ['bids', 'asks'].map((table) => ({ table, depth: j.plan.depth, fields: [] })) : undefined;
    j.send(enc.subscribe(2, [BOOK], 0, [], [], false, tables));
  };
  const started = (j: Joiner) => j.byTopic.get(PLAIN)?.first && j.byTopic.get(BOOK)?.first;
  const t0 = Date.now();
  let sent = 0;
  // The updates flow for FLOW_MS, and on until every joiner has had its first snapshots and 300 ms of deltas
  // after them (the clients share this thread with the publisher and lag when the machine is busy), 15 s at most.
  let settledAt = Infinity;
  for (let el = 0; (el = Date.now() - t0) < Math.max(FLOW_MS, settledAt + 300) && el < 15_000; await sleep(TICK_MS)) {
    const owed = Math.floor((el / 1000) * RATE) - sent;
    for (const j of ready.splice(0, 2)) subscribe(j);
    publishSome(server, r, owed);
    sent += owed;
    if (settledAt === Infinity && opening === 0 && all.every(started)) settledAt = el;
  }
  const last: Record<string, number> = { [PLAIN]: server.store.get(PLAIN)!.version, [BOOK]: server.store.get(BOOK)!.version };
  // Quiet now: every joiner reaches the last version of both topics (the throttled tier's last flush included).
  await waitFor(() => opening === 0 && all.every((j) => [PLAIN, BOOK].every((t) => j.byTopic.get(t)?.held === last[t])), 10_000, 'every joiner at the last versions');
  all.sort((a, b) => a.createdAt - b.createdAt);

  const problems: string[] = [];
  let during = 0;
  const dups: Record<string, number> = {};
  for (const [i, j] of all.entries()) {
    for (const p of j.problems) problems.push(`joiner ${i}: ${p}`);
    for (const t of [PLAIN, BOOK]) {
      const s = j.byTopic.get(t)!;
      const what = `${t === BOOK ? (j.plan.depth ? 'book depth 10' : 'book whole') : j.plan.maxRate ? 'plain maxRate 50' : 'plain full rate'}`;
      dups[what] = (dups[what] ?? 0) + s.duplicates;
      if (!s.first) problems.push(`joiner ${i} (${what}): no snapshot first`);
      else if (s.first.version < last[t]) during++;
      for (const p of s.problems) problems.push(`joiner ${i} (${what}): ${p}`);
    }
  }
  const total = Object.values(dups).reduce((a, b) => a + b, 0);
  const waits = all.map((j) => Math.max(...[PLAIN, BOOK].map((t) => j.byTopic.get(t)!.first!.at)) - j.createdAt).sort((a, b) => a - b);
  const published = all.reduce((n, j) => n + j.deltas.published, 0);
  const direct = all.reduce((n, j) => n + j.deltas.direct, 0);
  console.log(`wire duplicates (${opts.workers ? `${opts.workers} workers` : 'one thread'}): ${total} in all, ${JSON.stringify(dups)}; ${during} of ${2 * JOINERS} first snapshots during the flow; last versions ${last[PLAIN]} / ${last[BOOK]} after ${((Date.now() - t0) / 1000).toFixed(1)} s; first snapshots ${waits[0]}/${waits[waits.length >> 1]}/${waits.at(-1)} ms after the client was created; deltas received ${published} published, ${direct} direct`);
  expect(problems.slice(0, 5), 'skipped versions and other problems').toEqual([]);
  expect(dups, 'wire duplicates: deltas of versions the joiner already held').toEqual(Object.fromEntries(Object.keys(dups).map((k) => [k, 0])));
  // Joiners do get onto the native stream (served directly only until their channel's frame has gone out).
  expect(all.filter((j) => j.deltas.published === 0).length, 'joiners never on the native stream').toBe(0);
  expect(direct, 'deltas sent directly rather than on the native stream').toBeLessThan(published / 4);
  // Not vacuous: every first snapshot was taken while versions flowed.
  expect(during, 'first snapshots during the flow').toBe(2 * JOINERS);
}

describe('late joiners on the wire: no duplicates, no skipped versions', () => {
  it('one thread: each joiner gets a snapshot at V, then deltas from V on, once each', () => joinDuringFlow({}), 20_000);
  it('2 fan-out workers: each joiner gets a snapshot at V, then deltas from V on, once each', () => joinDuringFlow({ workers: 2 }), 20_000);
});
