// The in-process form of a keyed publish (`server.publishBatch`): summary
// fields and row ops whose fields may be plain objects, turned into the
// engine's TopicBatch (Maps the batch owns, so the caller may reuse its own).

import type { Key, RowOp, TableSpec, TopicBatch } from '../engine/index.js';
import { toChanges, type Changes, type FieldValue } from '../protocol/index.js';

/** Field values by name (null removes a field in `fields` and `upsert`). */
export type FieldsInput = Record<string, FieldValue | null> | Changes;

/** One row op; ops run in the order given, a guard checked at its op's point of the batch. */
export type RowOpInput =
  | { readonly op: 'upsert'; readonly table: string; readonly key: Key; readonly fields: FieldsInput; readonly guard?: 'ifNew' | 'ifExists' }
  | { readonly op: 'replace'; readonly table: string; readonly key: Key; readonly fields: FieldsInput; readonly guard?: 'ifNew' | 'ifExists' }
  | { readonly op: 'delete'; readonly table: string; readonly key: Key; readonly guard?: 'ifNew' | 'ifExists' }
  | { readonly op: 'clear'; readonly table: string }
  | { readonly op: 'deleteRange'; readonly table: string; readonly from?: Key; readonly to?: Key; readonly fromExclusive?: boolean; readonly toExclusive?: boolean };

/** One publish of a keyed topic: one version for the summary fields and every row op. */
export interface BatchInput {
  readonly fields?: FieldsInput;
  readonly tables?: {
    /** Tables to declare (a no-op for a table already declared with the same spec; refused when it differs). */
    readonly declare?: readonly TableSpec[];
    readonly ops: readonly RowOpInput[];
  };
}

export function toTopicBatch(input: BatchInput): TopicBatch {
  // toChanges copies: the batch owns its maps.
  const fields: Changes = input.fields === undefined ? new Map() : toChanges(input.fields);
  const t = input.tables;
  if (t === undefined) return { fields };
  const ops = (t.ops ?? []).map((o): RowOp => {
    if (o.op === 'upsert') return { ...o, fields: toChanges(o.fields) };
    if (o.op === 'replace') return { ...o, fields: toChanges(o.fields) };
    return o;
  });
  return { fields, tables: { declare: t.declare ?? [], ops } };
}
