// The per-turn stage of the native fast path: protocol-2 stream deltas that
// only fast-path subscribers will read are encoded straight into one reused
// buffer instead of a fresh Uint8Array each (≈ 190 B of JS heap per publish,
// and the young objects a scavenge had to copy when a long turn held many),
// and each channel's frame is assembled from there, byte for byte as
// protocol/framing.ts#FrameWriter2 writes it. Everything staged is sent and
// forgotten at the end of the turn's publish (reset): nothing keeps a
// reference into the buffer.

import { MessageKind, varintSize, writeVarint, type ByteSink } from '../../protocol/index.js';

/** A queue slot whose message lives in the stage (its offset in the channel's `staged` list, in order). */
export const STAGED = new Uint8Array(0);

/** Frames up to this length are handed over through a kept view (at most this many views, ≈ 100 B each). */
const MAX_VIEW = 2048;

/** BARE_FLAG (kinds.ts) as seen in the head's last byte. */
const BARE_BIT = 0x80;

/** Bytes of the in-memory message at `src[at]` (u32 little-endian head, BARE flag in its top bit). */
function inMemoryLength(src: Uint8Array, at: number): number {
  return 4 + (src[at]! | (src[at + 1]! << 8) | (src[at + 2]! << 16) | ((src[at + 3]! & 0x7f) << 24));
}

export class Stage implements ByteSink {
  /** Staged messages, in the in-memory form the Encoder makes (framing.ts), back to back. */
  bytes = new Uint8Array(64 * 1024);
  private end = 0;
  /** The frame being assembled (reused; a view of it goes to uWS, which copies). */
  private frame = new Uint8Array(64 * 1024);
  /** Views of `frame` by length, made once each (frames of a feed come in few lengths): no view per frame. */
  private views: Uint8Array[] = [];

  get size(): number {
    return this.end;
  }

  reserve(n: number): number {
    const at = this.end;
    if (at + n > this.bytes.byteLength) {
      const next = new Uint8Array(Math.max(this.bytes.byteLength * 2, at + n));
      next.set(this.bytes.subarray(0, at));
      this.bytes = next;
    }
    this.end = at + n;
    return at;
  }

  /** Forgets every staged message (after the turn's frames went out). */
  reset(): void {
    this.end = 0;
  }

  /**
   * A protocol-2 frame with sequence `seq` holding `parts[0..count)`; a part
   * that is STAGED is the next of `staged` (offsets into this stage, in order).
   */
  frame2(seq: number, parts: readonly Uint8Array[], count: number, staged: readonly number[]): Uint8Array {
    const src = this.bytes;
    let n = varintSize(seq);
    let k = 0;
    for (let i = 0; i < count; i++) {
      const p = parts[i]!;
      const len = p === STAGED ? inMemoryLength(src, staged[k++]!) : p.byteLength;
      const bare = p === STAGED ? (src[staged[k - 1]! + 3]! & BARE_BIT) !== 0 : (p[3]! & BARE_BIT) !== 0;
      const body = len - 4 + (bare ? 0 : 1);
      n += varintSize(body) + body;
    }
    if (n > this.frame.byteLength) {
      this.frame = new Uint8Array(Math.max(n, this.frame.byteLength * 2));
      this.views = [];
    }
    const out = this.frame;
    let at = writeVarint(out, 0, seq);
    k = 0;
    for (let i = 0; i < count; i++) {
      const p = parts[i]!;
      const buf = p === STAGED ? src : p;
      const from = p === STAGED ? staged[k++]! : 0;
      const len = p === STAGED ? inMemoryLength(src, from) : p.byteLength;
      if ((buf[from + 3]! & BARE_BIT) !== 0) at = writeVarint(out, at, len - 4);
      else {
        at = writeVarint(out, at, len - 3);
        out[at++] = MessageKind.MESSAGE;
      }
      // Small messages (most deltas) byte by byte: no view per message per frame.
      if (len <= 260) for (let j = 4; j < len; j++) out[at++] = buf[from + j]!;
      else {
        out.set(buf.subarray(from + 4, from + len), at);
        at += len - 4;
      }
    }
    if (n > MAX_VIEW) return out.subarray(0, n);
    return (this.views[n] ??= out.subarray(0, n));
  }
}
