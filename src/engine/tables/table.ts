// One keyed table's rows: a Map by key for lookups, and an array sorted by
// rank for order, binary-searched. The array is kept worst-first so the top of
// the book sits at its tail: a book's changes are mostly near the top, and an
// insert or delete there moves a few pointers instead of the whole array.
//
// Why a sorted array and not a B-tree or skip list: for books of thousands of
// levels the top-N read is a walk from the tail, there is no per-node object
// for the GC, and a change near the top moves next to nothing. Measured on
// Node 20 (delete + re-insert of one row): ~0.2 µs near the top at 2k and at
// 100k rows; at the far end ~3 µs at 2k rows, ~130 µs at 100k. Hence the 10k
// default row limit (batch.ts); a blotter of 10^5 orders changing anywhere
// wants a blocked list or a B-tree behind the same methods.

import { compareKeys, rowRank, sortsByFields, type Key, type Row, type RowRank, type TableSpec } from '../../protocol/index.js';
import { rowSize } from '../../protocol/index.js';
import type { State } from '../../protocol/index.js';

/** A key range for deleteRange: bounds inclusive unless marked exclusive; a missing bound is open. */
export interface KeyRange {
  readonly from?: Key;
  readonly to?: Key;
  readonly fromExclusive?: boolean;
  readonly toExclusive?: boolean;
}

export class Table {
  readonly spec: TableSpec;
  /** Ranks rows best first. */
  readonly rank: RowRank;
  /**
   * Row by key; null for a deleted key not yet purged. A book deletes and
   * re-adds the same hot levels all the time, and V8's Map keeps each deleted
   * entry in its bucket's chain until the next rehash: measured on Node 20, a
   * delete + set of the same key cost 2 µs at 2k entries and 30 µs at 100k.
   * Overwriting with null and purging when the dead outnumber the live (one
   * fresh Map, amortised O(1) per delete) keeps it at ~50 ns.
   */
  private byKey = new Map<Key, Row | null>();
  private live = 0;
  private dead = 0;
  /** Worst first: order[length - 1] is the top row. */
  private readonly order: Row[] = [];
  private readonly byFields: boolean;
  private _bytes = 0;

  constructor(spec: TableSpec) {
    this.spec = spec;
    this.rank = rowRank(spec.order);
    this.byFields = sortsByFields(spec.order);
  }

  get name(): string {
    return this.spec.name;
  }

  get size(): number {
    return this.live;
  }

  /** Estimated encoded size of all rows (what a snapshot of the table costs). */
  get bytes(): number {
    return this._bytes;
  }

  get(key: Key): Row | undefined {
    return this.byKey.get(key) ?? undefined;
  }

  has(key: Key): boolean {
    return (this.byKey.get(key) ?? null) !== null;
  }

  /** The best `n` rows, best first. */
  top(n: number): Row[] {
    const o = this.order;
    const out: Row[] = [];
    for (let i = o.length - 1; i >= 0 && out.length < n; i--) out.push(o[i]!);
    return out;
  }

  /** All rows, best first. */
  *rows(): Generator<Row> {
    for (let i = this.order.length - 1; i >= 0; i--) yield this.order[i]!;
  }

  /** Rank of a held row: 0 for the top row. */
  rankOf(key: Key): number {
    const row = this.byKey.get(key);
    return row == null ? -1 : this.order.length - 1 - this.indexOf(row);
  }

  /** Keys of the rows in `range` (by key value, whatever the sort order). */
  keysIn(range: KeyRange): Key[] {
    const out: Key[] = [];
    if (!this.byFields) {
      // Contiguous in the array: find one end by binary search, walk to the other.
      const asc = this.spec.order.key === 'asc';
      const o = this.order;
      // Walk from the worst end's side: in asc tables the array runs high → low keys.
      let i = this.firstIndexWhere((r) => (asc ? !above(r.key, range) : !below(r.key, range)));
      for (; i < o.length; i++) {
        const k = o[i]!.key;
        if (asc ? below(k, range) : above(k, range)) break;
        out.push(k);
      }
      return out;
    }
    for (const row of this.order) if (!below(row.key, range) && !above(row.key, range)) out.push(row.key);
    return out;
  }

  /** Sets a row's fields (inserting the row if new). `fields` is kept, never copied: do not mutate it after. */
  set(key: Key, fields: State): void {
    const row = this.byKey.get(key);
    if (row == null) {
      const fresh: Row = { key, fields };
      if (row === null) this.dead--;
      this.byKey.set(key, fresh);
      this.live++;
      insertAt(this.order, this.insertionIndex(fresh), fresh);
      this._bytes += rowSize(key, fields);
      return;
    }
    this._bytes += rowSize(key, fields) - rowSize(key, row.fields);
    if (!this.byFields) {
      row.fields = fields;
      return;
    }
    // Its rank may change: out at the old place, back in at the new one.
    removeAt(this.order, this.indexOf(row));
    row.fields = fields;
    insertAt(this.order, this.insertionIndex(row), row);
  }

  delete(key: Key): boolean {
    const row = this.byKey.get(key);
    if (row == null) return false;
    removeAt(this.order, this.indexOf(row));
    this.byKey.set(key, null);
    this.live--;
    this.dead++;
    this._bytes -= rowSize(key, row.fields);
    if (this.dead > 64 && this.dead > this.live) this.purge();
    return true;
  }

  clear(): void {
    this.byKey = new Map();
    this.live = this.dead = 0;
    this.order.length = 0;
    this._bytes = 0;
  }

  /** A fresh map of the live rows only. */
  private purge(): void {
    const fresh = new Map<Key, Row | null>();
    for (const row of this.order) fresh.set(row.key, row);
    this.byKey = fresh;
    this.dead = 0;
  }

  /** Index of a held row in `order`. */
  private indexOf(row: Row): number {
    const i = this.insertionIndex(row);
    if (this.order[i] !== row) throw new Error(`table ${this.name}: row ${String(row.key)} is out of order (a held field map was mutated?)`);
    return i;
  }

  /** First index whose row ranks at or before `row` (rows before it rank after). */
  private insertionIndex(row: Row): number {
    const o = this.order;
    let lo = 0;
    let hi = o.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.rank(o[mid]!, row) > 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** First index for which `pred` holds, given it holds for a suffix of `order`. */
  private firstIndexWhere(pred: (r: Row) => boolean): number {
    const o = this.order;
    let lo = 0;
    let hi = o.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (pred(o[mid]!)) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}

function insertAt(a: Row[], i: number, row: Row): void {
  if (i === a.length) a.push(row);
  else a.splice(i, 0, row);
}

function removeAt(a: Row[], i: number): void {
  if (i === a.length - 1) a.pop();
  else a.splice(i, 1);
}

/** True when `k` is below the range's lower bound. */
function below(k: Key, r: KeyRange): boolean {
  if (r.from === undefined) return false;
  const c = compareKeys(k, r.from);
  return r.fromExclusive ? c <= 0 : c < 0;
}

/** True when `k` is above the range's upper bound. */
function above(k: Key, r: KeyRange): boolean {
  if (r.to === undefined) return false;
  const c = compareKeys(k, r.to);
  return r.toExclusive ? c >= 0 : c > 0;
}
