// The blotter row of an order: its full latest state as one row of the desk's
// `orders` table (replaced whole on every change, so a desk that missed
// versions needs nothing but the latest row: "put everything from the earlier
// messages into each later one").

import type { FieldValue } from '../../protocol/index.js';
import type { Order } from './order-types.js';
import { INSTRUMENTS, priceOf, qtyOf } from './order-validation.js';

/** The row fields of `o`, as the service publishes them and as a desk reads them. */
export function rowOf(o: Order): Record<string, FieldValue> {
  const inst = INSTRUMENTS.get(o.symbol)!;
  const row: Record<string, FieldValue> = {
    seq: o.seq,
    desk: o.desk,
    side: o.side,
    symbol: o.symbol,
    price: priceOf(inst, o.priceTicks),
    qty: qtyOf(inst, o.lots),
    filled: qtyOf(inst, o.filledLots),
    leaves: o.state === 'cancelled' || o.state === 'filled' ? 0 : qtyOf(inst, o.lots - o.filledLots),
    state: o.state,
    fills: o.fills.length,
    rev: o.rev,
    submittedAt: o.submittedAt,
    updatedAt: o.updatedAt,
  };
  if (o.clOrdId) row.clOrdId = o.clOrdId;
  const last = o.fills.at(-1);
  if (last) {
    // Average price to a hundredth of a tick: exact enough to check, short on the wire.
    row.avgPx = Number(((o.notional / o.filledLots) * inst.tick).toFixed(Math.max(0, Math.ceil(-Math.log10(inst.tick) - 1e-9)) + 2));
    row.lastFillId = last.id;
    row.lastFillQty = qtyOf(inst, last.lots);
    row.lastFillPx = priceOf(inst, last.ticks);
  }
  return row;
}
