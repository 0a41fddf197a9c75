// Record formats carried by the shared rings between the sequencer and the
// fan-out workers. Updates travel as the very protocol-2 Delta2 message
// clients receive, so a worker forwards it to full-rate subscribers without
// re-encoding; what a replica needs besides (name, epoch, time) rides in front.
//
// broadcast (sequencer → workers): u8 type | u8 origin worker | u16 0 | u32 request id | body
//   UPDATE body: an encoded update (server/replication.ts: head + Delta2)
//   REJECT body: u16 error code | utf8 message
//   STATUS body: u8 stale | utf8 topic
// publish (worker → sequencer): u32 request id | Publish message (no size prefix)

export const RecordType = { UPDATE: 1, REJECT: 2, STATUS: 3 } as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

/** Origin of publishes made in the sequencer's own thread (no worker waits for them). */
export const NO_ORIGIN = 255;
const HEAD = 8;
import { encodeUpdate, type UpdateHead } from '../server/replication.js';

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

export interface BroadcastRecord {
  type: RecordType;
  origin: number;
  requestId: number;
  body: Uint8Array;
}

function head(type: RecordType, origin: number, requestId: number, bodyLength: number): { out: Uint8Array; view: DataView } {
  const out = new Uint8Array(HEAD + bodyLength);
  const view = new DataView(out.buffer);
  view.setUint8(0, type);
  view.setUint8(1, origin);
  view.setUint32(4, requestId, true);
  return { out, view };
}

/** An UPDATE record: the sequenced update in replication's form (server/replication.ts). */
export function updateRecord(origin: number, requestId: number, h: UpdateHead, delta2: Uint8Array): Uint8Array {
  const body = encodeUpdate(h, delta2);
  const { out } = head(RecordType.UPDATE, origin, requestId, body.byteLength);
  out.set(body, HEAD);
  return out;
}

export function rejectRecord(origin: number, requestId: number, code: number, message: string): Uint8Array {
  const text = utf8.encode(message);
  const { out, view } = head(RecordType.REJECT, origin, requestId, 2 + text.byteLength);
  view.setUint16(HEAD, code, true);
  out.set(text, HEAD + 2);
  return out;
}

export function statusRecord(topic: string, stale: boolean): Uint8Array {
  const text = utf8.encode(topic);
  const { out } = head(RecordType.STATUS, NO_ORIGIN, 0, 1 + text.byteLength);
  out[HEAD] = stale ? 1 : 0;
  out.set(text, HEAD + 1);
  return out;
}

export function readBroadcast(rec: Uint8Array): BroadcastRecord {
  const view = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
  return { type: view.getUint8(0) as RecordType, origin: view.getUint8(1), requestId: view.getUint32(4, true), body: rec.subarray(HEAD) };
}

export function readReject(body: Uint8Array): { code: number; message: string } {
  return { code: new DataView(body.buffer, body.byteOffset).getUint16(0, true), message: fromUtf8.decode(body.subarray(2)) };
}

export function readStatus(body: Uint8Array): { topic: string; stale: boolean } {
  return { stale: body[0] === 1, topic: fromUtf8.decode(body.subarray(1)) };
}

export function publishRecord(requestId: number, publishMessage: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + publishMessage.byteLength);
  new DataView(out.buffer).setUint32(0, requestId, true);
  out.set(publishMessage, 4);
  return out;
}

export function readPublish(rec: Uint8Array): { requestId: number; message: Uint8Array } {
  return { requestId: new DataView(rec.buffer, rec.byteOffset).getUint32(0, true), message: rec.subarray(4) };
}
