// Keyed tables' declarations: key types, sort orders, and the one total order
// rows are ranked by (the order depth views cut and view checksums list rows in).
//
// Who declares a table: the publisher, in the batch that first touches it
// (`Batch.declare`), not server config. Topics are created on first publish
// today, with no config; a table must fit that, in one process and on cluster
// origins alike (a config would have to be the same on every origin). But the
// declaration is explicit, never inferred from the first row: "10025" vs 10025,
// or bids (key desc) vs asks (key asc), cannot be guessed, and a wrong guess
// would be fixed for the epoch. Re-declaring the same spec is a no-op (so a
// restarted publisher may send it with every batch); a different spec for an
// existing table is refused. A table lives until its topic's epoch ends.
//
// Integer keys are JS numbers (safe integers, |k| < 2^53), not bigints: prices
// in ticks and order ids fit, numbers compare and hash in a Map without an
// allocation, and a book's hot path compares keys on every change. A key past
// 2^53 (some venues' 64-bit order ids) belongs in a string-keyed table.

import { ErrorCode, TickfanError } from '../codes.js';
import type { FieldValue, State } from '../values.js';

/** A row key: a safe integer in `int` tables, a string in `string` tables. Never a float. */
export type Key = number | string;
export type KeyType = 'int' | 'string';
export type SortDir = 'asc' | 'desc';

/** How rows rank: by `fields` in turn (if any), then by key. */
export interface SortOrder {
  readonly fields?: readonly { readonly field: string; readonly dir: SortDir }[];
  readonly key: SortDir;
}

export interface TableSpec {
  readonly name: string;
  readonly key: KeyType;
  readonly order: SortOrder;
  /** Rows the table may hold (a batch that would exceed it is refused). */
  readonly maxRows?: number;
}

/** A row: its key and its fields. Field maps are never mutated once a table holds them (they are shared with changes and views). */
export interface Row {
  readonly key: Key;
  fields: State;
}

/** Ranks a before b (< 0), after b (> 0); 0 only for the same key. */
export type RowRank = (a: Row, b: Row) => number;

export const MAX_TABLES_PER_TOPIC = 16;
export const MAX_STRING_KEY_LENGTH = 256;
const TABLE_NAME = /^[A-Za-z0-9_\-:]{1,64}$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Throws BAD_REQUEST naming what is wrong with a declaration. */
export function validateSpec(spec: TableSpec): void {
  const bad = (why: string) => new TickfanError(ErrorCode.BAD_REQUEST, `table ${String(spec?.name)}: ${why}`);
  if (typeof spec !== 'object' || spec === null) throw new TickfanError(ErrorCode.BAD_REQUEST, 'a table declaration must be an object');
  if (typeof spec.name !== 'string' || !TABLE_NAME.test(spec.name)) throw bad('table names are 1–64 characters of A-Z a-z 0-9 _ - :');
  if (spec.key !== 'int' && spec.key !== 'string') throw bad('key must be "int" or "string"');
  if (typeof spec.order !== 'object' || spec.order === null || (spec.order.key !== 'asc' && spec.order.key !== 'desc')) {
    throw bad('order.key must be "asc" or "desc"');
  }
  const fields = spec.order.fields ?? [];
  if (!Array.isArray(fields) || fields.length > 4) throw bad('order.fields must be a list of at most 4 fields');
  for (const f of fields) {
    if (typeof f?.field !== 'string' || f.field.length === 0 || (f.dir !== 'asc' && f.dir !== 'desc')) throw bad('each order field needs a name and dir "asc" or "desc"');
  }
  if (spec.maxRows !== undefined && (!Number.isSafeInteger(spec.maxRows) || spec.maxRows < 1)) throw bad('maxRows must be a positive integer');
}

/** True when two declarations describe the same table. */
export function sameSpec(a: TableSpec, b: TableSpec): boolean {
  const fa = a.order.fields ?? [];
  const fb = b.order.fields ?? [];
  return (
    a.name === b.name &&
    a.key === b.key &&
    a.order.key === b.order.key &&
    a.maxRows === b.maxRows &&
    fa.length === fb.length &&
    fa.every((f, i) => f.field === fb[i]!.field && f.dir === fb[i]!.dir)
  );
}

/** The reason `key` is not a key of a `type` table, or undefined when it is one. -0 is refused (use 0). */
export function keyProblem(type: KeyType, key: unknown): string | undefined {
  if (type === 'int') {
    if (typeof key !== 'number' || !Number.isSafeInteger(key)) return 'int keys are safe integers (|k| < 2^53; larger ids need a string table)';
    if (Object.is(key, -0)) return 'int keys may not be -0';
    return undefined;
  }
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_STRING_KEY_LENGTH) return `string keys are 1–${MAX_STRING_KEY_LENGTH} characters`;
  if (LONE_SURROGATE.test(key)) return 'string keys must be well-formed UTF-16 (no lone surrogates)';
  return undefined;
}

/**
 * Strings in Unicode code point order (= UTF-8 byte order), not JS's UTF-16
 * code unit order, so a client in any language ranks and checksums alike. The
 * two differ only where both strings hold a code unit ≥ 0xD800 at the first
 * difference.
 */
export function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      // Surrogates (supplementary code points) rank above U+E000–U+FFFF.
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

/** Keys in their natural order: numbers numerically, strings by code point. */
export function compareKeys(a: Key, b: Key): number {
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0;
  return compareStrings(a as string, b as string);
}

/**
 * Field values in sort-field order (ascending): a missing field first, then
 * false < true, then numbers (integers and floats, number or bigint, by value;
 * -0 equals 0; NaN after every number), then strings (code point order), then
 * bytes (unsigned lexicographic, a prefix first).
 */
export function compareValues(a: FieldValue | undefined, b: FieldValue | undefined): number {
  const ka = kindRank(a);
  const kb = kindRank(b);
  if (ka !== kb) return ka - kb;
  switch (ka) {
    case 0:
      return 0;
    case 1:
      return (a === true ? 1 : 0) - (b === true ? 1 : 0);
    case 2: {
      const na = typeof a === 'number' && Number.isNaN(a);
      const nb = typeof b === 'number' && Number.isNaN(b);
      if (na || nb) return (na ? 1 : 0) - (nb ? 1 : 0);
      return (a as number | bigint) < (b as number | bigint) ? -1 : (a as number | bigint) > (b as number | bigint) ? 1 : 0;
    }
    case 3:
      return compareStrings(a as string, b as string);
    default: {
      const x = a as Uint8Array;
      const y = b as Uint8Array;
      const n = Math.min(x.length, y.length);
      for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
      return x.length - y.length;
    }
  }
}

function kindRank(v: FieldValue | undefined): number {
  switch (typeof v) {
    case 'undefined':
      return 0;
    case 'boolean':
      return 1;
    case 'number':
    case 'bigint':
      return 2;
    case 'string':
      return 3;
    default:
      return 4;
  }
}

/** The rank function of a spec's order (best first). */
export function rowRank(order: SortOrder): RowRank {
  const keySign = order.key === 'asc' ? 1 : -1;
  const fields = order.fields ?? [];
  if (fields.length === 0) {
    return (a, b) => {
      const x = a.key;
      const y = b.key;
      if (typeof x === 'number') return keySign * ((x as number) - (y as number) < 0 ? -1 : x === y ? 0 : 1);
      return keySign * compareStrings(x, y as string);
    };
  }
  const names = fields.map((f) => f.field);
  const signs = fields.map((f) => (f.dir === 'asc' ? 1 : -1));
  return (a, b) => {
    for (let i = 0; i < names.length; i++) {
      const c = compareValues(a.fields.get(names[i]!), b.fields.get(names[i]!));
      if (c !== 0) return signs[i]! * c;
    }
    return keySign * compareKeys(a.key, b.key);
  };
}

/** True when the order depends on row fields (a change of those fields moves the row). */
export function sortsByFields(order: SortOrder): boolean {
  return (order.fields?.length ?? 0) > 0;
}
