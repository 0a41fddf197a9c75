// A TCP proxy between one WebSocket client and the server that can corrupt
// one row value of a KeyedDelta2 in flight: it parses the server's WebSocket
// frames (unmasked, after the HTTP 101 answer), reads the protocol-2 frame in
// a binary message (varint seq, then varint size | kind | buffer), finds a
// KeyedDelta2's op stream (kind 4, or its body alone: kind 5) and flips one
// bit of the first mantissa byte of a numeric row entry (decimal or integer),
// so the message still decodes and only that value is wrong. Client → server
// bytes pass untouched.

import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { ByteBuffer } from 'flatbuffers';
import * as fb from '../../src/protocol/generated/tickfan.js';

const KEYED_DELTA2 = 4;
/** A KeyedDelta2 that has nothing but its body travels as the body alone. */
const KEYED_BODY2 = 5;

function varint(b: Uint8Array, at: number): [number, number] {
  let n = 0;
  let scale = 1;
  for (;;) {
    if (at >= b.length) throw new Error('truncated varint');
    const x = b[at++]!;
    n += (x & 127) * scale;
    if (x < 128) return [n, at];
    scale *= 128;
  }
}

/**
 * Skips the chained entries at `at` (docs/protocol.md, "Keyed topics"); with
 * `find`, returns the offset of the first numeric payload instead (-1: none).
 */
function entries(b: Uint8Array, at: number, find: boolean): [number, number] {
  if (b[at] === 0) return [-1, at + 1]; // the empty list
  for (;;) {
    let k: number;
    [k, at] = varint(b, at);
    const more = (k & 1) !== 0;
    const int = (k & 2) !== 0;
    if ((k >> 2) & 1) {
      let n: number;
      [n, at] = varint(b, at);
      at += n; // the name
    }
    if (int) {
      if (find) return [at, at]; // a tagless integer: its zigzag varint
      [, at] = varint(b, at);
    } else {
      const tag = b[at++]!;
      const kind = tag & 7;
      if (find && (kind === 1 || kind === 2)) return [at, at];
      if (kind === 1 || kind === 2) [, at] = varint(b, at);
      else if (kind === 3) at += 8;
      else if (kind === 4 || kind === 6) {
        let n: number;
        [n, at] = varint(b, at);
        at += n;
      } // 0 delete, 5 bool: no payload
    }
    if (!more) return [-1, at];
  }
}

/** Offset (in a KeyedDelta2's `body`) of the first byte of a numeric row entry's payload, or -1. */
export function numericValueOffset(body: Uint8Array): number {
  let at = 0;
  let h: number;
  [h, at] = varint(body, at); // topic id, checksum and span flags
  [, at] = varint(body, at); // version
  if (h & 1) [, at] = varint(body, at); // span
  if (h & 2) at += 4; // the checksum
  if (body[at] === 7) [, at] = entries(body, at + 1, false); // the summary
  let stringKeys = false;
  while (at < body.length) {
    let head: number;
    [head, at] = varint(body, at);
    const code = head % 8;
    const arg = Math.floor(head / 8);
    if (code === 6) {
      stringKeys = (arg & 2) !== 0; // a table op
      continue;
    }
    if (code === 3) continue; // clear: nothing more
    if (stringKeys) {
      let n: number;
      [n, at] = varint(body, at);
      at += n;
    } else if (arg === 0) [, at] = varint(body, at); // a step too big for the head
    if (code === 2) continue; // delete: key only
    let found: number;
    [found, at] = entries(body, at, true);
    if (found >= 0) return found;
  }
  return -1;
}

/**
 * Corrupts a protocol-2 frame in place if it holds a KeyedDelta2 with a
 * numeric row value; returns that delta's version, or -1.
 */
export function corruptFrame(frame: Uint8Array): number {
  let [, at] = varint(frame, 0); // seq
  while (at < frame.length) {
    let size: number;
    [size, at] = varint(frame, at);
    const kind = frame[at]!;
    const start = at + 1;
    const end = at + size;
    if (kind === KEYED_DELTA2 || kind === KEYED_BODY2) {
      const copy = frame.slice(start, end);
      // The body: where kind 4's FlatBuffers table points, or the whole of kind 5.
      const body = kind === KEYED_BODY2 ? copy : fb.KeyedDelta2.getRootAsKeyedDelta2(new ByteBuffer(copy)).bodyArray();
      if (body) {
        const off = numericValueOffset(body);
        if (off >= 0) {
          // zigzag bit 1 ↔ the magnitude's lowest bit; the continuation bit is untouched.
          frame[start + body.byteOffset - copy.byteOffset + off]! ^= 0x02;
          const [, v] = varint(body, 0);
          return varint(body, v)[0];
        }
      }
    }
    at = end;
  }
  return -1;
}

export class CorruptingProxy {
  /** Set to corrupt the next KeyedDelta2 with a numeric row value; cleared once done. */
  armed = false;
  /** Versions of the deltas corrupted so far. */
  readonly corrupted: number[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<CorruptingProxy> {
    let self: CorruptingProxy | undefined;
    const server = createServer((client) => self!.pipe(client, connect(targetPort, '127.0.0.1')));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    self = new CorruptingProxy(server, (server.address() as AddressInfo).port);
    return self;
  }

  private pipe(client: Socket, upstream: Socket): void {
    this.sockets.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    let buf: Buffer = Buffer.alloc(0);
    let upgraded = false;
    upstream.on('data', (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        client.write(buf.subarray(0, end + 4));
        buf = buf.subarray(end + 4);
        upgraded = true;
      }
      // Whole WebSocket frames only; a partial one waits for the rest.
      for (;;) {
        if (buf.length < 2) break;
        const b0 = buf[0]!;
        let len = buf[1]! & 127;
        let hdr = 2;
        if (len === 126) {
          if (buf.length < 4) break;
          len = buf.readUInt16BE(2);
          hdr = 4;
        } else if (len === 127) {
          if (buf.length < 10) break;
          len = Number(buf.readBigUInt64BE(2));
          hdr = 10;
        }
        if (buf.length < hdr + len) break;
        const frame = buf.subarray(0, hdr + len);
        buf = buf.subarray(hdr + len);
        // FIN, no RSV bits (not compressed), binary.
        if (this.armed && b0 === 0x82) {
          const payload = new Uint8Array(frame.buffer, frame.byteOffset + hdr, len);
          let v = -1;
          try {
            v = corruptFrame(payload);
          } catch {
            v = -1;
          }
          if (v >= 0) {
            this.armed = false;
            this.corrupted.push(v);
          }
        }
        client.write(Buffer.from(frame));
      }
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
