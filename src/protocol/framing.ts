// Frames on the WebSocket: a server frame is `u64 seq` + size-prefixed
// messages, a client frame is size-prefixed messages. Splitting, numbering
// and assembling frames; the messages themselves are encode.ts / decode.ts.

import { ErrorCode, TickfanError } from './codes.js';
import { decodeMessage } from './decode.js';
import type { AnyMessage } from './messages.js';

/** Bytes before the first message of a server frame (the u64 sequence). */
export const SERVER_FRAME_HEADER = 8;

/**
 * Splits a run of size-prefixed messages starting at `offset`. Calls `each`
 * with every message body in order; throws BAD_FRAME on a bad prefix.
 */
export function splitMessages(frame: Uint8Array, offset: number, each: (msg: Uint8Array) => void): void {
  const v = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  let at = offset;
  if (at >= frame.byteLength) throw new TickfanError(ErrorCode.BAD_FRAME, 'empty frame: expected at least one size-prefixed message');
  while (at < frame.byteLength) {
    if (at + 4 > frame.byteLength) throw new TickfanError(ErrorCode.BAD_FRAME, `truncated size prefix at byte ${at}`);
    const size = v.getUint32(at, true);
    if (size === 0 || at + 4 + size > frame.byteLength) {
      throw new TickfanError(ErrorCode.BAD_FRAME, `size prefix ${size} at byte ${at} runs past the frame (${frame.byteLength} bytes)`);
    }
    each(frame.subarray(at + 4, at + 4 + size));
    at += 4 + size;
  }
}

/** Reads the sequence number of a server frame. */
export function frameSeq(frame: Uint8Array): number {
  if (frame.byteLength < SERVER_FRAME_HEADER) throw new TickfanError(ErrorCode.BAD_FRAME, 'server frame shorter than its header');
  const v = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  return v.getUint32(0, true) + v.getUint32(4, true) * 2 ** 32;
}

/** Decodes a whole server frame: its sequence number and messages. */
export function decodeServerFrame(frame: Uint8Array): { seq: number; messages: AnyMessage[] } {
  const seq = frameSeq(frame);
  const messages: AnyMessage[] = [];
  splitMessages(frame, SERVER_FRAME_HEADER, (m) => messages.push(decodeMessage(m)));
  return { seq, messages };
}

/** Concatenates size-prefixed messages into one client frame. */
export function clientFrame(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  let n = 0;
  for (const p of parts) n += p.byteLength;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) out.set(p, at), (at += p.byteLength);
  return out;
}

/**
 * Writes a server frame (sequence + messages) into `scratch`, growing it when
 * needed, and returns the view to send. The view is only valid until the next
 * call: uWebSockets.js copies it on send.
 */
export class FrameWriter {
  private buf = new Uint8Array(64 * 1024);
  private view = new DataView(this.buf.buffer);

  write(seq: number, parts: readonly Uint8Array[], count = parts.length): Uint8Array {
    let n = SERVER_FRAME_HEADER;
    for (let i = 0; i < count; i++) n += parts[i]!.byteLength;
    if (n > this.buf.byteLength) {
      this.buf = new Uint8Array(Math.max(n, this.buf.byteLength * 2));
      this.view = new DataView(this.buf.buffer);
    }
    this.view.setUint32(0, seq >>> 0, true);
    this.view.setUint32(4, Math.floor(seq / 2 ** 32), true);
    let at = SERVER_FRAME_HEADER;
    for (let i = 0; i < count; i++) {
      const p = parts[i]!;
      this.buf.set(p, at);
      at += p.byteLength;
    }
    return this.buf.subarray(0, n);
  }
}
