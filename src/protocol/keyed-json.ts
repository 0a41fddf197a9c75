// JSON form of keyed snapshots and deltas, for SSE events and STOMP JSON
// bodies (the resolved KeyedSnapshotMsg / KeyedDeltaMsg, names everywhere):
//   {"type":"keyedDelta","topic":"book.X","epoch":1,"base":9,"version":10,"updates":1,"ts":0,
//    "fields":{"mid":65000.25},
//    "tables":{"bids":{"key":"int","clear":true,"upsert":{"6500050":{"qty":3.2}},
//                      "replace":{…},"insert":{…},"delete":[6500000]}},
//    "views":{"bids":{"key":"int","order":{"key":"desc"},"depth":10,"fields":["qty"]}},
//    "checksum":123}
// Row keys are object keys (int keys in decimal) and delete lists hold them as
// JSON numbers / strings; "key" says which, so "10025" and 10025 stay apart.
// Values use json-values.ts (bigint, bytes and non-finite floats tagged).
// Also here: a subscription's table views in a JSON command (SSE subscribe).

import { ErrorCode, TickfanError } from './codes.js';
import { fieldsToJson, valueFromJson } from './json-values.js';
import type { Key, KeyType, RowChange, TableChange, TableSpec } from './keyed/index.js';
import type { KeyedDeltaMsg, KeyedSnapshotMsg, KeyedTableView, TableViewRequest } from './messages.js';
import type { Changes, State } from './values.js';

type Obj = Record<string, unknown>;

function viewsToJson(views: ReadonlyMap<string, KeyedTableView>): Obj {
  const out: Obj = {};
  for (const [name, v] of views) out[name] = { key: v.spec.key, order: v.spec.order, depth: v.depth, fields: v.fields };
  return out;
}

function rowsToJson(rows: Iterable<readonly [Key, State]>): Obj {
  const out: Obj = {};
  for (const [k, f] of rows) out[String(k)] = fieldsToJson(f);
  return out;
}

/** A resolved keyed message as its JSON event object. */
export function keyedToJson(m: KeyedSnapshotMsg | KeyedDeltaMsg): Obj {
  const check = m.checksum !== null ? { checksum: m.checksum } : {};
  if (m.type === 'keyedSnapshot') {
    const rows: Obj = {};
    for (const [name, rs] of m.rows) rows[name] = rowsToJson(rs);
    return { type: m.type, topic: m.topic, epoch: m.epoch, version: m.version, ts: m.ts, part: m.part, last: m.last, ...check, fields: fieldsToJson(m.summary), views: viewsToJson(m.tables), rows };
  }
  const tables: Obj = {};
  for (const [name, tc] of m.change.tables) {
    const key = m.tables.get(name)?.spec.key ?? (typeof tc.rows.keys().next().value === 'string' ? 'string' : 'int');
    const t: Obj = { key };
    if (tc.clear) t.clear = true;
    const upsert: Obj = {};
    const replace: Obj = {};
    const insert: Obj = {};
    const del: Key[] = [];
    for (const [k, c] of tc.rows) {
      if (c.op === 'delete') del.push(k);
      else (c.op === 'upsert' ? upsert : c.existed ? replace : insert)[String(k)] = fieldsToJson(c.fields);
    }
    if (Object.keys(upsert).length) t.upsert = upsert;
    if (Object.keys(replace).length) t.replace = replace;
    if (Object.keys(insert).length) t.insert = insert;
    if (del.length) t.delete = del;
    tables[name] = t;
  }
  const views = m.tables.size ? { views: viewsToJson(m.tables) } : {};
  return { type: m.type, topic: m.topic, epoch: m.epoch, base: m.base, version: m.version, updates: m.updates, ts: m.ts, ...check, fields: fieldsToJson(m.summary), tables, ...views };
}

function bad(why: string): TickfanError {
  return new TickfanError(ErrorCode.BAD_REQUEST, `keyed JSON: ${why}`);
}

function obj(v: unknown, what: string): Obj {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(`${what} must be an object`);
  return v as Obj;
}

function keyOf(type: KeyType, k: unknown): Key {
  if (type === 'string') {
    if (typeof k !== 'string' || k === '') throw bad(`string key ${JSON.stringify(k)}`);
    return k;
  }
  const n = typeof k === 'string' && /^-?(0|[1-9][0-9]*)$/.test(k) ? Number(k) : k;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw bad(`int key ${JSON.stringify(k)}`);
  return n === 0 ? 0 : n;
}

function fieldsOf(v: unknown, what: string, deletes: boolean): Changes {
  const out: Changes = new Map();
  for (const [f, x] of Object.entries(obj(v, what))) {
    const val = valueFromJson(x, f);
    if (val === null && !deletes) throw bad(`${what}: ${f} is null in a full row`);
    out.set(f, val);
  }
  return out;
}

function viewsOf(v: unknown): Map<string, KeyedTableView> {
  const out = new Map<string, KeyedTableView>();
  for (const [name, x] of Object.entries(obj(v, 'views'))) {
    const o = obj(x, `views.${name}`);
    if (o.key !== 'int' && o.key !== 'string') throw bad(`views.${name}.key`);
    const spec: TableSpec = { name, key: o.key, order: obj(o.order, `views.${name}.order`) as unknown as TableSpec['order'] };
    out.set(name, { spec, depth: typeof o.depth === 'number' ? o.depth : 0, fields: Array.isArray(o.fields) ? (o.fields as string[]) : [] });
  }
  return out;
}

/** A keyed message from its JSON event object (the SDK's SSE / STOMP side). */
export function keyedFromJson(o: Obj): KeyedSnapshotMsg | KeyedDeltaMsg {
  const num = (v: unknown) => (typeof v === 'number' ? v : 0);
  const checksum = typeof o.checksum === 'number' ? o.checksum : null;
  const views = viewsOf(o.views);
  if (o.type === 'keyedSnapshot') {
    const rows = new Map<string, Map<Key, State>>();
    for (const [name, rs] of Object.entries(obj(o.rows, 'rows'))) {
      const type = views.get(name)?.spec.key;
      if (!type) throw bad(`rows of ${name}, a table missing from views`);
      const m = new Map<Key, State>();
      for (const [k, f] of Object.entries(obj(rs, `rows.${name}`))) m.set(keyOf(type, k), fieldsOf(f, `rows.${name}.${k}`, false) as State);
      rows.set(name, m);
    }
    return { type: 'keyedSnapshot', topic: String(o.topic ?? ''), epoch: num(o.epoch), version: num(o.version), summary: fieldsOf(o.fields, 'fields', false) as State, tables: views, rows, part: num(o.part), last: o.last !== false, checksum, ts: num(o.ts) };
  }
  const tables = new Map<string, TableChange>();
  for (const [name, x] of Object.entries(obj(o.tables, 'tables'))) {
    const t = obj(x, `tables.${name}`);
    const type: KeyType = t.key === 'string' ? 'string' : t.key === 'int' ? 'int' : (views.get(name)?.spec.key ?? 'int');
    const rows = new Map<Key, RowChange>();
    for (const [k, f] of Object.entries(obj(t.upsert, 'upsert'))) rows.set(keyOf(type, k), { op: 'upsert', fields: fieldsOf(f, k, true) });
    for (const [k, f] of Object.entries(obj(t.replace, 'replace'))) rows.set(keyOf(type, k), { op: 'replace', fields: fieldsOf(f, k, false) as State, existed: true });
    for (const [k, f] of Object.entries(obj(t.insert, 'insert'))) rows.set(keyOf(type, k), { op: 'replace', fields: fieldsOf(f, k, false) as State, existed: false });
    if (t.delete !== undefined && !Array.isArray(t.delete)) throw bad(`tables.${name}.delete must be a list of keys`);
    for (const k of (t.delete as unknown[] | undefined) ?? []) rows.set(keyOf(type, k), { op: 'delete' });
    tables.set(name, { clear: t.clear === true, rows });
  }
  return {
    type: 'keyedDelta',
    topic: String(o.topic ?? ''),
    epoch: num(o.epoch),
    base: num(o.base),
    version: num(o.version),
    updates: num(o.updates),
    summary: fieldsOf(o.fields, 'fields', true),
    tables: views,
    change: { declared: [...views.values()].map((v) => v.spec), tables },
    checksum,
    ts: num(o.ts),
  };
}

// ---------------------------------------------------------------- subscribe: table views as JSON

/**
 * A Subscribe's table views as a JSON command carries them (SSE):
 * `{"bids": {"depth": 10, "fields": ["qty"]}}` (depth 0: every row; no
 * fields: all of them).
 */
export function viewRequestsToJson(tables: readonly TableViewRequest[]): Obj {
  const out: Obj = {};
  for (const t of tables) out[t.table] = t.fields.length ? { depth: t.depth, fields: t.fields } : { depth: t.depth };
  return out;
}

/** Table views from a JSON command: the object form above, or a list of {table, depth, fields}; undefined when absent. */
export function viewRequestsFromJson(v: unknown): TableViewRequest[] | undefined {
  if (v === undefined || v === null) return undefined;
  const list: [string, unknown][] = Array.isArray(v) ? v.map((x: { table?: unknown }) => [typeof x?.table === 'string' ? x.table : '', x]) : Object.entries(obj(v, 'tables'));
  return list.map(([table, x]) => {
    const o = obj(x, `tables.${table}`);
    const depth = o.depth ?? 0;
    if (typeof depth !== 'number' || !Number.isSafeInteger(depth) || depth < 0) throw bad(`tables.${table}.depth must be 0 (every row) or a row count`);
    const fields = o.fields ?? [];
    if (!Array.isArray(fields) || fields.some((f) => typeof f !== 'string')) throw bad(`tables.${table}.fields must be a list of field names`);
    return { table, depth, fields: fields as string[] };
  });
}
