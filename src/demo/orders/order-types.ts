// The demo order service's vocabulary: an order as the service records it
// (its truth), the blotter row that mirrors it, the typed refusals, and the
// replies of `orders.submit` / `orders.cancel`.

import type { TableSpec } from '../../protocol/index.js';

export type Side = 'buy' | 'sell';
/** working → partiallyFilled → filled, or → cancelled (from working or partiallyFilled). */
export type OrderState = 'working' | 'partiallyFilled' | 'filled' | 'cancelled';

/** Why an order or a cancel was refused: the `reason` of a `rejected` reply. */
export const RejectReason = {
  /** The payload is not an object of fields, or a field has the wrong type. */
  BAD_ORDER: 'BAD_ORDER',
  /** `side` is neither buy nor sell. */
  BAD_SIDE: 'BAD_SIDE',
  /** `symbol` is not one of the demo books (BTC-USD, ETH-USD, SOL-USD, AAPL). */
  UNKNOWN_SYMBOL: 'UNKNOWN_SYMBOL',
  /** `qty` is not positive, or not a whole number of lots (the book's quantity decimals). */
  BAD_QTY: 'BAD_QTY',
  /** `price` is not positive, or not on the book's tick grid. */
  BAD_PRICE: 'BAD_PRICE',
  /** No desk: an anonymous requester must name one (`desk`), and a desk name is a topic level. */
  BAD_DESK: 'BAD_DESK',
  /** A token's desk may not act for another desk. */
  WRONG_DESK: 'WRONG_DESK',
  /** Cancel: no order with that id on this desk. */
  UNKNOWN_ORDER: 'UNKNOWN_ORDER',
  /** Cancel: the order is already filled or cancelled (`state` says which). */
  ORDER_DONE: 'ORDER_DONE',
} as const;
export type RejectReason = (typeof RejectReason)[keyof typeof RejectReason];

/** A refusal: what the service answers instead of accepting. */
export class OrderRejected extends Error {
  constructor(
    readonly reason: RejectReason,
    message: string,
    /** ORDER_DONE: the order's state. */
    readonly state?: OrderState,
  ) {
    super(message);
    this.name = 'OrderRejected';
  }
}

/** One fill, exactly once: its id is the order id and the fill's number. */
export interface Fill {
  readonly id: string;
  /** Lots filled (whole units of the book's smallest quantity). */
  readonly lots: number;
  /** Price in ticks. */
  readonly ticks: number;
  readonly at: number;
}

/** An order as the service records it: the truth its blotter row mirrors. Quantities in lots, prices in ticks. */
export interface Order {
  readonly id: string;
  readonly seq: number;
  readonly desk: string;
  readonly side: Side;
  readonly symbol: string;
  readonly priceTicks: number;
  readonly lots: number;
  readonly clOrdId: string;
  readonly submittedAt: number;
  state: OrderState;
  readonly fills: Fill[];
  filledLots: number;
  /** Sum of lots × ticks of the fills (the average price's numerator). */
  notional: number;
  /** +1 for every change: the row's own version, which never goes backwards. */
  rev: number;
  updatedAt: number;
}

/** The blotter topic of a desk, and its one table. */
export const blotterTopic = (desk: string): string => `blotter.${desk}`;
export const ORDERS_TABLE: TableSpec = { name: 'orders', key: 'string', order: { key: 'asc', fields: [{ field: 'seq', dir: 'desc' }] } };

/** Desk names are one topic level. */
export const DESK_NAME = /^[A-Za-z0-9_\-:@]{1,64}$/;

/** Where the blotter row of a reply was written. */
export interface RowPosition {
  topic: string;
  epoch: number;
  version: number;
}
