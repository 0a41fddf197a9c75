// Record formats carried by the shared rings between the sequencer and the
// fan-out workers. Updates travel as the very protocol-2 Delta2 message
// clients receive, so a worker forwards it to full-rate subscribers without
// re-encoding; what a replica needs besides (name, epoch, time) rides in front.
//
// broadcast (sequencer → workers): u8 type | u8 origin worker | u16 0 | u32 request id | body
//   UPDATE body: an encoded update (server/replication.ts: head + Delta2 [+ bigint marks] [+ keyed part])
//   REJECT body: u16 error code | utf8 message; a refused keyed batch: u16 code | 0x8000,
//               then utf8 JSON {message, refusal} (table, row key, reason: KeyedBatchError again)
//   STATUS body: u8 stale | utf8 topic
// publish (worker → sequencer): u32 request id | Publish message (no size prefix); a keyed batch
//   with declarations sets bit 31 of the id and puts them (JSON, maxRows kept) before the Publish

export const RecordType = { UPDATE: 1, REJECT: 2, STATUS: 3 } as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

/** Origin of publishes made in the sequencer's own thread (no worker waits for them). */
export const NO_ORIGIN = 255;
const HEAD = 8;
import { encodeUpdate, type UpdateHead } from '../server/replication.js';
import type { KeyedRefusal } from '../server/replication-keyed.js';
import type { TableSpec } from '../protocol/index.js';

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
export function updateRecord(origin: number, requestId: number, h: UpdateHead, delta2: Uint8Array, keyed?: Uint8Array, marks?: Uint8Array): Uint8Array {
  const body = encodeUpdate(h, delta2, keyed, marks);
  const { out } = head(RecordType.UPDATE, origin, requestId, body.byteLength);
  out.set(body, HEAD);
  return out;
}

const REFUSAL = 0x8000;

export function rejectRecord(origin: number, requestId: number, code: number, message: string, refusal?: KeyedRefusal): Uint8Array {
  const text = utf8.encode(refusal === undefined ? message : JSON.stringify({ message, refusal }));
  const { out, view } = head(RecordType.REJECT, origin, requestId, 2 + text.byteLength);
  view.setUint16(HEAD, refusal === undefined ? code : code | REFUSAL, true);
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

export function readReject(body: Uint8Array): { code: number; message: string; refusal?: KeyedRefusal } {
  const raw = new DataView(body.buffer, body.byteOffset).getUint16(0, true);
  const text = fromUtf8.decode(body.subarray(2));
  if ((raw & REFUSAL) === 0) return { code: raw, message: text };
  const j = JSON.parse(text) as { message: string; refusal: KeyedRefusal };
  return { code: raw & (REFUSAL - 1), message: j.message, refusal: j.refusal };
}

export function readStatus(body: Uint8Array): { topic: string; stale: boolean } {
  return { stale: body[0] === 1, topic: fromUtf8.decode(body.subarray(1)) };
}

/** Set in a publish record's request id when the batch's declarations follow as JSON (Publish's table bindings drop maxRows). */
const DECLARES = 0x80000000;
/** Request ids stay below bit 31. */
export const MAX_REQUEST_ID = DECLARES - 1;

/** `u32 request id | Publish`; with `declare`: `u32 request id | 1<<31 | u32 n | n bytes JSON TableSpec[] | Publish`. */
export function publishRecord(requestId: number, publishMessage: Uint8Array, declare?: readonly TableSpec[]): Uint8Array {
  const specs = declare?.length ? utf8.encode(JSON.stringify(declare)) : undefined;
  const head = specs === undefined ? 4 : 8 + specs.byteLength;
  const out = new Uint8Array(head + publishMessage.byteLength);
  const view = new DataView(out.buffer);
  view.setUint32(0, specs === undefined ? requestId : (requestId | DECLARES) >>> 0, true);
  if (specs !== undefined) {
    view.setUint32(4, specs.byteLength, true);
    out.set(specs, 8);
  }
  out.set(publishMessage, head);
  return out;
}

export function readPublish(rec: Uint8Array): { requestId: number; message: Uint8Array; declare?: TableSpec[] } {
  const view = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
  const raw = view.getUint32(0, true);
  if ((raw & DECLARES) === 0) return { requestId: raw, message: rec.subarray(4) };
  const n = view.getUint32(4, true);
  return { requestId: (raw & ~DECLARES) >>> 0, message: rec.subarray(8 + n), declare: JSON.parse(fromUtf8.decode(rec.subarray(8, 8 + n))) as TableSpec[] };
}
