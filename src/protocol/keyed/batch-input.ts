// The plain form of a keyed publish that callers write — summary fields and
// row ops over a topic's tables, with field maps as objects (or whatever `F`
// is) — shared by the SDK (`client.publishBatch`, fields as objects) and the
// server (`server.publishBatch`, objects or Maps). One version for all of it.

import type { Key, TableSpec } from './table-spec.js';

/** A row op's guard: the row must not exist yet, or must exist. */
export type RowGuard = 'ifNew' | 'ifExists';

/** One row op with fields of type `F`; ops run in the order given, a guard checked at its op's point of the batch. */
export type RowOpOf<F> =
  | { readonly op: 'upsert'; readonly table: string; readonly key: Key; readonly fields: F; readonly guard?: RowGuard }
  | { readonly op: 'replace'; readonly table: string; readonly key: Key; readonly fields: F; readonly guard?: RowGuard }
  | { readonly op: 'delete'; readonly table: string; readonly key: Key; readonly guard?: RowGuard }
  | { readonly op: 'clear'; readonly table: string }
  | { readonly op: 'deleteRange'; readonly table: string; readonly from?: Key; readonly to?: Key; readonly fromExclusive?: boolean; readonly toExclusive?: boolean };

/** One keyed publish with fields of type `F`: summary fields and row ops, one version. */
export interface BatchOf<F> {
  readonly fields?: F;
  readonly tables?: {
    /** Tables to declare: needed in the batch that first touches a table; the same spec again is a no-op, another is refused. */
    readonly declare?: readonly TableSpec[];
    readonly ops: readonly RowOpOf<F>[];
  };
}
