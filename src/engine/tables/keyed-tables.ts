// A topic's keyed tables at one version: the batches that change them (one
// publish = one batch = one version, the topic's), the net change each batch
// made, the bounded history of those changes, and catch-ups from any version
// (a merged net delta, or a snapshot when that is smaller or the version is
// past the horizon). The version itself is the topic's: the wire-in validates
// the summary and calls `prepare`, then applies the summary and calls
// `commit(prepared, version)`, which cannot fail.
//
//   const tables = new KeyedTables();
//   const prepared = tables.prepare({ declare: [{ name: 'bids', key: 'int', order: { key: 'desc' } }],
//     ops: [{ op: 'upsert', table: 'bids', key: 6500050, fields: new Map([['qty', 3.2]]) }] });
//   const change = tables.commit(prepared, topic.version + 1);

import type { State } from '../../protocol/index.js';
import { DEFAULT_TABLE_LIMITS, prepareBatch, type Batch, type PreparedBatch, type TableLimits, type TableWork } from './batch.js';
import { ChangeHistory, DEFAULT_HISTORY_LIMITS, type HistoryLimits } from './change-history.js';
import { DELETE, applyFields, diffRow, isEmptyChange, keyedChangeSize, tableChangeSize, type KeyedChange, type RowChange, type TableChange } from '../../protocol/index.js';
import { Table } from './table.js';
import type { Key, TableSpec } from '../../protocol/index.js';

/** How to bring a holder of a version up to date (same epoch assumed: the topic checks epochs). */
export type KeyedCatchUp =
  | { readonly kind: 'current' }
  | { readonly kind: 'delta'; readonly base: number; readonly version: number; readonly updates: number; readonly change: KeyedChange; readonly bytes: number }
  | { readonly kind: 'snapshot'; readonly reason: 'horizon' | 'smaller' | 'ahead' };

/** The tables at one version, as snapshots and images carry them. */
export interface KeyedImage {
  readonly version: number;
  readonly tables: readonly { readonly spec: TableSpec; readonly rows: readonly (readonly [Key, State])[] }[];
}

export class KeyedTables {
  private readonly byName = new Map<string, Table>();
  private _version: number;
  readonly history: ChangeHistory;
  readonly limits: TableLimits;

  constructor(limits: Partial<TableLimits> = {}, historyLimits: Partial<HistoryLimits> = {}, version = 0) {
    this.limits = { ...DEFAULT_TABLE_LIMITS, ...limits };
    this._version = version;
    this.history = new ChangeHistory({ ...DEFAULT_HISTORY_LIMITS, ...historyLimits }, version);
  }

  /** The version of the last commit (or skip). */
  get version(): number {
    return this._version;
  }

  table(name: string): Table | undefined {
    return this.byName.get(name);
  }

  tables(): IterableIterator<Table> {
    return this.byName.values();
  }

  /** Estimated bytes of a snapshot of every table. */
  get snapshotBytes(): number {
    let n = 0;
    for (const t of this.byName.values()) n += 16 + t.bytes;
    return n;
  }

  /** Validates a batch against the current tables; throws KeyedBatchError and changes nothing. */
  prepare(batch: Batch): PreparedBatch {
    return prepareBatch(batch, this.byName, this.limits);
  }

  /**
   * Applies a prepared batch as `version` (greater than the last; the tables
   * must not have changed since `prepare`). Returns its net change (empty when
   * the batch changed nothing, e.g. a delete of a missing row), which is also
   * what replicas apply and what the history keeps.
   */
  commit(prepared: PreparedBatch, version: number): KeyedChange {
    this.advance(version);
    const tables = new Map<string, TableChange>();
    for (const spec of prepared.declared) this.byName.set(spec.name, new Table(spec));
    for (const [name, w] of prepared.work) {
      const table = this.byName.get(name)!;
      const change = netChange(w, table);
      if (change.clear || change.rows.size > 0) tables.set(name, change);
      if (w.cleared) table.clear();
      for (const [k, row] of w.after) {
        if (row === null) table.delete(k);
        else table.set(k, row);
      }
    }
    const change: KeyedChange = { declared: prepared.declared, tables };
    if (isEmptyChange(change)) this.history.skip(version);
    else this.history.push(version, change);
    return change;
  }

  /** Validates and commits in one step. */
  apply(batch: Batch, version: number): KeyedChange {
    return this.commit(this.prepare(batch), version);
  }

  /** Notes a version with no keyed change (a summary-only publish). */
  skip(version: number): void {
    this.advance(version);
    this.history.skip(version);
  }

  /**
   * Replica side: applies a net change sequenced elsewhere as `version`.
   * Replace entries' `existed` flags are recomputed here from the tables, so
   * a decoder need not carry them.
   */
  applyChange(change: KeyedChange, version: number): KeyedChange {
    this.advance(version);
    for (const spec of change.declared) if (!this.byName.has(spec.name)) this.byName.set(spec.name, new Table(spec));
    const tables = new Map<string, TableChange>();
    for (const [name, c] of change.tables) {
      const table = this.byName.get(name);
      if (table === undefined) throw new Error(`keyed change for undeclared table ${name}`);
      const rows = new Map<Key, RowChange>();
      for (const [k, r] of c.rows) rows.set(k, r.op === 'replace' ? { op: 'replace', fields: r.fields, existed: !c.clear && table.has(k) } : r);
      if (c.clear) table.clear();
      for (const [k, r] of c.rows) {
        if (r.op === 'delete') table.delete(k);
        else if (r.op === 'replace') table.set(k, r.fields);
        else table.set(k, applyFields(table.get(k)?.fields ?? new Map(), r.fields));
      }
      tables.set(name, { clear: c.clear, rows });
    }
    const fixed: KeyedChange = { declared: change.declared, tables };
    if (isEmptyChange(fixed)) this.history.skip(version);
    else this.history.push(version, fixed);
    return fixed;
  }

  /** Replica side: the exact tables of an image; history starts over from its version. */
  reset(image: KeyedImage): void {
    this.byName.clear();
    for (const t of image.tables) {
      const table = new Table(t.spec);
      for (const [k, fields] of t.rows) table.set(k, new Map(fields));
      this.byName.set(t.spec.name, table);
    }
    this._version = image.version;
    this.history.reset(image.version);
  }

  /** The tables now (rows best first; field maps shared: do not mutate). */
  image(): KeyedImage {
    return {
      version: this._version,
      tables: [...this.byName.values()].map((t) => ({ spec: t.spec, rows: [...t.rows()].map((r) => [r.key, r.fields] as const) })),
    };
  }

  /** The smallest exact way from `from` to the current version: a merged net delta or a snapshot. */
  catchUp(from: number): KeyedCatchUp {
    if (from === this._version) return { kind: 'current' };
    if (from > this._version) return { kind: 'snapshot', reason: 'ahead' };
    const merged = this.history.mergeFrom(from);
    if (merged === undefined) return { kind: 'snapshot', reason: 'horizon' };
    const bytes = keyedChangeSize(merged.change);
    if (bytes >= this.snapshotBytes) return { kind: 'snapshot', reason: 'smaller' };
    return { kind: 'delta', base: from, version: this._version, updates: merged.updates, change: merged.change, bytes };
  }

  private advance(version: number): void {
    if (!Number.isInteger(version) || version <= this._version) throw new RangeError(`keyed tables: version ${version} does not follow ${this._version}`);
    this._version = version;
  }
}

/**
 * The net change of one table's batch work, relative to the table before it.
 * After a clear, two exact forms: `clear` plus every surviving row in full,
 * or a delete per row the clear removed plus per-row diffs; the smaller wins
 * (a publisher restating its whole book with clear + upserts costs its diffs).
 */
function netChange(w: TableWork, table: Table): TableChange {
  const perRow = new Map<Key, RowChange>();
  for (const [k, after] of w.after) {
    const c = diffRow(k, table.get(k)?.fields, after ?? undefined);
    if (c !== undefined) perRow.set(k, c);
  }
  if (!w.cleared) return { clear: false, rows: perRow };
  for (const row of table.rows()) if (!w.after.has(row.key)) perRow.set(row.key, DELETE);
  const withClear = new Map<Key, RowChange>();
  for (const [k, after] of w.after) if (after !== null) withClear.set(k, { op: 'replace', fields: after, existed: false });
  const a: TableChange = { clear: false, rows: perRow };
  const b: TableChange = { clear: true, rows: withClear };
  return tableChangeSize(b) < tableChangeSize(a) ? b : a;
}
