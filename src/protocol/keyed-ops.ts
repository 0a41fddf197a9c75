// The op stream of keyed topics (KeyedSnapshot2.ops, KeyedDelta2.ops,
// Publish.ops): row operations as bytes, written and read with every length
// and value checked. Pure; no I/O. docs/protocol.md "Keyed topics" is the
// reference; in short:
//
//   op   := varint head, [u8 guard (Publish; codes 0–2, 4)], body
//   head := table_id << 4 | s << 3 | code     s = 1 for a string-keyed table
//   code 0 upsert  key, varint n, n packed entries
//        1 replace key, varint n, n packed entries (the row existed at base)
//        2 delete  key
//        3 clear
//        4 insert  key, varint n, n packed entries (a replace; no row at base)
//        5 deleteRange (Publish only): u8 flags (1 from, 2 to, 4 from
//          exclusive, 8 to exclusive), then the bounds present as keys
//   key  := int:    zigzag varint (key − previous int key of the table in this message, 0 first)
//           string: varint shared, varint n, n bytes: the previous key's first
//                   `shared` UTF-8 bytes then these (previous: "" first)
//
// The key-type bit makes a stream readable without the table's declaration
// (a delta's tables are bound by an earlier snapshot): verification and
// decoding stay context-free, and a reader checks the bit against the binding.
// Server streams (`ordered`) hold each table's ops together, a clear first,
// then keys strictly ascending (numeric / code point order).

import { ErrorCode, TickfanError } from './codes.js';
import { compareStrings, keyProblem, type Key } from './keyed/table-spec.js';
import { PackReader, PackWriter, type PackedEntry } from './packed.js';

export const OpCode = { UPSERT: 0, REPLACE: 1, DELETE: 2, CLEAR: 3, INSERT: 4, DELETE_RANGE: 5 } as const;
export type OpCode = (typeof OpCode)[keyof typeof OpCode];
export const GuardCode = { NONE: 0, IF_NEW: 1, IF_EXISTS: 2 } as const;
export const RangeFlag = { FROM: 1, TO: 2, FROM_EXCLUSIVE: 4, TO_EXCLUSIVE: 8 } as const;
/** Table ids a head can name (MAX_TABLES_PER_TOPIC is 16; ids < 8 keep a one-byte head). */
export const MAX_TABLE_ID = 255;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });
const EMPTY = new Uint8Array(0);
const BIG_DELTA = 2 ** 52;

function bad(why: string): TickfanError {
  return new TickfanError(ErrorCode.BAD_FRAME, `keyed ops: ${why}`);
}

/** Writes an op stream into a PackWriter (the caller resets and takes it). */
export class OpWriter {
  private prevInt = 0;
  private prevStr: Uint8Array = EMPTY;
  private table = -1;

  constructor(readonly w: PackWriter) {}

  /** Starts over: a new message. */
  reset(): void {
    this.w.reset();
    this.table = -1;
  }

  /** The head of an op on table `id` (resets key deltas when the table changes). */
  head(id: number, stringKeys: boolean, code: OpCode): void {
    if (id !== this.table) {
      this.table = id;
      this.prevInt = 0;
      this.prevStr = EMPTY;
    }
    this.w.varint(id * 16 + (stringKeys ? 8 : 0) + code);
  }

  /** A key, delta-coded against the previous key of the current table. */
  key(k: Key): void {
    const w = this.w;
    if (typeof k === 'number') {
      const prev = this.prevInt;
      // Differences past 2^52 are not exact in doubles: BigInt then.
      w.int(Math.abs(k) + Math.abs(prev) < BIG_DELTA ? k - prev : BigInt(k) - BigInt(prev));
      this.prevInt = k;
      return;
    }
    const b = utf8.encode(k);
    const p = this.prevStr;
    const n = Math.min(p.length, b.length);
    let shared = 0;
    while (shared < n && p[shared] === b[shared]) shared++;
    w.varint(shared);
    w.varint(b.length - shared);
    w.raw(b.subarray(shared));
    this.prevStr = b;
  }

  /** A key that is not delta-coded and leaves the deltas alone (deleteRange bounds). */
  plainKey(k: Key): void {
    if (typeof k === 'number') this.w.int(k);
    else {
      const b = utf8.encode(k);
      this.w.varint(0);
      this.w.varint(b.length);
      this.w.raw(b);
    }
  }
}

/** One op as read. `entries` for upsert / replace / insert. */
export interface ReadOp {
  table: number;
  stringKeys: boolean;
  code: OpCode;
  key: Key | undefined;
  entries: PackedEntry[] | undefined;
  guard: number;
  /** deleteRange: flags and bounds. */
  range?: { flags: number; from: Key | undefined; to: Key | undefined };
}

/** What a stream may hold: server deltas, snapshots (inserts only), or publishes. */
export type OpStreamKind = 'delta' | 'snapshot' | 'publish';

/**
 * Reads and checks a whole op stream; BAD_FRAME for anything malformed: a
 * truncated or overlong varint, a bad entry, an unknown code, a key that is
 * not a key (unsafe integer, bad UTF-8, empty or too long), a shared prefix
 * longer than the previous key, a null in a replace / insert, and in server
 * streams a table's ops split, a clear after a row, or keys out of order.
 */
export function readOps(bytes: Uint8Array, kind: OpStreamKind): ReadOp[] {
  const r = new PackReader(bytes);
  const out: ReadOp[] = [];
  const ordered = kind !== 'publish';
  const seen = new Set<number>();
  let table = -1;
  let prevInt = 0;
  let prevStr: Uint8Array = EMPTY;
  let rows = 0;
  let last: Key | undefined;
  while (!r.done) {
    const head = r.varint();
    const code = head % 8;
    const stringKeys = (head & 8) !== 0;
    const id = Math.floor(head / 16);
    if (id > MAX_TABLE_ID) throw bad(`table id ${id}`);
    if (code > OpCode.DELETE_RANGE || (code === OpCode.DELETE_RANGE && kind !== 'publish')) throw bad(`op code ${code}`);
    if (kind === 'snapshot' && code !== OpCode.INSERT) throw bad(`op code ${code} in a snapshot (inserts only)`);
    if (id !== table) {
      if (ordered && seen.has(id)) throw bad(`table ${id}'s ops are not contiguous`);
      seen.add(id);
      table = id;
      prevInt = 0;
      prevStr = EMPTY;
      rows = 0;
      last = undefined;
    }
    const op: ReadOp = { table: id, stringKeys, code: code as OpCode, key: undefined, entries: undefined, guard: 0 };
    if (kind === 'publish' && code !== OpCode.CLEAR && code !== OpCode.DELETE_RANGE) {
      op.guard = r.u8();
      if (op.guard > GuardCode.IF_EXISTS) throw bad(`guard ${op.guard}`);
    }
    if (code === OpCode.CLEAR) {
      if (ordered && rows > 0) throw bad(`table ${id}: a clear after its rows`);
      out.push(op);
      continue;
    }
    if (code === OpCode.DELETE_RANGE) {
      const flags = r.u8();
      if (flags > 15) throw bad(`range flags ${flags}`);
      const from = flags & RangeFlag.FROM ? readPlainKey(r, stringKeys) : undefined;
      const to = flags & RangeFlag.TO ? readPlainKey(r, stringKeys) : undefined;
      op.range = { flags, from, to };
      out.push(op);
      continue;
    }
    let key: Key;
    if (stringKeys) {
      const shared = r.varint();
      if (shared > prevStr.length) throw bad(`shared prefix ${shared} longer than the previous key (${prevStr.length} bytes)`);
      const rest = r.slice(r.varint());
      const b = new Uint8Array(shared + rest.length);
      b.set(prevStr.subarray(0, shared));
      b.set(rest, shared);
      key = stringKey(b);
      prevStr = b;
    } else {
      const d = r.int();
      const k = typeof d === 'number' ? prevInt + d : Number(BigInt(prevInt) + d);
      if (!Number.isSafeInteger(k) || (typeof d === 'bigint' && BigInt(prevInt) + d !== BigInt(k))) throw bad('an int key past 2^53');
      key = k === 0 ? 0 : k; // never -0
      prevInt = key;
    }
    if (ordered && last !== undefined) {
      const c = typeof key === 'number' ? key - (last as number) : compareStrings(key, last as string);
      if (c <= 0) throw bad(`table ${id}: key ${JSON.stringify(key)} is not above the one before it`);
    }
    last = key;
    rows++;
    op.key = key;
    if (code !== OpCode.DELETE) {
      const n = r.varint();
      const entries: PackedEntry[] = [];
      for (let i = 0; i < n; i++) {
        const e = r.entry();
        if (e.value === null && code !== OpCode.UPSERT) throw bad(`table ${id} key ${JSON.stringify(key)}: a replace or insert deletes a field`);
        entries.push(e);
      }
      op.entries = entries;
    }
    out.push(op);
  }
  return out;
}

function stringKey(b: Uint8Array): string {
  let s: string;
  try {
    s = fromUtf8.decode(b);
  } catch {
    throw bad('a string key is not valid UTF-8');
  }
  const why = keyProblem('string', s);
  if (why !== undefined) throw bad(why);
  return s;
}

function readPlainKey(r: PackReader, stringKeys: boolean): Key {
  if (stringKeys) {
    if (r.varint() !== 0) throw bad('a range bound shares a prefix');
    return stringKey(r.slice(r.varint()));
  }
  const k = r.int();
  if (typeof k !== 'number' || !Number.isSafeInteger(k)) throw bad('an int key past 2^53');
  return k === 0 ? 0 : k;
}
