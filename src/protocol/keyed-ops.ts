// The op stream of keyed topics (KeyedSnapshot2.ops, the ops of
// KeyedDelta2.body, Publish.ops): row operations as bytes, written and read
// with every length and value checked. Pure; no I/O. docs/protocol.md "Keyed
// topics" is the reference; in short:
//
//   op   := varint h, code = h & 7, arg = h >> 3; [u8 guard (Publish; codes 0–2)]; body
//   code 0 upsert / 1 replace (the row existed at base) / 4 insert (it did not):
//          arg = key step, [key rest], entries
//        2 delete   arg = key step, [key rest]
//        3 clear    arg = 0
//        5 deleteRange (Publish only): arg = flags (1 from, 2 to, 4 from
//          exclusive, 8 to exclusive), then the bounds present as plain keys
//        6 table    arg = id << 2 | s << 1 | a: the ops after it are on table
//          `id` (s: string keys; a: int keys absolute rather than against the
//          binding's key base). A stream starts on table 0, int keys, a = 0.
//        7 not an op (KeyedDelta2.body uses it for the summary)
//   int key step: first key of a table group: arg = zigzag(key − base) + 1;
//          later keys (server streams, strictly ascending): arg = key − prev;
//          publish streams: arg = zigzag(key − prev) + 1. arg 0: the same
//          difference follows as a zigzag varint (64-bit), for steps too big
//          for the head.
//   string key step: arg = UTF-8 bytes shared with the previous key of the
//          group ("" first), then varint n, n bytes (the rest).
//   entries := 00 | packed entries whose keys carry a low "another follows" bit
//
// Merging the key step into the head makes a level change next to the one
// before it a single byte; the key base (TableBinding.key_base, chosen by the
// server near the table's top) makes a message's first key one or two bytes
// instead of three or four. A reader without the base (a live delta decoded
// on its own) returns keys as offsets from it (`ReadOp.relative`), which the
// holder of the binding turns into keys (Protocol2Reader).
// Server streams (`ordered`) hold each table's ops together, a clear first,
// then keys strictly ascending (numeric / code point order).

import { ErrorCode, TickfanError } from './codes.js';
import { compareStrings, keyProblem, type Key } from './keyed/table-spec.js';
import { PackReader, PackWriter, type PackedEntry } from './packed.js';
import type { FieldValue } from './values.js';

export const OpCode = { UPSERT: 0, REPLACE: 1, DELETE: 2, CLEAR: 3, INSERT: 4, DELETE_RANGE: 5 } as const;
export type OpCode = (typeof OpCode)[keyof typeof OpCode];
/** Head codes that are not row ops: a table switch, and KeyedDelta2.body's summary. */
export const TABLE_CODE = 6;
export const SUMMARY_CODE = 7;
export const GuardCode = { NONE: 0, IF_NEW: 1, IF_EXISTS: 2 } as const;
export const RangeFlag = { FROM: 1, TO: 2, FROM_EXCLUSIVE: 4, TO_EXCLUSIVE: 8 } as const;
/** Table ids a table op can name (MAX_TABLES_PER_TOPIC is 16; ids < 32 keep a one-byte table op). */
export const MAX_TABLE_ID = 255;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });
const EMPTY = new Uint8Array(0);
/** Differences up to this travel in the head (h = arg · 8 + code stays below 2^53). */
const MAX_ARG = 2 ** 49;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

function bad(why: string): TickfanError {
  return new TickfanError(ErrorCode.BAD_FRAME, `keyed ops: ${why}`);
}

const zigzag = (d: number): number => (d >= 0 ? d * 2 : -d * 2 - 1);

/**
 * Writes an op stream into a PackWriter (the caller resets and takes it).
 * `ordered`: a server stream (keys ascending per table); else a publish
 * stream (the publisher's order, guards).
 */
export class OpWriter {
  private table = 0;
  private stringKeys = false;
  private base = 0;
  private open = false;
  private first = true;
  private prevInt = 0;
  private prevStr: Uint8Array = EMPTY;
  private pending = -1;
  private left = 0;

  constructor(
    readonly w: PackWriter,
    private readonly ordered = true,
  ) {}

  /** Starts over: a new message (on table 0, int keys). */
  reset(): void {
    this.w.reset();
    this.table = 0;
    this.stringKeys = false;
    this.open = false;
  }

  /**
   * Starts table `id`'s ops. `base`: an int table's key base (every key of
   * the group must lie within 2^53 − 1 of it: `baseFor` decides), or null
   * for absolute keys. Writes a table op unless the stream starts here on
   * table 0 with int keys against a base.
   */
  group(id: number, stringKeys: boolean, base: number | null): void {
    const absolute = base === null && !stringKeys;
    if (this.w.length > 0 || id !== 0 || stringKeys || absolute) this.w.varint((id * 4 + (stringKeys ? 2 : 0) + (absolute ? 1 : 0)) * 8 + TABLE_CODE);
    this.table = id;
    this.stringKeys = stringKeys;
    this.base = stringKeys ? 0 : base ?? 0;
    this.open = true;
    this.first = true;
    this.prevInt = 0;
    this.prevStr = EMPTY;
  }

  /** Moves to table `id` (a new group against key base 0) unless the stream is on it. */
  select(id: number, stringKeys: boolean): void {
    if (!this.open || id !== this.table || stringKeys !== this.stringKeys) this.group(id, stringKeys, 0);
  }

  /** For writers of one op at a time (key base 0): the head of an op on table `id`; `key` follows unless it is a clear. */
  head(id: number, stringKeys: boolean, code: OpCode): void {
    this.select(id, stringKeys);
    if (code === OpCode.CLEAR) this.clear();
    else this.pending = code;
  }

  /** The key of the op `head` started. */
  key(k: Key): void {
    const code = this.pending;
    if (code < 0) throw new TickfanError(ErrorCode.INTERNAL, 'keyed ops: a key without a head');
    this.pending = -1;
    this.row(code as OpCode, k);
  }

  /** A clear of the current table. */
  clear(): void {
    this.w.varint(OpCode.CLEAR);
  }

  /** A row op on the current table: head with the key step, `guard` (publish streams), the key's rest. */
  row(code: OpCode, k: Key, guard = 0): void {
    const w = this.w;
    if (typeof k === 'string') {
      const b = utf8.encode(k);
      const p = this.prevStr;
      const n = Math.min(p.length, b.length);
      let shared = 0;
      while (shared < n && p[shared] === b[shared]) shared++;
      w.varint(shared * 8 + code);
      if (!this.ordered) w.byte(guard);
      w.varint(b.length - shared);
      w.raw(b.subarray(shared));
      this.prevStr = b;
      this.first = false;
      return;
    }
    const from = this.first ? this.base : this.prevInt;
    // A difference of two keys may pass 2^53 (then it is not exact as a double,
    // and its magnitude shows it): BigInt then, after an arg of 0.
    const d = k - from;
    const exact = Math.abs(d) <= MAX_SAFE;
    const arg = !exact ? -1 : this.ordered && !this.first ? d : zigzag(d) + 1;
    if (exact && arg >= 1 && arg < MAX_ARG) {
      w.varint(arg * 8 + code);
      if (!this.ordered) w.byte(guard);
    } else {
      w.varint(code);
      if (!this.ordered) w.byte(guard);
      w.int(exact ? d : BigInt(k) - BigInt(from));
    }
    this.prevInt = k;
    this.first = false;
  }

  /** The entry list of the row op just written: `n` entries follow (0: writes the empty list). */
  fields(n: number): void {
    this.left = n;
    if (n === 0) this.w.byte(0);
  }

  /** One entry of the list `fields` opened. */
  entry(id: number, name: string, withName: boolean, v: FieldValue | null): void {
    if (this.left <= 0) throw new TickfanError(ErrorCode.INTERNAL, 'keyed ops: more entries than announced');
    this.w.entry(id, name, withName, v, --this.left > 0);
  }

  /** deleteRange (publish streams): flags and the bounds present, not delta-coded. */
  range(flags: number, from: Key | undefined, to: Key | undefined): void {
    this.w.varint(flags * 8 + OpCode.DELETE_RANGE);
    if (from !== undefined) this.plainKey(from);
    if (to !== undefined) this.plainKey(to);
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

/**
 * The base an int table group can be written against: `base` when every key
 * (ascending: the first and last tell) lies within 2^53 − 1 of it, else null
 * (absolute keys), so that offsets from the base stay exact numbers.
 */
export function baseFor(base: number, firstKey: number, lastKey: number): number | null {
  return Math.abs(firstKey - base) <= MAX_SAFE && Math.abs(lastKey - base) <= MAX_SAFE ? base : null;
}

/** One op as read. `entries` for upsert / replace / insert. */
export interface ReadOp {
  table: number;
  stringKeys: boolean;
  code: OpCode;
  key: Key | undefined;
  /** Int keys of this op's group are offsets from the table's key base, which the reader was not given. */
  relative: boolean;
  entries: PackedEntry[] | undefined;
  guard: number;
  /** deleteRange: flags and bounds. */
  range?: { flags: number; from: Key | undefined; to: Key | undefined };
}

/** What a stream may hold: server deltas, snapshots (inserts only), or publishes. */
export type OpStreamKind = 'delta' | 'snapshot' | 'publish';

/** The entry list of a row op (`00`, or entries chained by their keys' low bit). */
export function readEntries(r: PackReader, bytes: Uint8Array): PackedEntry[] {
  const entries: PackedEntry[] = [];
  if (r.offset < bytes.byteLength && bytes[r.offset] === 0) {
    r.u8();
    return entries;
  }
  do entries.push(r.entry(true));
  while (r.more);
  return entries;
}

/**
 * Reads and checks a whole op stream; BAD_FRAME for anything malformed: a
 * truncated or overlong varint, a bad entry, an unknown code, a key that is
 * not a key (unsafe integer, bad UTF-8, empty or too long), a shared prefix
 * longer than the previous key, a null in a replace / insert, and in server
 * streams a table's ops split, a clear after a row, or keys out of order.
 * `baseOf(table)`: the key base of a table the caller holds the binding of;
 * for the others, int keys of non-absolute groups come back as offsets
 * (`relative`).
 */
export function readOps(bytes: Uint8Array, kind: OpStreamKind, baseOf?: (table: number) => number | undefined): ReadOp[] {
  const r = new PackReader(bytes);
  const out: ReadOp[] = [];
  const ordered = kind !== 'publish';
  const seen = new Set<number>();
  let table = 0;
  let stringKeys = false;
  let base = 0;
  let relative = false;
  let started = false;
  let first = true;
  let prevInt = 0;
  let prevStr: Uint8Array = EMPTY;
  let rows = 0;
  let last: Key | undefined;
  const enter = (id: number, s: boolean, absolute: boolean) => {
    if (ordered && seen.has(id)) throw bad(`table ${id}'s ops are not contiguous`);
    seen.add(id);
    const b = absolute || s ? 0 : baseOf?.(id);
    table = id;
    stringKeys = s;
    base = b ?? 0;
    relative = b === undefined;
    started = true;
    first = true;
    prevInt = 0;
    prevStr = EMPTY;
    rows = 0;
    last = undefined;
  };
  while (!r.done) {
    const h = r.varint();
    const code = h % 8;
    const arg = Math.floor(h / 8);
    if (code === TABLE_CODE) {
      const id = Math.floor(arg / 4);
      if (id > MAX_TABLE_ID) throw bad(`table id ${id}`);
      if ((arg & 3) === 3) throw bad(`table ${id}: absolute string keys`);
      enter(id, (arg & 2) !== 0, (arg & 1) !== 0);
      continue;
    }
    if (!started) enter(0, false, false);
    if (code > OpCode.DELETE_RANGE || (code === OpCode.DELETE_RANGE && kind !== 'publish')) throw bad(`op code ${code}`);
    if (kind === 'snapshot' && code !== OpCode.INSERT) throw bad(`op code ${code} in a snapshot (inserts only)`);
    const op: ReadOp = { table, stringKeys, code: code as OpCode, key: undefined, relative: false, entries: undefined, guard: 0 };
    if (code === OpCode.CLEAR) {
      if (arg !== 0) throw bad(`clear with argument ${arg}`);
      op.relative = relative && !stringKeys;
      if (ordered && rows > 0) throw bad(`table ${table}: a clear after its rows`);
      out.push(op);
      continue;
    }
    if (code === OpCode.DELETE_RANGE) {
      const flags = arg;
      if (flags > 15) throw bad(`range flags ${flags}`);
      const from = flags & RangeFlag.FROM ? readPlainKey(r, stringKeys) : undefined;
      const to = flags & RangeFlag.TO ? readPlainKey(r, stringKeys) : undefined;
      op.range = { flags, from, to };
      out.push(op);
      continue;
    }
    if (kind === 'publish') {
      op.guard = r.u8();
      if (op.guard > GuardCode.IF_EXISTS) throw bad(`guard ${op.guard}`);
    }
    let key: Key;
    if (stringKeys) {
      const shared = arg;
      if (shared > prevStr.length) throw bad(`shared prefix ${shared} longer than the previous key (${prevStr.length} bytes)`);
      const rest = r.slice(r.varint());
      const b = new Uint8Array(shared + rest.length);
      b.set(prevStr.subarray(0, shared));
      b.set(rest, shared);
      key = stringKey(b);
      prevStr = b;
    } else {
      const from = first ? base : prevInt;
      let d: number | bigint;
      if (arg === 0) d = r.int();
      else if (ordered && !first) d = arg;
      else d = (arg - 1) % 2 === 0 ? (arg - 1) / 2 : -arg / 2; // zigzag of arg − 1
      const k = typeof d === 'number' ? from + d : Number(BigInt(from) + d);
      if (!Number.isSafeInteger(k) || (typeof d === 'bigint' && BigInt(from) + d !== BigInt(k))) throw bad(relative ? 'an int key offset past 2^53' : 'an int key past 2^53');
      key = k === 0 ? 0 : k; // never -0
      prevInt = key;
    }
    if (ordered && last !== undefined) {
      const c = typeof key === 'number' ? key - (last as number) : compareStrings(key, last as string);
      if (c <= 0) throw bad(`table ${table}: key ${JSON.stringify(key)} is not above the one before it`);
    }
    first = false;
    last = key;
    rows++;
    op.key = key;
    op.relative = relative && !stringKeys;
    if (code !== OpCode.DELETE) {
      const entries = readEntries(r, bytes);
      if (code !== OpCode.UPSERT) for (const e of entries) if (e.value === null) throw bad(`table ${table} key ${JSON.stringify(key)}: a replace or insert deletes a field`);
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
