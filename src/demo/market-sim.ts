// A built-in market simulator for `tickfan serve --demo`: a few hundred
// symbols with random-walk bid/ask/last/size, a few FX pairs, and an order
// book topic, published at a configurable total rate.

import type { Changes } from '../protocol/index.js';

export interface MarketSimOptions {
  /** Equity symbols to simulate (topics `px.<SYM>`). Default 300. */
  symbols: number;
  /** Total updates per second across all topics. Default 2000. */
  rate: number;
  /** Price levels per side of the order book `book.BTC-USD`. Default 10. */
  bookDepth: number;
  /** Seed for a repeatable feed. */
  seed: number;
}

export type Publish = (topic: string, changes: Changes) => void;

/** Small deterministic PRNG (mulberry32): a repeatable demo feed (and repeatable fuzzing). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WELL_KNOWN = ['AAPL', 'MSFT', 'NVDA', 'AMZN', 'GOOG', 'META', 'TSLA', 'AVGO', 'JPM', 'V', 'XOM', 'UNH', 'MA', 'COST', 'HD', 'PG', 'NFLX', 'ORCL', 'BAC', 'KO'];
const FX = ['EURUSD', 'GBPUSD', 'USDJPY', 'AUDUSD', 'USDCHF', 'USDCAD', 'EURGBP', 'EURJPY'];

interface Instrument {
  topic: string;
  mid: number;
  open: number;
  tick: number;
  volume: number;
}

/** `x` on the tick grid, without binary floating-point noise (309.28, not 309.28000000000003). */
function round(x: number, tick: number): number {
  const decimals = Math.max(0, Math.ceil(-Math.log10(tick) - 1e-9));
  return Number((Math.round(x / tick) * tick).toFixed(decimals));
}

/** Symbol names: well-known tickers first, then made-up three/four-letter ones. */
export function demoSymbols(n: number, seed = 1): string[] {
  const rand = rng(seed);
  const out = WELL_KNOWN.slice(0, n);
  const seen = new Set(out);
  while (out.length < n) {
    const len = 3 + Math.floor(rand() * 2);
    let s = '';
    for (let i = 0; i < len; i++) s += String.fromCharCode(65 + Math.floor(rand() * 26));
    if (!seen.has(s)) seen.add(s), out.push(s);
  }
  return out;
}

export class MarketSim {
  private readonly opts: MarketSimOptions;
  private readonly rand: () => number;
  private readonly instruments: Instrument[] = [];
  private readonly book = { mid: 65_000, bids: new Map<number, number>(), asks: new Map<number, number>() };
  private timer: NodeJS.Timeout | null = null;
  private carry = 0;
  /** Updates published so far. */
  published = 0;

  constructor(
    private readonly publish: Publish,
    options: Partial<MarketSimOptions> = {},
  ) {
    this.opts = { symbols: 300, rate: 2000, bookDepth: 10, seed: 42, ...options };
    this.rand = rng(this.opts.seed);
    for (const s of demoSymbols(this.opts.symbols, this.opts.seed)) {
      const mid = round(10 + this.rand() * 490, 0.01);
      this.instruments.push({ topic: `px.${s}`, mid, open: mid, tick: 0.01, volume: 0 });
    }
    for (const p of FX) {
      const mid = p.includes('JPY') ? 150 + this.rand() * 10 : 0.6 + this.rand() * 0.8;
      const tick = p.includes('JPY') ? 0.001 : 0.00001;
      this.instruments.push({ topic: `fx.${p}`, mid: round(mid, tick), open: round(mid, tick), tick, volume: 0 });
    }
  }

  /** Topics the simulator publishes. */
  get topics(): string[] {
    return [...this.instruments.map((i) => i.topic), 'book.BTC-USD'];
  }

  /** Publishes an initial image of every topic, then ticks at the configured rate. */
  start(): void {
    for (const inst of this.instruments) this.quote(inst, true);
    this.rebuildBook(true);
    const everyMs = 20;
    this.timer = setInterval(() => {
      this.carry += (this.opts.rate * everyMs) / 1000;
      const n = Math.floor(this.carry);
      this.carry -= n;
      for (let i = 0; i < n; i++) this.step();
    }, everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One update on one randomly chosen topic (the order book gets 1 in 20). */
  step(): void {
    if (this.rand() < 0.05) return this.bookStep();
    // Skewed choice: a few names trade much more than the rest, as in a real market.
    const idx = Math.floor(this.instruments.length * this.rand() ** 2);
    this.quote(this.instruments[idx]!, false);
  }

  private emit(topic: string, changes: Changes): void {
    this.published++;
    this.publish(topic, changes);
  }

  private quote(inst: Instrument, initial: boolean): void {
    const r = this.rand;
    inst.mid = Math.max(inst.tick * 10, round(inst.mid * (1 + (r() - 0.5) * 0.002), inst.tick));
    const spread = Math.max(inst.tick, round(inst.mid * 0.0004 * (0.5 + r()), inst.tick));
    const bid = round(inst.mid - spread / 2, inst.tick);
    const ask = round(bid + spread, inst.tick);
    const c: Changes = new Map();
    c.set('bid', bid);
    c.set('ask', ask);
    c.set('bidSize', 100 * (1 + Math.floor(r() * 50)));
    c.set('askSize', 100 * (1 + Math.floor(r() * 50)));
    if (initial || r() < 0.4) {
      const last = r() < 0.5 ? bid : ask;
      const size = 100 * (1 + Math.floor(r() * 20));
      inst.volume += size;
      c.set('last', last);
      c.set('size', size);
      c.set('volume', inst.volume);
      c.set('change', round(last - inst.open, inst.tick));
    }
    if (initial) c.set('open', inst.open);
    this.emit(inst.topic, c);
  }

  private rebuildBook(initial: boolean): void {
    const c: Changes = new Map();
    const { bids, asks } = this.book;
    if (!initial) {
      for (const p of bids.keys()) c.set(`b.${p.toFixed(1)}`, null);
      for (const p of asks.keys()) c.set(`a.${p.toFixed(1)}`, null);
    }
    bids.clear();
    asks.clear();
    const mid = Math.round(this.book.mid * 2) / 2;
    for (let i = 0; i < this.opts.bookDepth; i++) {
      const b = mid - 0.5 * (i + 1);
      const a = mid + 0.5 * (i + 1);
      bids.set(b, Math.round(this.rand() * 500 + 1) / 100);
      asks.set(a, Math.round(this.rand() * 500 + 1) / 100);
    }
    for (const [p, q] of bids) c.set(`b.${p.toFixed(1)}`, q);
    for (const [p, q] of asks) c.set(`a.${p.toFixed(1)}`, q);
    c.set('mid', mid);
    this.emit('book.BTC-USD', c);
  }

  private bookStep(): void {
    const r = this.rand;
    if (r() < 0.1) {
      this.book.mid += (r() - 0.5) * 20;
      return this.rebuildBook(false);
    }
    // Change the size of a few levels; occasionally empty one (delete).
    const c: Changes = new Map();
    const side = r() < 0.5 ? this.book.bids : this.book.asks;
    const prefix = side === this.book.bids ? 'b.' : 'a.';
    const prices = [...side.keys()];
    if (prices.length < 3) return this.rebuildBook(false);
    for (let i = 0; i < 3; i++) {
      const p = prices[Math.floor(r() * prices.length)]!;
      const key = `${prefix}${p.toFixed(1)}`;
      if (r() < 0.1) {
        side.delete(p);
        c.set(key, null);
      } else {
        const q = Math.round(r() * 500 + 1) / 100;
        side.set(p, q);
        c.set(key, q);
      }
    }
    this.emit('book.BTC-USD', c);
  }
}
