// Desks over STOMP (issue 20: "the same blotter checks run over STOMP with
// @stomp/stompjs"): desks with no tickfan SDK, only @stomp/stompjs over `ws`,
// trade against the demo order service on an open server (the desk is named
// in the order). Each desk submits orders with SEND to /service/orders.submit
// and a reply-to, cancels some, and holds its blotter `blotter.<desk>` (table
// `orders`) from the keyed JSON bodies of its STOMP subscription — snapshots
// replace, a delta applies only on its base — while its connection is cut at
// random and resumed with `tickfan-resume`. Checked: every order answered once
// with one order id (resends by clOrdId get the same), no correlation id
// answered twice, each reply's row version reached by the desk's blotter with
// the row at least at the reply's rev, no row's rev/filled/fills going
// backwards, no delta off its base, and after the quiet period every desk's
// blotter equal to the service's record.

import { Client, type IMessage } from '@stomp/stompjs';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { MarketSim, OrderService, INSTRUMENTS, DEMO_BOOKS, rng } from '../../src/demo/index.js';
import type { TickfanServer } from '../../src/index.js';
import { Harness, sleep, waitFor } from './helpers.js';

type Json = Record<string, any>;
type Row = Record<string, unknown>;

const DESKS = 10;
const ORDERS = 5;

const h = new Harness();
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
  await h.close();
});

const canon = (r: Row | undefined): string => (r ? JSON.stringify(Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : 1)))) : 'none');

interface Report {
  answered: number;
  resent: number;
  retries: number;
  cuts: number;
  reconnects: number;
  resumes: number;
  snapshots: number;
  deltas: number;
  resumedDeltas: number;
  cancels: number;
  cancelRefusedDone: number;
  rowUpdatesSeen: number;
  repliesReached: number;
  gaps: string[];
  backwards: string[];
  mismatches: string[];
  problems: string[];
}

/** One desk on STOMP: its connection, its held blotter, its requests. */
class StompDesk {
  readonly client: Client;
  sockets: WebSocket[] = [];
  connects = 0;
  // The blotter as held: epoch, version, rows by order id.
  epoch = 0;
  version = -1;
  rows = new Map<string, Row>();
  private pending: { version: number; rows: Map<string, Row> } | null = null;
  private subId = 0;
  private readonly seen = new Map<string, { rev: number; filled: number; fills: number }>();
  // Requests waiting for their answer, by correlation id.
  private readonly waiting = new Map<string, { resolve: (m: IMessage) => void; reject: (e: Error) => void }>();
  private readonly answers = new Map<string, number>();
  private corr = 0;
  // Replies whose position the blotter has not reached yet.
  private readonly toReach: { epoch: number; version: number; orderId: string; rev: number }[] = [];
  private afterConnect: (() => void)[] = [];
  private firstConnect: Promise<void>;

  constructor(
    readonly name: string,
    server: TickfanServer,
    private readonly r: Report,
  ) {
    let first!: () => void;
    this.firstConnect = new Promise((res) => (first = res));
    this.client = new Client({
      webSocketFactory: () => {
        const s = new WebSocket(`ws://127.0.0.1:${server.port}/stomp`, ['v12.stomp']);
        this.sockets.push(s);
        return s;
      },
      reconnectDelay: 20,
      heartbeatIncoming: 0,
      heartbeatOutgoing: 0,
      debug: () => {},
    });
    this.client.onStompError = (f) => r.problems.push(`${name}: ERROR ${f.headers.message} ${f.body}`);
    this.client.onWebSocketClose = () => {
      // Requests in flight on the lost connection get no answer: they are sent again.
      for (const [id, w] of this.waiting) (this.waiting.delete(id), w.reject(new Error('disconnected')));
    };
    this.client.onUnhandledMessage = (m) => r.problems.push(`${name}: unhandled MESSAGE ${m.headers.destination}`);
    this.client.onConnect = () => {
      this.connects++;
      if (this.connects > 1) r.reconnects++;
      this.client.subscribe('/temp-queue/replies', (m) => this.onReply(m));
      this.subscribeBlotter();
      first();
      for (const f of this.afterConnect.splice(0)) f();
    };
    this.client.activate();
    cleanup.push(async () => {
      await this.client.deactivate({ force: true });
      for (const s of this.sockets) s.terminate();
    });
  }

  ready(): Promise<void> {
    return this.firstConnect;
  }

  /** Subscribes to the blotter; with a held version, resumes from it. */
  private subscribeBlotter(): void {
    const id = `blotter-${++this.subId}`;
    const headers: Record<string, string> = { id, 'tickfan-tables': 'orders:0' };
    if (this.version >= 0) {
      headers['tickfan-resume'] = `blotter.${this.name}@${this.epoch}:${this.version}`;
      this.r.resumes++;
    }
    this.pending = null;
    const resumed = this.version >= 0;
    let firstMessage = true;
    this.client.subscribe(
      `/topic/blotter.${this.name}`,
      (m) => {
        if (m.headers.subscription !== `blotter-${this.subId}`) return; // an old subscription's leftovers
        if (firstMessage && resumed && m.headers['tickfan-kind'] === 'keyedDelta') this.r.resumedDeltas++;
        firstMessage = false;
        this.onBlotter(m);
      },
      headers,
    );
  }

  private onBlotter(m: IMessage): void {
    const kind = m.headers['tickfan-kind'];
    const body = JSON.parse(m.body) as Json;
    if (String(body.version) !== m.headers['tickfan-version'] || String(body.epoch) !== m.headers['tickfan-epoch']) {
      this.r.problems.push(`${this.name}: headers ${m.headers['tickfan-epoch']}:${m.headers['tickfan-version']} vs body ${body.epoch}:${body.version}`);
    }
    const touched: string[] = [];
    if (kind === 'keyedSnapshot') {
      if (body.part === 0) this.pending = { version: body.version, rows: new Map() };
      const p = this.pending;
      if (!p || p.version !== body.version) return void this.r.gaps.push(`${this.name}: snapshot part ${body.part} of v${body.version} without its first part`);
      for (const [k, f] of Object.entries((body.rows?.orders ?? {}) as Json)) p.rows.set(k, { ...(f as Row) });
      if (!body.last) return;
      this.pending = null;
      this.rows = p.rows;
      this.epoch = body.epoch;
      this.version = body.version;
      this.r.snapshots++;
      touched.push(...this.rows.keys());
    } else if (kind === 'keyedDelta') {
      if (body.epoch !== this.epoch || body.base !== this.version) {
        // Off its base: what is held can no longer be trusted to continue; resume from it.
        this.r.gaps.push(`${this.name}: delta ${body.epoch}:${body.base}→${body.version} on ${this.epoch}:${this.version}`);
        this.client.unsubscribe(`blotter-${this.subId}`);
        this.subscribeBlotter();
        return;
      }
      const tc = (body.tables?.orders ?? {}) as Json;
      if (tc.clear) this.rows.clear();
      for (const k of (tc.delete ?? []) as unknown[]) this.rows.delete(String(k));
      for (const op of ['replace', 'insert'] as const) for (const [k, f] of Object.entries((tc[op] ?? {}) as Json)) (this.rows.set(k, { ...(f as Row) }), touched.push(k));
      for (const [k, f] of Object.entries((tc.upsert ?? {}) as Json)) {
        const row = { ...(this.rows.get(k) ?? {}) };
        for (const [n, v] of Object.entries(f as Row)) {
          if (v === null) delete row[n];
          else row[n] = v;
        }
        this.rows.set(k, row);
        touched.push(k);
      }
      this.version = body.version;
      this.r.deltas++;
    } else {
      return; // a status
    }
    // No row goes backwards.
    for (const k of touched) {
      const row = this.rows.get(k);
      if (!row) continue;
      this.r.rowUpdatesSeen++;
      const now = { rev: row.rev as number, filled: row.filled as number, fills: row.fills as number };
      const prev = this.seen.get(k);
      if (prev && (now.rev < prev.rev || now.filled < prev.filled || now.fills < prev.fills)) {
        this.r.backwards.push(`${this.name} ${k}: rev ${prev.rev} → ${now.rev}, filled ${prev.filled} → ${now.filled}, fills ${prev.fills} → ${now.fills}`);
      }
      this.seen.set(k, now);
    }
    // Replies whose position is now held: their row is there, at least at the reply's rev.
    for (let i = this.toReach.length - 1; i >= 0; i--) {
      const t = this.toReach[i]!;
      if (t.epoch !== this.epoch || t.version > this.version) continue;
      this.toReach.splice(i, 1);
      const row = this.rows.get(t.orderId);
      if (!row || (row.rev as number) < t.rev) this.r.problems.push(`${this.name}: at ${this.version} (reply ${t.version}) row ${t.orderId} is ${canon(row)}, the reply had rev ${t.rev}`);
      else this.r.repliesReached++;
    }
  }

  private onReply(m: IMessage): void {
    const id = m.headers['correlation-id']!;
    const n = (this.answers.get(id) ?? 0) + 1;
    this.answers.set(id, n);
    if (n > 1) this.r.problems.push(`${this.name}: correlation ${id} answered ${n} times`);
    const w = this.waiting.get(id);
    if (!w) return; // its request was given up (the connection went meanwhile); it is sent again under a new id
    this.waiting.delete(id);
    w.resolve(m);
  }

  private connected(): Promise<void> {
    if (this.client.connected) return Promise.resolve();
    return new Promise((res) => this.afterConnect.push(res));
  }

  /** A request by SEND with reply-to, sent again (same payload, so the same clOrdId) until it gets an answer. */
  async ask(service: string, payload: Row): Promise<Row> {
    for (let attempt = 0; attempt < 200; attempt++) {
      await this.connected();
      const id = `${this.name}-${++this.corr}`;
      const answer = new Promise<IMessage>((resolve, reject) => {
        this.waiting.set(id, { resolve, reject });
        setTimeout(() => (this.waiting.delete(id), reject(new Error('timeout'))), 5_000).unref();
      });
      try {
        this.client.publish({
          destination: `/service/${service}`,
          body: JSON.stringify(payload),
          headers: { 'reply-to': '/temp-queue/replies', 'correlation-id': id, 'content-type': 'application/json' },
        });
        const m = await answer;
        const code = Number(m.headers['tickfan-code']);
        const body = JSON.parse(m.body) as Row;
        if (code === 0) return body;
        // NO_RESPONDER, RESPONDER_GONE, REQUEST_TIMEOUT… are answers: sent again.
        this.r.problems.push(`${this.name}: ${service} answered with error ${code}: ${m.body}`);
      } catch {
        answer.catch(() => {});
      }
      this.r.retries++;
      await sleep(10 + attempt * 5);
    }
    throw new Error(`${this.name}: ${service} never answered`);
  }

  /** The blotter must reach the reply's position with the row at least at its rev. */
  expectReached(reply: Row): void {
    const t = { epoch: reply.epoch as number, version: reply.version as number, orderId: reply.orderId as string, rev: reply.rev as number };
    if (t.epoch === this.epoch && t.version <= this.version) {
      const row = this.rows.get(t.orderId);
      if (!row || (row.rev as number) < t.rev) this.r.problems.push(`${this.name}: at ${this.version} (reply ${t.version}) row ${t.orderId} is ${canon(row)}, the reply had rev ${t.rev}`);
      else this.r.repliesReached++;
    } else this.toReach.push(t);
  }

  get unreached(): number {
    return this.toReach.length;
  }

  /** Cuts the connection as a network would (no DISCONNECT, no close handshake). */
  cut(): boolean {
    const s = this.sockets.at(-1);
    if (!s || s.readyState !== WebSocket.OPEN) return false;
    s.terminate();
    return true;
  }
}

describe('desks over STOMP (@stomp/stompjs, issue 20)', () => {
  it(`${DESKS} desks × ${ORDERS} orders: SEND with reply-to answered once each, blotters held exactly from keyed bodies across random cuts and tickfan-resume, equal to the record after the quiet period`, async () => {
    const seed = 20;
    const r: Report = {
      answered: 0, resent: 0, retries: 0, cuts: 0, reconnects: 0, resumes: 0, snapshots: 0, deltas: 0, resumedDeltas: 0,
      cancels: 0, cancelRefusedDone: 0, rowUpdatesSeen: 0, repliesReached: 0, gaps: [], backwards: [], mismatches: [], problems: [],
    };
    // An open server (loopback): the desk is the `desk` field of each request.
    const server = await h.server({ maxPublishesPerSecond: 1_000_000 });
    const sim = new MarketSim(() => {}, { symbols: 1, rate: 200, bookDepth: 40, seed }, (topic, batch) => void server.publishBatch(topic, batch));
    sim.start();
    cleanup.push(() => sim.stop());
    const service = new OrderService(await h.connected(server), { tickMs: 20, fillChance: 0.3, seed });
    await service.start();
    cleanup.push(() => service.stop());
    const rand = rng(seed);

    const desks = Array.from({ length: DESKS }, (_, i) => new StompDesk(`sdesk-${i}`, server, r));
    await Promise.all(desks.map((d) => d.ready()));

    // Random cuts of a few desks while they trade.
    let trading = true;
    const cutter = (async () => {
      while (trading) {
        await sleep(30 * (0.5 + rand()));
        if (trading && desks[Math.floor(rand() * 4)]!.cut()) r.cuts++; // desks 0..3 are the ones that lose their connection
      }
    })();

    const books = DEMO_BOOKS.map((b) => b.topic.slice('book.'.length));
    await Promise.all(
      desks.map(async (d) => {
        const ids = new Map<string, string>();
        await sleep(rand() * 30);
        for (let j = 0; j < ORDERS; j++) {
          const symbol = books[Math.floor(rand() * books.length)]!;
          const inst = INSTRUMENTS.get(symbol)!;
          const mid = DEMO_BOOKS.find((b) => b.topic === inst.book)!.mid;
          const side = rand() < 0.5 ? 'buy' : 'sell';
          // Most orders cross the book (they fill, mostly in parts); one in five rests far away.
          const far = rand() < 0.2;
          const px = mid * (side === 'buy' ? (far ? 0.8 : 1.03) : far ? 1.2 : 0.97);
          const price = Number((Math.round(px / inst.tick) * inst.tick).toFixed(6));
          const qty = Number(((1 + Math.floor(rand() * 50)) * 10 ** -inst.qtyDecimals * 7).toFixed(inst.qtyDecimals));
          const clOrdId = `c${j}`;
          const reply = await d.ask('orders.submit', { desk: d.name, side, symbol, price, qty, clOrdId });
          if (reply.status !== 'accepted') {
            r.problems.push(`${d.name} ${clOrdId}: refused ${String(reply.reason)}: ${String(reply.message)}`);
            continue;
          }
          if (typeof reply.orderId !== 'string' || typeof reply.version !== 'number' || typeof reply.rev !== 'number' || reply.topic !== `blotter.${d.name}`) {
            r.problems.push(`${d.name} ${clOrdId}: reply without its position: ${JSON.stringify(reply)}`);
            continue;
          }
          r.answered++;
          if (reply.duplicate) r.resent++;
          const prior = ids.get(clOrdId);
          if (prior !== undefined && prior !== reply.orderId) r.problems.push(`${d.name} ${clOrdId}: answered ${prior} and ${reply.orderId}`);
          ids.set(clOrdId, reply.orderId);
          d.expectReached(reply);
          // Now and then a cancel of one of its orders (it may have filled already: ORDER_DONE).
          if (rand() < 0.4) {
            const all = [...ids.values()];
            const orderId = all[Math.floor(rand() * all.length)]!;
            const c = await d.ask('orders.cancel', { desk: d.name, orderId });
            if (c.status === 'cancelled') (r.cancels++, d.expectReached(c));
            else if (c.reason === 'ORDER_DONE') r.cancelRefusedDone++;
            else r.problems.push(`${d.name} cancel ${orderId}: ${JSON.stringify(c)}`);
          }
          await sleep(rand() * 20);
        }
        if (ids.size !== ORDERS) r.problems.push(`${d.name}: ${ids.size} orders answered, sent ${ORDERS}`);
      }),
    );
    trading = false;
    await cutter;

    // The quiet period: no more fills; the service's record is then final.
    await sleep(200);
    service.quiesce();
    await waitFor(() => service.settled, 10_000, 'the service to publish every change');
    for (const d of desks) {
      const at = service.positionOf(d.name);
      if (!at) {
        r.problems.push(`${d.name}: no blotter position`);
        continue;
      }
      await waitFor(() => d.epoch === at.epoch && d.version >= at.version, 10_000, `${d.name}'s blotter at ${at.epoch}:${at.version}`);
      const truth = service.rowsOf(d.name);
      if (d.rows.size !== truth.size) r.mismatches.push(`${d.name}: ${d.rows.size} rows, the record has ${truth.size}`);
      for (const [id, row] of truth) if (canon(d.rows.get(id)) !== canon(row)) r.mismatches.push(`${d.name} ${id}: holds ${canon(d.rows.get(id))}, the record says ${canon(row)}`);
      if (truth.size !== ORDERS) r.problems.push(`${d.name}: the record has ${truth.size} orders, sent ${ORDERS}`);
      if (d.unreached) r.problems.push(`${d.name}: ${d.unreached} replies whose position the blotter never reached`);
    }
    let fills = 0;
    for (const o of service.orders.values()) fills += o.fills.length;

    console.log(`desks over STOMP: ${JSON.stringify({ ...r, fills, gaps: r.gaps.length, backwards: r.backwards.length, mismatches: r.mismatches.length, problems: r.problems.length })}`);
    expect(r.problems.slice(0, 5)).toEqual([]);
    expect(r.gaps.slice(0, 5)).toEqual([]);
    expect(r.backwards.slice(0, 5)).toEqual([]);
    expect(r.mismatches.slice(0, 5)).toEqual([]);
    expect(r.answered).toBe(DESKS * ORDERS);
    expect(r.repliesReached).toBe(r.answered + r.cancels);
    // The run did what it is meant to exercise: cuts and resumes, fills, cancels.
    expect(r.cuts).toBeGreaterThan(0);
    expect(r.reconnects).toBeGreaterThan(0);
    expect(r.resumes).toBeGreaterThan(0);
    expect(fills).toBeGreaterThan(DESKS * ORDERS * 0.5);
    expect(r.cancels + r.cancelRefusedDone).toBeGreaterThan(0);
  }, 30_000);
});
