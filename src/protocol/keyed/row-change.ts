// Net row changes: what a batch did to a table, relative to the state before
// it, and the merging of consecutive changes into one exact net change (for
// catch-ups, and for pending view deltas between rate-tier flushes).
//
// A TableChange is `clear` (every row at base removed first) then at most one
// change per key:
//   upsert  — the row exists before and after; these fields set (null removes one)
//   replace — the row is exactly these fields afterwards (`existed`: it was there before)
//   delete  — the row existed and is gone
// Applying it to the state at base gives the state after, exactly. Merging
// (a then b, per key), with "before" meaning the base of a:
//   upsert F · upsert G   = upsert F←G          replace F · upsert G = replace F←G
//   upsert F · replace G  = replace G (existed)  replace F · replace G = replace G (F's existed)
//   upsert F · delete     = delete               replace F · delete = delete if F existed, else nothing
//   delete   · replace G  = replace G (existed: a delete then re-add is a replace)
// and a b with `clear` drops a's rows: nothing of the base is left to change.
// Field maps in changes are shared with tables and never mutated; merges copy.

import { sameValue, type Changes, type State } from '../values.js';
import { CLEAR_SIZE, deleteSize, rowSize, upsertSize } from './size-estimate.js';
import type { Key, TableSpec } from './table-spec.js';

export type RowChange =
  | { readonly op: 'upsert'; readonly fields: Changes }
  | { readonly op: 'replace'; readonly fields: State; readonly existed: boolean }
  | { readonly op: 'delete' };

export interface TableChange {
  readonly clear: boolean;
  /** Per key, in no particular order (encoders sort as the wire needs). */
  readonly rows: Map<Key, RowChange>;
}

/** A batch's (or a merged window's) changes to a topic's tables. */
export interface KeyedChange {
  /** Tables declared in this window, in order. */
  readonly declared: readonly TableSpec[];
  readonly tables: Map<string, TableChange>;
}

export const DELETE: RowChange = Object.freeze({ op: 'delete' });

export function emptyKeyedChange(): KeyedChange {
  return { declared: [], tables: new Map() };
}

/** True when nothing changed. */
export function isEmptyChange(c: KeyedChange): boolean {
  if (c.declared.length > 0) return false;
  for (const t of c.tables.values()) if (t.clear || t.rows.size > 0) return false;
  return true;
}

/**
 * The smallest exact change turning row `before` into row `after` (either may
 * be absent): an upsert of the differing fields, or a replace when that is
 * estimated no bigger. Undefined when nothing changed.
 */
export function diffRow(key: Key, before: State | undefined, after: State | undefined): RowChange | undefined {
  if (before === undefined) return after === undefined ? undefined : { op: 'replace', fields: after, existed: false };
  if (after === undefined) return DELETE;
  if (before === after) return undefined;
  let d: Changes | undefined;
  for (const f of after.keys()) {
    const v = after.get(f)!;
    if (!sameValue(before.get(f), v)) (d ??= new Map()).set(f, v);
  }
  for (const f of before.keys()) if (!after.has(f)) (d ??= new Map()).set(f, null);
  if (d === undefined) return undefined;
  return upsertSize(key, d) <= rowSize(key, after) ? { op: 'upsert', fields: d } : { op: 'replace', fields: after, existed: true };
}

/** a then b for one key; undefined when they cancel out (added and deleted after base). */
export function mergeRowChange(a: RowChange, b: RowChange): RowChange | undefined {
  switch (b.op) {
    case 'delete':
      return a.op === 'replace' && !a.existed ? undefined : DELETE;
    case 'replace':
      return { op: 'replace', fields: b.fields, existed: a.op === 'replace' ? a.existed : true };
    case 'upsert':
      if (a.op === 'upsert') return { op: 'upsert', fields: overlay(a.fields, b.fields) };
      if (a.op === 'replace') return { op: 'replace', fields: applyFields(a.fields, b.fields), existed: a.existed };
      // An upsert never follows a delete in a net change (the row is gone);
      // taken as a re-creation with these fields, the merge stays exact.
      return { op: 'replace', fields: applyFields(new Map(), b.fields), existed: true };
  }
}

/** Merges `next` (later) into `acc` in place; returns acc. `acc`'s maps must be its own. */
export function mergeTableChange(acc: { clear: boolean; rows: Map<Key, RowChange> }, next: TableChange): void {
  if (next.clear) {
    acc.clear = true;
    acc.rows.clear();
  }
  for (const [k, c] of next.rows) {
    const prev = acc.rows.get(k);
    if (prev === undefined) {
      acc.rows.set(k, c);
      continue;
    }
    const m = mergeRowChange(prev, c);
    if (m === undefined) acc.rows.delete(k);
    else acc.rows.set(k, m);
  }
}

/** Merges consecutive keyed changes, oldest first, into one new net change. */
export function mergeKeyedChanges(changes: Iterable<KeyedChange>): KeyedChange {
  const declared: TableSpec[] = [];
  const tables = new Map<string, { clear: boolean; rows: Map<Key, RowChange> }>();
  for (const c of changes) {
    for (const s of c.declared) declared.push(s);
    for (const [name, t] of c.tables) {
      let acc = tables.get(name);
      if (acc === undefined) tables.set(name, (acc = { clear: false, rows: new Map() }));
      mergeTableChange(acc, t);
    }
  }
  return { declared, tables };
}

/** Applies a table change to a plain map of rows (a client's view, a test model); returns it. */
export function applyToRows(rows: Map<Key, State>, change: TableChange): Map<Key, State> {
  if (change.clear) rows.clear();
  for (const [k, c] of change.rows) {
    if (c.op === 'delete') rows.delete(k);
    else if (c.op === 'replace') rows.set(k, new Map(c.fields));
    else rows.set(k, applyFields(rows.get(k) ?? new Map(), c.fields));
  }
  return rows;
}

/** A new field map: `base` with `changes` applied (null removes). */
export function applyFields(base: State, changes: Changes): State {
  const out: State = new Map(base);
  for (const [f, v] of changes) {
    if (v === null) out.delete(f);
    else out.set(f, v);
  }
  return out;
}

function overlay(a: Changes, b: Changes): Changes {
  const out: Changes = new Map(a);
  for (const [f, v] of b) out.set(f, v);
  return out;
}

/** Estimated encoded size of a table change. */
export function tableChangeSize(c: TableChange): number {
  let n = c.clear ? CLEAR_SIZE : 0;
  for (const [k, r] of c.rows) n += r.op === 'delete' ? deleteSize(k) : r.op === 'replace' ? rowSize(k, r.fields) : upsertSize(k, r.fields);
  return n;
}

/** Estimated encoded size of a keyed change (table headers included). */
export function keyedChangeSize(c: KeyedChange): number {
  let n = c.declared.length * 16;
  for (const t of c.tables.values()) n += 2 + tableChangeSize(t);
  return n;
}

/** Number of row entries (a clear counts as one). */
export function rowEntries(c: TableChange): number {
  return c.rows.size + (c.clear ? 1 : 0);
}
