// The client's copy of one keyed topic (a book, a blotter): the summary (the
// flat fields, as for any topic) plus each table of the view as a plain map.
// Pure: no I/O, no callbacks. What it guarantees:
//   - a snapshot may come in parts at one version: parts are held until
//     `last` and none is applied early; a part out of sequence is a gap;
//   - a delta is applied only when its base is the held version in the same
//     epoch (no blind apply); an older or duplicate version is ignored;
//   - when a message carries a view checksum, the view it produces is checked
//     against it *before* anyone sees it: a mismatch applies nothing (a
//     delta is undone), and the replica then takes no delta until a snapshot
//     replaces the view (`resync`: its catch-up asks for a snapshot);
//   - the held (epoch, version), which resume points and catch-ups name,
//     moves only at `commit()`, which the caller makes once the app's
//     callbacks have returned (the centrifuge-js #406/#411 lesson: a position
//     stored before delivery skips what an interrupted app never saw).

import { isEmptyChange, viewChecksum, type Changes, type ChecksumTable, type FieldValue, type Key, type State } from '../protocol/index.js';
import type { KeyedDeltaMsg, KeyedSnapshotMsg, KeyedTableView } from '../protocol/messages.js';
import { KeyedTable, type RowUpdate, type TableUndo } from './keyed-table.js';
import { TopicReplica } from './replica.js';

/** What applying a keyed message gave. `applied`: deliver `rows` and `changes`, then `commit()`. */
export type KeyedResult =
  | { readonly kind: 'applied'; readonly rows: RowUpdate[]; readonly changes: Record<string, FieldValue | null> }
  /** A snapshot part is held until its last part. */
  | { readonly kind: 'pending' }
  /** The view is at this version already: nothing to deliver. */
  | { readonly kind: 'current' }
  /** Everything it carries is held already. */
  | { readonly kind: 'duplicate' }
  /** It does not follow what is held: catch up. */
  | { readonly kind: 'gap' }
  /** Its checksum does not match the view it would give: nothing applied; catch up from a snapshot. */
  | { readonly kind: 'mismatch'; readonly expected: number; readonly actual: number };

const PENDING: KeyedResult = { kind: 'pending' };
const CURRENT: KeyedResult = { kind: 'current' };
const DUPLICATE: KeyedResult = { kind: 'duplicate' };
const GAP: KeyedResult = { kind: 'gap' };

interface PendingSnapshot {
  readonly epoch: number;
  readonly version: number;
  next: number;
  readonly summary: State;
  readonly tables: Map<string, KeyedTableView>;
  readonly rows: Map<string, Map<Key, State>>;
}

export class KeyedReplica extends TopicReplica {
  /** The view's tables by name. */
  tables = new Map<string, KeyedTable>();
  /**
   * The view failed a checksum: it is not trusted, deltas are not applied,
   * and the catch-up asks for a snapshot (from nothing) rather than a delta.
   */
  resync = false;
  /** Applied, not yet committed (the app's callbacks are running). */
  private next: { epoch: number; version: number } | null = null;
  private pending: PendingSnapshot | null = null;
  /**
   * The tables a snapshot replaced, until it is committed: what the
   * subscriptions' views were cut from before it (keyed-view.ts).
   */
  replaced: ReadonlyMap<string, KeyedTable> | null = null;
  /** The summary a snapshot replaced, likewise. */
  replacedSummary: State | null = null;

  /** The (epoch, version) the view shows: the held one, or the one being delivered. */
  get viewEpoch(): number {
    return this.next?.epoch ?? this.epoch;
  }

  get viewVersion(): number {
    return this.next?.version ?? this.version;
  }

  /** True while a multi-part snapshot is being received. */
  get receiving(): boolean {
    return this.pending !== null;
  }

  /** Applies one snapshot part; the whole snapshot only with its last part. */
  keyedSnapshot(m: KeyedSnapshotMsg): KeyedResult {
    this.commit();
    let p = this.pending;
    if (m.part === 0) {
      p = this.pending = { epoch: m.epoch, version: m.version, next: 0, summary: new Map(m.summary), tables: new Map(), rows: new Map() };
    } else if (p === null || p.epoch !== m.epoch || p.version !== m.version || p.next !== m.part) {
      // A part without its predecessors: what is held so far cannot be completed.
      this.pending = null;
      return GAP;
    }
    p.next++;
    for (const [name, view] of m.tables) p.tables.set(name, view);
    for (const [name, rows] of m.rows) {
      let acc = p.rows.get(name);
      if (acc === undefined) p.rows.set(name, (acc = new Map()));
      for (const [k, f] of rows) acc.set(k, f);
    }
    if (!m.last) return PENDING;
    this.pending = null;
    if (this.held && m.epoch === this.epoch && m.version < this.version) return DUPLICATE;

    const tables = new Map<string, KeyedTable>();
    for (const [name, view] of p.tables) {
      const t = new KeyedTable(view);
      t.load(p.rows.get(name) ?? []);
      tables.set(name, t);
    }
    if (m.checksum !== null) {
      const actual = checksumOf(tables, p.summary);
      if (actual !== m.checksum >>> 0) return { kind: 'mismatch', expected: m.checksum >>> 0, actual };
    }
    this.replaced = this.tables;
    this.replacedSummary = new Map(this.state);
    this.tables = tables;
    this.state.clear();
    for (const [k, v] of p.summary) this.state.set(k, v);
    this.resync = false;
    this.next = { epoch: m.epoch, version: m.version };
    const rows: RowUpdate[] = [];
    for (const t of tables.values()) for (const r of t.list()) rows.push({ table: t.name, key: r.key, op: 'replace', fields: r.fields });
    const changes: Record<string, FieldValue | null> = Object.create(null);
    for (const [k, v] of this.state) changes[k] = v;
    return { kind: 'applied', rows, changes };
  }

  /** Applies a delta if and only if its base is the held version of the same epoch (and the view is trusted). */
  keyedDelta(m: KeyedDeltaMsg): KeyedResult {
    this.commit();
    if (!this.held || m.epoch !== this.epoch || this.resync) return GAP;
    if (m.base !== this.version) return m.version <= this.version ? DUPLICATE : GAP;
    // "You hold the current version" (a resume or catch-up with nothing new; it may bind tables).
    const current = m.version === m.base;
    if (current && (m.summary.size > 0 || !isEmptyChange({ declared: [], tables: m.change.tables }))) return GAP;
    // Every table it changes must be in the view (or bound by it), or nothing is applied.
    for (const name of m.change.tables.keys()) {
      if (!this.tables.has(name) && !m.tables.has(name) && !m.change.declared.some((s) => s.name === name)) return GAP;
    }
    const created: string[] = [];
    for (const [name, view] of m.tables) {
      if (!this.tables.has(name)) {
        this.tables.set(name, new KeyedTable(view));
        created.push(name);
      }
    }
    for (const spec of m.change.declared) {
      if (!this.tables.has(spec.name)) {
        this.tables.set(spec.name, new KeyedTable({ spec, depth: 0, fields: [] }));
        created.push(spec.name);
      }
    }
    const summaryBefore = new Map<string, FieldValue | undefined>();
    const changes: Record<string, FieldValue | null> = Object.create(null);
    for (const [k, v] of m.summary) {
      if (!summaryBefore.has(k)) summaryBefore.set(k, this.state.get(k));
      changes[k] = v;
      if (v === null) this.state.delete(k);
      else this.state.set(k, v);
    }
    const rows: RowUpdate[] = [];
    const undo: TableUndo[] = [];
    for (const [name, change] of m.change.tables) undo.push(this.tables.get(name)!.apply(change, rows));

    if (m.checksum !== null) {
      const actual = checksumOf(this.tables, this.state);
      if (actual !== m.checksum >>> 0) {
        // Back to the view at base: what the app holds stays what it was shown.
        for (let i = undo.length - 1; i >= 0; i--) undo[i]!.table.undo(undo[i]!);
        for (const name of created) this.tables.delete(name);
        restore(this.state, summaryBefore);
        this.resync = true;
        return { kind: 'mismatch', expected: m.checksum >>> 0, actual };
      }
    }
    if (current) return CURRENT;
    this.next = { epoch: m.epoch, version: m.version };
    return { kind: 'applied', rows, changes };
  }

  /** The held (epoch, version) becomes the view's: call once the update was delivered. */
  commit(): void {
    this.replaced = null;
    this.replacedSummary = null;
    const n = this.next;
    if (n === null) return;
    this.next = null;
    this.epoch = n.epoch;
    this.version = n.version;
    this.healingSince = 0;
  }

  /** The checksum of the view as held now (summary and every table). */
  checksum(): number {
    return checksumOf(this.tables, this.state);
  }

  /** A flat snapshot (the topic is not keyed any more): no tables. */
  override snapshot(epoch: number, version: number, fields: State): void {
    this.pending = null;
    this.next = null;
    this.tables = new Map();
    this.resync = false;
    super.snapshot(epoch, version, fields);
  }

  /** A flat delta changes the summary only; not while the view is untrusted. */
  override delta(epoch: number, base: number, version: number, changes: Changes): 'applied' | 'duplicate' | 'gap' {
    this.commit();
    return this.resync ? 'gap' : super.delta(epoch, base, version, changes);
  }
}

/** viewChecksum of a summary and tables, rows in the tables' sort order. */
export function checksumOf(tables: ReadonlyMap<string, KeyedTable>, summary: State): number {
  const list: ChecksumTable[] = [];
  for (const t of tables.values()) list.push({ name: t.name, keyType: t.view.spec.key, rows: pairs(t) });
  return viewChecksum(list, summary);
}

function* pairs(t: KeyedTable): Generator<readonly [Key, State]> {
  for (const r of t.ordered()) yield [r.key, r.fields];
}

function restore(state: State, before: Map<string, FieldValue | undefined>): void {
  for (const [k, v] of before) {
    if (v === undefined) state.delete(k);
    else state.set(k, v);
  }
}
