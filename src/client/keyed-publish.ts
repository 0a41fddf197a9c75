// Keyed publishes from the SDK (`client.publishBatch`): summary fields and row
// ops over a topic's tables as plain objects, checked and turned into the
// Publish message's keyed part before anything is sent — one version for all of it.

import { ErrorCode, TickfanError, type BatchOf, type Changes, type FieldValue, type KeyedBatchMsg, type KeyedRowOp, type RowOpOf } from '../protocol/index.js';
import { changesOf } from './publishes.js';

/** Row fields by name (null removes a field in an `upsert`). */
export type RowFields = Record<string, FieldValue | null>;

/** One row op of `client.publishBatch`; ops run in the order given, a guard checked at its op's point of the batch. */
export type BatchRowOp = RowOpOf<RowFields>;

/** One keyed publish: summary fields and row ops, one version (the same form as `server.publishBatch`). */
export type BatchPublish = BatchOf<RowFields>;

/** The summary changes and keyed part of a Publish; BAD_FIELD / BAD_REQUEST naming what is wrong, before anything is sent. */
export function keyedPublishOf(batch: BatchPublish): { changes: Changes; keyed: KeyedBatchMsg } {
  if (typeof batch !== 'object' || batch === null) throw new TickfanError(ErrorCode.BAD_REQUEST, 'publishBatch takes { fields?, tables?: { declare?, ops } }');
  const changes = changesOf(batch.fields ?? {});
  const t = batch.tables;
  if (t === undefined) return { changes, keyed: { ops: [] } };
  if (!Array.isArray(t.ops)) throw new TickfanError(ErrorCode.BAD_REQUEST, 'publishBatch: tables.ops must be an array of row ops');
  const ops = t.ops.map((o, i): KeyedRowOp => {
    if (o.op === 'upsert' || o.op === 'replace') {
      try {
        return { ...o, fields: changesOf(o.fields) };
      } catch (err) {
        throw new TickfanError((err as TickfanError).errorCode ?? ErrorCode.BAD_FIELD, `table ${o.table} row ${String(o.key)} (op ${i}): ${(err as Error).message}`);
      }
    }
    if (o.op === 'delete' || o.op === 'clear' || o.op === 'deleteRange') return { ...o };
    throw new TickfanError(ErrorCode.BAD_REQUEST, `publishBatch: op ${i} is not upsert, replace, delete, clear or deleteRange`);
  });
  return { changes, keyed: { declare: [...(t.declare ?? [])], ops } };
}
