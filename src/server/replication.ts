// Replication: how a replica (a fan-out worker thread, a cluster edge) follows
// a sequencer it does not share memory with. A sequenced update travels as
// the protocol-2 Delta2 that full-rate clients receive, behind a small head
// (time, epoch, topic id and name); a replica that falls out of step takes
// the sequencer's exact image of the topic instead.

import type { Accepted, Topic, TopicStore } from '../engine/index.js';
import type { Changes, Delta2Msg, FieldValue } from '../protocol/index.js';

/** What a replica needs of an update besides the Delta2 itself. */
export interface UpdateHead {
  ts: number;
  epoch: number;
  topicId: number;
  topic: string;
}

/** A topic's exact image, for a replica that (re)synchronises. */
export interface TopicImage {
  name: string;
  id: number;
  /** Field names by protocol-2 id (index 0 unused). */
  fieldNames: string[];
  epoch: number;
  version: number;
  ts: number;
  stale: boolean;
  state: [string, FieldValue][];
}

const HEAD = 8 + 8 + 4 + 2;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** `f64 ts | f64 epoch | u32 topic id | u16 n | n bytes utf8 topic | Delta2 (as the Encoder made it)`. */
export function encodeUpdate(h: UpdateHead, delta2: Uint8Array): Uint8Array {
  const name = utf8.encode(h.topic);
  const out = new Uint8Array(HEAD + name.byteLength + delta2.byteLength);
  const view = new DataView(out.buffer);
  view.setFloat64(0, h.ts, true);
  view.setFloat64(8, h.epoch, true);
  view.setUint32(16, h.topicId, true);
  view.setUint16(20, name.byteLength, true);
  out.set(name, HEAD);
  out.set(delta2, HEAD + name.byteLength);
  return out;
}

/** An encoded update: its head and the Delta2 (a view into `body`). */
export function readUpdate(body: Uint8Array): UpdateHead & { delta2: Uint8Array } {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const n = view.getUint16(20, true);
  return {
    ts: view.getFloat64(0, true),
    epoch: view.getFloat64(8, true),
    topicId: view.getUint32(16, true),
    topic: fromUtf8.decode(body.subarray(HEAD, HEAD + n)),
    delta2: body.subarray(HEAD + n),
  };
}

/**
 * Applies one sequenced update: field ids become names through the replica's
 * own dictionary (or the names the update carries for new ids), which must
 * agree with the sequencer's id for id. Null when it is not the next version
 * of that epoch, or the dictionaries disagree: the replica must resynchronise.
 */
export function applyUpdate(store: TopicStore, u: UpdateHead, d: Delta2Msg): Accepted | null {
  const topic = store.get(u.topic);
  const changes: Changes = new Map();
  for (const e of d.entries) {
    const name = e.name ?? topic?.fieldName(e.id);
    if (name === undefined) return null;
    changes.set(name, e.value);
  }
  const a = store.applySequenced(u.topic, u.epoch, d.version, changes, u.ts, u.topicId);
  if (!a) return null;
  for (const e of d.entries) if (e.name !== undefined && e.id > 0 && a.topic.fieldId(e.name) !== e.id) return null;
  return a;
}

/** The exact image of a topic now. */
export function imageOf(t: Topic): TopicImage {
  return { name: t.name, id: t.id, epoch: t.epoch, version: t.version, ts: t.ts, stale: t.stale, state: [...t.state], fieldNames: [...t.fieldNames()] };
}
