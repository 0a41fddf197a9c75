// Works the service's orders against the demo books: every `tickMs`, each
// working order that is marketable (a buy at or above the best ask, a sell at
// or below the best bid) gets a fill with probability `fillChance`, often
// partial, at the touch. Fills happen here and nowhere else; the service
// records them (exactly once each) and its blotter mirror publishes them.

import type { Order } from './order-types.js';
import type { TopOfBook } from './book-tops.js';

export interface MatcherOptions {
  /** How often working orders are looked at (ms). */
  tickMs: number;
  /** Chance that a marketable order fills at one look (0–1): fills come at random times. */
  fillChance: number;
  rand: () => number;
}

/** Records one fill: `lots` (≤ the order's leaves) at `ticks`. */
export type FillFn = (o: Order, lots: number, ticks: number) => void;

export class OrderMatcher {
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly opts: MatcherOptions,
    private readonly top: TopOfBook,
    private readonly working: () => Iterable<Order>,
    private readonly fill: FillFn,
  ) {}

  get running(): boolean {
    return this.timer !== null;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.step(), this.opts.tickMs);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One look at every working order. */
  step(): void {
    const { rand, fillChance } = this.opts;
    for (const o of [...this.working()]) {
      if (rand() >= fillChance) continue;
      const { bid, ask } = this.top(o.symbol);
      const px = o.side === 'buy' ? ask : bid;
      if (px === null || (o.side === 'buy' ? px > o.priceTicks : px < o.priceTicks)) continue;
      const leaves = o.lots - o.filledLots;
      // Mostly partial: a fifth to all of what is left, and now and then all of it.
      const lots = rand() < 0.3 ? leaves : Math.max(1, Math.min(leaves, Math.floor(leaves * (0.2 + 0.8 * rand()))));
      this.fill(o, lots, px);
    }
  }
}
