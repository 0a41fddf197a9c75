// Desks (issue 20): the demo order service end to end on a real server —
// refused orders with typed reasons, a desk's token that reads only its own
// blotter, replies whose row position the desk's blotter reaches
// (`sub.reached`), an order's life (working → partially filled → filled, or
// cancelled) with each fill once, resubmits by clOrdId, and the SDK's keyed
// publish (`client.publishBatch`) the service is built on.

import { afterEach, describe, expect, it } from 'vitest';
import type { FieldValue, Subscription, TickfanClient } from '../../src/client/index.js';
import { OrderService, type OrderServiceOptions } from '../../src/demo/index.js';
import type { TickfanServer } from '../../src/index.js';
import { Harness, http, waitFor } from './helpers.js';
import { SECRET, token } from './security-helpers.js';

type Row = Record<string, FieldValue | null>;

/** A top of book the test sets: BTC-USD at 65000 / 65000.5 (ticks 130000 / 130001). */
const top = { bid: 130_000 as number | null, ask: 130_001 as number | null };
const fixedTop: OrderServiceOptions['top'] = () => ({ ...top });

describe('desks and the demo order service', () => {
  const h = new Harness();
  afterEach(() => h.close());

  async function openServer(): Promise<{ server: TickfanServer; svc: OrderService; desk: TickfanClient }> {
    const server = await h.server();
    const svc = new OrderService(await h.connected(server), { top: fixedTop, tickMs: 3_600_000, fillChance: 1, seed: 3 });
    await svc.start();
    return { server, svc, desk: await h.connected(server) };
  }

  async function authServer(): Promise<{ server: TickfanServer; svc: OrderService }> {
    const server = await h.server({ auth: { secret: SECRET } });
    const svcToken = await token({ serve: ['orders.*'], publish: ['blotter.>'], subscribe: ['book.>'] }, { sub: 'order-service' });
    const svc = new OrderService(await h.connected(server, { token: svcToken }), { top: fixedTop, tickMs: 3_600_000, fillChance: 1, seed: 5 });
    await svc.start();
    return { server, svc };
  }

  const deskToken = (desk: string) => token({ subscribe: [`blotter.${desk}`], request: ['orders.*'] }, { sub: desk });
  const submit = (c: TickfanClient, fields: Row) => c.request('orders.submit', fields) as Promise<Row>;
  const cancel = (c: TickfanClient, fields: Row) => c.request('orders.cancel', fields) as Promise<Row>;

  it('refuses bad orders with typed reasons, and nothing of them reaches a blotter', async () => {
    const { server, svc, desk } = await openServer();
    const good = { desk: 'd1', side: 'buy', symbol: 'BTC-USD', price: 65000.5, qty: 0.25 };
    const cases: [Row, string][] = [
      [{ ...good, symbol: 'DOGE-USD' }, 'UNKNOWN_SYMBOL'],
      [{ ...good, symbol: null }, 'UNKNOWN_SYMBOL'],
      [{ ...good, qty: 0 }, 'BAD_QTY'],
      [{ ...good, qty: -1 }, 'BAD_QTY'],
      [{ ...good, qty: 0.00001 }, 'BAD_QTY'], // BTC-USD lots are 0.0001
      [{ ...good, qty: 'ten' }, 'BAD_QTY'],
      [{ ...good, price: 65000.3 }, 'BAD_PRICE'], // tick 0.5
      [{ ...good, price: 0 }, 'BAD_PRICE'],
      [{ ...good, symbol: 'AAPL', price: 190.001, qty: 10 }, 'BAD_PRICE'],
      [{ ...good, side: 'short' }, 'BAD_SIDE'],
      [{ ...good, desk: null }, 'BAD_DESK'], // anonymous on an open server: the desk must be named
      [{ ...good, desk: 'two words' }, 'BAD_DESK'],
      [{ ...good, clOrdId: 5 }, 'BAD_ORDER'],
    ];
    for (const [fields, reason] of cases) {
      const r = await submit(desk, fields);
      expect(r, JSON.stringify(fields)).toMatchObject({ status: 'rejected', reason });
      expect(typeof r.message).toBe('string');
    }
    expect(await desk.request('orders.submit', new Uint8Array([1, 2]))).toMatchObject({ status: 'rejected', reason: 'BAD_ORDER' });
    expect(await cancel(desk, { desk: 'd1', orderId: 'O-nope' })).toMatchObject({ status: 'rejected', reason: 'UNKNOWN_ORDER' });
    expect(await cancel(desk, { desk: 'd1' })).toMatchObject({ status: 'rejected', reason: 'BAD_ORDER' });
    expect(svc.orders.size).toBe(0);
    expect(server.store.get('blotter.d1')).toBeUndefined();
    // The same over HTTP (POST /request), where an open server's desk is a field too.
    const viaHttp = await http(server.port, 'POST', '/request/orders.submit', { ...good, price: -5 });
    expect(viaHttp.status).toBe(200);
    expect((viaHttp.body as { fields: Row }).fields).toMatchObject({ status: 'rejected', reason: 'BAD_PRICE' });
    const ok = await http(server.port, 'POST', '/request/orders.submit', good);
    expect((ok.body as { fields: Row }).fields).toMatchObject({ status: 'accepted', state: 'working', topic: 'blotter.d1' });
  });

  it("a desk's token reads only its own blotter; a token desk cannot act for another desk", async () => {
    const { server } = await authServer();
    const a = await h.connected(server, { token: await deskToken('desk-a') });
    const b = await h.connected(server, { token: await deskToken('desk-b') });
    const placed = await submit(b, { side: 'sell', symbol: 'BTC-USD', price: 70000, qty: 1 });
    expect(placed).toMatchObject({ status: 'accepted', topic: 'blotter.desk-b' });
    for (const topic of ['blotter.desk-b', 'blotter.>', 'blotter.*']) {
      const sub = a.subscribe(topic, { tables: { orders: {} } });
      await expect(sub.ready, topic).rejects.toMatchObject({ code: 'TICKFAN_ERR_PERMISSION_DENIED' });
    }
    const own = a.subscribe('blotter.desk-a', { tables: { orders: {} } });
    await submit(a, { side: 'buy', symbol: 'AAPL', price: 150, qty: 5 });
    await own.ready;
    // Only the service writes blotters: a desk may not publish to its own.
    await expect(a.publishBatch('blotter.desk-a', { tables: { ops: [{ op: 'delete', table: 'orders', key: 'x' }] } })).rejects.toMatchObject({ code: 'TICKFAN_ERR_PERMISSION_DENIED' });
    // The token is the desk: naming another desk is refused, and another desk's order reads as unknown.
    expect(await submit(a, { desk: 'desk-b', side: 'buy', symbol: 'AAPL', price: 150, qty: 5 })).toMatchObject({ status: 'rejected', reason: 'WRONG_DESK' });
    expect(await cancel(a, { orderId: placed.orderId as string })).toMatchObject({ status: 'rejected', reason: 'UNKNOWN_ORDER' });
    expect(await cancel(b, { orderId: placed.orderId as string })).toMatchObject({ status: 'cancelled' });
    // Support staff read every desk with blotter.>.
    const staff = await h.connected(server, { token: await token({ subscribe: ['blotter.>'] }, { sub: 'support' }) });
    const all = staff.subscribe('blotter.>', { tables: { orders: {} } });
    await all.ready;
    await waitFor(() => all.table('orders', 'blotter.desk-a').size === 1 && all.table('orders', 'blotter.desk-b').size === 1, 5_000, 'support to see both desks');
    expect(all.table('orders', 'blotter.desk-b').get(placed.orderId as string)).toMatchObject({ state: 'cancelled', desk: 'desk-b' });
  });

  it("a reply's row position is reached by the desk's blotter, which then shows the order as answered", async () => {
    const { server } = await authServer();
    const desk = await h.connected(server, { token: await deskToken('desk-r') });
    const blotter = desk.subscribe('blotter.desk-r', { tables: { orders: {} } });
    for (let i = 0; i < 5; i++) {
      const reply = await submit(desk, { side: 'buy', symbol: 'ETH-USD', price: 3000, qty: 1.5, clOrdId: `r${i}` });
      expect(reply).toMatchObject({ status: 'accepted', state: 'working', rev: 1, topic: 'blotter.desk-r' });
      const held = await blotter.reached(reply, { timeout: 5_000 });
      expect(held.epoch).toBe(reply.epoch);
      expect(held.version).toBeGreaterThanOrEqual(reply.version as number);
      expect(blotter.table('orders').get(reply.orderId as string)).toMatchObject({ state: 'working', rev: 1, qty: 1.5, price: 3000, clOrdId: `r${i}`, filled: 0, fills: 0 });
    }
    // Newest first: the table's order is seq descending.
    expect(blotter.table('orders').rows().map((r) => r.fields.clOrdId)).toEqual(['r4', 'r3', 'r2', 'r1', 'r0']);
    // A position already passed resolves at once; one never written times out; bad positions are refused.
    const now = { epoch: blotter.epoch, version: blotter.version };
    await expect(blotter.reached({ epoch: now.epoch, version: 1 })).resolves.toMatchObject({ version: now.version });
    await expect(blotter.reached({ ...now, version: now.version + 50 }, { timeout: 100 })).rejects.toMatchObject({ code: 'TICKFAN_ERR_TIMEOUT' });
    await expect(blotter.reached({ epoch: now.epoch })).rejects.toMatchObject({ code: 'TICKFAN_ERR_BAD_OPTION' });
    await expect(blotter.reached({ ...now, topic: 'blotter.other' })).rejects.toMatchObject({ code: 'TICKFAN_ERR_BAD_OPTION' });
    const pending = blotter.reached({ ...now, version: now.version + 50 });
    blotter.unsubscribe();
    await expect(pending).rejects.toMatchObject({ code: 'TICKFAN_ERR_CLIENT_CLOSED' });
  });

  it("an order's life: partial fills each once, then filled; a cancel after a partial fill; resubmits by clOrdId", async () => {
    const { server, svc, desk } = await openServer();
    const blotter: Subscription = desk.subscribe('blotter.d2', { tables: { orders: {} } });
    const revs = new Map<string, number>();
    const backwards: string[] = [];
    blotter.on('update', (u) => {
      for (const r of u.rows ?? []) {
        if (r.op === 'delete') continue;
        const rev = blotter.table('orders').get(r.key)!.rev as number;
        if (rev < (revs.get(String(r.key)) ?? 0)) backwards.push(`${String(r.key)}: ${revs.get(String(r.key))} → ${rev}`);
        revs.set(String(r.key), rev);
      }
    });
    const a = await submit(desk, { desk: 'd2', side: 'buy', symbol: 'BTC-USD', price: 65001, qty: 1, clOrdId: 'a' });
    const again = await submit(desk, { desk: 'd2', side: 'buy', symbol: 'BTC-USD', price: 65001, qty: 1, clOrdId: 'a' });
    expect(again).toMatchObject({ status: 'accepted', orderId: a.orderId, duplicate: true });
    const rest = await submit(desk, { desk: 'd2', side: 'sell', symbol: 'BTC-USD', price: 66000, qty: 1 }); // not marketable: rests
    for (let i = 0; i < 200 && svc.orders.get(a.orderId as string)!.state !== 'filled'; i++) svc.step();
    const rec = svc.orders.get(a.orderId as string)!;
    expect(rec.state).toBe('filled');
    expect(rec.fills.map((f) => f.id)).toEqual(rec.fills.map((_, i) => `${String(a.orderId)}-F${i + 1}`));
    expect(rec.fills.reduce((s, f) => s + f.lots, 0)).toBe(10_000);
    expect(rec.fills.every((f) => f.ticks === 130_001)).toBe(true); // at the ask, inside the limit
    expect(svc.orders.get(rest.orderId as string)!.state).toBe('working');
    await waitFor(() => svc.settled);
    await blotter.reached(svc.positionOf('d2')!, { timeout: 5_000 });
    expect(blotter.table('orders').get(a.orderId as string)).toMatchObject({ state: 'filled', filled: 1, leaves: 0, fills: rec.fills.length, avgPx: 65000.5, lastFillId: `${String(a.orderId)}-F${rec.fills.length}` });
    expect(await cancel(desk, { desk: 'd2', orderId: a.orderId as string })).toMatchObject({ status: 'rejected', reason: 'ORDER_DONE', state: 'filled' });

    // A partial fill, then a cancel: cancelled with what was filled, nothing left. (A first fill
    // takes the whole order about one time in three: then another order.)
    top.ask = 131_000; // 65500
    let p: Row | undefined;
    for (let n = 0; n < 20 && !p; n++) {
      const r = await submit(desk, { desk: 'd2', side: 'buy', symbol: 'BTC-USD', price: 65600, qty: 2 });
      const o = svc.orders.get(r.orderId as string)!;
      while (o.state === 'working') svc.step();
      if (o.state === 'partiallyFilled') p = r;
    }
    expect(p).toBeDefined();
    const po = svc.orders.get(p!.orderId as string)!;
    const c = await cancel(desk, { desk: 'd2', orderId: p!.orderId as string });
    expect(c).toMatchObject({ status: 'cancelled', state: 'cancelled' });
    await blotter.reached(c, { timeout: 5_000 });
    expect(blotter.table('orders').get(p!.orderId as string)).toMatchObject({ state: 'cancelled', leaves: 0, filled: po.filledLots / 10_000, fills: 1 });
    expect(po.filledLots).toBeGreaterThan(0);
    expect(po.filledLots).toBeLessThan(20_000);
    expect(await cancel(desk, { desk: 'd2', orderId: rest.orderId as string })).toMatchObject({ status: 'cancelled' });
    expect(await cancel(desk, { desk: 'd2', orderId: rest.orderId as string })).toMatchObject({ status: 'rejected', reason: 'ORDER_DONE', state: 'cancelled' });
    top.ask = 130_001;
    await waitFor(() => svc.settled);
    await blotter.reached(svc.positionOf('d2')!, { timeout: 5_000 });
    expect(new Map(blotter.table('orders').rows().map((r) => [r.key, r.fields]))).toEqual(svc.rowsOf('d2'));
    expect(svc.orders.size).toBeGreaterThanOrEqual(3);
    expect(backwards).toEqual([]);
    expect([...revs.keys()].sort()).toEqual([...svc.orders.keys()].sort());
    expect(server.store.get('blotter.d2')!.version).toBe(svc.positionOf('d2')!.version);
  });

  it('client.publishBatch: one keyed batch, one version; refusals are typed and change nothing', async () => {
    const server = await h.server();
    const c = await h.connected(server);
    const spec = { name: 'orders', key: 'string' as const, order: { key: 'asc' as const } };
    const ack = await c.publishBatch('blotter.pb', { fields: { n: 1 }, tables: { declare: [spec], ops: [{ op: 'replace', table: 'orders', key: 'O-1', fields: { qty: 5 } }, { op: 'upsert', table: 'orders', key: 'O-2', fields: { qty: 7 } }] } });
    expect(ack).toMatchObject({ topic: 'blotter.pb', version: 1 });
    await expect(c.publishBatch('blotter.pb', { tables: { ops: [{ op: 'upsert', table: 'orders', key: 'O-1', fields: { qty: 6 } }, { op: 'delete', table: 'orders', key: 'O-9', guard: 'ifExists' }] } })).rejects.toMatchObject({ code: 'TICKFAN_ERR_ROW_GUARD' });
    await expect(c.publishBatch('blotter.pb', { tables: { ops: [{ op: 'upsert', table: 'fills', key: 'x', fields: { a: 1 } }] } })).rejects.toMatchObject({ code: 'TICKFAN_ERR_BAD_REQUEST' });
    await expect(c.publishBatch('blotter.pb', { tables: { ops: [{ op: 'upsert', table: 'orders', key: 'x', fields: { a: {} as unknown as number } }] } })).rejects.toMatchObject({ code: 'TICKFAN_ERR_BAD_FIELD' });
    const snap = await http(server.port, 'GET', '/snapshot/blotter.pb');
    expect(snap.body).toMatchObject({ version: 1, tables: { orders: { rows: [['O-1', { qty: 5 }], ['O-2', { qty: 7 }]] } } });
  });
});
