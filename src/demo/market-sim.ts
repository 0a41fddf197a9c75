// A built-in market simulator for `tickfan serve --demo`: a few hundred
// symbols with random-walk bid/ask/last/size, a few FX pairs (flat topics),
// and keyed market-by-price books (book-sim.ts), at a configurable total rate.

import type { Changes } from '../protocol/index.js';
import { BookSim, DEMO_BOOKS, type BookBatch } from './book-sim.js';

export interface MarketSimOptions {
  /** Equity symbols to simulate (topics `px.<SYM>`). Default 300. */
  symbols: number;
  /** Total updates per second across all topics. Default 2000. */
  rate: number;
  /** Price levels per side of each order book (`book.BTC-USD`, …). Default 400. */
  bookDepth: number;
  /** How many of the demo books to run (`book.BTC-USD` first). Default all (4). */
  books: number;
  /** Seed for a repeatable feed. */
  seed: number;
}

export type Publish = (topic: string, changes: Changes) => void;
/** Publishes one keyed batch (`server.publishBatch`); the books run only when the simulator has one. */
export type PublishBatch = (topic: string, batch: BookBatch) => void;

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
  private readonly books: BookSim[] = [];
  private readonly bookRand: () => number;
  private imaged = false;
  private timer: NodeJS.Timeout | null = null;
  private carry = 0;
  /** Updates published so far. */
  published = 0;

  constructor(
    private readonly publish: Publish,
    options: Partial<MarketSimOptions> = {},
    private readonly publishBatch?: PublishBatch,
  ) {
    this.opts = { symbols: 300, rate: 2000, bookDepth: 400, books: DEMO_BOOKS.length, seed: 42, ...options };
    this.rand = rng(this.opts.seed);
    // The books draw from a generator of their own: px.* and fx.* are the same with or without them.
    this.bookRand = rng(this.opts.seed ^ 0x5eed);
    if (publishBatch) for (const spec of DEMO_BOOKS.slice(0, this.opts.books)) this.books.push(new BookSim(spec, this.opts.bookDepth, this.bookRand));
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
    return [...this.instruments.map((i) => i.topic), ...this.books.map((b) => b.topic)];
  }

  /** Topics of the keyed books (none without a PublishBatch). */
  get bookTopics(): string[] {
    return this.books.map((b) => b.topic);
  }

  /**
   * Publishes an initial image of every topic, then ticks at the configured
   * rate. A later start (after stop) publishes new quotes; the books keep
   * their state, so their image is published once.
   */
  start(): void {
    for (const inst of this.instruments) this.quote(inst, true);
    if (!this.imaged) for (const b of this.books) this.emitBook(b, b.image());
    this.imaged = true;
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

  /** One update on one randomly chosen topic (the order books get about 1 in 12, BTC-USD the most). */
  step(): void {
    if (this.books.length > 0 && this.bookRand() < 0.08) {
      const i = Math.min(this.books.length - 1, Math.floor(this.books.length * this.bookRand() ** 1.6));
      const b = this.books[i]!;
      return this.emitBook(b, b.event());
    }
    // Skewed choice: a few names trade much more than the rest, as in a real market.
    const idx = Math.floor(this.instruments.length * this.rand() ** 2);
    this.quote(this.instruments[idx]!, false);
  }

  private emit(topic: string, changes: Changes): void {
    this.published++;
    this.publish(topic, changes);
  }

  private emitBook(b: BookSim, batch: BookBatch): void {
    this.published++;
    this.publishBatch!(b.topic, batch);
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
}
