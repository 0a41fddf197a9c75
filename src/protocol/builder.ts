// The FlatBuffers Builder the encoders reuse, and the in-memory form of a
// protocol-2 root of its own (Snapshot2, Delta2, KeyedSnapshot2, KeyedDelta2):
// u32 little-endian size with BARE_FLAG set, the kind byte, the buffer.

import { Builder, type ByteBuffer, type Offset } from 'flatbuffers';
import { BARE_FLAG, type MessageKind } from './kinds.js';

/** The Builder's private fields endObject() uses (flatbuffers 25.9.23, pinned in package.json). */
interface BuilderFields {
  bb: ByteBuffer;
  space: number;
  minalign: number;
  vtable: number[] | null;
  vtable_in_use: number;
  isNested: boolean;
  object_start: number;
  vtables: number[];
  vector_num_elems: number;
  force_defaults: boolean;
  string_maps: Map<string, number> | null;
}

/** What the library's `vtables` holds here: endObject() below keeps its own list. */
const NO_VTABLES: number[] = [];

/**
 * A Builder that allocates nothing per message once warm. The library's
 * clear() drops two arrays every message then grows again field by field:
 * the vtable scratch (startObject's slots) and the list of the message's
 * vtables (endObject's dedup list; its first push makes a 17-slot backing
 * store, ≈ 150 B, on every publish). This one keeps the scratch and keeps
 * its own vtable list with a count, so endObject() is the library's with
 * `vtables` read through the count. Reuse is safe: startObject() zeroes the
 * slots it uses, endObject() reads no further, and the count restarts at 0.
 */
export class ReusingBuilder extends Builder {
  /** Offsets (from the buffer's end) of this message's vtables: the first `vtableCount`. */
  private readonly vtableList: number[] = [];
  private vtableCount = 0;

  /** The library's clear() field by field, keeping the vtable scratch and making no `vtables = []`. */
  override clear(): void {
    const self = this as unknown as BuilderFields;
    self.bb.clear();
    self.space = self.bb.capacity();
    self.minalign = 1;
    self.vtable_in_use = 0;
    self.isNested = false;
    self.object_start = 0;
    self.vtables = NO_VTABLES;
    self.vector_num_elems = 0;
    self.force_defaults = false;
    self.string_maps = null;
    this.vtableCount = 0;
  }

  /** flatbuffers' endObject(), its vtable list kept by count instead of a fresh array per message. */
  override endObject(): Offset {
    const self = this as unknown as BuilderFields;
    const vtable = self.vtable;
    if (vtable == null || !self.isNested) throw new Error('FlatBuffers: endObject called without startObject');
    this.addInt32(0);
    const vtableloc = this.offset();
    // Trim trailing zeroes.
    let i = self.vtable_in_use - 1;
    while (i >= 0 && vtable[i] === 0) i--;
    const trimmed = i + 1;
    // Write out the current vtable.
    for (; i >= 0; i--) this.addInt16(vtable[i] !== 0 ? vtableloc - vtable[i]! : 0);
    this.addInt16(vtableloc - self.object_start);
    const len = (trimmed + 2) * 2;
    this.addInt16(len);
    // Search for an existing vtable that matches the current one.
    const bb = self.bb;
    const vt1 = self.space;
    let existing = 0;
    outer: for (let k = 0; k < this.vtableCount; k++) {
      const vt2 = bb.capacity() - this.vtableList[k]!;
      if (len === bb.readInt16(vt2)) {
        for (let j = 2; j < len; j += 2) if (bb.readInt16(vt1 + j) !== bb.readInt16(vt2 + j)) continue outer;
        existing = this.vtableList[k]!;
        break;
      }
    }
    if (existing) {
      // Found a match: drop the vtable just written, point the table at the existing one.
      self.space = bb.capacity() - vtableloc;
      bb.writeInt32(self.space, existing - vtableloc);
    } else {
      this.vtableList[this.vtableCount++] = this.offset();
      bb.writeInt32(bb.capacity() - vtableloc, this.offset() - vtableloc);
    }
    self.isNested = false;
    return vtableloc;
  }
}

/**
 * The first `n` bytes of `bytes` as a byte vector in `b`: createByteVector()
 * without the view of exactly `n` bytes it needs (one allocation per message).
 */
export function createByteVectorOf(b: Builder, bytes: Uint8Array, n: number): Offset {
  if (n > 256) return b.createByteVector(bytes.subarray(0, n));
  b.startVector(1, n, 1);
  for (let i = n - 1; i >= 0; i--) b.writeInt8(bytes[i]!);
  return b.endVector();
}

/** Finishes `root` and returns it as a fresh in-memory bare message; clears the builder. */
export function finishBare(b: Builder, kind: MessageKind, root: Offset): Uint8Array {
  b.finish(root);
  const n = b.dataBuffer().bytes().byteLength - b.dataBuffer().position();
  const out = new Uint8Array(5 + n);
  writeBare(b, kind, out, 0, n);
  return out;
}

/**
 * Where finishBareInto() writes: `reserve(n)` makes room for n bytes and
 * returns where they start in `bytes` (which may be a new, larger array after it).
 */
export interface ByteSink {
  reserve(n: number): number;
  readonly bytes: Uint8Array;
}

/** finishBare() into `sink` instead of a fresh array (nothing allocated): returns where the message starts. */
export function finishBareInto(b: Builder, kind: MessageKind, root: Offset, sink: ByteSink): number {
  b.finish(root);
  const n = b.dataBuffer().bytes().byteLength - b.dataBuffer().position();
  const at = sink.reserve(5 + n);
  writeBare(b, kind, sink.bytes, at, n);
  return at;
}

/** The finished message's `n` bytes as an in-memory bare message at `out[at]`; clears the builder. */
function writeBare(b: Builder, kind: MessageKind, out: Uint8Array, at: number, n: number): void {
  // Straight from the builder's bytes: no view or DataView per message.
  const bb = b.dataBuffer();
  const bytes = bb.bytes();
  const from = bb.position();
  // 1 + n, with BARE_FLAG's bit in the top byte (the sum itself would be a heap number).
  const size = 1 + n;
  out[at] = size & 0xff;
  out[at + 1] = (size >>> 8) & 0xff;
  out[at + 2] = (size >>> 16) & 0xff;
  out[at + 3] = (size >>> 24) | (BARE_FLAG >>> 24);
  out[at + 4] = kind;
  if (n <= 256) for (let i = 0; i < n; i++) out[at + 5 + i] = bytes[from + i]!;
  else out.set(bytes.subarray(from), at + 5);
  b.clear();
}
