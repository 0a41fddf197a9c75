// Row operations of one publish (a batch), and their validation: the whole
// batch is checked against a simulation of the tables before anything
// changes, in order (a guard sees the batch's earlier ops), so a bad value or
// a failing guard refuses all of it with a typed error naming table and key.
// The result, a PreparedBatch, is each touched row's state after the batch;
// KeyedTables.commit applies it, which cannot fail.

import { ErrorCode, TickfanError, isFieldValue, valueSize, type Changes, type FieldValue, type State } from '../../protocol/index.js';
import { compareKeys, keyProblem, MAX_TABLES_PER_TOPIC, sameSpec, validateSpec, type Key, type TableSpec } from '../../protocol/index.js';
import type { KeyRange, Table } from './table.js';

/** `ifNew`: refused when the row exists (at that point of the batch); `ifExists`: refused when it does not. */
export type Guard = 'ifNew' | 'ifExists';

export type RowOp =
  /** Creates the row or merges `fields` into it (null removes a field). */
  | { readonly op: 'upsert'; readonly table: string; readonly key: Key; readonly fields: Changes; readonly guard?: Guard }
  /** The row becomes exactly `fields` (no nulls). */
  | { readonly op: 'replace'; readonly table: string; readonly key: Key; readonly fields: Changes; readonly guard?: Guard }
  /** Removes the row; deleting a missing row is a no-op unless guarded. */
  | { readonly op: 'delete'; readonly table: string; readonly key: Key; readonly guard?: Guard }
  | { readonly op: 'clear'; readonly table: string }
  /** Removes the rows whose key (by key value, not rank) is in the range. */
  | ({ readonly op: 'deleteRange'; readonly table: string } & KeyRange);

export interface Batch {
  /** Tables to declare (a no-op for a table declared with the same spec). */
  readonly declare?: readonly TableSpec[];
  readonly ops: readonly RowOp[];
}

export interface TableLimits {
  maxFieldsPerRow: number;
  maxFieldNameLength: number;
  maxValueBytes: number;
  /**
   * Rows per table unless its spec says otherwise. 10k: the sorted array's
   * worst case (a change at the far end of the order) is one splice of the
   * whole array, ~3 µs at 2k rows and ~130 µs at 100k; bigger tables want a
   * tree or a blocked list first.
   */
  maxRows: number;
  maxOpsPerBatch: number;
}

export const DEFAULT_TABLE_LIMITS: TableLimits = {
  maxFieldsPerRow: 64,
  maxFieldNameLength: 128,
  maxValueBytes: 64 * 1024,
  maxRows: 10_000,
  maxOpsPerBatch: 100_000,
};

/** Why a batch was refused (stable, for callers and tests; the wire-in maps them to protocol codes). */
export type BatchRefusal =
  | 'badOp'
  | 'badKey'
  | 'badField'
  | 'valueTooLarge'
  | 'tooManyFields'
  | 'tooManyRows'
  | 'tooManyTables'
  | 'undeclared'
  | 'specConflict'
  | 'ifNew'
  | 'ifExists';

/** A refused batch: names the table, the row key (when one row is at fault) and the op's index. */
export class KeyedBatchError extends TickfanError {
  readonly reason: BatchRefusal;
  readonly table: string | undefined;
  readonly key: Key | undefined;
  readonly opIndex: number | undefined;
  constructor(reason: BatchRefusal, errorCode: ErrorCode, message: string, at: { table?: string; key?: Key; opIndex?: number } = {}) {
    const where = at.table === undefined ? '' : at.key === undefined ? `table ${at.table}: ` : `table ${at.table} row ${JSON.stringify(at.key)}: `;
    super(errorCode, `${where}${message}`);
    this.name = 'KeyedBatchError';
    this.reason = reason;
    this.table = at.table;
    this.key = at.key;
    this.opIndex = at.opIndex;
  }
}

/** One table's simulated state during validation: the table, minus `cleared` rows, under `after`. */
export interface TableWork {
  /** The held table; undefined when this batch declares it. */
  readonly table: Table | undefined;
  readonly spec: TableSpec;
  cleared: boolean;
  /** Each touched key's row after the batch (null: absent). Maps here are the batch's own. */
  readonly after: Map<Key, State | null>;
}

export interface PreparedBatch {
  readonly declared: readonly TableSpec[];
  readonly work: Map<string, TableWork>;
}

/** Validates `batch` against `tables` and computes each touched row's end state; throws KeyedBatchError, changes nothing. */
export function prepareBatch(batch: Batch, tables: ReadonlyMap<string, Table>, limits: TableLimits): PreparedBatch {
  if (typeof batch !== 'object' || batch === null || !Array.isArray(batch.ops)) throw new KeyedBatchError('badOp', ErrorCode.BAD_REQUEST, 'a batch needs an ops list');
  if (batch.ops.length > limits.maxOpsPerBatch) throw new KeyedBatchError('badOp', ErrorCode.BAD_REQUEST, `a batch holds at most ${limits.maxOpsPerBatch} ops`);
  const declared: TableSpec[] = [];
  const specs = new Map<string, TableSpec>();
  for (const spec of batch.declare ?? []) {
    try {
      validateSpec(spec);
    } catch (e) {
      throw new KeyedBatchError('badOp', ErrorCode.BAD_REQUEST, (e as Error).message);
    }
    const held = tables.get(spec.name)?.spec ?? specs.get(spec.name);
    if (held !== undefined) {
      if (!sameSpec(held, spec)) throw new KeyedBatchError('specConflict', ErrorCode.BAD_REQUEST, 'declared already with another key type, order or maxRows', { table: spec.name });
      continue;
    }
    if (tables.size + declared.length >= MAX_TABLES_PER_TOPIC) {
      throw new KeyedBatchError('tooManyTables', ErrorCode.TOO_MANY_FIELDS, `a topic holds at most ${MAX_TABLES_PER_TOPIC} tables`, { table: spec.name });
    }
    specs.set(spec.name, spec);
    declared.push(spec);
  }
  const work = new Map<string, TableWork>();
  const workOf = (name: unknown, opIndex: number): TableWork => {
    const w = work.get(name as string);
    if (w !== undefined) return w;
    const table = tables.get(name as string);
    const spec = table?.spec ?? specs.get(name as string);
    if (spec === undefined) throw new KeyedBatchError('undeclared', ErrorCode.BAD_REQUEST, 'no such table: declare it first (Batch.declare)', { table: String(name), opIndex });
    const fresh: TableWork = { table, spec, cleared: false, after: new Map() };
    work.set(spec.name, fresh);
    return fresh;
  };
  const ops = batch.ops;
  for (let i = 0; i < ops.length; i++) applyOp(ops[i]!, i, workOf(ops[i]?.table, i), limits);
  for (const w of work.values()) checkRowCount(w, limits);
  return { declared, work };
}

/** The row of `key` at this point of the batch. */
function current(w: TableWork, key: Key): State | null {
  const a = w.after.get(key);
  if (a !== undefined) return a;
  return w.cleared ? null : (w.table?.get(key)?.fields ?? null);
}

function applyOp(op: RowOp, opIndex: number, w: TableWork, limits: TableLimits): void {
  const table = w.spec.name;
  switch (op.op) {
    case 'clear':
      w.cleared = true;
      w.after.clear();
      return;
    case 'deleteRange': {
      for (const bound of [op.from, op.to]) {
        const why = bound === undefined ? undefined : keyProblem(w.spec.key, bound);
        if (why) throw new KeyedBatchError('badKey', ErrorCode.BAD_KEY, `deleteRange bound ${JSON.stringify(bound)}: ${why}`, { table, opIndex });
      }
      if (w.table && !w.cleared) for (const k of w.table.keysIn(op)) if (!w.after.has(k)) w.after.set(k, null);
      for (const k of w.after.keys()) if (inRange(k, op)) w.after.set(k, null);
      return;
    }
    case 'upsert':
    case 'replace':
    case 'delete':
      break;
    default:
      throw new KeyedBatchError('badOp', ErrorCode.BAD_REQUEST, `unknown op ${JSON.stringify((op as { op?: unknown })?.op)}`, { table, opIndex });
  }
  const key = op.key;
  const why = keyProblem(w.spec.key, key);
  if (why) throw new KeyedBatchError('badKey', ErrorCode.BAD_KEY, `key ${JSON.stringify(typeof key === 'bigint' ? String(key) : key)}: ${why}`, { table, opIndex });
  const at = { table, key, opIndex };
  const row = current(w, key);
  if (op.guard === 'ifNew' && row !== null) throw new KeyedBatchError('ifNew', ErrorCode.ROW_GUARD, `${op.op} ifNew: the row exists`, at);
  if (op.guard === 'ifExists' && row === null) throw new KeyedBatchError('ifExists', ErrorCode.ROW_GUARD, `${op.op} ifExists: no such row`, at);
  if (op.guard !== undefined && op.guard !== 'ifNew' && op.guard !== 'ifExists') throw new KeyedBatchError('badOp', ErrorCode.BAD_REQUEST, `unknown guard ${JSON.stringify(op.guard)}`, at);
  if (op.op === 'delete') {
    if (row !== null || w.after.has(key)) w.after.set(key, null);
    return;
  }
  if (!(op.fields instanceof Map)) throw new KeyedBatchError('badField', ErrorCode.BAD_REQUEST, 'fields must be a Map of field → value', at);
  checkFields(op.fields, op.op === 'replace', limits, at);
  // The batch's own map may be changed in place; a held row's is copied.
  let next: State;
  if (op.op === 'replace') next = new Map();
  else if (row !== null && w.after.get(key) === row) next = row;
  else next = new Map(row ?? undefined);
  for (const f of op.fields.keys()) {
    const v = op.fields.get(f)!;
    if (v === null) next.delete(f);
    else next.set(f, v);
  }
  if (next.size > limits.maxFieldsPerRow) throw new KeyedBatchError('tooManyFields', ErrorCode.TOO_MANY_FIELDS, `a row holds at most ${limits.maxFieldsPerRow} fields`, at);
  w.after.set(key, next);
}

function checkFields(fields: Changes, replace: boolean, limits: TableLimits, at: { table: string; key: Key; opIndex: number }): void {
  // keys() + get(): no [k, v] array per field on the publish path.
  for (const f of fields.keys()) {
    const v = fields.get(f);
    if (typeof f !== 'string' || f.length === 0 || f.length > limits.maxFieldNameLength) {
      throw new KeyedBatchError('badField', ErrorCode.BAD_FIELD, `field names must be 1–${limits.maxFieldNameLength} characters`, at);
    }
    if (!isFieldValue(v) || (typeof v === 'bigint' && (v < INT64_MIN || v > INT64_MAX))) {
      throw new KeyedBatchError('badField', ErrorCode.BAD_FIELD, `field ${f}: values are number, bigint (64-bit), string, boolean, bytes, or null (upsert: remove)`, at);
    }
    if (v === null && replace) throw new KeyedBatchError('badField', ErrorCode.BAD_FIELD, `field ${f}: a replace gives the whole row; null has no meaning there`, at);
    if (valueSize(v as FieldValue | null) > limits.maxValueBytes) {
      throw new KeyedBatchError('valueTooLarge', ErrorCode.VALUE_TOO_LARGE, `field ${f}: value is larger than ${limits.maxValueBytes} bytes`, at);
    }
  }
}

function checkRowCount(w: TableWork, limits: TableLimits): void {
  const max = w.spec.maxRows ?? limits.maxRows;
  const held = w.table?.size ?? 0;
  // Only worth counting when the batch could reach the limit.
  if (held + w.after.size <= max) return;
  let n = w.cleared ? 0 : held;
  for (const [k, row] of w.after) {
    const was = !w.cleared && (w.table?.has(k) ?? false);
    n += (row !== null ? 1 : 0) - (was ? 1 : 0);
  }
  if (n > max) throw new KeyedBatchError('tooManyRows', ErrorCode.TOO_MANY_ROWS, `the batch would leave ${n} rows (at most ${max})`, { table: w.spec.name });
}

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

function inRange(k: Key, r: KeyRange): boolean {
  const lo = r.from === undefined ? 1 : compareKeys(k, r.from);
  const hi = r.to === undefined ? -1 : compareKeys(k, r.to);
  return (r.fromExclusive ? lo > 0 : lo >= 0) && (r.toExclusive ? hi < 0 : hi <= 0);
}
