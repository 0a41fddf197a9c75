// A market-by-price order book simulator for the demo feed and `tickfan bench
// book`: tables `bids` (int keys = price in ticks, best = highest first) and
// `asks` (lowest first), rows { qty, orders }, one keyed batch per event.

import type { TableSpec } from '../protocol/index.js';

export type BookSide = 'bids' | 'asks';

/** Row fields of one price level. */
export type LevelFields = { qty: number; orders: number }; // a type, not an interface: it is a field record

/** The row ops a book event uses (a subset of `server.publishBatch`'s). */
export type BookRowOp =
  | { op: 'upsert'; table: BookSide; key: number; fields: LevelFields }
  | { op: 'delete'; table: BookSide; key: number }
  | { op: 'deleteRange'; table: BookSide; from: number; to: number }
  | { op: 'clear'; table: BookSide };

/** One event of a book: summary fields and row ops, as `server.publishBatch(topic, batch)` takes them. */
export interface BookBatch {
  fields: Record<string, number>;
  tables: { declare?: TableSpec[]; ops: BookRowOp[] };
}

export interface BookSpec {
  /** Topic, e.g. `book.BTC-USD`. */
  topic: string;
  /** Price increment; keys are price / tick. */
  tick: number;
  /** Starting mid price. */
  mid: number;
  /** Decimals of a level's quantity (0: whole shares). */
  qtyDecimals: number;
  /** Typical quantity at the top of the book. */
  qtyScale: number;
}

export const BOOK_TABLES: TableSpec[] = [
  { name: 'bids', key: 'int', order: { key: 'desc' } },
  { name: 'asks', key: 'int', order: { key: 'asc' } },
];

/** The demo's books: a coin pair priced in half dollars, one in cents of a dollar, an equity in cents. */
export const DEMO_BOOKS: readonly BookSpec[] = [
  { topic: 'book.BTC-USD', tick: 0.5, mid: 65_000, qtyDecimals: 4, qtyScale: 0.8 },
  { topic: 'book.ETH-USD', tick: 0.05, mid: 3_400, qtyDecimals: 3, qtyScale: 6 },
  { topic: 'book.SOL-USD', tick: 0.01, mid: 150, qtyDecimals: 2, qtyScale: 90 },
  { topic: 'book.AAPL', tick: 0.01, mid: 190, qtyDecimals: 0, qtyScale: 400 },
];

/** Ascending int keys of one side, with binary-search insert and remove (a few hundred levels: cheap). */
class Ladder {
  readonly keys: number[] = [];
  readonly rows = new Map<number, LevelFields>();
  private find(k: number): number {
    let lo = 0;
    let hi = this.keys.length;
    while (lo < hi) {
      const m = (lo + hi) >> 1;
      if (this.keys[m]! < k) lo = m + 1;
      else hi = m;
    }
    return lo;
  }
  set(k: number, f: LevelFields): void {
    if (!this.rows.has(k)) this.keys.splice(this.find(k), 0, k);
    this.rows.set(k, f);
  }
  delete(k: number): void {
    if (!this.rows.delete(k)) return;
    this.keys.splice(this.find(k), 1);
  }
  get size(): number {
    return this.keys.length;
  }
}

/**
 * One simulated book. `image()` is the first batch (declare, clear, every
 * level); `event()` then makes one realistic change: mostly 1–3 quantity
 * changes near the top, levels emptied (delete) or added (upsert of a new
 * key), now and then a trade sweeping a few levels (a deleteRange or several
 * deletes) that moves the mid. Depth stays around `levels` a side.
 */
export class BookSim {
  private readonly bids = new Ladder();
  private readonly asks = new Ladder();
  private last: number;
  /** Row changes made so far (an op on one row counts 1; a deleteRange counts the rows it removed). */
  rowChanges = 0;

  constructor(
    readonly spec: BookSpec,
    private readonly levels: number,
    private readonly rand: () => number,
  ) {
    const mid = Math.round(spec.mid / spec.tick);
    this.last = mid;
    // A tick grid around the mid with some empty ticks (about 1 in 6) past the first few levels.
    let k = mid - 1;
    while (this.bids.size < levels) {
      if (this.bids.size < 5 || this.rand() > 0.16) this.bids.set(k, this.level(this.bids.size));
      k--;
    }
    k = mid + 1;
    while (this.asks.size < levels) {
      if (this.asks.size < 5 || this.rand() > 0.16) this.asks.set(k, this.level(this.asks.size));
      k++;
    }
  }

  get topic(): string {
    return this.spec.topic;
  }

  /** Best bid / ask keys (price in ticks). */
  get bestBid(): number {
    return this.bids.keys.at(-1) ?? this.last - 1;
  }
  get bestAsk(): number {
    return this.asks.keys[0] ?? this.last + 1;
  }

  /** Rows of one side, best first, as [key, fields]. */
  side(name: BookSide): [number, LevelFields][] {
    const l = name === 'bids' ? this.bids : this.asks;
    const keys = name === 'bids' ? [...l.keys].reverse() : l.keys;
    return keys.map((k) => [k, l.rows.get(k)!]);
  }

  /** The whole book as one batch: declares the tables, clears them and sets every level, plus the summary. */
  image(): BookBatch {
    const ops: BookRowOp[] = [{ op: 'clear', table: 'bids' }, { op: 'clear', table: 'asks' }];
    for (const t of ['bids', 'asks'] as const) for (const [key, fields] of this.side(t)) ops.push({ op: 'upsert', table: t, key, fields });
    return { fields: { ...this.summary(), tick: this.spec.tick }, tables: { declare: BOOK_TABLES, ops } };
  }

  /** One event: 1–3 level changes (a sweep a few more) and the summary. */
  event(): BookBatch {
    const ops: BookRowOp[] = [];
    const r = this.rand();
    if (r < 0.04) this.sweep(ops);
    else {
      const n = 1 + Math.floor(this.rand() * this.rand() * 3);
      for (let i = 0; i < n; i++) {
        const x = this.rand();
        const wide = this.bestAsk - this.bestBid > 4;
        if (x < (wide ? 0.5 : 0.72)) this.changeQty(ops);
        else if (x < 0.86) this.addLevel(ops);
        else this.emptyLevel(ops);
      }
    }
    this.keepDepth(ops);
    return { fields: this.summary(), tables: { ops } };
  }

  private summary(): Record<string, number> {
    const { tick } = this.spec;
    const b = this.bestBid;
    const a = this.bestAsk;
    const dec = Math.max(0, Math.ceil(-Math.log10(tick) - 1e-9)) + 1;
    return {
      mid: Number((((a + b) / 2) * tick).toFixed(dec)),
      spread: Number(((a - b) * tick).toFixed(dec)),
      last: Number((this.last * tick).toFixed(dec)),
      ts: Date.now(),
    };
  }

  private ladder(t: BookSide): Ladder {
    return t === 'bids' ? this.bids : this.asks;
  }

  /** An index from the top, mostly the first few levels (geometric, mean about 3). */
  private nearTop(size: number): number {
    return Math.min(size - 1, Math.floor(-Math.log(1 - this.rand()) * 3));
  }

  /** Key of the level `i` from the top of one side. */
  private keyAt(t: BookSide, i: number): number {
    const l = this.ladder(t);
    return t === 'bids' ? l.keys[l.size - 1 - i]! : l.keys[i]!;
  }

  private qty(depthIndex: number): number {
    const { qtyScale, qtyDecimals } = this.spec;
    const unit = 10 ** -qtyDecimals;
    // Deeper levels hold more; a log-normal-ish spread of sizes.
    const q = qtyScale * (0.3 + depthIndex / 40) * Math.exp((this.rand() - 0.5) * 2);
    return Number(Math.max(unit, Math.round(q / unit) * unit).toFixed(qtyDecimals));
  }

  private level(depthIndex: number): LevelFields {
    return { qty: this.qty(depthIndex), orders: 1 + Math.floor(this.rand() * (4 + depthIndex / 10)) };
  }

  private set(ops: BookRowOp[], t: BookSide, key: number, fields: LevelFields): void {
    this.ladder(t).set(key, fields);
    ops.push({ op: 'upsert', table: t, key, fields });
    this.rowChanges++;
  }

  private remove(ops: BookRowOp[], t: BookSide, key: number): void {
    this.ladder(t).delete(key);
    ops.push({ op: 'delete', table: t, key });
    this.rowChanges++;
  }

  private pickSide(): BookSide {
    return this.rand() < 0.5 ? 'bids' : 'asks';
  }

  private changeQty(ops: BookRowOp[]): void {
    const t = this.pickSide();
    const l = this.ladder(t);
    if (l.size === 0) return this.addLevel(ops);
    const i = this.nearTop(l.size);
    const key = this.keyAt(t, i);
    const old = l.rows.get(key)!;
    const orders = Math.max(1, old.orders + (this.rand() < 0.5 ? -1 : 1));
    this.set(ops, t, key, { qty: this.qty(i), orders });
  }

  private emptyLevel(ops: BookRowOp[]): void {
    const t = this.pickSide();
    const l = this.ladder(t);
    if (l.size <= 5) return this.addLevel(ops);
    this.remove(ops, t, this.keyAt(t, this.nearTop(l.size)));
  }

  /** A new level near the top: on an empty tick behind the best, or inside the spread (the mid moves). */
  private addLevel(ops: BookRowOp[]): void {
    const t = this.pickSide();
    const b = this.bestBid;
    const a = this.bestAsk;
    const dir = t === 'bids' ? -1 : 1;
    let key: number;
    // Improves the best, the more likely the wider the spread: market makers close a gap a sweep opened.
    const gap = a - b - 1;
    if (gap > 0 && this.rand() < Math.min(0.95, 0.25 + 0.2 * gap)) key = t === 'bids' ? b + 1 + Math.floor(this.rand() * Math.min(gap, 2)) : a - 1 - Math.floor(this.rand() * Math.min(gap, 2));
    else {
      const l = this.ladder(t);
      key = (t === 'bids' ? b : a) + dir * (1 + this.nearTop(l.size + 1));
      for (let tries = 0; l.rows.has(key) && tries < 20; tries++) key += dir;
      if (l.rows.has(key)) return this.changeQty(ops);
    }
    this.set(ops, t, key, this.level(0));
  }

  /** A trade sweeping the top 2–4 levels of one side: a deleteRange (or single deletes), a partial fill after it. */
  private sweep(ops: BookRowOp[]): void {
    const t = this.pickSide();
    const l = this.ladder(t);
    const n = Math.min(l.size - 5, 2 + Math.floor(this.rand() * 3));
    if (n < 1) return this.changeQty(ops);
    const swept = Array.from({ length: n }, (_, i) => this.keyAt(t, i));
    const lastKey = swept.at(-1)!;
    if (this.rand() < 0.5) {
      for (const k of swept) this.remove(ops, t, k);
    } else {
      const [from, to] = t === 'bids' ? [lastKey, swept[0]!] : [swept[0]!, lastKey];
      for (const k of swept) l.delete(k);
      ops.push({ op: 'deleteRange', table: t, from, to });
      this.rowChanges += n;
    }
    this.last = lastKey;
    // The next level is partly filled.
    const next = this.keyAt(t, 0);
    const old = l.rows.get(next)!;
    const unit = 10 ** -this.spec.qtyDecimals;
    const qty = Number(Math.max(unit, Math.round((old.qty * (0.2 + this.rand() * 0.7)) / unit) * unit).toFixed(this.spec.qtyDecimals));
    this.set(ops, t, next, { qty, orders: Math.max(1, old.orders - 1) });
  }

  /** Keeps each side near `levels`: a level added at the far end, or the farthest one dropped. */
  private keepDepth(ops: BookRowOp[]): void {
    for (const t of ['bids', 'asks'] as const) {
      const l = this.ladder(t);
      if (l.size < this.levels && this.rand() < 0.15) {
        const far = t === 'bids' ? (l.keys[0] ?? this.bestBid) - 1 - Math.floor(this.rand() * 2) : (l.keys.at(-1) ?? this.bestAsk) + 1 + Math.floor(this.rand() * 2);
        this.set(ops, t, far, this.level(l.size));
      } else if (l.size > this.levels + 20) {
        this.remove(ops, t, t === 'bids' ? l.keys[0]! : l.keys.at(-1)!);
      }
    }
  }
}
