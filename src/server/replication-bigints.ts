// Which integers of a replicated update were bigints. The protocol-2 Delta2
// and the keyed op stream carry every integer as a zigzag varint that reads
// back as a number below 2^53 and as a bigint past it (clients' convention),
// so a field published as 5n would reach a replica (a fan-out worker, a
// cluster edge) as the number 5 while the sequencer holds 5n: its GET
// /snapshot, keyed views and services would then show another type than the
// sequencer's. An update that holds such a bigint names it here — summary
// fields by name, row fields by table, key and field — and the replica turns
// those numbers back into bigints. Only bigints of magnitude below 2^53 are
// named (larger ones read back as bigints anyway); most updates have none
// and carry nothing.
//
//   JSON {"f": [field…], "r": [[table, key, field]…]} (either may be absent)

import type { KeyedChange } from '../engine/index.js';
import type { Changes, Key } from '../protocol/index.js';

/** Bigints of an update that read back as numbers: summary fields, and [table, key, field] of rows. */
export interface BigintMarks {
  f?: string[];
  r?: [string, Key, string][];
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

const small = (v: unknown): boolean => typeof v === 'bigint' && v <= MAX_SAFE && v >= -MAX_SAFE;

/** The marks of an accepted update (`changes`: its summary or flat fields; `keyed`: its net row change), encoded; undefined when it has no small bigint. */
export function bigintMarks(changes: Changes, keyed?: KeyedChange): Uint8Array | undefined {
  let f: string[] | undefined;
  for (const [name, v] of changes) if (small(v)) (f ??= []).push(name);
  let r: [string, Key, string][] | undefined;
  if (keyed !== undefined) {
    for (const [table, tc] of keyed.tables) {
      for (const [key, c] of tc.rows) {
        if (c.op === 'delete') continue;
        for (const [name, v] of c.fields) if (small(v)) (r ??= []).push([table, key, name]);
      }
    }
  }
  if (f === undefined && r === undefined) return undefined;
  const m: BigintMarks = {};
  if (f) m.f = f;
  if (r) m.r = r;
  return utf8.encode(JSON.stringify(m));
}

/**
 * Turns the marked numbers of a decoded update back into bigints, in place.
 * False — the update must not be applied; the replica resynchronises — when
 * the marks are not JSON or name a value that is not a safe integer there.
 */
export function restoreBigints(bytes: Uint8Array, changes: Changes, keyed: KeyedChange | undefined): boolean {
  let m: BigintMarks;
  try {
    m = JSON.parse(fromUtf8.decode(bytes)) as BigintMarks;
  } catch {
    return false;
  }
  if (typeof m !== 'object' || m === null || (m.f !== undefined && !Array.isArray(m.f)) || (m.r !== undefined && !Array.isArray(m.r))) return false;
  const back = (fields: Changes | undefined, name: unknown): boolean => {
    const v = typeof name === 'string' ? fields?.get(name) : undefined;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || Object.is(v, -0)) return false;
    fields!.set(name as string, BigInt(v));
    return true;
  };
  for (const name of m.f ?? []) if (!back(changes, name)) return false;
  for (const mark of m.r ?? []) {
    if (!Array.isArray(mark)) return false;
    const row = keyed?.tables.get(mark[0])?.rows.get(mark[1]);
    if (row === undefined || row.op === 'delete' || !back(row.fields as Changes, mark[2])) return false;
  }
  return true;
}
