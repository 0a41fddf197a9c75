// Issue 20, "A desk reconnecting on another cluster edge gets the same
// result" (SDK in Node, real nats-server -js, origin + two edges in this
// process): the demo order service is connected to edge A and its blotter
// rows are forwarded to the origin; a desk on edge A submits orders, is cut,
// its orders fill while it is away, and it comes back on edge B (a load
// balancer sends its next connection there; B never held the blotter): its
// blotter is exactly the service's record, each fill once, with nothing
// published after it came back (quiet case). On B it submits and cancels
// orders itself — the requests cross to the service on A over NATS — and its
// blotter is exact again once quiet. Then once more, cut from B and back on A
// after more fills.

import { describe, expect, it } from 'vitest';
import type { ClusterServer } from '../../src/cluster/index.js';
import type { FieldValue, Subscription, TickfanClient } from '../../src/client/index.js';
import { OrderService, type OrderServiceOptions } from '../../src/demo/index.js';
import { INSTRUMENTS, qtyOf } from '../../src/demo/orders/index.js';
import { ClusterHarness, clusterFixture } from './cluster-helpers.js';
import { http, sleep, waitFor } from './helpers.js';

type Row = Record<string, FieldValue>;

/** A top of book the test sets: BTC-USD at 65000 / 65000.5 (ticks 130000 / 130001). */
const fixedTop: OrderServiceOptions['top'] = () => ({ bid: 130_000, ask: 130_001 });
const DESK = 'desk-edge';
const TOPIC = `blotter.${DESK}`;

const fx = clusterFixture();
let h: ClusterHarness | undefined;

/** Every row change the desk's SDK delivers, as the row then stood. */
function watchRows(sub: Subscription) {
  const seen: { key: string; rev: number; fills: number; filled: number }[] = [];
  sub.on('update', (u) => {
    for (const r of u.rows ?? []) {
      const f = sub.table('orders').get(r.key as string);
      if (f) seen.push({ key: r.key as string, rev: f.rev as number, fills: f.fills as number, filled: f.filled as number });
    }
  });
  return seen;
}

describe('a desk moving to another cluster edge', () => {
  it('orders fill while the desk is cut from edge A; back on edge B its blotter is the record, each fill once (quiet case); it submits and cancels from B (to the service on A); and back on A', async () => {
    h = fx.harness();
    const origin = await h.origin();
    const [a, b] = [await h.edge(), await h.edge()];
    // The order service on edge A: answers there, its blotter batches forwarded to the origin. Fills only when the test steps it.
    const svc = new OrderService(h.client(() => a), { top: fixedTop, tickMs: 3_600_000, fillChance: 1, seed: 11 });
    await svc.start();

    let to: ClusterServer | null = a;
    const desk = h.client(() => to);
    const sub = desk.subscribe(TOPIC, { tables: { orders: {} } });
    const seen = watchRows(sub);
    const submit = (fields: Row) => desk.request('orders.submit', { desk: DESK, symbol: 'BTC-USD', ...fields }) as Promise<Row>;
    const replies = [
      await submit({ side: 'buy', price: 65_100, qty: 0.01, clOrdId: 'c1' }), // crossing: fills at each step
      await submit({ side: 'sell', price: 64_900, qty: 0.02, clOrdId: 'c2' }), // crossing
      await submit({ side: 'buy', price: 65_100, qty: 0.005, clOrdId: 'c3' }), // crossing
      await submit({ side: 'buy', price: 60_000, qty: 0.01, clOrdId: 'c4' }), // far from the touch: stays working
    ];
    for (const r of replies) expect(r).toMatchObject({ status: 'accepted', state: 'working', topic: TOPIC });
    const ids = replies.map((r) => r.orderId as string);
    for (const r of replies) await sub.reached(r as { epoch: number; version: number }, { timeout: 5_000 });
    expectExact(desk, sub, svc);
    const beforeCut = { ...desk.stats };

    // Round 1: cut from A (the balancer sends it nowhere meanwhile); the crossing orders fill while it is away.
    to = null;
    desk.cut();
    await waitFor(() => desk.state !== 'connected', 5_000, 'the desk cut');
    const heldBefore = sub.table('orders').rows().map((r) => r.fields.rev);
    for (let i = 0; i < 3; i++) svc.step();
    await waitFor(() => svc.settled, 5_000, 'the service to publish its fills');
    const away = ids.map((id) => svc.orders.get(id)!.fills.length);
    expect(away.slice(0, 3).every((n) => n >= 1), `fills while away: ${away}`).toBe(true);
    expect(away[3]).toBe(0);
    expect(sub.table('orders').rows().map((r) => r.fields.rev)).toEqual(heldBefore); // it saw none of them
    const at1 = svc.positionOf(DESK)!;
    expect(b.store.get(TOPIC), 'edge B never held the blotter').toBeUndefined();
    await waitFor(() => origin.store.get(TOPIC)?.version === at1.version, 5_000, 'the origin at the last batch');

    // Back, on edge B: resumed from the version it held; nothing is published after this.
    to = b;
    await sub.reached(at1, { timeout: 10_000 });
    await sleep(300);
    expect(svc.positionOf(DESK)).toEqual(at1); // quiet: no later publish helped
    expect(desk.stats.reconnects).toBe(1);
    expectExact(desk, sub, svc);
    await expectOriginAgrees(origin, svc, at1.version);

    // On edge B, the desk trades itself: its requests cross to the service on edge A over NATS.
    const onB = await submit({ side: 'sell', price: 70_000, qty: 0.01, clOrdId: 'c5' }); // far from the touch: rests
    expect(onB).toMatchObject({ status: 'accepted', state: 'working', topic: TOPIC });
    const cancelled = (await desk.request('orders.cancel', { desk: DESK, orderId: ids[3]! })) as Row;
    expect(cancelled).toMatchObject({ status: 'cancelled', orderId: ids[3] });
    expect(b.cluster.stats.toJSON()).toMatchObject({ requestsOut: 2, requestFailures: 0 });
    expect(a.cluster.stats.toJSON()).toMatchObject({ requestsIn: 2 });
    ids.push(onB.orderId as string);
    await sub.reached(onB as { epoch: number; version: number }, { timeout: 5_000 });
    await sub.reached(cancelled as { epoch: number; version: number }, { timeout: 5_000 });
    await waitFor(() => svc.settled, 5_000, 'the service to publish');
    const atB = svc.positionOf(DESK)!;
    await sub.reached(atB, { timeout: 5_000 });
    await sleep(300);
    expect(svc.positionOf(DESK)).toEqual(atB); // quiet
    expectExact(desk, sub, svc);
    await expectOriginAgrees(origin, svc, atB.version);
    expect(sub.table('orders').get(ids[3]!)!.state).toBe('cancelled');
    expect(sub.table('orders').get(ids[4]!)!.state).toBe('working');

    // Round 2: cut from B; more fills while away; back on A.
    to = null;
    desk.cut();
    await waitFor(() => desk.state !== 'connected', 5_000, 'the desk cut again');
    svc.step();
    svc.step();
    await waitFor(() => svc.settled, 5_000, 'the service to publish');
    const at2 = svc.positionOf(DESK)!;
    expect(at2.version).toBeGreaterThan(atB.version);
    to = a;
    await sub.reached(at2, { timeout: 10_000 });
    await sleep(300);
    expect(svc.positionOf(DESK)).toEqual(at2);
    expect(desk.stats.reconnects).toBe(2);
    expectExact(desk, sub, svc);
    await expectOriginAgrees(origin, svc, at2.version);
    expect(sub.table('orders').get(ids[3]!)!.state).toBe('cancelled');

    // No row went backwards in what the desk's SDK delivered.
    for (const id of ids) {
      const chain = seen.filter((s) => s.key === id);
      expect(chain.length, `${id} delivered`).toBeGreaterThan(0);
      for (let i = 1; i < chain.length; i++) {
        expect(chain[i]!.rev, `${id} rev`).toBeGreaterThanOrEqual(chain[i - 1]!.rev);
        expect(chain[i]!.fills, `${id} fills`).toBeGreaterThanOrEqual(chain[i - 1]!.fills);
        expect(chain[i]!.filled, `${id} filled`).toBeGreaterThanOrEqual(chain[i - 1]!.filled);
      }
    }
    console.log(
      `desk across edges: fills while away ${away.join('/')} (round 1), blotter v${at1.version} on edge B, v${atB.version} after trading on B, v${at2.version} back on A; ` +
        `desk before the first cut ${JSON.stringify({ catchUpDeltas: beforeCut.catchUpDeltas, catchUpSnapshots: beforeCut.catchUpSnapshots, snapshots: beforeCut.snapshots })}, at the end ${JSON.stringify({ reconnects: desk.stats.reconnects, catchUpDeltas: desk.stats.catchUpDeltas, catchUpSnapshots: desk.stats.catchUpSnapshots, gaps: desk.stats.gaps })}; ` +
        `edge B catch-ups delta/snapshot ${b.stats.catchUpDeltas}/${b.stats.catchUpSnapshots}, edge A ${a.stats.catchUpDeltas}/${a.stats.catchUpSnapshots}`,
    );
    svc.stop();
  }, 60_000);
});

/** The desk's blotter (the SDK's table) equals the service's record field for field; each fill once (fills = the record's count, filled = their sum). */
function expectExact(desk: TickfanClient, sub: Subscription, svc: OrderService): void {
  const want = [...svc.rowsOf(DESK)].sort((x, y) => (y[1].seq as number) - (x[1].seq as number));
  expect(sub.table('orders').rows().map((r) => [r.key, r.fields])).toEqual(want);
  for (const [id, f] of want) {
    const o = svc.orders.get(id)!;
    const inst = INSTRUMENTS.get(o.symbol)!;
    const sum = o.fills.reduce((n, x) => n + x.lots, 0);
    expect(sum, `${id}: the record's filled = the sum of its fills`).toBe(o.filledLots);
    expect(sub.table('orders').get(id)!.filled, `${id}: filled once per fill`).toBe(qtyOf(inst, sum));
    expect(sub.table('orders').get(id)!.fills).toBe(o.fills.length);
    expect(f.lastFillId ?? null).toBe(o.fills.at(-1)?.id ?? null);
  }
  expect(desk.stats.gaps - desk.stats.gapsHealed).toBe(0);
}

async function expectOriginAgrees(origin: ClusterServer, svc: OrderService, version: number): Promise<void> {
  const { body } = (await http(origin.port, 'GET', `/snapshot/${TOPIC}`)) as { body: { version: number; tables: { orders: { rows: [string, Row][] } } } };
  expect(body.version).toBe(version);
  expect(body.tables.orders.rows).toEqual([...svc.rowsOf(DESK)].sort((x, y) => (y[1].seq as number) - (x[1].seq as number)));
}
