// The 32-bit checksum of a subscriber's view at a version: CRC-32 (IEEE
// 802.3, reflected, polynomial 0xEDB88320, initial and final XOR 0xFFFFFFFF:
// zlib's crc32, "123456789" → 0xCBF43926) over the canonical bytes below.
// Plain TypeScript with no Node import, so the browser SDK can use the same
// code (it is to move to src/protocol/ when the wire-in adds the message).
//
// Canonical form (all integers little-endian; str = u32 byte length, UTF-8 bytes):
//   view    := u32 nSummary, nSummary × field,      (summary fields the view holds; 0 if none)
//              u32 nTables, nTables × table          (tables in the view, by name ascending)
//   table   := str name, u8 keyType (1 int, 2 string), u32 nRows, nRows × row
//   row     := key, u32 nFields, nFields × field     (rows in the table's sort order, best first)
//   key     := i64 (int tables) | str (string tables)
//   field   := str name, value                       (fields by name ascending)
//   value   := u8 tag, payload:
//              1 int:    i64        (a number that is a safe integer other than -0, or a bigint)
//              2 float:  f64 bits   (any other number; every NaN as 0x7FF8000000000000)
//              3 string: str
//              4 false | 5 true     (no payload)
//              6 bytes:  u32 length, bytes
// "Ascending" for names is Unicode code point order (= UTF-8 byte order).
// Integers are one kind whatever their JS type, because the wire gives a
// client a number for 5n and 5 alike; a float's exact bits are covered.

import type { FieldValue, State } from '../values.js';
import { compareStrings, type Key, type KeyType } from './table-spec.js';

/** One table of a view, rows best first. */
export interface ChecksumTable {
  readonly name: string;
  readonly keyType: KeyType;
  readonly rows: Iterable<readonly [Key, ReadonlyMap<string, FieldValue>]>;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 of `bytes`, continuing from `crc` (0 to start). */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

const utf8 = new TextEncoder();

/** Writes the canonical form into a growing buffer (reused between checksums). */
class CanonicalWriter {
  private buf = new Uint8Array(1024);
  private view = new DataView(this.buf.buffer);
  pos = 0;

  bytes(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.room(1);
    this.buf[this.pos++] = v;
  }

  u32(v: number): void {
    this.room(4);
    this.view.setUint32(this.pos, v, true);
    this.pos += 4;
  }

  i64(v: number | bigint): void {
    this.room(8);
    if (typeof v === 'bigint') this.view.setBigInt64(this.pos, v, true);
    else {
      // A safe integer as two 32-bit halves: no BigInt per key.
      const hi = Math.floor(v / 0x1_0000_0000);
      this.view.setUint32(this.pos, v - hi * 0x1_0000_0000, true);
      this.view.setInt32(this.pos + 4, hi, true);
    }
    this.pos += 8;
  }

  f64(v: number): void {
    this.room(8);
    if (Number.isNaN(v)) this.view.setBigUint64(this.pos, 0x7ff8000000000000n, true);
    else this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
  }

  blob(b: Uint8Array): void {
    this.u32(b.length);
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  str(s: string): void {
    // ASCII (names, most keys) without an encoder call.
    let ascii = true;
    for (let i = 0; i < s.length && ascii; i++) if (s.charCodeAt(i) > 0x7f) ascii = false;
    if (!ascii) return this.blob(utf8.encode(s));
    this.u32(s.length);
    this.room(s.length);
    for (let i = 0; i < s.length; i++) this.buf[this.pos++] = s.charCodeAt(i);
  }

  value(v: FieldValue): void {
    switch (typeof v) {
      case 'number':
        if (Number.isSafeInteger(v) && !Object.is(v, -0)) {
          this.u8(1);
          return this.i64(v);
        }
        this.u8(2);
        return this.f64(v);
      case 'bigint':
        this.u8(1);
        return this.i64(v);
      case 'string':
        this.u8(3);
        return this.str(v);
      case 'boolean':
        return this.u8(v ? 5 : 4);
      default:
        this.u8(6);
        return this.blob(v);
    }
  }

  fields(fields: ReadonlyMap<string, FieldValue>): void {
    const names = [...fields.keys()].sort(compareStrings);
    this.u32(names.length);
    for (const n of names) {
      this.str(n);
      this.value(fields.get(n)!);
    }
  }
}

const writer = new CanonicalWriter();

/** The canonical bytes of a view (a copy), for tests and the protocol reference's worked example. */
export function canonicalView(tables: readonly ChecksumTable[], summary?: State): Uint8Array {
  writeView(tables, summary);
  return writer.bytes().slice();
}

/** The view checksum: CRC-32 of the canonical form. */
export function viewChecksum(tables: readonly ChecksumTable[], summary?: State): number {
  writeView(tables, summary);
  return crc32(writer.bytes());
}

function writeView(tables: readonly ChecksumTable[], summary: State | undefined): void {
  const w = writer;
  w.pos = 0;
  w.fields(summary ?? EMPTY);
  const sorted = [...tables].sort((a, b) => compareStrings(a.name, b.name));
  w.u32(sorted.length);
  for (const t of sorted) {
    w.str(t.name);
    w.u8(t.keyType === 'int' ? 1 : 2);
    const countAt = w.pos;
    w.u32(0);
    let n = 0;
    for (const [key, fields] of t.rows) {
      if (t.keyType === 'int') w.i64(key as number);
      else w.str(key as string);
      w.fields(fields);
      n++;
    }
    const end = w.pos;
    w.pos = countAt;
    w.u32(n);
    w.pos = end;
  }
}

const EMPTY: State = new Map();
