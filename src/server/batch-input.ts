// The in-process form of a keyed publish (`server.publishBatch`): summary
// fields and row ops whose fields may be plain objects, turned into the
// engine's TopicBatch (Maps the batch owns, so the caller may reuse its own).

import type { RowOp, TopicBatch } from '../engine/index.js';
import { toChanges, type BatchOf, type Changes, type FieldValue, type RowOpOf } from '../protocol/index.js';

/** Field values by name (null removes a field in `fields` and `upsert`). */
export type FieldsInput = Record<string, FieldValue | null> | Changes;

/** One row op; ops run in the order given, a guard checked at its op's point of the batch. */
export type RowOpInput = RowOpOf<FieldsInput>;

/** One publish of a keyed topic: one version for the summary fields and every row op. */
export type BatchInput = BatchOf<FieldsInput>;

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
