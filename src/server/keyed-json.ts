// The JSON form of a keyed publish (POST /publish/<topic>): which bodies are
// keyed, and how a body's per-table object becomes the engine's ordered row
// ops. docs/protocol.md ("Keyed publish over HTTP") is the user's reference.
//
// A body is keyed when its top-level keys are only "fields" and/or "tables"
// and each of them holds a plain JSON object (not a value form such as
// {"$bigint": "…"}). No flat body that was accepted before reads differently:
// a flat field's value is never a plain object.
//
// Keys are typed with the tables' specs, so a body is read where the topic's
// tables are known: a cluster edge that does not hold a table the body names
// (it does not follow the topic) forwards the body itself to the origin
// (namesUnknownTable, Ingest.publishJson), which reads it with its own.

import { KeyedBatchError, type Batch, type Key, type KeyType, type RowOp, type TableSpec, type TopicStore } from '../engine/index.js';
import { ErrorCode, TickfanError, changesFromJson, type Changes } from '../protocol/index.js';

export interface JsonBatch {
  readonly fields: Changes;
  readonly tables?: Batch;
}

const TABLE_KEYS = new Set(['declare', 'clear', 'deleteRange', 'delete', 'replace', 'upsert', 'ifNew', 'ifExists', 'ops']);
const VALUE_FORMS = new Set(['$bytes', '$bigint', '$float']);
const INT_KEY = /^-?(0|[1-9][0-9]*)$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isValueForm(v: Record<string, unknown>): boolean {
  const keys = Object.keys(v);
  return keys.length === 1 && VALUE_FORMS.has(keys[0]!);
}

/** A keyed body of POST /publish: summary fields and/or tables of ops, as JSON. */
export interface KeyedBody {
  fields?: Record<string, unknown>;
  tables?: Record<string, unknown>;
}

/** True for `{"fields":{…}}`, `{"tables":{…}}` or both; false for a flat object of fields. */
export function isKeyedBody(body: unknown): body is KeyedBody {
  if (!isObject(body)) return false;
  const keys = Object.keys(body);
  if (keys.length === 0 || keys.some((k) => k !== 'fields' && k !== 'tables')) return false;
  return keys.every((k) => isObject(body[k]) && !isValueForm(body[k] as Record<string, unknown>));
}

const bad = (table: string, message: string, key?: Key) => new KeyedBatchError('badOp', ErrorCode.BAD_REQUEST, message, { table, key });

/** A key of a `type` table from JSON: int keys exactly (a safe integer, or its plain decimal string), never a float. */
export function keyFromJson(type: KeyType, raw: unknown, table: string): Key {
  if (type === 'string') {
    if (typeof raw === 'string') return raw;
    throw new KeyedBatchError('badKey', ErrorCode.BAD_KEY, `key ${JSON.stringify(raw)}: this table's keys are strings`, { table });
  }
  if (typeof raw === 'number' && Number.isSafeInteger(raw) && !Object.is(raw, -0)) return raw;
  if (typeof raw === 'string' && INT_KEY.test(raw) && raw !== '-0') {
    const n = Number(raw);
    if (Number.isSafeInteger(n)) return n;
  }
  throw new KeyedBatchError('badKey', ErrorCode.BAD_KEY, `key ${JSON.stringify(raw)}: this table's keys are integers (|k| < 2^53, plain decimal in object keys)`, { table });
}

function rowFields(raw: unknown, table: string, key: Key): Changes {
  if (!isObject(raw)) throw new KeyedBatchError('badField', ErrorCode.BAD_FIELD, 'a row is a JSON object of fields', { table, key });
  try {
    return changesFromJson(raw);
  } catch (e) {
    const err = e as TickfanError;
    throw new KeyedBatchError('badField', err.errorCode ?? ErrorCode.BAD_FIELD, err.message, { table, key });
  }
}

function list(raw: unknown, table: string, what: string): unknown[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw bad(table, `"${what}" must be a list`);
  return raw;
}

/** The key type of each table `store` holds for `topic` (undefined for any other). */
export const keyTypesIn =
  (store: TopicStore, topic: string) =>
  (table: string): KeyType | undefined =>
    store.get(topic)?.tables?.table(table)?.spec.key;

/** True when the body names a table that it does not declare and `keyTypeOf` does not know: only a node holding the topic's tables can read it. */
export function namesUnknownTable(body: KeyedBody, keyTypeOf: (table: string) => KeyType | undefined): boolean {
  for (const [table, raw] of Object.entries(body.tables ?? {})) if (!(isObject(raw) && isObject(raw.declare)) && keyTypeOf(table) === undefined) return true;
  return false;
}

/**
 * A keyed body as the store's batch. `keyTypeOf` gives the key type of a table
 * the topic already holds (a table declared in this body needs none).
 */
export function batchFromJson(body: KeyedBody, keyTypeOf: (table: string) => KeyType | undefined): JsonBatch {
  const fields = changesFromJson(body.fields ?? {});
  if (body.tables === undefined) return { fields };
  const declare: TableSpec[] = [];
  const ops: RowOp[] = [];
  for (const [table, raw] of Object.entries(body.tables)) {
    if (!isObject(raw)) throw bad(table, 'each table is a JSON object of ops, e.g. {"upsert": {"6500050": {"qty": 3.2}}}');
    for (const k of Object.keys(raw)) if (!TABLE_KEYS.has(k)) throw bad(table, `unknown table op "${k}" (known: ${[...TABLE_KEYS].join(', ')})`);
    let type = keyTypeOf(table);
    if (raw.declare !== undefined) {
      if (!isObject(raw.declare)) throw bad(table, '"declare" is an object: {"key": "int"|"string", "order": {"key": "asc"|"desc", "fields"?: […]}, "maxRows"?: n}');
      const spec = { ...raw.declare, name: table } as unknown as TableSpec;
      declare.push(spec);
      type = spec.key;
    }
    if (type === undefined) throw new KeyedBatchError('undeclared', ErrorCode.BAD_REQUEST, 'no such table: declare it first ("declare": {"key": …, "order": …})', { table });
    if (type !== 'int' && type !== 'string') continue; // the store refuses the declaration itself
    if (raw.ops !== undefined) {
      for (const k of Object.keys(raw)) if (k !== 'ops' && k !== 'declare') throw bad(table, `"ops" gives the table's ops in order; "${k}" cannot go with it`);
      for (const o of list(raw.ops, table, 'ops')) ops.push(opFromJson(o, type, table));
      continue;
    }
    tableOps(raw, type, table, ops);
  }
  return { fields, tables: { declare, ops } };
}

/** The object form, in its fixed order: clear, deleteRange, delete, replace, upsert; guards on each key's first op. */
function tableOps(raw: Record<string, unknown>, type: KeyType, table: string, ops: RowOp[]): void {
  const guards = new Map<Key, 'ifNew' | 'ifExists'>();
  for (const g of ['ifNew', 'ifExists'] as const) {
    for (const k of list(raw[g], table, g)) {
      const key = keyFromJson(type, k, table);
      if (guards.has(key)) throw bad(table, `key ${JSON.stringify(key)} is guarded twice`, key);
      guards.set(key, g);
    }
  }
  const guard = (key: Key): { guard?: 'ifNew' | 'ifExists' } => {
    const g = guards.get(key);
    if (g === undefined) return {};
    guards.delete(key);
    return { guard: g };
  };
  if (raw.clear !== undefined) {
    if (typeof raw.clear !== 'boolean') throw bad(table, '"clear" is true or false');
    if (raw.clear) ops.push({ op: 'clear', table });
  }
  for (const r of list(raw.deleteRange, table, 'deleteRange')) ops.push(rangeFromJson(r, type, table));
  for (const k of list(raw.delete, table, 'delete')) {
    const key = keyFromJson(type, k, table);
    ops.push({ op: 'delete', table, key, ...guard(key) });
  }
  for (const op of ['replace', 'upsert'] as const) {
    const rows = raw[op];
    if (rows === undefined) continue;
    if (!isObject(rows)) throw bad(table, `"${op}" is an object of rows by key: {"<key>": {fields}}`);
    for (const [k, f] of Object.entries(rows)) {
      const key = keyFromJson(type, k, table);
      ops.push({ op, table, key, fields: rowFields(f, table, key), ...guard(key) });
    }
  }
  for (const key of guards.keys()) throw bad(table, `key ${JSON.stringify(key)} is guarded but no delete, replace or upsert names it`, key);
}

function rangeFromJson(r: unknown, type: KeyType, table: string): RowOp {
  if (!isObject(r)) throw bad(table, '"deleteRange" entries are {"from"?, "to"?, "fromExclusive"?, "toExclusive"?}');
  for (const k of Object.keys(r)) if (!['from', 'to', 'fromExclusive', 'toExclusive'].includes(k)) throw bad(table, `deleteRange: unknown "${k}"`);
  return {
    op: 'deleteRange',
    table,
    ...(r.from === undefined ? {} : { from: keyFromJson(type, r.from, table) }),
    ...(r.to === undefined ? {} : { to: keyFromJson(type, r.to, table) }),
    ...(r.fromExclusive === true ? { fromExclusive: true } : {}),
    ...(r.toExclusive === true ? { toExclusive: true } : {}),
  };
}

function opFromJson(o: unknown, type: KeyType, table: string): RowOp {
  if (!isObject(o)) throw bad(table, '"ops" entries are objects: {"op": "upsert", "key": …, "fields": {…}, "guard"?: "ifNew"|"ifExists"}');
  const g = o.guard;
  if (g !== undefined && g !== 'ifNew' && g !== 'ifExists') throw bad(table, `unknown guard ${JSON.stringify(g)}`);
  const guard: { guard?: 'ifNew' | 'ifExists' } = g === undefined ? {} : { guard: g };
  switch (o.op) {
    case 'clear':
      return { op: 'clear', table };
    case 'deleteRange': {
      const { op: _op, ...range } = o;
      return rangeFromJson(range, type, table);
    }
    case 'delete':
      return { op: 'delete', table, key: keyFromJson(type, o.key, table), ...guard };
    case 'upsert':
    case 'replace': {
      const key = keyFromJson(type, o.key, table);
      const fields = rowFields(o.fields, table, key);
      return o.op === 'upsert' ? { op: 'upsert', table, key, fields, ...guard } : { op: 'replace', table, key, fields, ...guard };
    }
    default:
      throw bad(table, `unknown op ${JSON.stringify(o.op)} (upsert, replace, delete, deleteRange, clear)`);
  }
}
