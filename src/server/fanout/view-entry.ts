// The parts of keyed views that hold no channel: what a subscription asks
// for (ViewReq, merged across the subscriptions of one connection's topic),
// and per topic the shared DepthViews — one per distinct (table, depth,
// fields), counted by the channels using it — each with a bounded history of
// its view deltas, from which catch-ups merge (views.ts).

import { DepthView, mergeTableChange, type Table } from '../../engine/tables/index.js';
import { ErrorCode, TickfanError, type Key, type KeyedTableBinding, type RowChange, type TableChange, type TableSpec, type TableViewRequest } from '../../protocol/index.js';

/** One table's view: its top `depth` rows (0: all) with `fields` (sorted; empty: all). */
export interface TableReq {
  readonly depth: number;
  readonly fields: readonly string[];
}

export const FULL_TABLE: TableReq = Object.freeze({ depth: 0, fields: Object.freeze([]) as readonly string[] });

/** What a subscription asks of keyed topics; null: every row of every table, no checksums. */
export interface ViewReq {
  readonly tables: ReadonlyMap<string, TableReq>;
  readonly checksums: boolean;
  /** Canonical text of the request (part of channel keys). */
  readonly key: string;
}

const MAX_DEPTH = 100_000;

function make(tables: Map<string, TableReq>, checksums: boolean): ViewReq | null {
  for (const [n, t] of tables) if (t.depth === 0 && t.fields.length === 0) tables.delete(n);
  if (tables.size === 0 && !checksums) return null;
  const names = [...tables.keys()].sort();
  const key = names.map((n) => `${n}:${tables.get(n)!.depth}:${tables.get(n)!.fields.join(',')}`).join(';') + (checksums ? '#c' : '');
  return { tables, checksums, key };
}

/** A Subscribe's `tables` and `checksums`, checked and canonical. */
export function viewReq(tables: readonly TableViewRequest[] | undefined, checksums: boolean | undefined): ViewReq | null {
  const out = new Map<string, TableReq>();
  for (const t of tables ?? []) {
    if (!t.table || out.has(t.table)) throw new TickfanError(ErrorCode.BAD_REQUEST, `table views: each table once, by name (${JSON.stringify(t.table)})`);
    if (!Number.isSafeInteger(t.depth) || t.depth < 0 || t.depth > MAX_DEPTH) throw new TickfanError(ErrorCode.BAD_REQUEST, `table ${t.table}: depth must be 0 (all rows) to ${MAX_DEPTH}`);
    if (t.fields.some((f) => !f)) throw new TickfanError(ErrorCode.BAD_FIELD, `table ${t.table}: empty field name`);
    out.set(t.table, { depth: t.depth, fields: [...new Set(t.fields)].sort() });
  }
  return make(out, checksums === true);
}

/**
 * The view one connection receives of a topic covered by several of its
 * subscriptions: per table the widest (depth 0 wins, else the deepest; field
 * union, empty = all); a table not listed by one of them is whole.
 */
export function mergeViewReqs(reqs: readonly (ViewReq | null)[]): ViewReq | null {
  if (reqs.length === 1) return reqs[0]!;
  const checksums = reqs.some((r) => r?.checksums);
  if (reqs.some((r) => r === null || r.tables.size === 0)) return make(new Map(), checksums);
  const out = new Map<string, TableReq>();
  for (const [name, first] of reqs[0]!.tables) {
    let depth = first.depth;
    let fields: Set<string> | null = first.fields.length ? new Set(first.fields) : null;
    let everywhere = true;
    for (const r of reqs) {
      const t = r!.tables.get(name);
      if (!t) {
        everywhere = false;
        break;
      }
      depth = depth === 0 || t.depth === 0 ? 0 : Math.max(depth, t.depth);
      if (!t.fields.length) fields = null;
      else if (fields) for (const f of t.fields) fields.add(f);
    }
    if (everywhere) out.set(name, { depth, fields: fields ? [...fields].sort() : [] });
  }
  return make(out, checksums);
}

/** Versions of view deltas a view keeps for catch-ups. */
const HISTORY = 512;
/** Unused views a topic keeps for resumes. */
const IDLE = 4;

/** One shared DepthView of a topic and its recent view deltas. */
export class ViewEntry {
  refs = 0;
  readonly view: DepthView;
  /** The version its window is at. */
  version: number;
  /** The view delta of `version` (undefined: the view did not change). */
  last: TableChange | undefined = undefined;
  /** View deltas of versions histFrom+1 … version, oldest first (a ring). */
  private readonly hist: (TableChange | undefined)[] = [];
  private head = 0;
  private histFrom: number;

  constructor(
    readonly key: string,
    readonly name: string,
    readonly req: TableReq,
    table: Table | undefined,
    version: number,
  ) {
    this.view = new DepthView({ table: name, depth: req.depth, fields: req.fields.length ? req.fields : undefined });
    this.view.reset(table);
    this.version = this.histFrom = version;
  }

  /** Takes `version` (the next one): the view delta of `change` to `table`. */
  advance(table: Table | undefined, change: TableChange | undefined, version: number): void {
    if (version <= this.version) return;
    if (version !== this.version + 1 || table === undefined) {
      // Not the next version (a replica reset): start again from the table as it is.
      this.view.reset(table);
      this.hist.length = this.head = 0;
      this.version = this.histFrom = version;
      this.last = undefined;
      return;
    }
    const d = this.view.update(table, change);
    this.last = d;
    this.version = version;
    if (this.hist.length < HISTORY) this.hist.push(d);
    else {
      this.hist[this.head] = d;
      this.head = (this.head + 1) % HISTORY;
      this.histFrom++;
    }
  }

  /** The merged view delta from `base` to `version`: undefined when nothing changed, null when the history does not reach back to base. */
  mergeFrom(base: number, version: number): TableChange | undefined | null {
    if (base < this.histFrom || base > this.version || this.version !== version) return null;
    const acc = { clear: false, rows: new Map<Key, RowChange>() };
    const n = this.hist.length;
    for (let i = base - this.histFrom; i < n; i++) {
      const c = this.hist[(this.head + i) % n];
      if (c !== undefined) mergeTableChange(acc, c);
    }
    return acc.clear || acc.rows.size ? acc : undefined;
  }
}

/** The shared views of one topic in one epoch, and its table ids. */
export class TopicViews {
  private readonly ids = new Map<string, number>();
  private readonly keyBases = new Map<string, number>();
  private readonly byKey = new Map<string, ViewEntry>();
  constructor(readonly epoch: number) {}

  /** A table's id in this topic's epoch (in order of first binding; at most 16 tables). */
  idOf(name: string): number {
    let id = this.ids.get(name);
    if (id === undefined) this.ids.set(name, (id = this.ids.size));
    return id;
  }

  /**
   * An int table's key base in this epoch (the wire writes a message's first
   * key against it): its best row's key when first bound, where most changes
   * happen; 0 when it was empty then. Fixed for the epoch: encodings are shared.
   */
  keyBaseOf(table: Table): number {
    let kb = this.keyBases.get(table.name);
    if (kb === undefined) {
      const top = table.spec.key === 'int' ? table.top(1)[0]?.key : undefined;
      this.keyBases.set(table.name, (kb = typeof top === 'number' ? top : 0));
    }
    return kb;
  }

  entries(): IterableIterator<ViewEntry> {
    return this.byKey.values();
  }

  acquire(name: string, req: TableReq, table: Table | undefined, version: number): ViewEntry {
    const key = `${name}|${req.depth}|${req.fields.join(',')}`;
    let e = this.byKey.get(key);
    // An unused view that missed versions (never expected: unused views advance too) is made again.
    if (e && e.refs <= 0 && e.version !== version) {
      this.byKey.delete(key);
      e = undefined;
    }
    if (!e) this.byKey.set(key, (e = new ViewEntry(key, name, req, table, version)));
    else if (e.refs <= 0) {
      this.byKey.delete(key); // to the end: the longest unused stay first
      this.byKey.set(key, e);
    }
    e.refs++;
    return e;
  }

  /**
   * A channel gave `e` back. An unused view is kept (and advanced) a while
   * so that its subscribers' reconnects can still resume by merged delta; at
   * most IDLE of them per topic, the longest unused going first.
   */
  release(e: ViewEntry): void {
    if (--e.refs > 0) return;
    let idle = 0;
    for (const x of this.byKey.values()) if (x.refs <= 0) idle++;
    if (idle <= IDLE) return;
    for (const [k, x] of this.byKey) {
      if (x.refs > 0) continue;
      this.byKey.delete(k);
      break;
    }
  }
}

/** A channel's part in its topic's views (on Channel.keyed). */
export class ChannelView {
  /** The view entry of each table of the topic, by table name. */
  readonly entries = new Map<string, ViewEntry>();
  /** Each table's binding (id, spec, the view's depth and fields). */
  readonly bindings = new Map<string, KeyedTableBinding>();
  /** Throttled tiers: view changes merged since the last flush, and tables declared meanwhile. */
  readonly pending = new Map<string, { clear: boolean; rows: Map<Key, RowChange> }>();
  pendingDeclared: TableSpec[] = [];
  constructor(readonly topicViews: TopicViews) {}
}

