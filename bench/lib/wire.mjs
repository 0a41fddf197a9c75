// The load generator's view of the wire: the cheapest reads of tickfan server
// messages (only what a scenario measures: body type, version, the publish
// timestamp in the first field) and the few client frames it sends.
// Hand-rolled FlatBuffers reads on purpose: the full decoder in src/protocol
// verifies and materialises everything, which would make the load generator
// the bottleneck. The schema is schemas/tickfan.fbs.

/** Body union ids (schemas/tickfan.fbs `union Body`). */
export const BODY = /** @type {const} */ ({
  Welcome: 2,
  Snapshot: 11,
  Delta: 12,
  TopicStatus: 13,
  Ack: 14,
  Error: 15,
  Heartbeat: 16,
});

export function u16(b, o) {
  return b[o] | (b[o + 1] << 8);
}

export function i32(b, o) {
  return b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24);
}

export function u32(b, o) {
  return i32(b, o) >>> 0;
}

/** 64-bit little-endian integer as a number (exact below 2^53). */
export function i64(b, o) {
  return u32(b, o) + i32(b, o + 4) * 4294967296;
}

/** Offset of field `idx` inside the table at `t`, or 0 when absent. */
export function fieldAt(b, t, idx) {
  const vt = t - i32(b, t);
  const slot = 4 + idx * 2;
  return slot < u16(b, vt) ? u16(b, vt + slot) : 0;
}

/** Position of the root table of the message whose bytes start at `m` (after its size prefix). */
function root(b, m) {
  return m + u32(b, m);
}

/** Body type of the message at `m` (0 when missing). */
export function bodyType(b, m) {
  const r = root(b, m);
  const o = fieldAt(b, r, 0);
  return o ? b[r + o] : 0;
}

/** Position of the body table of the message at `m`. */
export function body(b, m) {
  const r = root(b, m);
  const o = fieldAt(b, r, 1);
  return r + o + u32(b, r + o);
}

// Field slots: Snapshot { topic, epoch, version, fields, ts }, Delta { topic, epoch, base, version, updates, changes, ts }.
const VERSION_SLOT = { [BODY.Snapshot]: 2, [BODY.Delta]: 3 };
const FIELDS_SLOT = { [BODY.Snapshot]: 3, [BODY.Delta]: 5 };

/** Version carried by a Snapshot or Delta body at `t`. */
export function version(b, t, type) {
  const o = fieldAt(b, t, VERSION_SLOT[type]);
  return o ? i64(b, t + o) : 0;
}

/** Topic name of a Snapshot, Delta or TopicStatus body (slot 0 in each). */
export function topic(b, t) {
  const o = fieldAt(b, t, 0);
  const s = t + o + u32(b, t + o);
  return b.latin1Slice(s + 4, s + 4 + u32(b, s));
}

/** Ack id (Ack { id, … }). */
export function ackId(b, t) {
  const o = fieldAt(b, t, 0);
  return o ? u32(b, t + o) : 0;
}

const T = 0x74; // 't'

/**
 * The publish timestamp the benchmark publisher puts first in every update:
 * field 0 of the changes (Delta) or fields (Snapshot) when it is the integer
 * field "t" (CLOCK_MONOTONIC nanoseconds). -1 when absent.
 */
export function stamp(b, t, type) {
  const o = fieldAt(b, t, FIELDS_SLOT[type]);
  if (!o) return -1;
  const vec = t + o + u32(b, t + o);
  const n = u32(b, vec);
  // A snapshot's field order is the state's insertion order; look a little further.
  for (let i = 0, max = Math.min(n, 8); i < max; i++) {
    const e = vec + 4 + i * 4;
    const f = e + u32(b, e);
    const no = fieldAt(b, f, 0);
    const s = f + no + u32(b, f + no);
    if (u32(b, s) !== 1 || b[s + 4] !== T) continue;
    const io = fieldAt(b, f, 3);
    return io ? i64(b, f + io) : -1;
  }
  return -1;
}

// ------------------------------------------------------------ protocol 2

/** Protocol-2 message kinds (src/protocol/kinds.ts): the byte before each root. */
export const KIND = /** @type {const} */ ({ MESSAGE: 0, SNAPSHOT2: 1, DELTA2: 2 });

/** Bytes of the unsigned varint at `o` (at most 8), or avail + 1 when it runs past `avail` bytes. */
export function varintLen(b, o, avail) {
  const max = Math.min(avail, 8);
  for (let i = 0; i < max; i++) if (b[o + i] < 128) return i + 1;
  return avail + 1;
}

/** The unsigned varint at `o` (up to 2^53). */
export function varint(b, o) {
  let n = 0;
  let scale = 1;
  for (let i = 0; i < 8; i++) {
    const x = b[o + i];
    n += (x & 127) * scale;
    if (x < 128) break;
    scale *= 128;
  }
  return n;
}

/**
 * The publish timestamp in a protocol-2 Delta2 whose root buffer starts at
 * `m` (after its kind byte): the first INT entry of its packed changes (the
 * benchmark publisher's only integer field, `t`, first). -1 when absent.
 */
export function stamp2(b, m) {
  const t = m + u32(b, m);
  const o = fieldAt(b, t, 2); // Delta2.changes
  if (!o) return -1;
  const vec = t + o + u32(b, t + o);
  let p = vec + 4;
  const end = p + u32(b, vec);
  for (let i = 0; i < 8 && p < end; i++) {
    const key = varint(b, p);
    p += varintLen(b, p, end - p);
    if (key & 1) {
      const n = varint(b, p);
      p += varintLen(b, p, end - p) + n;
    }
    const tag = b[p++];
    switch (tag & 7) {
      case 2: {
        const z = varint(b, p);
        return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
      }
      case 1:
        p += varintLen(b, p, end - p);
        break;
      case 3:
        p += 8;
        break;
      case 4:
      case 6: {
        const n = varint(b, p);
        p += varintLen(b, p, end - p) + n;
        break;
      }
      default:
        break; // delete, bool: no payload
    }
  }
  return -1;
}

/** Protocol a Welcome body at `t` announces (Welcome.protocol, slot 0). */
export function welcomeProtocol(b, t) {
  const o = fieldAt(b, t, 0);
  return o ? u16(b, t + o) : 1;
}

// ------------------------------------------------------------ client frames

/** A masked client WebSocket frame (mask key 0: valid, and the payload stays as is). */
export function wsFrame(payload, opcode = 2) {
  const n = payload.length;
  let head;
  if (n < 126) {
    head = Buffer.from([0x80 | opcode, 0x80 | n, 0, 0, 0, 0]);
  } else if (n < 65536) {
    head = Buffer.from([0x80 | opcode, 0x80 | 126, n >> 8, n & 255, 0, 0, 0, 0]);
  } else {
    head = Buffer.alloc(14);
    head[0] = 0x80 | opcode;
    head[1] = 0x80 | 127;
    head.writeUInt32BE(Math.floor(n / 4294967296), 2);
    head.writeUInt32BE(n >>> 0, 6);
  }
  return Buffer.concat([head, Buffer.isBuffer(payload) ? payload : Buffer.from(payload)]);
}

export function upgradeRequest(path, port, subprotocol = '') {
  return (
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${subprotocol ? `Sec-WebSocket-Protocol: ${subprotocol}\r\n` : ''}\r\n`
  );
}

/**
 * Walks the complete (unmasked, server → client) WebSocket frames in `b`:
 * `each(first, payloadAt, payloadLen, headerLen)` per frame, `first` being its
 * first byte (FIN, RSV1, opcode). Returns the offset of the first incomplete
 * frame (the caller keeps `b.subarray(offset)` for the next chunk).
 */
export function eachServerFrame(b, each) {
  let o = 0;
  while (o + 2 <= b.length) {
    let len = b[o + 1] & 127;
    let h = 2;
    if (len === 126) {
      if (o + 4 > b.length) break;
      len = b.readUInt16BE(o + 2);
      h = 4;
    } else if (len === 127) {
      if (o + 10 > b.length) break;
      len = Number(b.readBigUInt64BE(o + 2));
      h = 10;
    }
    if (o + h + len > b.length) break;
    each(b[o], o + h, len, h);
    o += h + len;
  }
  return o;
}
