// The JSON an SSE event carries for one server message, made once per update
// however many streams carry it: fan-out hands the same FlatBuffers buffer to
// every subscriber of a channel, so the cache is keyed by that buffer.
// Keyed topics' messages arrive in their JSON form already (made once per
// channel by fan-out: fanout/keyed-json-wire.ts).

import { decodeMessage, messageToJson } from '../../protocol/index.js';
import { keyedJsonOf } from '../fanout/keyed-json-wire.js';

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
  const k = keyedJsonOf(buf);
  if (k) {
    // Keyed topics come as JSON already (fanout/keyed-json-wire.ts); a snapshot is held only with its last part.
    e = { json: k.json, topic: k.topic, epoch: k.epoch, version: k.kind === 'keyedDelta' || k.last ? k.version : -1 };
    jsonCache.set(buf, e);
    return e;
  }
  // Fan-out's messages are size-prefixed (ready to be framed): skip the u32 prefix.
  const m = decodeMessage(buf.subarray(4));
  const held = m.type === 'snapshot' || m.type === 'delta';
  e = { json: JSON.stringify(messageToJson(m)), topic: held ? m.topic : '', epoch: held ? m.epoch : 0, version: held ? m.version : -1 };
  jsonCache.set(buf, e);
  return e;
}
