// Frames on the WebSocket. Protocol 1: a server frame is `u64 seq` + u32
// size-prefixed messages; protocol 2: `varint seq` + varint size-prefixed
// messages; a client frame is u32 size-prefixed messages in both. Splitting,
// numbering and assembling frames; the messages are encode.ts / decode.ts.
// Encoded messages are always u32 size-prefixed in memory: a protocol-2 frame
// writer swaps the prefix for a varint as it copies them.

import { ErrorCode, TickfanError } from './codes.js';
import { decodeMessage, decodeMessage2 } from './decode.js';
import { MessageKind } from './kinds.js';
import type { AnyMessage } from './messages.js';

/** Bytes before the first message of a server frame (the u64 sequence). */
export const SERVER_FRAME_HEADER = 8;
/** Bytes before the first message of a protocol-2 frame published to many (varint sequence 0). */
export const SERVER_FRAME_HEADER_V2 = 1;

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

// ---------------------------------------------------------------- protocol 2

/** Bytes of `n` as an unsigned LEB128 varint. */
export function varintSize(n: number): number {
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Writes `n` as an unsigned LEB128 varint at `at`; returns the offset after it. */
export function writeVarint(buf: Uint8Array, at: number, n: number): number {
  while (n >= 128) {
    buf[at++] = (n % 128) | 128;
    n = Math.floor(n / 128);
  }
  buf[at++] = n;
  return at;
}

/** Reads an unsigned varint (up to 2^53) at `at`; BAD_FRAME when truncated or too long. */
export function readVarint(frame: Uint8Array, at: number): { value: number; next: number } {
  let n = 0;
  let scale = 1;
  for (let i = 0; i < 8; i++) {
    if (at >= frame.byteLength) throw new TickfanError(ErrorCode.BAD_FRAME, `truncated varint at byte ${at}`);
    const b = frame[at++]!;
    n += (b & 127) * scale;
    if (b < 128) {
      // Past 2^53 it would not be exact (an 8-byte varint holds up to 2^56).
      if (n > Number.MAX_SAFE_INTEGER) throw new TickfanError(ErrorCode.BAD_FRAME, `varint past 2^53 at byte ${at - i - 1}`);
      return { value: n, next: at };
    }
    scale *= 128;
  }
  throw new TickfanError(ErrorCode.BAD_FRAME, `varint longer than 8 bytes at byte ${at - 8}`);
}

/** Bytes one in-memory message takes in a protocol-2 frame (a Message gains its kind byte 0). */
function size2(p: Uint8Array): number {
  const body = p.byteLength - 4 + (isBare(p) ? 0 : 1);
  return varintSize(body) + body;
}

function isBare(p: Uint8Array): boolean {
  return (p[3]! & 0x80) !== 0;
}

/** Bytes of a server frame holding `parts` (in-memory messages) in `protocol`'s framing. */
export function serverFrameSize(protocol: number, seq: number, parts: readonly Uint8Array[]): number {
  let n = protocol === 2 ? varintSize(seq) : SERVER_FRAME_HEADER;
  for (const p of parts) n += protocol === 2 ? size2(p) : p.byteLength;
  return n;
}

/**
 * Protocol-2 server frames: `varint seq` + messages, each as `varint size |
 * kind | buffer` (a Message gets kind 0; Snapshot2 / Delta2 carry theirs).
 * The view is valid until the next call.
 */
export class FrameWriter2 {
  private buf = new Uint8Array(64 * 1024);

  /** `parts` are in-memory messages as the Encoder makes them. */
  write(seq: number, parts: readonly Uint8Array[], count = parts.length): Uint8Array {
    let n = varintSize(seq);
    for (let i = 0; i < count; i++) n += size2(parts[i]!);
    if (n > this.buf.byteLength) this.buf = new Uint8Array(Math.max(n, this.buf.byteLength * 2));
    const buf = this.buf;
    let at = writeVarint(buf, 0, seq);
    for (let i = 0; i < count; i++) {
      const p = parts[i]!;
      if (isBare(p)) {
        at = writeVarint(buf, at, p.byteLength - 4);
      } else {
        at = writeVarint(buf, at, p.byteLength - 3);
        buf[at++] = MessageKind.MESSAGE;
      }
      // Small messages (most deltas) byte by byte: no view per message per frame.
      const end = p.byteLength;
      if (end <= 260) for (let j = 4; j < end; j++) buf[at++] = p[j]!;
      else {
        buf.set(p.subarray(4), at);
        at += end - 4;
      }
    }
    return buf.subarray(0, n);
  }
}

/** Splits the varint size-prefixed messages of a protocol-2 frame starting at `offset`. */
export function splitMessages2(frame: Uint8Array, offset: number, each: (msg: Uint8Array) => void): void {
  let at = offset;
  if (at >= frame.byteLength) throw new TickfanError(ErrorCode.BAD_FRAME, 'empty frame: expected at least one message');
  while (at < frame.byteLength) {
    const { value: size, next } = readVarint(frame, at);
    if (size === 0 || next + size > frame.byteLength) {
      throw new TickfanError(ErrorCode.BAD_FRAME, `size ${size} at byte ${at} runs past the frame (${frame.byteLength} bytes)`);
    }
    each(frame.subarray(next, next + size));
    at = next + size;
  }
}

/** Decodes a whole protocol-2 server frame. */
export function decodeServerFrame2(frame: Uint8Array): { seq: number; messages: AnyMessage[] } {
  const { value: seq, next } = readVarint(frame, 0);
  const messages: AnyMessage[] = [];
  splitMessages2(frame, next, (m) => messages.push(decodeMessage2(m)));
  return { seq, messages };
}

/**
 * A client's reader of server frames: protocol-1 framing until a frame holds
 * a Welcome announcing protocol 2, protocol-2 framing from the next frame on.
 */
export class ServerFrameReader {
  /** The framing of the next frame. */
  protocol = 1;

  /**
   * The frame's sequence number and its messages up to the first one that
   * does not decode (`error` then says why: the messages before it still
   * count). Throws BAD_FRAME only when not even the sequence number reads.
   */
  read(frame: Uint8Array): { seq: number; messages: AnyMessage[]; error: unknown } {
    let seq: number;
    let at: number;
    if (this.protocol === 2) ({ value: seq, next: at } = readVarint(frame, 0));
    else (seq = frameSeq(frame)), (at = SERVER_FRAME_HEADER);
    const messages: AnyMessage[] = [];
    let error: unknown = null;
    try {
      if (this.protocol === 2) splitMessages2(frame, at, (m) => messages.push(decodeMessage2(m)));
      else splitMessages(frame, at, (m) => messages.push(decodeMessage(m)));
    } catch (err) {
      error = err;
    }
    for (const m of messages) if (m.type === 'welcome' && m.protocol === 2) this.protocol = 2;
    return { seq, messages, error };
  }
}
