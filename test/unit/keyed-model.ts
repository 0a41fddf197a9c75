// Reference model and generators for the keyed-table tests: a naive, obviously
// right implementation (plain maps, op by op, sort on every read) that the
// engine's tables, net changes and depth views are checked against.

import fc from 'fast-check';
import { sameValue, type FieldValue, type State } from '../../src/protocol/index.js';
import type { Batch, Key, RowOp, TableSpec } from '../../src/engine/tables/index.js';

export type Model = Map<string, Map<Key, State>>;

export const BIDS: TableSpec = { name: 'bids', key: 'int', order: { key: 'desc' } };
export const ASKS: TableSpec = { name: 'asks', key: 'int', order: { key: 'asc' } };
/** Market-by-order priority: price best (high) first, then earliest sequence, then order id. */
export const ORDERS: TableSpec = { name: 'orders', key: 'string', order: { fields: [{ field: 'px', dir: 'desc' }, { field: 'seq', dir: 'asc' }], key: 'asc' } };

export function copyModel(m: Model): Model {
  return new Map([...m].map(([t, rows]) => [t, new Map([...rows].map(([k, f]) => [k, new Map(f)]))]));
}

/** Numbers and strings only where they compare in this naive way (test keys and sort fields are such). */
function cmp(a: unknown, b: unknown): number {
  if (a === b) return 0;
  if (a === undefined) return -1;
  if (b === undefined) return 1;
  return (a as number) < (b as number) ? -1 : 1;
}

/** A model table's rows best first, by the naive comparator. */
export function sortedRows(spec: TableSpec, rows: Map<Key, State>): [Key, State][] {
  const keySign = spec.order.key === 'asc' ? 1 : -1;
  return [...rows].sort(([ka, a], [kb, b]) => {
    for (const f of spec.order.fields ?? []) {
      const c = cmp(a.get(f.field), b.get(f.field));
      if (c !== 0) return f.dir === 'asc' ? c : -c;
    }
    return keySign * cmp(ka, kb);
  });
}

export function topN(spec: TableSpec, rows: Map<Key, State> | undefined, n: number, fields?: readonly string[]): [Key, State][] {
  const all = rows === undefined ? [] : sortedRows(spec, rows);
  return (n === 0 ? all : all.slice(0, n)).map(([k, f]) => [k, fields === undefined ? f : new Map([...f].filter(([name]) => fields.includes(name)))]);
}

function inRange(k: Key, op: Extract<RowOp, { op: 'deleteRange' }>): boolean {
  if (op.from !== undefined && (op.fromExclusive ? !(k > op.from) : !(k >= op.from))) return false;
  if (op.to !== undefined && (op.toExclusive ? !(k < op.to) : !(k <= op.to))) return false;
  return true;
}

function validKey(spec: TableSpec, k: unknown): boolean {
  return spec.key === 'int' ? typeof k === 'number' && Number.isSafeInteger(k) && !Object.is(k, -0) : typeof k === 'string' && k.length > 0;
}

/** Applies a batch op by op to a copy; returns the new model, or the refusal reason. */
export function applyModel(specs: Map<string, TableSpec>, m: Model, batch: Batch): Model | string {
  const next = copyModel(m);
  for (const s of batch.declare ?? []) if (!next.has(s.name)) next.set(s.name, new Map());
  for (const op of batch.ops) {
    const rows = next.get(op.table);
    const spec = specs.get(op.table);
    if (rows === undefined || spec === undefined) return 'undeclared';
    if (op.op === 'clear') rows.clear();
    else if (op.op === 'deleteRange') {
      for (const b of [op.from, op.to]) if (b !== undefined && !validKey(spec, b)) return 'badKey';
      for (const k of [...rows.keys()]) if (inRange(k, op)) rows.delete(k);
    } else {
      if (!validKey(spec, op.key)) return 'badKey';
      const row = rows.get(op.key);
      if (op.guard === 'ifNew' && row) return 'ifNew';
      if (op.guard === 'ifExists' && !row) return 'ifExists';
      if (op.op === 'delete') rows.delete(op.key);
      else {
        for (const v of op.fields.values()) {
          if (Array.isArray(v)) return 'badField';
          if (v === null && op.op === 'replace') return 'badField';
        }
        const r: State = op.op === 'replace' ? new Map() : new Map(row ?? []);
        for (const [f, v] of op.fields) {
          if (v === null) r.delete(f);
          else r.set(f, v as FieldValue);
        }
        rows.set(op.key, r);
      }
    }
  }
  return next;
}

export function sameRow(a: ReadonlyMap<string, FieldValue>, b: ReadonlyMap<string, FieldValue>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (!b.has(k) || !sameValue(v, b.get(k))) return false;
  return true;
}

/** Same rows (as maps: order ignored). */
export function sameRows(a: ReadonlyMap<Key, State>, b: ReadonlyMap<Key, State>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, f] of a) {
    const g = b.get(k);
    if (g === undefined || !sameRow(f, g)) return false;
  }
  return true;
}

/** Same rows in the same order. */
export function sameList(a: readonly (readonly [Key, State])[], b: readonly (readonly [Key, State])[]): boolean {
  return a.length === b.length && a.every(([k, f], i) => k === b[i]![0] && sameRow(f, b[i]![1]));
}

// --- generators -------------------------------------------------------------

const value: fc.Arbitrary<FieldValue> = fc.oneof(
  fc.integer({ min: -5, max: 5 }),
  fc.double({ noNaN: true, min: -10, max: 10 }),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  fc.constantFrom('a', 'b', 'é', '😀'),
  fc.boolean(),
  fc.uint8Array({ maxLength: 3 }),
);
/** Sort fields hold small integers (or are missing), so the naive comparator is right. */
const sortValue = fc.integer({ min: 0, max: 4 });
const fieldsArb = (withNull: boolean, bad: boolean): fc.Arbitrary<Map<string, FieldValue | null>> =>
  fc
    .array(
      fc.oneof(
        { weight: 30, arbitrary: fc.tuple(fc.constantFrom('qty', 'n', 'tag'), withNull ? fc.option(value, { freq: 4, nil: null }) : value) },
        { weight: 30, arbitrary: fc.tuple(fc.constantFrom('px', 'seq'), withNull ? fc.option(sortValue, { freq: 4, nil: null }) : sortValue) },
        ...(bad ? [{ weight: 1, arbitrary: fc.constant<[string, FieldValue | null]>(['qty', [1] as unknown as FieldValue]) }] : []),
      ),
      { maxLength: 4 },
    )
    .map((e) => new Map(e));

export interface OpsShape {
  intKeys: fc.Arbitrary<number>;
  strKeys: fc.Arbitrary<string>;
  /** Include invalid keys and values (refused batches). */
  bad: boolean;
  tables: readonly TableSpec[];
}

/** Mostly unguarded: a guard fails about half the time, and one failure refuses a batch. */
const guard = fc.oneof(
  { weight: 16, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.constant<'ifNew'>('ifNew') },
  { weight: 1, arbitrary: fc.constant<'ifExists'>('ifExists') },
);

export function opArb(s: OpsShape): fc.Arbitrary<RowOp> {
  return fc.constantFrom(...s.tables).chain((t) => {
    const good = t.key === 'int' ? (s.intKeys as fc.Arbitrary<Key>) : (s.strKeys as fc.Arbitrary<Key>);
    const key = s.bad ? fc.oneof({ weight: 60, arbitrary: good }, { weight: 1, arbitrary: fc.constantFrom<Key>(1.5 as Key, '' as Key) }) : good;
    const table = t.name;
    return fc.oneof(
      { weight: 8, arbitrary: fc.record({ key, fields: fieldsArb(true, s.bad), guard }).map(({ key, fields, guard }) => ({ op: 'upsert' as const, table, key, fields, ...(guard ? { guard } : {}) })) },
      { weight: 3, arbitrary: fc.record({ key, fields: fieldsArb(s.bad, s.bad), guard }).map(({ key, fields, guard }) => ({ op: 'replace' as const, table, key, fields, ...(guard ? { guard } : {}) })) },
      { weight: 5, arbitrary: fc.record({ key, guard }).map(({ key, guard }) => ({ op: 'delete' as const, table, key, ...(guard ? { guard } : {}) })) },
      { weight: 1, arbitrary: fc.constant({ op: 'clear' as const, table }) },
      {
        weight: 2,
        arbitrary: fc
          .record({ a: fc.option(good, { nil: undefined }), b: fc.option(good, { nil: undefined }), fx: fc.boolean(), tx: fc.boolean() })
          .map(({ a, b, fx, tx }) => {
            const [from, to] = a !== undefined && b !== undefined && a > b ? [b, a] : [a, b];
            return { op: 'deleteRange' as const, table, ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}), fromExclusive: fx, toExclusive: tx };
          }),
      },
    );
  });
}

export function batchesArb(s: OpsShape, maxBatches = 40, maxOps = 6): fc.Arbitrary<Batch[]> {
  return fc.array(fc.array(opArb(s), { minLength: 0, maxLength: maxOps }).map((ops) => ({ ops })), { minLength: 1, maxLength: maxBatches });
}
