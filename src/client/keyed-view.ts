// One subscription's own view of a keyed topic (issue 19). A connection
// holds one view of a topic: the widest its subscriptions asked for (the
// server merges them: per table depth 0 beats any depth, else the deeper,
// and the union of fields). Each subscription presents the view *it* asked
// for, cut from that one: the top N rows of the held view (exact: the held
// view is the top rows of the full table, at least as deep), with its fields
// only, and the row changes of each version restricted to its window — rows
// entering it (whole), rows leaving it (delete), rows changing inside it
// (only its fields; nothing when only other fields changed).
//
// A table whose view is the connection's own is read from the connection
// (no copy, and the connection's row changes as they are); only narrower
// tables are held here. A subscription whose request the held view does not
// cover yet (a wider one just added: the server's snapshot of the new union
// is on its way) sees nothing until it does. A subscription's first update
// is a snapshot of its view; a connection snapshot at the version it holds
// (the union of views changed around it) gives it no update when its view
// and summary fields are unchanged.

import { sameValue, sortsByFields, type FieldValue, type Key, type Row, type State } from '../protocol/index.js';
import type { KeyedReplica } from './keyed-replica.js';
import { KeyedTable, objectOf, type RowUpdate } from './keyed-table.js';
import { WHOLE_TABLE, covers, sameView, tableWants, type TableOptions, type TableWant } from './table-options.js';

/**
 * What one applied connection update is for a subscription: the row changes
 * to deliver (with `KeyedViews.snapshot` saying whether they are a snapshot
 * of its view: every row, as replace, in sort order), or null: nothing to
 * deliver (its view is not held yet, or a snapshot at the version it holds
 * changed nothing of it).
 */
export type ViewUpdate = readonly RowUpdate[] | null;

/** A subscription's view of one topic: the version it shows and the tables it holds itself. */
class TopicView {
  /** Tables narrower than the connection's, cut from them; the others are read from the connection. */
  readonly own = new Map<string, KeyedTable>();
  /** Every table of the connection was its own view when this was last brought up to date (and how many there were). */
  direct = true;
  tables = 0;
  /** An update was delivered from it (a view only read so far gets a snapshot as its first update). */
  delivered = false;

  constructor(
    public epoch: number,
    public version: number,
  ) {}
}

/** A subscription's keyed views, one per topic it covers. */
export class KeyedViews {
  /** Its table views by name; a table not listed is whole. */
  readonly wants: ReadonlyMap<string, TableWant>;
  /** Whether the last `update` gave a snapshot of its view (read it right after). */
  snapshot = false;
  private readonly topics = new Map<string, TopicView>();

  constructor(tables: Record<string, TableOptions> | undefined) {
    this.wants = tableWants(tables);
  }

  /** The table as this subscription sees it now (undefined: not held, or its view is not held yet). */
  table(r: KeyedReplica, name: string): KeyedTable | undefined {
    const ct = r.tables.get(name);
    if (ct === undefined) return undefined;
    let v = this.topics.get(r.topic);
    if (v === undefined || v.epoch !== r.viewEpoch || v.version !== r.viewVersion) {
      // Not brought up to date by a delivery (read before the first one, or between them): cut it now.
      if (!this.covered(r)) return undefined;
      v = this.build(r, r.viewEpoch, r.viewVersion);
    }
    return v.own.get(name) ?? ct;
  }

  /** True when it holds a view of `topic` (it was delivered one, or read one). */
  holds(topic: string): boolean {
    return this.topics.has(topic);
  }

  /**
   * Brings this subscription's view of `r.topic` to the update just applied
   * (`r.viewVersion`), and says what to deliver. Call for every applied
   * update, before any listener runs (so that a listener reading another
   * subscription's table sees it at this version too).
   */
  update(r: KeyedReplica, snapshot: boolean, rows: readonly RowUpdate[], fields: ReadonlySet<string> | null): ViewUpdate {
    const prev = this.topics.get(r.topic);
    const following = prev !== undefined && prev.delivered && prev.epoch === r.epoch && prev.version === r.version;
    if (!snapshot && following && prev.tables === r.tables.size) {
      // A delta on the view it holds, over the same tables: a delta changes no table's view, so the
      // connection's view still covers it (no check), and is still its own where it was.
      prev.epoch = r.viewEpoch;
      prev.version = r.viewVersion;
      this.snapshot = false;
      // The widest view: the connection's row changes as they are.
      return prev.direct ? rows : this.advance(prev, r, rows);
    }
    if (!this.covered(r)) return null;
    if (snapshot) return this.rebase(r, prev, fields);
    if (following) {
      // The delta created a table (the connection holds it whole or as bound): cut it too.
      prev.epoch = r.viewEpoch;
      prev.version = r.viewVersion;
      this.snapshot = false;
      return this.advance(prev, r, rows);
    }
    // Its first view (a subscription added to a topic the connection holds, read from nowhere yet), or one
    // left behind: a snapshot of it, so that its row changes always start from what it was shown.
    const v = this.build(r, r.viewEpoch, r.viewVersion);
    v.delivered = true;
    this.snapshot = true;
    return listRows(v, r);
  }

  /** True when the connection's held view holds all this subscription asked for, for every table it holds. */
  /** The connection's view of `r` holds at least what this subscription asked for (every table deep and wide enough). */
  covered(r: KeyedReplica): boolean {
    for (const [name, ct] of r.tables) if (!covers(ct.view.depth, ct.view.fields, this.want(name))) return false;
    return true;
  }

  private want(name: string): TableWant {
    return this.wants.get(name) ?? WHOLE_TABLE;
  }

  /** A new view of the topic, cut from the connection's tables as they are now. */
  private build(r: KeyedReplica, epoch: number, version: number): TopicView {
    const v = new TopicView(epoch, version);
    for (const [name, ct] of r.tables) {
      const want = this.want(name);
      if (sameView(ct.view.depth, ct.view.fields, want)) continue;
      v.direct = false;
      v.own.set(name, cut(ct, want));
    }
    v.tables = r.tables.size;
    this.topics.set(r.topic, v);
    return v;
  }

  /**
   * A connection snapshot (a first image, a catch-up by snapshot, or the
   * image of a new union of views): a snapshot of its view, except at the
   * very version it holds when its view is unchanged (the connection's view
   * widened or narrowed around it): then nothing.
   */
  private rebase(r: KeyedReplica, prev: TopicView | undefined, fields: ReadonlySet<string> | null): ViewUpdate {
    const before = prev === undefined ? null : this.rowsOf(prev, r.replaced);
    const unchangedAt = prev !== undefined && prev.delivered && prev.epoch === r.viewEpoch && prev.version === r.viewVersion;
    const v = this.build(r, r.viewEpoch, r.viewVersion);
    v.delivered = true;
    if (unchangedAt && before !== null && sameRows(before, this.rowsOf(v, r.tables)!) && sameSummary(r.replacedSummary, r.state, fields)) return null;
    this.snapshot = true;
    return listRows(v, r);
  }

  /** Its rows by table as `v` shows them over the connection tables `tables` (null: not known). */
  private rowsOf(v: TopicView, tables: ReadonlyMap<string, KeyedTable> | null): Map<string, ReadonlyMap<Key, State>> | null {
    if (tables === null) return null;
    const out = new Map<string, ReadonlyMap<Key, State>>();
    for (const [name, ct] of tables) out.set(name, (v.own.get(name) ?? ct).rows);
    return out;
  }

  /** A delta: each own table follows its connection table; row changes relative to what it showed. */
  private advance(v: TopicView, r: KeyedReplica, rows: readonly RowUpdate[]): RowUpdate[] {
    const byTable = new Map<string, Map<Key, RowUpdate>>();
    for (const u of rows) {
      let m = byTable.get(u.table);
      if (m === undefined) byTable.set(u.table, (m = new Map()));
      m.set(u.key, u);
    }
    const out: RowUpdate[] = [];
    v.direct = true;
    for (const [name, ct] of r.tables) {
      const want = this.want(name);
      let ot = v.own.get(name);
      if (ot === undefined && sameView(ct.view.depth, ct.view.fields, want)) {
        for (const u of rows) if (u.table === name) out.push(u);
        continue;
      }
      v.direct = false;
      if (ot === undefined) v.own.set(name, (ot = cut(undefined, want, ct)));
      const named = byTable.get(name);
      if (named !== undefined) follow(ot, ct, want, named, out);
    }
    v.tables = r.tables.size;
    return out;
  }
}

/** A table cut from `ct` (or empty, for a table the connection just created): its top rows with the wanted fields. */
function cut(ct: KeyedTable | undefined, want: TableWant, like: KeyedTable | undefined = ct): KeyedTable {
  const t = new KeyedTable({ spec: like!.view.spec, depth: want.depth, fields: want.fields });
  t.rankBy = like!.rows;
  if (ct !== undefined) {
    if (want.depth === 0) t.load([...ct.rows].map(([k, f]) => [k, project(f, want)] as const));
    else t.load(ct.top(want.depth).map((row) => [row.key, project(row.fields, want)] as const));
  }
  return t;
}

/**
 * Moves `ot` (a cut of `ct` before the change) to the cut of `ct` now, given
 * the keys the connection's update named, and pushes what that did to `out`.
 */
function follow(ot: KeyedTable, ct: KeyedTable, want: TableWant, named: ReadonlyMap<Key, RowUpdate>, out: RowUpdate[]): void {
  ot.rankBy = ct.rows;
  const table = ct.name;
  if (want.depth === 0) {
    for (const [k, u] of named) {
      const now = ct.rows.get(k);
      const was = ot.rows.get(k);
      if (now === undefined) {
        if (was !== undefined) {
          out.push({ table, key: k, op: 'delete', fields: null });
          ot.put(k, undefined);
        }
        continue;
      }
      const after = project(now, want);
      rowChange(out, table, k, was, after, u.op === 'replace');
      ot.put(k, after);
    }
    return;
  }
  if (untouched(ot, ct, want.depth, named)) return;
  const next = nextWindow(ot, ct, want.depth, named);
  const keep = new Set<Key>();
  for (const row of next) keep.add(row.key);
  for (const k of [...ot.rows.keys()]) {
    if (keep.has(k)) continue;
    out.push({ table, key: k, op: 'delete', fields: null });
    ot.put(k, undefined);
  }
  for (const row of next) {
    const was = ot.rows.get(row.key);
    const u = named.get(row.key);
    // A row the update did not name kept its fields.
    if (was !== undefined && u === undefined) continue;
    const after = project(row.fields, want);
    rowChange(out, table, row.key, was, after, u?.op === 'replace');
    ot.put(row.key, after);
  }
}

/**
 * The new window: top `depth` of the connection's table. Ordered by key and
 * with no row of the old window gone from the table, it is among the old
 * window and the keys the update named (any other row was below the old
 * window and did not change, nor did its rank): a sort of those, not a pass
 * over the whole table.
 */
function nextWindow(ot: KeyedTable, ct: KeyedTable, depth: number, named: ReadonlyMap<Key, RowUpdate>): readonly Row[] {
  if (sortsByFields(ct.view.spec.order)) return ct.top(depth);
  const rows: Row[] = [];
  for (const k of ot.rows.keys()) {
    const f = ct.rows.get(k);
    if (f === undefined) return ct.top(depth);
    rows.push({ key: k, fields: f });
  }
  for (const k of named.keys()) {
    if (ot.rows.has(k)) continue;
    const f = ct.rows.get(k);
    if (f !== undefined) rows.push({ key: k, fields: f });
  }
  rows.sort(ct.rank);
  if (rows.length > depth) rows.length = depth;
  return rows;
}

/** True when no key the update named can be in the window before or after it. */
function untouched(ot: KeyedTable, ct: KeyedTable, depth: number, named: ReadonlyMap<Key, RowUpdate>): boolean {
  if (ot.rows.size < depth) {
    // Every row is in the window: only keys neither held nor in the table now leave it alone.
    for (const k of named.keys()) if (ot.rows.has(k) || ct.rows.has(k)) return false;
    return true;
  }
  const last = ot.ordered()[ot.rows.size - 1]!.key;
  const boundary = ct.rows.get(last);
  if (boundary === undefined) return false;
  const edge = { key: last, fields: boundary };
  for (const k of named.keys()) {
    if (ot.rows.has(k)) return false;
    const f = ct.rows.get(k);
    if (f !== undefined && ct.rank({ key: k, fields: f }, edge) < 0) return false;
  }
  return true;
}

/** What turns `was` into `after` for one row; nothing when the row's fields in the view did not change. */
function rowChange(out: RowUpdate[], table: string, key: Key, was: State | undefined, after: State, replaced: boolean): void {
  if (was === undefined) {
    out.push({ table, key, op: 'replace', fields: objectOf(after) });
    return;
  }
  if (was === after) return;
  let set: Record<string, FieldValue | null> | null = null;
  for (const [f, v] of after) if (!sameValue(was.get(f), v)) (set ??= Object.create(null) as Record<string, FieldValue | null>)[f] = v;
  for (const f of was.keys()) if (!after.has(f)) (set ??= Object.create(null) as Record<string, FieldValue | null>)[f] = null;
  if (set === null) return;
  out.push(replaced ? { table, key, op: 'replace', fields: objectOf(after) } : { table, key, op: 'upsert', fields: set });
}

/** A row with the wanted fields only (the row itself when all are wanted: rows are never changed in place). */
function project(fields: State, want: TableWant): State {
  if (want.fields.length === 0) return fields;
  const out: State = new Map();
  for (const f of want.fields) {
    const v = fields.get(f);
    if (v !== undefined) out.set(f, v);
  }
  return out;
}

/** Every row of the view, as replace, table by table in sort order (a snapshot). */
function listRows(v: TopicView, r: KeyedReplica): RowUpdate[] {
  const rows: RowUpdate[] = [];
  for (const [name, ct] of r.tables) for (const row of (v.own.get(name) ?? ct).list()) rows.push({ table: name, key: row.key, op: 'replace', fields: row.fields });
  return rows;
}

function sameRows(a: Map<string, ReadonlyMap<Key, State>>, b: Map<string, ReadonlyMap<Key, State>>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, x] of a) {
    const y = b.get(name);
    if (y === undefined || x.size !== y.size) return false;
    for (const [k, f] of x) {
      const g = y.get(k);
      if (g === undefined || !sameFields(f, g)) return false;
    }
  }
  return true;
}

/** The summary fields a subscription follows are the same in both (a null `before`: not known). */
function sameSummary(before: State | null, after: State, fields: ReadonlySet<string> | null): boolean {
  if (before === null) return false;
  if (fields === null) return sameFields(before, after);
  for (const f of fields) if (!sameValue(before.get(f), after.get(f))) return false;
  return true;
}

function sameFields(a: State, b: State): boolean {
  if (a === b) return true;
  if (a.size !== b.size) return false;
  for (const [f, v] of a) if (!b.has(f) || !sameValue(b.get(f), v)) return false;
  return true;
}
