// Replication: how a replica (a fan-out worker thread, a cluster edge) follows
// a sequencer it does not share memory with. A sequenced update travels as
// the protocol-2 Delta2 that full-rate clients receive, behind a small head
// (time, epoch, topic id and name); a keyed batch adds its net row change
// (replication-keyed.ts) after the Delta2. A replica that falls out of step
// takes the sequencer's exact image of the topic (tables included) instead.

import type { Accepted, KeyedChange, KeyedImage, Topic, TopicStore } from '../engine/index.js';
import type { Changes, Delta2Msg, FieldValue } from '../protocol/index.js';
import { decodeKeyedPart } from './replication-keyed.js';

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
  /** A keyed topic's tables at `version` (absent for a flat topic). */
  tables?: KeyedImage;
}

const HEAD = 8 + 8 + 4 + 2;
/** Set in the name length of an update that carries a keyed part. */
const KEYED = 0x8000;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/**
 * Flat: `f64 ts | f64 epoch | u32 topic id | u16 n | n bytes utf8 topic | Delta2 (as the Encoder made it)`.
 * Keyed (a batch's net row change, `keyed`): the same head with bit 15 of n
 * set, then `u32 Delta2 length | Delta2 | keyed part` (replication-keyed.ts).
 * A flat update is byte for byte what it was before keyed topics.
 */
export function encodeUpdate(h: UpdateHead, delta2: Uint8Array, keyed?: Uint8Array): Uint8Array {
  const name = utf8.encode(h.topic);
  if (name.byteLength >= KEYED) throw new RangeError(`topic name of ${name.byteLength} bytes`);
  const extra = keyed === undefined ? 0 : 4 + keyed.byteLength;
  const out = new Uint8Array(HEAD + name.byteLength + delta2.byteLength + extra);
  const view = new DataView(out.buffer);
  view.setFloat64(0, h.ts, true);
  view.setFloat64(8, h.epoch, true);
  view.setUint32(16, h.topicId, true);
  view.setUint16(20, name.byteLength | (keyed === undefined ? 0 : KEYED), true);
  out.set(name, HEAD);
  let at = HEAD + name.byteLength;
  if (keyed !== undefined) {
    view.setUint32(at, delta2.byteLength, true);
    at += 4;
  }
  out.set(delta2, at);
  if (keyed !== undefined) out.set(keyed, at + delta2.byteLength);
  return out;
}

/** An encoded update: its head, the Delta2 and the keyed part if any (views into `body`). */
export function readUpdate(body: Uint8Array): UpdateHead & { delta2: Uint8Array; keyed: Uint8Array | undefined } {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const raw = view.getUint16(20, true);
  const n = raw & (KEYED - 1);
  const head = { ts: view.getFloat64(0, true), epoch: view.getFloat64(8, true), topicId: view.getUint32(16, true), topic: fromUtf8.decode(body.subarray(HEAD, HEAD + n)) };
  if ((raw & KEYED) === 0) return { ...head, delta2: body.subarray(HEAD + n), keyed: undefined };
  const at = HEAD + n + 4;
  const len = view.getUint32(HEAD + n, true);
  if (at + len > body.byteLength) throw new RangeError('a replicated update shorter than its Delta2');
  return { ...head, delta2: body.subarray(at, at + len), keyed: body.subarray(at + len) };
}

/**
 * Applies one sequenced update: field ids become names through the replica's
 * own dictionary (or the names the update carries for new ids), which must
 * agree with the sequencer's id for id; a keyed part is applied to the
 * replica's tables in the same version. Null — nothing applied, unless the
 * dictionaries disagree — when it is not the next version of that epoch, the
 * row change names tables the replica does not hold, or the dictionaries
 * disagree: the replica must resynchronise (no blind apply).
 */
export function applyUpdate(store: TopicStore, u: UpdateHead & { keyed?: Uint8Array | undefined }, d: Delta2Msg): Accepted | null {
  const topic = store.get(u.topic);
  const changes: Changes = new Map();
  for (const e of d.entries) {
    const name = e.name ?? topic?.fieldName(e.id);
    if (name === undefined) return null;
    changes.set(name, e.value);
  }
  let keyed: KeyedChange | undefined;
  if (u.keyed !== undefined) {
    const held = topic?.tables ? [...topic.tables.tables()].map((t) => t.spec.name) : [];
    try {
      keyed = decodeKeyedPart(u.keyed, held) ?? undefined;
    } catch {
      return null;
    }
    if (keyed === undefined) return null;
  }
  const a = store.applySequenced(u.topic, u.epoch, d.version, changes, u.ts, u.topicId, keyed);
  if (!a) return null;
  for (const e of d.entries) if (e.name !== undefined && e.id > 0 && a.topic.fieldId(e.name) !== e.id) return null;
  return a;
}

/** The exact image of a topic now. */
export function imageOf(t: Topic): TopicImage {
  const img: TopicImage = { name: t.name, id: t.id, epoch: t.epoch, version: t.version, ts: t.ts, stale: t.stale, state: [...t.state], fieldNames: [...t.fieldNames()] };
  if (t.tables !== undefined) img.tables = t.tables.image();
  return img;
}
