// The desks' load check (issue 20): N desks × M orders against the demo order
// service on a real server (tokens on: each desk reads only its blotter), with
// the desks' (and the service's) connections cut at random. Checks every order
// answered with one order id, each reply's row position reached by its desk's
// blotter, no row version going backwards in any client, and — after a quiet
// period — every blotter (the desk's and support's `blotter.>`) equal to the
// service's record. Used by desks-load.test.ts and by hand (DESK_LOAD=200x20).

import { connect, type TickfanClient, type Subscription, type FieldValue, type RequestPayload, type WebSocketCtor } from '../../src/client/index.js';
import { MarketSim, OrderService, INSTRUMENTS, DEMO_BOOKS, rng } from '../../src/demo/index.js';
import type { TickfanServer } from '../../src/index.js';
import { sleep, trackingWebSocket, waitFor, wsUrl, type Harness } from './helpers.js';
import { SECRET, token } from './security-helpers.js';

export interface LoadOptions {
  desks: number;
  orders: number;
  workers: number;
  /** Mean ms between random cuts of some desk's connection (0: none). */
  cutEveryMs: number;
  /** Also cut the order service's connection now and then. */
  cutService: boolean;
  seed: number;
}

export interface LoadReport {
  desks: number;
  orders: number;
  answered: number;
  resent: number;
  rejectedByService: number;
  transportRetries: number;
  cuts: number;
  serviceCuts: number;
  reconnects: number;
  fills: number;
  cancels: number;
  cancelRefusedDone: number;
  rowUpdatesSeen: number;
  repliesReached: number;
  backwards: string[];
  mismatches: string[];
  problems: string[];
  submitMs: number;
  convergeMs: number;
  totalMs: number;
}

type Row = Record<string, FieldValue>;

/** Watches one blotter subscription: every row's rev and filled only move forward. */
function watchRows(sub: Subscription, who: string, report: LoadReport): void {
  const seen = new Map<string, { rev: number; filled: number; fills: number }>();
  sub.on('update', (u) => {
    for (const r of u.rows ?? []) {
      if (r.op === 'delete') continue;
      const key = `${u.topic}/${String(r.key)}`;
      const row = sub.table('orders', u.topic).get(r.key) as Row | undefined;
      if (!row) continue;
      report.rowUpdatesSeen++;
      const rev = row.rev as number;
      const prev = seen.get(key);
      if (prev && (rev < prev.rev || (row.filled as number) < prev.filled || (row.fills as number) < prev.fills)) {
        report.backwards.push(`${who} ${key}: rev ${prev.rev} → ${rev}, filled ${prev.filled} → ${String(row.filled)}, fills ${prev.fills} → ${String(row.fills)}`);
      }
      seen.set(key, { rev, filled: row.filled as number, fills: row.fills as number });
    }
  });
}

/** Rows of a held table as a plain map, for comparing with the record. */
function heldRows(sub: Subscription, topic: string): Map<string, Row> {
  return new Map(sub.table('orders', topic).rows().map((r) => [String(r.key), { ...r.fields } as Row]));
}

function compare(who: string, held: Map<string, Row>, truth: Map<string, Row>, out: string[]): void {
  if (held.size !== truth.size) out.push(`${who}: ${held.size} rows, the record has ${truth.size}`);
  for (const [id, row] of truth) {
    const h = held.get(id);
    if (JSON.stringify(h) !== JSON.stringify(row)) out.push(`${who} ${id}: holds ${JSON.stringify(h)}, the record says ${JSON.stringify(row)}`);
  }
}

const retriable = (err: unknown): boolean =>
  /DISCONNECTED|RESPONDER_GONE|NO_RESPONDER|REQUEST_TIMEOUT/.test(String((err as { code?: unknown }).code));

/** Sends a request until it gets an answer (a reply, rejected or not); transport failures are retried. */
async function ask(client: TickfanClient, service: string, payload: RequestPayload, report: LoadReport): Promise<Row> {
  for (let attempt = 0; ; attempt++) {
    try {
      return (await client.request(service, payload, { timeout: 5_000 })) as Row;
    } catch (err) {
      if (!retriable(err) || attempt > 200) throw err;
      report.transportRetries++;
      await sleep(10 + attempt * 5);
    }
  }
}

export async function runDeskLoad(h: Harness, o: LoadOptions): Promise<LoadReport> {
  const t0 = Date.now();
  const report: LoadReport = {
    desks: o.desks, orders: o.orders, answered: 0, resent: 0, rejectedByService: 0, transportRetries: 0, cuts: 0, serviceCuts: 0, reconnects: 0,
    fills: 0, cancels: 0, cancelRefusedDone: 0, rowUpdatesSeen: 0, repliesReached: 0, backwards: [], mismatches: [], problems: [], submitMs: 0, convergeMs: 0, totalMs: 0,
  };
  const server: TickfanServer = await h.server({ workers: o.workers, auth: { secret: SECRET }, maxConnectionsPerIp: 100_000, maxPublishesPerSecond: 1_000_000 });
  const sim = new MarketSim(() => {}, { symbols: 1, rate: 200, bookDepth: 40, seed: o.seed }, (topic, batch) => void server.publishBatch(topic, batch));
  sim.start();
  const rand = rng(o.seed);
  const clients: TickfanClient[] = [];
  const open = (tok: string, Ctor?: WebSocketCtor): TickfanClient => {
    const c = connect(wsUrl(server), { token: tok, backoff: { initialMs: 10, maxMs: 100 }, ...(Ctor ? { WebSocket: Ctor } : {}) });
    clients.push(c);
    return c;
  };
  try {
    // The service: its own token (serve orders.*, publish blotter.>, subscribe book.>).
    const svcWs = trackingWebSocket();
    const svcClient = open(await token({ serve: ['orders.*'], publish: ['blotter.>'], subscribe: ['book.>'] }, { sub: 'order-service' }), svcWs.Ctor);
    const service = new OrderService(svcClient, { tickMs: 20, fillChance: 0.3, seed: o.seed });
    await service.start();
    // Support staff watch every desk.
    const staff = open(await token({ subscribe: ['blotter.>'] }, { sub: 'support' }));
    const staffSub = staff.subscribe('blotter.>', { tables: { orders: {} } });
    watchRows(staffSub, 'support', report);
    await staffSub.ready;

    // The desks: each token grants its own blotter and the order services, nothing else.
    const desks = await Promise.all(
      Array.from({ length: o.desks }, async (_, i) => {
        const name = `desk-${i}`;
        const ws = trackingWebSocket();
        const client = open(await token({ subscribe: [`blotter.${name}`], request: ['orders.*'] }, { sub: name }), ws.Ctor);
        const sub = client.subscribe(`blotter.${name}`, { tables: { orders: {} } });
        watchRows(sub, name, report);
        return { name, ws, client, sub, ids: new Map<string, string>() };
      }),
    );

    // Random cuts while the desks trade.
    let trading = true;
    const cutter = (async () => {
      while (trading && o.cutEveryMs > 0) {
        await sleep(o.cutEveryMs * (0.5 + rand()));
        if (!trading) break;
        const d = desks[Math.floor(rand() * desks.length)]!;
        const sock = d.ws.sockets.at(-1);
        if (sock && sock.readyState === 1) (sock.terminate(), report.cuts++);
        if (o.cutService && rand() < 0.1) {
          const s = svcWs.sockets.at(-1);
          if (s && s.readyState === 1) (s.terminate(), report.serviceCuts++);
        }
      }
    })();

    const reached: Promise<void>[] = [];
    const books = DEMO_BOOKS.map((b) => b.topic.slice('book.'.length));
    await Promise.all(
      desks.map(async (d) => {
        await sleep(rand() * 50);
        for (let j = 0; j < o.orders; j++) {
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
          const reply = await ask(d.client, 'orders.submit', { side, symbol, price, qty, clOrdId }, report);
          if (reply.status !== 'accepted') {
            report.problems.push(`${d.name} ${clOrdId}: refused ${String(reply.reason)}: ${String(reply.message)}`);
            continue;
          }
          report.answered++;
          if (reply.duplicate) report.resent++;
          const prior = d.ids.get(clOrdId);
          if (prior !== undefined && prior !== reply.orderId) report.problems.push(`${d.name} ${clOrdId}: answered ${prior} and ${String(reply.orderId)}`);
          d.ids.set(clOrdId, reply.orderId as string);
          reached.push(
            d.sub.reached(reply, { timeout: 30_000 }).then(
              () => {
                const row = d.sub.table('orders').get(reply.orderId as string) as Row | undefined;
                if (!row || (row.rev as number) < (reply.rev as number)) report.problems.push(`${d.name}: reached ${String(reply.version)} but row ${String(reply.orderId)} is ${JSON.stringify(row)}`);
                else report.repliesReached++;
              },
              (err: unknown) => void report.problems.push(`${d.name}: reached(${String(reply.epoch)}:${String(reply.version)}) failed: ${(err as Error).message}`),
            ),
          );
          // Now and then a cancel of an earlier order (it may have filled already: ORDER_DONE).
          if (rand() < 0.3 && d.ids.size > 0) {
            const ids = [...d.ids.values()];
            const orderId = ids[Math.floor(rand() * ids.length)]!;
            const c = await ask(d.client, 'orders.cancel', { orderId }, report);
            if (c.status === 'cancelled') report.cancels++;
            else if (c.reason === 'ORDER_DONE') report.cancelRefusedDone++;
            else report.problems.push(`${d.name} cancel ${orderId}: ${JSON.stringify(c)}`);
          }
          await sleep(rand() * 10);
        }
      }),
    );
    trading = false;
    await cutter;
    report.submitMs = Date.now() - t0;

    // The quiet period: no more fills; the service's record is then final.
    const q0 = Date.now();
    await sleep(200); // fills still in the matcher's hands land first
    service.quiesce();
    await waitFor(() => service.settled, 30_000, 'the service to publish every change');
    await Promise.all(reached);
    for (const d of desks) {
      const at = service.positionOf(d.name);
      if (!at) {
        report.problems.push(`${d.name}: no blotter position`);
        continue;
      }
      await d.sub.reached(at, { timeout: 30_000 });
      await staffSub.reached(at, { timeout: 30_000 });
      compare(d.name, heldRows(d.sub, at.topic), service.rowsOf(d.name), report.mismatches);
      compare(`support ${d.name}`, heldRows(staffSub, at.topic), service.rowsOf(d.name), report.mismatches);
      if (d.ids.size !== o.orders) report.problems.push(`${d.name}: ${d.ids.size} orders answered, sent ${o.orders}`);
      if (service.rowsOf(d.name).size !== o.orders) report.problems.push(`${d.name}: the record has ${service.rowsOf(d.name).size} orders, sent ${o.orders}`);
    }
    report.convergeMs = Date.now() - q0;
    // The record itself: fills once each, numbered 1..n, summing to the filled quantity.
    for (const ord of service.orders.values()) {
      const sum = ord.fills.reduce((s, f) => s + f.lots, 0);
      const idsOk = ord.fills.every((f, i) => f.id === `${ord.id}-F${i + 1}`);
      if (sum !== ord.filledLots || !idsOk || ord.filledLots > ord.lots || (ord.state === 'filled') !== (ord.filledLots === ord.lots)) {
        report.problems.push(`record ${ord.id}: fills ${JSON.stringify(ord.fills)} vs filled ${ord.filledLots}/${ord.lots} ${ord.state}`);
      }
      report.fills += ord.fills.length;
    }
    report.rejectedByService = service.stats.rejected;
    report.reconnects = clients.reduce((s, c) => s + c.stats.reconnects, 0);
    service.stop();
  } finally {
    sim.stop();
    for (const c of clients) c.close();
  }
  report.totalMs = Date.now() - t0;
  return report;
}
