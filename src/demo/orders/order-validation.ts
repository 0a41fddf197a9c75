// Checking what a desk sends to `orders.submit` and `orders.cancel`: each bad
// order is refused with a typed reason (OrderRejected), never half-accepted.
// Also the instruments the service trades (the demo books) and the number
// forms a blotter row shows (prices on the tick grid, quantities in lots).

import type { FieldValue } from '../../protocol/index.js';
import { DEMO_BOOKS, type BookSpec } from '../book-sim.js';
import { DESK_NAME, OrderRejected, RejectReason, type Side } from './order-types.js';

/** A symbol the service trades: `BTC-USD` for the book `book.BTC-USD`. */
export interface Instrument {
  readonly symbol: string;
  readonly book: string;
  readonly tick: number;
  readonly qtyDecimals: number;
}

export const INSTRUMENTS: ReadonlyMap<string, Instrument> = new Map(
  DEMO_BOOKS.map((b: BookSpec) => {
    const symbol = b.topic.slice('book.'.length);
    return [symbol, { symbol, book: b.topic, tick: b.tick, qtyDecimals: b.qtyDecimals }];
  }),
);

/** What a valid submit asks for, quantities in lots and prices in ticks. */
export interface OrderRequest {
  desk: string;
  side: Side;
  instrument: Instrument;
  priceTicks: number;
  lots: number;
  clOrdId: string;
}

type Fields = Record<string, FieldValue | null>;

const decimals = (x: number): number => Math.max(0, Math.ceil(-Math.log10(x) - 1e-9));

/** A price in ticks shown as a number on the grid (65000.5, not 65000.50000000001). */
export function priceOf(inst: Instrument, ticks: number): number {
  return Number((ticks * inst.tick).toFixed(decimals(inst.tick)));
}

/** Lots shown as a quantity (0.0125 BTC for 125 lots). */
export function qtyOf(inst: Instrument, lots: number): number {
  return Number((lots / 10 ** inst.qtyDecimals).toFixed(inst.qtyDecimals));
}

/** A whole number of `unit`s in `x`, or null when x is off that grid. */
function onGrid(x: number, unit: number): number | null {
  const n = Math.round(x / unit);
  return Math.abs(n * unit - x) <= 1e-9 * Math.max(1, Math.abs(x)) ? n : null;
}

function fieldsOf(payload: unknown): Fields {
  if (typeof payload !== 'object' || payload === null || payload instanceof Uint8Array || Array.isArray(payload)) {
    throw new OrderRejected(RejectReason.BAD_ORDER, 'an order is an object of fields, not bytes');
  }
  return payload as Fields;
}

/**
 * The desk a request acts for: the requester's token subject, or (an open
 * server: requester "anonymous") the `desk` field. A token's desk may not
 * name another.
 */
export function deskOf(requester: string, f: Fields): string {
  const named = f.desk;
  if (named !== undefined && named !== null && typeof named !== 'string') throw new OrderRejected(RejectReason.BAD_DESK, 'desk must be a string');
  if (requester !== 'anonymous') {
    if (named && named !== requester) throw new OrderRejected(RejectReason.WRONG_DESK, `your token is desk ${requester}: it cannot act for desk ${named}`);
    if (!DESK_NAME.test(requester)) throw new OrderRejected(RejectReason.BAD_DESK, `the token subject ${JSON.stringify(requester)} is not a desk name (1–64 of A-Z a-z 0-9 _ - : @)`);
    return requester;
  }
  if (!named) throw new OrderRejected(RejectReason.BAD_DESK, 'no desk: send desk=<name> (an anonymous requester must name its desk)');
  if (!DESK_NAME.test(named)) throw new OrderRejected(RejectReason.BAD_DESK, `desk ${JSON.stringify(named)} is not a desk name (1–64 of A-Z a-z 0-9 _ - : @)`);
  return named;
}

/** A valid limit order, or OrderRejected saying what is wrong with it. */
export function parseSubmit(payload: unknown, requester: string): OrderRequest {
  const f = fieldsOf(payload);
  const desk = deskOf(requester, f);
  if (f.side !== 'buy' && f.side !== 'sell') throw new OrderRejected(RejectReason.BAD_SIDE, `side must be buy or sell (got ${JSON.stringify(f.side ?? null)})`);
  const instrument = typeof f.symbol === 'string' ? INSTRUMENTS.get(f.symbol) : undefined;
  if (!instrument) throw new OrderRejected(RejectReason.UNKNOWN_SYMBOL, `unknown symbol ${JSON.stringify(f.symbol ?? null)}: trade one of ${[...INSTRUMENTS.keys()].join(', ')}`);
  const { qty, price } = f;
  if (typeof qty !== 'number' || !Number.isFinite(qty) || qty <= 0) throw new OrderRejected(RejectReason.BAD_QTY, `qty must be a positive number (got ${String(qty)})`);
  const unit = 10 ** -instrument.qtyDecimals;
  const lots = onGrid(qty, unit);
  if (lots === null || lots < 1 || !Number.isSafeInteger(lots)) throw new OrderRejected(RejectReason.BAD_QTY, `qty ${qty} is not a whole number of ${instrument.symbol} lots (${unit})`);
  if (typeof price !== 'number' || !Number.isFinite(price) || price <= 0) throw new OrderRejected(RejectReason.BAD_PRICE, `price must be a positive number (got ${String(price)})`);
  const priceTicks = onGrid(price, instrument.tick);
  if (priceTicks === null || priceTicks < 1 || !Number.isSafeInteger(priceTicks)) throw new OrderRejected(RejectReason.BAD_PRICE, `price ${price} is off the ${instrument.symbol} tick grid (${instrument.tick})`);
  const clOrdId = f.clOrdId ?? '';
  if (typeof clOrdId !== 'string' || clOrdId.length > 64) throw new OrderRejected(RejectReason.BAD_ORDER, 'clOrdId must be a string of at most 64 characters');
  return { desk, side: f.side, instrument, priceTicks, lots, clOrdId };
}

/** The desk and order id of a cancel, or OrderRejected. */
export function parseCancel(payload: unknown, requester: string): { desk: string; orderId: string } {
  const f = fieldsOf(payload);
  const desk = deskOf(requester, f);
  if (typeof f.orderId !== 'string' || f.orderId === '') throw new OrderRejected(RejectReason.BAD_ORDER, 'a cancel names the order: orderId=<id from the submit reply>');
  return { desk, orderId: f.orderId };
}
