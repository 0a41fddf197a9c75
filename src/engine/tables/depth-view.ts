// A depth view: the top N rows of a table in sort order, with a field subset,
// as one subscription (or one shared channel) holds it. After each batch (or
// merged net change) it gives the view delta that turns the client's view into
// the new top N: rows entering the window in full (replace), rows leaving it
// (delete: an explicit eviction, so the client needs no sort logic), rows
// changed inside it (upsert of the changed view fields only). Changes wholly
// outside the window give nothing, and cost a comparison per changed key.
//
// It keeps the window it last gave (keys and projected rows, O(N)), so the
// delta is computed from the table after the change alone; the change only
// says which keys may have moved. Depth 0 is the whole table: no window is
// kept, the delta is the table change projected onto the view's fields.

import type { Changes, State } from '../../protocol/index.js';
import { DELETE, diffRow, type RowChange, type TableChange } from '../../protocol/index.js';
import type { Table } from './table.js';
import type { Key, Row } from '../../protocol/index.js';

export interface ViewSpec {
  readonly table: string;
  /** Rows in the window; 0 for all of them. */
  readonly depth: number;
  /** The fields a row carries in the view; undefined for all. */
  readonly fields?: readonly string[];
}

export class DepthView {
  readonly spec: ViewSpec;
  private readonly fields: ReadonlySet<string> | undefined;
  /** The window, best first, and its rows as the client holds them. */
  private window: Key[] = [];
  private held = new Map<Key, State>();
  private readonly nextKeys = new Set<Key>();

  constructor(spec: ViewSpec) {
    if (!Number.isSafeInteger(spec.depth) || spec.depth < 0) throw new RangeError('depth must be an integer ≥ 0 (0: all rows)');
    this.spec = spec;
    this.fields = spec.fields === undefined ? undefined : new Set(spec.fields);
  }

  get depth(): number {
    return this.spec.depth;
  }

  /** The view of `table` now, best first; (re)sets the window. A missing table is an empty view. */
  reset(table: Table | undefined): (readonly [Key, State])[] {
    const rows = this.top(table);
    const out = rows.map((r) => [r.key, this.project(r.fields)] as const);
    if (this.spec.depth > 0) {
      this.window = rows.map((r) => r.key);
      this.held = new Map(out);
    }
    return out;
  }

  /** The window as the client holds it, best first (depth 0: read from `table`). */
  rows(table?: Table): (readonly [Key, State])[] {
    if (this.spec.depth === 0) return table === undefined ? [] : [...table.rows()].map((r) => [r.key, this.project(r.fields)] as const);
    return this.window.map((k) => [k, this.held.get(k)!] as const);
  }

  /**
   * The view delta for a change that brought `table` to its current state;
   * undefined when the view did not change. The window moves with it.
   */
  update(table: Table, change: TableChange | undefined): TableChange | undefined {
    if (change === undefined || (!change.clear && change.rows.size === 0)) return undefined;
    if (this.spec.depth === 0) return this.project_(change);
    if (!change.clear && this.untouched(table, change)) return undefined;
    const next = table.top(this.spec.depth);
    // The window and its rows are updated in place (no new map per batch).
    const nextKeys = this.nextKeys;
    nextKeys.clear();
    for (let i = 0; i < next.length; i++) nextKeys.add(next[i]!.key);
    const rows = new Map<Key, RowChange>();
    const held = this.held;
    const old = this.window.length;
    let leaving = 0;
    for (const k of this.window) {
      if (nextKeys.has(k)) continue;
      rows.set(k, DELETE);
      held.delete(k);
      leaving++;
    }
    this.window.length = 0;
    for (let i = 0; i < next.length; i++) {
      const r = next[i]!;
      this.window.push(r.key);
      const before = held.get(r.key);
      // A row the change did not name kept its field map: unchanged.
      if (before !== undefined && !change.clear && !change.rows.has(r.key)) continue;
      const after = this.project(r.fields);
      held.set(r.key, after);
      const c = diffRow(r.key, before, after);
      if (c !== undefined) rows.set(r.key, c);
    }
    if (leaving === old && leaving > 1) {
      // Everything it held left: one clear instead of an eviction each.
      for (const [k, c] of rows) if (c.op === 'delete') rows.delete(k);
      return { clear: true, rows };
    }
    return rows.size === 0 ? undefined : { clear: false, rows };
  }

  /** True when no key of `change` can be in the window before or after it. */
  private untouched(table: Table, change: TableChange): boolean {
    if (this.window.length < this.spec.depth) {
      // Every row is in the window: only deletes of rows the table never had leave it alone.
      for (const k of change.rows.keys()) if (this.held.has(k) || table.has(k)) return false;
      return true;
    }
    const boundary = table.get(this.window[this.window.length - 1]!);
    if (boundary === undefined) return false;
    for (const k of change.rows.keys()) {
      if (this.held.has(k)) return false;
      const row: Row | undefined = table.get(k);
      if (row !== undefined && table.rank(row, boundary) < 0) return false;
    }
    return true;
  }

  /** A row's fields as the view carries them (the row's own map when it keeps all fields). */
  private project(fields: State): State {
    const want = this.fields;
    if (want === undefined) return fields;
    const out: State = new Map();
    for (const f of want) {
      const v = fields.get(f);
      if (v !== undefined) out.set(f, v);
    }
    return out;
  }

  /** Depth 0: the table change restricted to the view's fields. */
  private project_(change: TableChange): TableChange | undefined {
    const want = this.fields;
    if (want === undefined) return change;
    const rows = new Map<Key, RowChange>();
    for (const [k, c] of change.rows) {
      if (c.op === 'delete') rows.set(k, c);
      else if (c.op === 'replace') rows.set(k, { op: 'replace', fields: this.project(c.fields), existed: c.existed });
      else {
        let f: Changes | undefined;
        for (const [name, v] of c.fields) if (want.has(name)) (f ??= new Map()).set(name, v);
        if (f !== undefined) rows.set(k, { op: 'upsert', fields: f });
      }
    }
    return change.clear || rows.size > 0 ? { clear: change.clear, rows } : undefined;
  }

  private top(table: Table | undefined): Row[] {
    if (table === undefined) return [];
    return this.spec.depth === 0 ? [...table.rows()] : table.top(this.spec.depth);
  }
}
