// A keyed subscription's table views as `subscribe()` takes them
// (`{ tables: { bids: { depth: 10, fields: ['qty'] } } }`) and as Subscribe
// sends them: checked before anything is sent.

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

