// Replication: how a replica (a fan-out worker thread, a cluster edge) follows
// a sequencer it does not share memory with. A sequenced update travels as
// the protocol-2 Delta2 that full-rate clients receive, behind a small head
// (time, epoch, topic id and name); a keyed batch adds its net row change
// (replication-keyed.ts) after the Delta2, and an update holding bigints
// that the Delta2 would read back as numbers names them
// (replication-bigints.ts), so a replica holds every value in the
// sequencer's own kind. A replica that falls out of step takes the
// sequencer's exact image of the topic (tables included) instead.

import type { Accepted, KeyedChange, KeyedImage, Topic, TopicStore } from '../engine/index.js';
import type { Changes, Delta2Msg, FieldValue } from '../protocol/index.js';
import { restoreBigints } from './replication-bigints.js';
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
/** Set in the name length of an update that carries a keyed part or bigint marks (the extended layout). */
const KEYED = 0x8000;
/** Set in the extended layout's Delta2 length when bigint marks follow the Delta2. */
const MARKS = 0x80000000;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/**
 * Flat: `f64 ts | f64 epoch | u32 topic id | u16 n | n bytes utf8 topic | Delta2 (as the Encoder made it)`.
 * Extended (a batch's net row change `keyed`, or bigint `marks`): the same
 * head with bit 15 of n set, then `u32 L | Delta2 (L & 0x7fffffff bytes)`;
 * when bit 31 of L is set, `u32 m | m bytes of marks` (replication-bigints.ts)
 * follow; the rest is the keyed part (replication-keyed.ts), none when empty.
 * A flat update without marks is byte for byte what it was before keyed
 * topics, a keyed one without marks what it was before marks.
 */
export function encodeUpdate(h: UpdateHead, delta2: Uint8Array, keyed?: Uint8Array, marks?: Uint8Array): Uint8Array {
  const name = utf8.encode(h.topic);
  if (name.byteLength >= KEYED) throw new RangeError(`topic name of ${name.byteLength} bytes`);
  const extended = keyed !== undefined || marks !== undefined;
  const extra = (extended ? 4 : 0) + (marks === undefined ? 0 : 4 + marks.byteLength) + (keyed?.byteLength ?? 0);
  const out = new Uint8Array(HEAD + name.byteLength + delta2.byteLength + extra);
  const view = new DataView(out.buffer);
  view.setFloat64(0, h.ts, true);
  view.setFloat64(8, h.epoch, true);
  view.setUint32(16, h.topicId, true);
  view.setUint16(20, name.byteLength | (extended ? KEYED : 0), true);
  out.set(name, HEAD);
  let at = HEAD + name.byteLength;
  if (extended) {
    if (delta2.byteLength >= MARKS) throw new RangeError(`a Delta2 of ${delta2.byteLength} bytes`);
    view.setUint32(at, (delta2.byteLength | (marks === undefined ? 0 : MARKS)) >>> 0, true);
    at += 4;
  }
  out.set(delta2, at);
  at += delta2.byteLength;
  if (marks !== undefined) {
    view.setUint32(at, marks.byteLength, true);
    out.set(marks, at + 4);
    at += 4 + marks.byteLength;
  }
  if (keyed !== undefined) out.set(keyed, at);
  return out;
}

/** An encoded update: its head, the Delta2, the keyed part and the bigint marks if any (views into `body`). */
export function readUpdate(body: Uint8Array): UpdateHead & { delta2: Uint8Array; keyed: Uint8Array | undefined; marks: Uint8Array | undefined } {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const raw = view.getUint16(20, true);
  const n = raw & (KEYED - 1);
  const head = { ts: view.getFloat64(0, true), epoch: view.getFloat64(8, true), topicId: view.getUint32(16, true), topic: fromUtf8.decode(body.subarray(HEAD, HEAD + n)) };
  if ((raw & KEYED) === 0) return { ...head, delta2: body.subarray(HEAD + n), keyed: undefined, marks: undefined };
  let at = HEAD + n + 4;
  const l = view.getUint32(HEAD + n, true);
  const len = l & (MARKS - 1);
  if (at + len > body.byteLength) throw new RangeError('a replicated update shorter than its Delta2');
  const delta2 = body.subarray(at, at + len);
  at += len;
  let marks: Uint8Array | undefined;
  if (l >= MARKS) {
    if (at + 4 > body.byteLength) throw new RangeError('a replicated update shorter than its bigint marks');
    const m = view.getUint32(at, true);
    if (at + 4 + m > body.byteLength) throw new RangeError('a replicated update shorter than its bigint marks');
    marks = body.subarray(at + 4, at + 4 + m);
    at += 4 + m;
  }
  return { ...head, delta2, keyed: at < body.byteLength ? body.subarray(at) : undefined, marks };
}

/**
 * Applies one sequenced update: field ids become names through the replica's
 * own dictionary (or the names the update carries for new ids), which must
 * agree with the sequencer's id for id; a keyed part is applied to the
 * replica's tables in the same version; marked integers become bigints
 * again. Null — nothing applied, unless the dictionaries disagree — when it
 * is not the next version of that epoch, the row change names tables the
 * replica does not hold, the marks do not fit, or the dictionaries disagree:
 * the replica must resynchronise (no blind apply).
 */
export function applyUpdate(store: TopicStore, u: UpdateHead & { keyed?: Uint8Array | undefined; marks?: Uint8Array | undefined }, d: Delta2Msg): Accepted | null {
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
  if (u.marks !== undefined && !restoreBigints(u.marks, changes, keyed)) return null;
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
