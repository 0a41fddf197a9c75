// The FlatBuffers Builder the encoders reuse, and the in-memory form of a
// protocol-2 root of its own (Snapshot2, Delta2, KeyedSnapshot2, KeyedDelta2):
// u32 little-endian size with BARE_FLAG set, the kind byte, the buffer.

import { Builder, type Offset } from 'flatbuffers';
import { BARE_FLAG, type MessageKind } from './kinds.js';

/**
 * A Builder whose clear() keeps its vtable scratch array. The library's
 * clear() drops it, so every message grew a fresh one field by field: on the
 * publish path that was a sixth of all the heap a publish allocated. Reusing
 * it is safe: startObject() zeroes the slots it will use and endObject()
 * reads no further.
 */
export class ReusingBuilder extends Builder {
  override clear(): void {
    const self = this as unknown as { vtable: number[] | null };
    const vtable = self.vtable;
    super.clear();
    self.vtable = vtable;
  }
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
