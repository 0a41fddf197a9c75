// The FlatBuffers Builder the encoders reuse, and the in-memory form of a
// protocol-2 root of its own (Snapshot2, Delta2, KeyedSnapshot2, KeyedDelta2):
// u32 little-endian size with BARE_FLAG set, the kind byte, the buffer.

import { Builder, type ByteBuffer, type Offset } from 'flatbuffers';
import { BARE_FLAG, type MessageKind } from './kinds.js';

/** The Builder's private fields endObject() uses (flatbuffers 25.9.23, pinned in package.json). */
interface BuilderFields {
  bb: ByteBuffer;
  space: number;
  vtable: number[] | null;
  vtable_in_use: number;
  isNested: boolean;
  object_start: number;
}

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

  override clear(): void {
    const self = this as unknown as BuilderFields;
    const vtable = self.vtable;
    super.clear();
    self.vtable = vtable;
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
  // Straight from the builder's bytes: no view or DataView per message.
  const bb = b.dataBuffer();
  const bytes = bb.bytes();
  const from = bb.position();
  const n = bytes.byteLength - from;
  const out = new Uint8Array(5 + n);
  const head = 1 + n + BARE_FLAG;
  out[0] = head & 0xff;
  out[1] = (head >>> 8) & 0xff;
  out[2] = (head >>> 16) & 0xff;
  out[3] = head >>> 24;
  out[4] = kind;
  if (n <= 256) for (let i = 0; i < n; i++) out[5 + i] = bytes[from + i]!;
  else out.set(bytes.subarray(from), 5);
  b.clear();
  return out;
}
