// Estimated encoded sizes of rows and row changes, in protocol-2 terms (the
// op stream sketched in docs/research/keyed-books.md §7.6: a head byte, a
// delta-coded key, packed field entries, an end byte). Only used to choose
// between two exact forms (replace or upsert, clear or per-row deletes, merged
// delta or snapshot), so it is cheap and approximate, never on the wire.

import type { Changes, FieldValue, State } from '../values.js';
import type { Key } from './table-spec.js';

/** Bytes of one key: int keys travel delta-coded in key order (~2 B), string keys by id or name. */
export function keySize(key: Key): number {
  return typeof key === 'number' ? 2 : key.length + 2;
}

/** Bytes of one packed value (0 for a field delete: its tag is all). */
export function valueBytes(v: FieldValue | null): number {
  switch (typeof v) {
    case 'number':
      return Number.isSafeInteger(v) ? varintBytes(Math.abs(v) * 2) : 4; // most prices are short decimals
    case 'bigint':
      return 8;
    case 'string':
      return v.length + 1;
    case 'boolean':
      return 0;
    default:
      return v === null ? 0 : v.length + 1;
  }
}

function varintBytes(n: number): number {
  let b = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    b++;
  }
  return b;
}

/** Bytes of packed field entries: field id, tag, value each. */
export function fieldsSize(fields: State | Changes): number {
  let n = 0;
  for (const v of fields.values()) n += 2 + valueBytes(v);
  return n;
}

/** Bytes of a row as a snapshot or a replace carries it. */
export function rowSize(key: Key, fields: State): number {
  return 2 + keySize(key) + fieldsSize(fields);
}

/** Bytes of an upsert of `changes`. */
export function upsertSize(key: Key, changes: Changes): number {
  return 2 + keySize(key) + fieldsSize(changes);
}

/** Bytes of a row delete. */
export function deleteSize(key: Key): number {
  return 1 + keySize(key);
}

/** Bytes of a clear op. */
export const CLEAR_SIZE = 1;
