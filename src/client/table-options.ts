// A keyed subscription's table views as `subscribe()` takes them
// (`{ tables: { bids: { depth: 10, fields: ['qty'] } } }`) and as Subscribe
// sends them: checked before anything is sent; and how a view the connection
// holds compares with one a subscription asked for (the same, or covering it).

import type { TableViewRequest } from '../protocol/messages.js';
import { ClientError, ClientErrorCode } from './errors.js';

/** One table's view: the top `depth` rows in the table's order (0: every row), with `fields` only (all when absent). */
export interface TableOptions {
  depth?: number;
  fields?: string[];
}

/** The `tables` of a Subscribe from `subscribe()`'s options; throws BAD_OPTION for a depth that is not an integer ≥ 0. */
export function tableRequests(tables: Record<string, TableOptions> | undefined): TableViewRequest[] | undefined {
  if (tables === undefined) return undefined;
  return Object.keys(tables).map((table) => {
    const o = tables[table]!;
    const depth = o.depth ?? 0;
    if (!Number.isSafeInteger(depth) || depth < 0) {
      throw new ClientError(ClientErrorCode.BAD_OPTION, `tables.${table}.depth must be an integer ≥ 0 (0: every row; got ${JSON.stringify(o.depth)})`);
    }
    return { table, depth, fields: [...(o.fields ?? [])] };
  });
}


/** A table's view as one subscription asked for it: depth (0: every row) and fields (sorted, unique; empty: all). */
export interface TableWant {
  readonly depth: number;
  readonly fields: readonly string[];
}

/** Every row, every field: a table a subscription does not list. */
export const WHOLE_TABLE: TableWant = Object.freeze({ depth: 0, fields: Object.freeze([]) as readonly string[] });

/** A subscription's table views by name, canonical (fields sorted and unique); tables not listed are whole. */
export function tableWants(tables: Record<string, TableOptions> | undefined): ReadonlyMap<string, TableWant> {
  const out = new Map<string, TableWant>();
  for (const t of tableRequests(tables) ?? []) out.set(t.table, { depth: t.depth, fields: [...new Set(t.fields)].sort() });
  return out;
}

/** True when a view of (depth, fields) is exactly `want` (fields compared as sets). */
export function sameView(depth: number, fields: readonly string[], want: TableWant): boolean {
  if (depth !== want.depth || fields.length !== want.fields.length) return false;
  if (fields.length === 0) return true;
  const set = new Set(fields);
  return set.size === want.fields.length && want.fields.every((f) => set.has(f));
}

/**
 * True when a held view of (depth, fields) holds all of `want`: its top rows
 * are the table's own top rows (the held view is exact), so a depth it
 * reaches and fields it carries can be cut from it.
 */
export function covers(depth: number, fields: readonly string[], want: TableWant): boolean {
  const deep = depth === 0 || (want.depth !== 0 && want.depth <= depth);
  if (!deep) return false;
  if (fields.length === 0) return true;
  if (want.fields.length === 0) return false;
  const set = new Set(fields);
  return want.fields.every((f) => set.has(f));
}
