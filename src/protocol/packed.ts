// Packed field entries of protocol 2 (Snapshot2.values, Delta2.changes): a
// field id (with the field's name when the receiver may not know the id),
// a one-byte tag and a compact value. Prices travel as a decimal mantissa and
// exponent whenever that gives back the very same double. Pure; no I/O.
//
// entry := varint key [varint n, n bytes utf8 name] tag payload
//   key = id * 2 + (1 if the name follows); id 0 means "no id": name always follows
//   tag & 7: 0 delete | 1 decimal (payload zigzag varint m; value m / 10^(tag >> 3))
//            2 int (zigzag varint, 64-bit) | 3 float (8 bytes IEEE 754 little-endian)
//            4 string (varint n, n bytes utf8) | 5 bool (tag >> 3: 0 false, 1 true)
//            6 bytes (varint n, n bytes)

import { ErrorCode, TickfanError } from './codes.js';
import { checkFieldValue, type FieldValue } from './values.js';

export const PackedTag = { DELETE: 0, DECIMAL: 1, INT: 2, FLOAT: 3, STRING: 4, BOOL: 5, BYTES: 6 } as const;

/** The largest decimal exponent a DECIMAL entry uses (10^e is exact as a double up to 22). */
export const MAX_DECIMAL_EXPONENT = 15;
const POW10 = Array.from({ length: 23 }, (_, e) => 10 ** e);
/** Numbers below this zigzag exactly in double arithmetic (2n must stay exact). */
const NUMBER_ZIGZAG_LIMIT = 2 ** 52;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A decimal mantissa and exponent that give back exactly `v`, or null. */
export function decimalOf(v: number): { m: number; e: number } | null {
  const e = decimalExponent(v);
  return e === 0 ? null : { m: Math.round(v * POW10[e]!), e };
}

/**
 * The exponent e ≥ 1 for which round(v · 10^e) / 10^e gives back exactly `v`
 * (the smallest such), or 0 when there is none. The writer's form of
 * decimalOf: no object per price.
 */
function decimalExponent(v: number): number {
  if (!Number.isFinite(v) || Number.isInteger(v)) return 0;
  for (let e = 1; e <= MAX_DECIMAL_EXPONENT; e++) {
    const p = POW10[e]!;
    const m = Math.round(v * p);
    if (Math.abs(m) >= NUMBER_ZIGZAG_LIMIT) return 0;
    if (m / p === v) return e;
  }
  return 0;
}

/**
 * Writes packed entries into a growing scratch buffer, reused between
 * messages. `take()` returns a view valid until the next `reset()`.
 */
export class PackWriter {
  private buf = new Uint8Array(1024);
  private view = new DataView(this.buf.buffer);
  private pos = 0;

  reset(): void {
    this.pos = 0;
  }

  get length(): number {
    return this.pos;
  }

  /** The bytes written since the last reset (a view into the scratch buffer). */
  take(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  /** The buffer whose first `length` bytes are what was written (valid until the next write): take() without its view. */
  get bytes(): Uint8Array {
    return this.buf;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.byteLength) return;
    const next = new Uint8Array(Math.max(this.buf.byteLength * 2, this.pos + n));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** Unsigned varint of a non-negative integer up to 2^53. */
  varint(n: number): void {
    this.room(8);
    while (n >= 128) {
      this.buf[this.pos++] = (n % 128) | 128;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
  }

  private bigVarint(n: bigint): void {
    this.room(10);
    while (n >= 128n) {
      this.buf[this.pos++] = Number(n & 127n) | 128;
      n >>= 7n;
    }
    this.buf[this.pos++] = Number(n);
  }

  /** A zigzag varint integer (64-bit; numbers past 2^52 go through BigInt). */
  int(v: number | bigint): void {
    if (typeof v === 'number' && Math.abs(v) < NUMBER_ZIGZAG_LIMIT) {
      this.varint(v >= 0 ? v * 2 : -v * 2 - 1);
      return;
    }
    const b = BigInt(v);
    this.bigVarint(b >= 0n ? b << 1n : (-b << 1n) - 1n);
  }

  byte(b: number): void {
    this.room(1);
    this.buf[this.pos++] = b;
  }

  /** Raw bytes, no length. */
  raw(bytes: Uint8Array): void {
    this.room(bytes.byteLength);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.byteLength;
  }

  private blob(bytes: Uint8Array): void {
    this.varint(bytes.byteLength);
    this.room(bytes.byteLength);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.byteLength;
  }

  private text(s: string): void {
    // At most 3 bytes per UTF-16 unit; the length prefix is written after encoding.
    const max = s.length * 3;
    const lenBytes = max < 128 ? 1 : max < 16384 ? 2 : max < 2097152 ? 3 : 5;
    this.room(lenBytes + max);
    const start = this.pos + lenBytes;
    const { written } = utf8.encodeInto(s, this.buf.subarray(start));
    // Write the varint length in exactly lenBytes bytes (padded with continuation bits).
    let n = written;
    for (let i = 0; i < lenBytes; i++) {
      const last = i === lenBytes - 1;
      this.buf[this.pos + i] = (n % 128) | (last ? 0 : 128);
      n = Math.floor(n / 128);
    }
    this.pos = start + written;
  }

  /**
   * One entry. `id` 0 means the field has no id (its name always travels);
   * `withName` sends the name with an id the receiver may not know yet.
   * Throws BAD_FIELD for anything that is not a field value. `more` (keyed
   * op streams' chained entries): the key gains two low bits, 2 for an
   * integer (no tag: the zigzag varint follows the name) and 1 when another
   * entry follows.
   */
  entry(id: number, name: string, withName: boolean, v: FieldValue | null, more?: boolean): void {
    checkFieldValue(name, v);
    const named = withName || id === 0;
    const key = id * 2 + (named ? 1 : 0);
    if (more !== undefined) {
      const int = typeof v === 'bigint' || (typeof v === 'number' && Number.isSafeInteger(v) && !Object.is(v, -0));
      this.varint(key * 4 + (int ? 2 : 0) + (more ? 1 : 0));
      if (named) this.text(name);
      if (int) return this.int(v as number | bigint);
    } else {
      this.varint(key);
      if (named) this.text(name);
    }
    if (v === null) return this.byte(PackedTag.DELETE);
    switch (typeof v) {
      case 'number': {
        if (Number.isSafeInteger(v) && !Object.is(v, -0)) {
          this.byte(PackedTag.INT);
          return this.int(v);
        }
        const e = decimalExponent(v);
        if (e !== 0) {
          this.byte(PackedTag.DECIMAL | (e << 3));
          return this.int(Math.round(v * POW10[e]!));
        }
        this.byte(PackedTag.FLOAT);
        this.room(8);
        this.view.setFloat64(this.pos, v, true);
        this.pos += 8;
        return;
      }
      case 'bigint':
        this.byte(PackedTag.INT);
        return this.int(v);
      case 'string':
        this.byte(PackedTag.STRING);
        return this.text(v);
      case 'boolean':
        return this.byte(PackedTag.BOOL | (v ? 8 : 0));
      default:
        this.byte(PackedTag.BYTES);
        return this.blob(v as Uint8Array);
    }
  }
}

function bad(why: string): TickfanError {
  return new TickfanError(ErrorCode.BAD_FRAME, `packed entries: ${why}`);
}

/** One decoded entry: `name` is undefined when only the id travelled. */
export interface PackedEntry {
  id: number;
  name: string | undefined;
  value: FieldValue | null;
}

/** Reads packed entries; every length is checked against the bytes (BAD_FRAME otherwise). */
export class PackReader {
  private pos = 0;
  private readonly view: DataView;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get done(): boolean {
    return this.pos >= this.bytes.byteLength;
  }

  /** Bytes read so far. */
  get offset(): number {
    return this.pos;
  }

  u8(): number {
    if (this.pos >= this.bytes.byteLength) throw bad('truncated');
    return this.bytes[this.pos++]!;
  }

  /** Unsigned varint up to 2^53 (longer ones are refused). */
  varint(): number {
    let n = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      n += (b & 127) * scale;
      if (b < 128) {
        if (n > Number.MAX_SAFE_INTEGER) throw bad('varint past 2^53');
        return n;
      }
      scale *= 128;
    }
    throw bad('varint longer than 8 bytes');
  }

  private bigVarint(): bigint {
    let n = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      const b = this.u8();
      n |= BigInt(b & 127) << shift;
      if (b < 128) return n;
      shift += 7n;
    }
    throw bad('integer varint longer than 10 bytes');
  }

  /** A zigzag varint integer: a number when safe, else a bigint (64-bit at most). */
  int(): number | bigint {
    // Small values (the usual case) stay in number arithmetic.
    const start = this.pos;
    let n = 0;
    let scale = 1;
    for (let i = 0; i < 7; i++) {
      const b = this.u8();
      n += (b & 127) * scale;
      if (b < 128) return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
      scale *= 128;
    }
    this.pos = start;
    const z = this.bigVarint();
    const v = z & 1n ? -((z + 1n) >> 1n) : z >> 1n;
    if (v < INT64_MIN || v > INT64_MAX) throw bad('integer past 64 bits');
    return v >= -MAX_SAFE && v <= MAX_SAFE ? Number(v) : v;
  }

  /** The next `n` bytes (a view). */
  slice(n: number): Uint8Array {
    if (this.pos + n > this.bytes.byteLength) throw bad(`${n} bytes run past the end`);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  private text(): string {
    try {
      return fromUtf8.decode(this.slice(this.varint()));
    } catch (err) {
      if (err instanceof TickfanError) throw err;
      throw bad('a name or string is not valid UTF-8');
    }
  }

  /** After `entry(true)`: whether another entry follows (the key's low bit). */
  more = false;

  /** The next entry; `chained` (keyed op streams): its key carries the integer and `more` bits. */
  entry(chained = false): PackedEntry {
    let key = this.varint();
    let int = false;
    if (chained) {
      this.more = key % 2 === 1;
      int = key % 4 >= 2;
      key = Math.floor(key / 4);
    }
    const id = Math.floor(key / 2);
    const name = key % 2 === 1 ? this.text() : undefined;
    if (id === 0 && name === undefined) throw bad('an entry with id 0 must carry its name');
    if (name === '') throw bad('empty field name');
    if (int) return { id, name, value: this.int() };
    const tag = this.u8();
    const kind = tag & 7;
    const arg = tag >> 3;
    let value: FieldValue | null;
    switch (kind) {
      case PackedTag.DELETE:
        if (arg !== 0) throw bad(`tag ${tag}`);
        value = null;
        break;
      case PackedTag.DECIMAL: {
        if (arg < 1 || arg > 22) throw bad(`decimal exponent ${arg}`);
        const m = this.int();
        if (typeof m !== 'number' || Math.abs(m) >= NUMBER_ZIGZAG_LIMIT) throw bad('decimal mantissa out of range');
        value = m / POW10[arg]!;
        break;
      }
      case PackedTag.INT:
        if (arg !== 0) throw bad(`tag ${tag}`);
        value = this.int();
        break;
      case PackedTag.FLOAT:
        if (arg !== 0) throw bad(`tag ${tag}`);
        this.slice(8);
        value = this.view.getFloat64(this.pos - 8, true);
        break;
      case PackedTag.STRING:
        if (arg !== 0) throw bad(`tag ${tag}`);
        value = this.text();
        break;
      case PackedTag.BOOL:
        if (arg > 1) throw bad(`tag ${tag}`);
        value = arg === 1;
        break;
      case PackedTag.BYTES:
        if (arg !== 0) throw bad(`tag ${tag}`);
        value = this.slice(this.varint()).slice();
        break;
      default:
        throw bad(`unknown value tag ${tag}`);
    }
    return { id, name, value };
  }
}

/** Every entry of a packed vector. */
export function readPacked(bytes: Uint8Array): PackedEntry[] {
  const r = new PackReader(bytes);
  const out: PackedEntry[] = [];
  while (!r.done) out.push(r.entry());
  return out;
}
