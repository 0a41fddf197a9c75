// One table of a keyed topic as the SDK holds it (an order book side, a
// blotter): a plain map key → row fields, exact without any sort logic because
// the server sends rows entering a depth window in full and rows leaving it as
// deletes. Sorting happens only when the app reads `rows()`, with the
// protocol's rowRank so that SDK and server agree on the one row order (the
// order view checksums list rows in). Also the public TableView handle that
// `sub.table('bids')` returns, and the row changes an update reports.

import { applyToRows, rowRank, sortsByFields, type Changes, type FieldValue, type Key, type Row, type RowRank, type State, type TableChange, type TableSpec } from '../protocol/index.js';

/** A row as the app reads it: its key and fields (a plain object). */
export interface TableRow {
  readonly key: Key;
  readonly fields: Readonly<Record<string, FieldValue>>;
}

/**
 * What one update did to one row of the view the app held before it:
 * `replace`: the row is new (or re-created, or replaced whole); `fields` is the whole row.
 * `upsert`: the row was there and is still; `fields` are those set (null: removed).
 * `delete`: the row is gone (deleted, cleared, or evicted from a depth window); `fields` is null.
 */
export type RowUpdate =
  | { readonly table: string; readonly key: Key; readonly op: 'replace'; readonly fields: Readonly<Record<string, FieldValue>> }
  | { readonly table: string; readonly key: Key; readonly op: 'upsert'; readonly fields: Readonly<Record<string, FieldValue | null>> }
  | { readonly table: string; readonly key: Key; readonly op: 'delete'; readonly fields: null };

/** How the view holds a table: its declaration, the depth (0: every row) and the fields rows carry (empty: all). */
export interface TableViewSpec {
  readonly spec: TableSpec;
  readonly depth: number;
  readonly fields: readonly string[];
}

/** Rows touched by a change, as they were before it (undefined: absent); a clear keeps the whole map. */
export interface TableUndo {
  readonly table: KeyedTable;
  readonly before: Map<Key, State | undefined>;
  readonly all: Map<Key, State> | null;
}

/** @internal A table's rows and the sorted list read from them (built lazily, dropped on change). */
export class KeyedTable {
  readonly rows = new Map<Key, State>();
  readonly rank: RowRank;
  private sorted: Row[] | null = null;
  private listed: TableRow[] | null = null;
  /**
   * Rows to rank by instead of this table's own (a subscription's cut of a
   * wider view whose field subset may lack the fields the order names).
   */
  rankBy: ReadonlyMap<Key, State> | null = null;

  constructor(readonly view: TableViewSpec) {
    this.rank = rowRank(view.spec.order);
  }

  get name(): string {
    return this.view.spec.name;
  }

  /** Replaces every row (a snapshot). */
  load(rows: Iterable<readonly [Key, State]>): void {
    this.rows.clear();
    for (const [k, f] of rows) this.rows.set(k, f);
    this.changed();
  }

  /**
   * Applies a net change (applyToRows); returns what it undoes, and pushes to
   * `out` what it did to each row relative to the rows before it.
   */
  apply(change: TableChange, out: RowUpdate[]): TableUndo {
    const before = new Map<Key, State | undefined>();
    for (const k of change.rows.keys()) before.set(k, this.rows.get(k));
    const all = change.clear ? new Map(this.rows) : null;
    applyToRows(this.rows, change);
    const table = this.name;
    if (all !== null) for (const k of all.keys()) if (!this.rows.has(k)) out.push({ table, key: k, op: 'delete', fields: null });
    for (const [k, c] of change.rows) {
      const was = before.get(k);
      const now = this.rows.get(k);
      if (now === undefined) {
        if (was !== undefined && all === null) out.push({ table, key: k, op: 'delete', fields: null });
      } else if (was === undefined || c.op !== 'upsert' || (all !== null && all.has(k))) {
        // New, re-created or replaced whole (a clear then a re-add is a replace).
        out.push({ table, key: k, op: 'replace', fields: objectOf(now) });
      } else {
        out.push({ table, key: k, op: 'upsert', fields: changesObject(c.fields) });
      }
    }
    this.changed();
    return { table: this, before, all };
  }

  /** Puts back the rows an `apply` changed. */
  undo(u: TableUndo): void {
    if (u.all !== null) {
      this.rows.clear();
      for (const [k, f] of u.all) this.rows.set(k, f);
    } else {
      for (const [k, f] of u.before) {
        if (f === undefined) this.rows.delete(k);
        else this.rows.set(k, f);
      }
    }
    this.changed();
  }

  /** Sets (fields) or deletes (undefined) one row. */
  put(key: Key, fields: State | undefined): void {
    if (fields === undefined) this.rows.delete(key);
    else this.rows.set(key, fields);
    this.changed();
  }

  /** Rows best first, with their field maps (for checksums). */
  ordered(): readonly Row[] {
    if (this.sorted === null) {
      const list: Row[] = [];
      for (const [key, fields] of this.rows) list.push({ key, fields });
      const by = this.rankBy;
      if (by === null || !sortsByFields(this.view.spec.order)) {
        // A table sorted by key alone is the common case (a book): rank compares keys only.
        this.sorted = list.sort(this.rank);
      } else {
        const rank = this.rank;
        this.sorted = list.sort((a, b) => rank({ key: a.key, fields: by.get(a.key) ?? a.fields }, { key: b.key, fields: by.get(b.key) ?? b.fields }));
      }
    }
    return this.sorted;
  }

  /**
   * The best `n` rows (n > 0), best first: a slice of the sorted list when
   * there is one, else one pass over the rows keeping the best n (no sort of
   * the whole table for a depth-10 cut of a 2,000-row book).
   */
  top(n: number): readonly Row[] {
    if (this.sorted !== null || n >= this.rows.size) return this.ordered().slice(0, n);
    const rank = this.rank;
    const best: Row[] = [];
    const probe: { key: Key; fields: State } = { key: 0, fields: EMPTY };
    for (const [key, fields] of this.rows) {
      probe.key = key;
      probe.fields = fields;
      if (best.length === n) {
        if (rank(probe, best[n - 1]!) >= 0) continue;
        best.pop();
      }
      let lo = 0;
      let hi = best.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (rank(best[mid]!, probe) <= 0) lo = mid + 1;
        else hi = mid;
      }
      best.splice(lo, 0, { key, fields });
    }
    return best;
  }

  /** Rows best first, as the app reads them (cached until the next change). */
  list(): readonly TableRow[] {
    return (this.listed ??= this.ordered().map((r) => Object.freeze({ key: r.key, fields: Object.freeze(objectOf(r.fields)) })));
  }

  private changed(): void {
    this.sorted = null;
    this.listed = null;
  }
}

/**
 * One table of a keyed subscription, from `sub.table('bids')`: a live handle
 * that always reads the view held now (across snapshots and reconnects). An
 * unknown table, or one not held yet, reads as empty.
 */
export class TableView {
  /** @internal */
  constructor(
    readonly name: string,
    private readonly resolve: () => KeyedTable | undefined,
  ) {}

  /** Rows in the table's sort order, best first (a new array; the rows are frozen and shared). */
  rows(): TableRow[] {
    const t = this.resolve();
    return t ? t.list().slice() : [];
  }

  /** The fields of the row with this key, or undefined. */
  get(key: Key): Readonly<Record<string, FieldValue>> | undefined {
    const f = this.resolve()?.rows.get(key);
    return f === undefined ? undefined : objectOf(f);
  }

  has(key: Key): boolean {
    return this.resolve()?.rows.has(key) ?? false;
  }

  /** Rows held (at most the view's depth). */
  get size(): number {
    return this.resolve()?.rows.size ?? 0;
  }

  /** The table's declaration (key type, sort order), once held. */
  get spec(): TableSpec | undefined {
    return this.resolve()?.view.spec;
  }

  /** Rows in the window (0: every row), once held. */
  get depth(): number | undefined {
    return this.resolve()?.view.depth;
  }
}

const EMPTY: State = new Map();

/** A field map as a plain object. */
export function objectOf(fields: State): Record<string, FieldValue> {
  const o: Record<string, FieldValue> = Object.create(null);
  for (const [k, v] of fields) o[k] = v;
  return o;
}

/** Field changes as a plain object (null: removed). */
export function changesObject(fields: Changes): Record<string, FieldValue | null> {
  const o: Record<string, FieldValue | null> = Object.create(null);
  for (const [k, v] of fields) o[k] = v;
  return o;
}
