// The JSON an SSE event carries for one server message, made once per update
// however many streams carry it: fan-out hands the same FlatBuffers buffer to
// every subscriber of a channel, so the cache is keyed by that buffer.

import { decodeMessage, messageToJson } from '../../protocol/index.js';

/** One server message, encoded for SSE. */
export interface JsonMessage {
  json: string;
  /** For snapshots and deltas: what the client holds after applying it (version -1 otherwise). */
  topic: string;
  epoch: number;
  version: number;
}

const jsonCache = new WeakMap<Uint8Array, JsonMessage>();

/** The JSON form of a size-prefixed message from fan-out; throws if it does not decode. */
export function jsonOf(buf: Uint8Array): JsonMessage {
  let e = jsonCache.get(buf);
  if (e) return e;
  // Fan-out's messages are size-prefixed (ready to be framed): skip the u32 prefix.
  const m = decodeMessage(buf.subarray(4));
  const held = m.type === 'snapshot' || m.type === 'delta';
  e = { json: JSON.stringify(messageToJson(m)), topic: held ? m.topic : '', epoch: held ? m.epoch : 0, version: held ? m.version : -1 };
  jsonCache.set(buf, e);
  return e;
}
