// The demo order service: answers `orders.submit` and `orders.cancel` at once
// (the reply names the order and where its blotter row was written), works
// orders against the demo books, and mirrors its record — a Map, the truth —
// into each desk's blotter topic `blotter.<desk>` (table `orders`).

import type { RequestMeta, RequestPayload, ServiceHandle, TickfanClient } from '../../client/index.js';
import type { FieldValue } from '../../protocol/index.js';
import { rng } from '../market-sim.js';
import { BlotterMirror, type PublishBatchFn } from './blotter-mirror.js';
import { rowOf } from './blotter-row.js';
import { BookTops, type TopOfBook } from './book-tops.js';
import { OrderMatcher } from './order-matcher.js';
import { OrderRejected, blotterTopic, type Order, type RowPosition } from './order-types.js';
import { INSTRUMENTS, parseCancel, parseSubmit } from './order-validation.js';

export interface OrderServiceOptions {
  /** Fills: how often working orders are looked at (ms; default 200) and the chance of a fill per look (default 0.25). */
  tickMs?: number;
  fillChance?: number;
  /** Seed of the fills' randomness (default: the time). */
  seed?: number;
  /** Publishes blotter batches (default: `client.publishBatch`). */
  publish?: PublishBatchFn;
  /** Top of book (default: depth-1 subscriptions to the demo books through `client`). */
  top?: TopOfBook;
  log?: (level: 'info' | 'warn', msg: string) => void;
}

export interface OrderServiceStats {
  accepted: number;
  duplicates: number;
  rejected: number;
  cancelled: number;
  fills: number;
}

type Reply = Record<string, FieldValue | null>;

export class OrderService {
  /** The record: every order of this run, by id. */
  readonly orders = new Map<string, Order>();
  readonly stats: OrderServiceStats = { accepted: 0, duplicates: 0, rejected: 0, cancelled: 0, fills: 0 };
  private readonly byDesk = new Map<string, Map<string, Order>>();
  private readonly byClOrdId = new Map<string, Order>();
  private readonly mirror: BlotterMirror;
  private readonly matcher: OrderMatcher;
  private readonly tops: BookTops | null;
  private readonly handles: ServiceHandle[] = [];
  private readonly runTag = Date.now().toString(36).slice(-5).toUpperCase();
  private seq = 0;

  constructor(
    private readonly client: TickfanClient,
    opts: OrderServiceOptions = {},
  ) {
    const log = opts.log ?? (() => {});
    this.mirror = new BlotterMirror(opts.publish ?? ((topic, batch) => client.publishBatch(topic, batch)), {
      ordersOf: (desk) => this.byDesk.get(desk)?.values() ?? [],
      order: (id) => this.orders.get(id),
      rowOf,
      failed: (topic, err) => log('warn', `order service: publishing ${topic} failed (retrying): ${(err as Error)?.message ?? String(err)}`),
    });
    this.tops = opts.top ? null : new BookTops(client, INSTRUMENTS.values());
    const rand = rng(opts.seed ?? Date.now());
    this.matcher = new OrderMatcher(
      { tickMs: opts.tickMs ?? 200, fillChance: opts.fillChance ?? 0.25, rand },
      opts.top ?? this.tops!.top,
      () => this.working(),
      (o, lots, ticks) => this.fill(o, lots, ticks),
    );
  }

  /** Offers `orders.submit` and `orders.cancel` and starts working orders; resolves once the server accepted both offers. */
  async start(): Promise<void> {
    this.handles.push(this.client.serve('orders.submit', (p, m) => this.submit(p, m)));
    this.handles.push(this.client.serve('orders.cancel', (p, m) => this.cancel(p, m)));
    await Promise.all(this.handles.map((h) => h.ready));
    this.matcher.start();
  }

  /** Stops answering and filling (the record and the blotters stay as they are). */
  stop(): void {
    for (const h of this.handles.splice(0)) h.close();
    this.matcher.stop();
    this.tops?.close();
    this.mirror.close();
  }

  /** No more fills from now on (requests are still answered): the quiet period of a test or a demo's end of day. */
  quiesce(): void {
    this.matcher.stop();
  }

  /** True when every change of the record is in the blotters (published and acknowledged). */
  get settled(): boolean {
    return this.mirror.settled;
  }

  /** Where the desk's blotter was last written (null before its first batch). */
  positionOf(desk: string): RowPosition | null {
    return this.mirror.positionOf(desk);
  }

  /** Desks with orders. */
  desks(): string[] {
    return [...this.byDesk.keys()];
  }

  /** The rows a desk's blotter must hold: its orders' rows by order id, from the record. */
  rowsOf(desk: string): Map<string, Record<string, FieldValue>> {
    return new Map([...(this.byDesk.get(desk)?.values() ?? [])].map((o) => [o.id, rowOf(o)]));
  }

  /** One matcher step now (tests). */
  step(): void {
    this.matcher.step();
  }

  private *working(): Generator<Order> {
    for (const o of this.orders.values()) if (o.state === 'working' || o.state === 'partiallyFilled') yield o;
  }

  private async submit(payload: RequestPayload, meta: RequestMeta): Promise<Reply> {
    let o: Order;
    let duplicate = false;
    try {
      const req = parseSubmit(payload, meta.requester);
      const prior = req.clOrdId ? this.byClOrdId.get(`${req.desk}\u0000${req.clOrdId}`) : undefined;
      if (prior) {
        // The same order sent again (its answer was lost): the same order, answered again.
        o = prior;
        duplicate = true;
        this.stats.duplicates++;
      } else {
        const now = Date.now();
        const seq = ++this.seq;
        o = {
          id: `O-${this.runTag}-${seq}`,
          seq,
          desk: req.desk,
          side: req.side,
          symbol: req.instrument.symbol,
          priceTicks: req.priceTicks,
          lots: req.lots,
          clOrdId: req.clOrdId,
          submittedAt: now,
          state: 'working',
          fills: [],
          filledLots: 0,
          notional: 0,
          rev: 1,
          updatedAt: now,
        };
        this.orders.set(o.id, o);
        let desk = this.byDesk.get(o.desk);
        if (!desk) this.byDesk.set(o.desk, (desk = new Map()));
        desk.set(o.id, o);
        if (o.clOrdId) this.byClOrdId.set(`${o.desk}\u0000${o.clOrdId}`, o);
        this.stats.accepted++;
        this.mirror.touch(o);
      }
    } catch (err) {
      return this.refusal(err);
    }
    return this.answer('accepted', o, duplicate);
  }

  private async cancel(payload: RequestPayload, meta: RequestMeta): Promise<Reply> {
    let o: Order | undefined;
    try {
      const { desk, orderId } = parseCancel(payload, meta.requester);
      o = this.orders.get(orderId);
      // Another desk's order reads as unknown: a desk learns nothing of other desks.
      if (!o || o.desk !== desk) throw new OrderRejected('UNKNOWN_ORDER', `no order ${orderId} on desk ${desk}`);
      if (o.state === 'filled' || o.state === 'cancelled') throw new OrderRejected('ORDER_DONE', `order ${orderId} is already ${o.state}`, o.state);
      o.state = 'cancelled';
      o.rev++;
      o.updatedAt = Date.now();
      this.stats.cancelled++;
      this.mirror.touch(o);
    } catch (err) {
      return this.refusal(err);
    }
    return this.answer('cancelled', o);
  }

  /** The reply, once the row of `o` as it is now is in the blotter: it says where (topic, epoch, version). */
  private async answer(status: 'accepted' | 'cancelled', o: Order, duplicate = false): Promise<Reply> {
    const rev = o.rev;
    const state = o.state;
    const at = await this.mirror.rowWritten(o);
    const reply: Reply = { status, orderId: o.id, state, rev, topic: at.topic, epoch: at.epoch, version: at.version };
    if (duplicate) reply.duplicate = true;
    return reply;
  }

  private refusal(err: unknown): Reply {
    if (!(err instanceof OrderRejected)) throw err;
    this.stats.rejected++;
    const reply: Reply = { status: 'rejected', reason: err.reason, message: err.message };
    if (err.state) reply.state = err.state;
    return reply;
  }

  /** Records one fill, exactly once: the only place fills happen. */
  private fill(o: Order, lots: number, ticks: number): void {
    if (o.state !== 'working' && o.state !== 'partiallyFilled') return;
    const leaves = o.lots - o.filledLots;
    if (!Number.isSafeInteger(lots) || lots < 1 || lots > leaves) throw new Error(`bad fill of ${lots} lots for ${o.id} (${leaves} left)`);
    const now = Date.now();
    o.fills.push({ id: `${o.id}-F${o.fills.length + 1}`, lots, ticks, at: now });
    o.filledLots += lots;
    o.notional += lots * ticks;
    o.state = o.filledLots === o.lots ? 'filled' : 'partiallyFilled';
    o.rev++;
    o.updatedAt = now;
    this.stats.fills++;
    this.mirror.touch(o);
  }
}

export { blotterTopic };
