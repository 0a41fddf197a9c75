// The best bid and ask of each demo book, as the order service works orders
// against them: a depth-1 keyed view of `bids` and `asks` per book, read from
// the SDK's tables (prices in ticks, the books' keys).

import type { Subscription, TickfanClient } from '../../client/index.js';
import type { Instrument } from './order-validation.js';

/** Best prices in ticks; null while a side is empty or the book not held (yet). */
export interface Top {
  bid: number | null;
  ask: number | null;
}

export type TopOfBook = (symbol: string) => Top;

/** Follows the top of each instrument's book; `top(symbol)` reads it now. */
export class BookTops {
  private readonly subs = new Map<string, Subscription>();

  constructor(client: TickfanClient, instruments: Iterable<Instrument>) {
    for (const inst of instruments) {
      const sub = client.subscribe(inst.book, { tables: { bids: { depth: 1, fields: ['qty'] }, asks: { depth: 1, fields: ['qty'] } } });
      // A book that is not there (a server without the demo feed) just gives no fills.
      sub.on('error', () => this.subs.delete(inst.symbol));
      this.subs.set(inst.symbol, sub);
    }
  }

  readonly top: TopOfBook = (symbol) => {
    const sub = this.subs.get(symbol);
    if (!sub) return { bid: null, ask: null };
    const key = (t: string) => {
      const k = sub.table(t).rows()[0]?.key;
      return typeof k === 'number' ? k : null;
    };
    return { bid: key('bids'), ask: key('asks') };
  };

  close(): void {
    for (const s of this.subs.values()) s.unsubscribe();
    this.subs.clear();
  }
}
