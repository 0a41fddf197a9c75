// Keyed views in fan-out: what a subscriber of a keyed topic (order book,
// blotter) holds of it — per table its top N rows with a field subset, and
// optionally the view checksum. A view is part of a channel's key, so
// subscribers with the same (tables' depth and fields, checksums, tier, summary
// fields, wire form) share one encoding per flush. One DepthView per distinct
// (table, depth, fields) per topic (view-entry.ts) is advanced once per accepted
// batch, and its view delta goes into every channel that uses it. Table ids are
// bound per topic and epoch. Snapshots come in parts at one version; catch-ups
// are a merged view delta (when every view's history covers the gap and it is
// smaller) or a view snapshot, both cached per (view, base) at the version.
// SSE and STOMP channels (Form.JSON) get the same messages in the keyed JSON
// form (keyed-json-wire.ts).

import type { Accepted, Topic } from '../../engine/index.js';
import type { Table } from '../../engine/tables/index.js';
import { ErrorCode, KeyedEncoder, TickfanError, mergeTableChange, viewChecksum, type Changes, type ChecksumTable, type FieldValue, type State, type TableChange, type TableSpec, type TableViewRequest } from '../../protocol/index.js';
import type { ServerStats } from '../stats.js';
import type { Channel, TopicSub } from './state.js';
import { ChannelView, FULL_TABLE, TopicViews, type TableReq } from './view-entry.js';
import { Form } from './wire.js';
import { KeyedJsonEncoder } from './keyed-json-wire.js';

export { ChannelView, mergeViewReqs, viewReq, type ViewReq } from './view-entry.js';

const MAX_CACHED = 2_000;

type Parts = readonly Uint8Array[];

export class KeyedViews {
  private readonly enc = new KeyedEncoder();
  /** SSE and STOMP (Form.JSON): the same views in the keyed JSON form. */
  private readonly json = new KeyedJsonEncoder();
  private readonly topics = new WeakMap<Topic, TopicViews>();
  private readonly snapshots = new Map<string, { epoch: number; version: number; parts: Parts }>();
  private readonly catchUps = new Map<string, { epoch: number; version: number; kind: 'delta' | 'snapshot'; parts: Parts }>();
  /** Scratch for one channel's changes of one version (read synchronously by the encoder). */
  private readonly scratch = new Map<string, TableChange>();

  constructor(private readonly stats: ServerStats) {}

  /** True when `ch` carries keyed messages (its topic holds tables; protocol 2, or JSON for SSE and STOMP). */
  static keyed(ch: Channel | null): boolean {
    return ch !== null && ch.form !== Form.P1 && ch.topic.tables !== undefined;
  }

  private topicViews(topic: Topic): TopicViews {
    let tv = this.topics.get(topic);
    if (!tv || tv.epoch !== topic.epoch) this.topics.set(topic, (tv = new TopicViews(topic.epoch)));
    return tv;
  }

  /** The channel's view state, made (with its view entries at the topic's version) when missing. */
  ensure(ch: Channel): ChannelView {
    const tables = ch.topic.tables!;
    let cv = ch.keyed;
    if (cv && cv.topicViews.epoch !== ch.topic.epoch) {
      this.release(ch);
      cv = null;
    }
    if (!cv) {
      cv = ch.keyed = new ChannelView(this.topicViews(ch.topic));
      for (const t of tables.tables()) this.acquire(ch, cv, t, false);
    }
    return cv;
  }

  private acquire(ch: Channel, cv: ChannelView, table: Table, emptyAtBase: boolean): void {
    const name = table.name;
    if (cv.entries.has(name)) return;
    const req: TableReq = ch.views?.tables.get(name) ?? FULL_TABLE;
    const e = cv.topicViews.acquire(name, req, emptyAtBase ? undefined : table, emptyAtBase ? ch.topic.version - 1 : ch.topic.version);
    cv.entries.set(name, e);
    const keyBase = cv.topicViews.keyBaseOf(table);
    cv.bindings.set(name, { id: cv.topicViews.idOf(name), spec: table.spec, depth: req.depth, fields: [...req.fields], ...(keyBase ? { keyBase } : {}) });
  }

  /** A channel going away (or re-bound) gives its view entries back. */
  release(ch: Channel): void {
    const cv = ch.keyed;
    if (!cv) return;
    for (const e of cv.entries.values()) cv.topicViews.release(e);
    ch.keyed = null;
  }

  /**
   * An accepted publish of a keyed topic: tables it declared join the views
   * of the topic's keyed channels (empty at base), then every view entry of
   * the topic takes the version once (its view delta shared by its channels).
   */
  advance(a: Accepted, chans: Iterable<Channel>): void {
    const topic = a.topic;
    const declared = a.keyed?.declared ?? [];
    if (declared.length) {
      for (const ch of chans) {
        const cv = ch.keyed;
        if (!cv) continue;
        for (const spec of declared) this.acquire(ch, cv, topic.tables!.table(spec.name)!, true);
      }
    }
    const tv = this.topics.get(topic);
    if (!tv || tv.epoch !== topic.epoch) return;
    for (const e of tv.entries()) e.advance(topic.tables!.table(e.name), a.keyed?.tables.get(e.name), a.version);
  }

  /** A full-rate channel's delta of the version just accepted. */
  streamDelta(ch: Channel, a: Accepted): Uint8Array {
    const cv = ch.keyed!;
    const tables = this.scratch;
    tables.clear();
    for (const [name, e] of cv.entries) if (e.last !== undefined) tables.set(name, e.last);
    const declared = a.keyed?.declared ?? [];
    return this.delta(ch, a.base, a.version, a.changes, tables, declared, a.namesFrom, false);
  }

  /** A throttled channel: this version's view changes merged into what waits for its flush. */
  pend(ch: Channel, a: Accepted): void {
    const cv = ch.keyed!;
    for (const [name, e] of cv.entries) {
      if (e.last === undefined) continue;
      let acc = cv.pending.get(name);
      if (!acc) cv.pending.set(name, (acc = { clear: false, rows: new Map() }));
      mergeTableChange(acc, e.last);
    }
    for (const s of a.keyed?.declared ?? []) cv.pendingDeclared.push(s);
  }

  /** A throttled channel's flush: its merged changes as one delta; the pending changes are reset. */
  flushDelta(ch: Channel, base: number, version: number, summary: Changes): Uint8Array {
    const cv = ch.keyed!;
    const buf = this.delta(ch, base, version, summary, cv.pending, cv.pendingDeclared, ch.namesFrom, false);
    this.resetPending(ch);
    return buf;
  }

  resetPending(ch: Channel): void {
    const cv = ch.keyed;
    if (!cv) return;
    cv.pending.clear();
    if (cv.pendingDeclared.length) cv.pendingDeclared = [];
  }

  private delta(ch: Channel, base: number, version: number, summary: Changes, tables: ReadonlyMap<string, TableChange>, declared: readonly TableSpec[], namesFrom: number, bind: boolean): Uint8Array {
    const cv = ch.keyed!;
    const topic = ch.topic;
    const bindTables = bind ? [...cv.bindings.values()] : declared.length ? declared.map((s) => cv.bindings.get(s.name)!).filter((b) => b !== undefined) : undefined;
    if (ch.form === Form.JSON) {
      this.stats.encodes++;
      return this.json.keyedDelta(topic, base, version, onlyFields(summary, ch.fields), tables, cv.bindings, bindTables, ch.views?.checksums ? this.checksum(ch) : undefined);
    }
    const buf = this.enc.keyedDelta2(topic, base, version, onlyFields(summary, ch.fields), { declared: [], tables: tables as Map<string, TableChange> }, cv.bindings, {
      namesFrom,
      bind,
      bindTables,
      checksum: ch.views?.checksums ? this.checksum(ch) : undefined,
      ts: ch.form === Form.P2_TS ? topic.ts : undefined,
    });
    this.stats.encodes++;
    return buf;
  }

  /** The channel's view checksum at the topic's version (once per message, shared by its subscribers). */
  private checksum(ch: Channel): number {
    const cv = ch.keyed!;
    const tables = ch.topic.tables!;
    const list: ChecksumTable[] = [];
    for (const [name, e] of cv.entries) list.push({ name, keyType: cv.bindings.get(name)!.spec.key, rows: e.view.rows(tables.table(name)) });
    const state = ch.topic.state;
    return viewChecksum(list, ch.fields ? (onlyFields(state, ch.fields) as State) : state);
  }

  /** The view at the topic's version as KeyedSnapshot2 parts, encoded once per (view, version). */
  snapshot(ch: Channel): Parts {
    const topic = ch.topic;
    const cv = this.ensure(ch);
    const key = `${topic.name}|${viewKey(ch)}`;
    const hit = this.snapshots.get(key);
    if (hit && hit.epoch === topic.epoch && hit.version === topic.version) return hit.parts;
    const tables = topic.tables!;
    const list = [...cv.entries].map(([name, e]) => ({ binding: cv.bindings.get(name)!, rows: e.view.rows(tables.table(name)) }));
    const summary = onlyFields(topic.state, ch.fields);
    const checksum = ch.views?.checksums ? this.checksum(ch) : undefined;
    const parts = ch.form === Form.JSON ? this.json.keyedSnapshot(topic, topic.version, summary, list, checksum) : this.enc.keyedSnapshot2(topic, topic.version, summary, list, topic.ts, checksum);
    this.stats.snapshotEncodes++;
    remember(this.snapshots, key, { epoch: topic.epoch, version: topic.version, parts });
    return parts;
  }

  /**
   * The catch-up of one subscriber from what it was sent to the topic's
   * version; null when it is current and needs nothing. Every table of the
   * view is bound (the message binds topic_id).
   */
  catchUp(ts: TopicSub, ch: Channel, confirmCurrent: boolean): { kind: 'current' | 'delta' | 'snapshot'; parts: Parts } | null {
    const topic = ts.topic;
    const cv = this.ensure(ch);
    if (ts.sentEpoch === topic.epoch && ts.sentVersion === topic.version) {
      if (!confirmCurrent && ts.bound) return null;
      return { kind: 'current', parts: [this.delta(ch, topic.version, topic.version, EMPTY, EMPTY_TABLES, [], 1, true)] };
    }
    const base = ts.sentEpoch === topic.epoch && ts.sentVersion >= 0 && ts.sentVersion < topic.version ? ts.sentVersion : -1;
    const key = `${topic.name}|${viewKey(ch)}|${base}`;
    const hit = this.catchUps.get(key);
    if (hit && hit.epoch === topic.epoch && hit.version === topic.version) return hit;
    const snap = this.snapshot(ch);
    let made: { kind: 'delta' | 'snapshot'; parts: Parts } = { kind: 'snapshot', parts: snap };
    const summary = base >= 0 ? topic.history.mergeFrom(base) : undefined;
    if (summary) {
      const tables = new Map<string, TableChange>();
      let covered = true;
      for (const [name, e] of cv.entries) {
        const m = e.mergeFrom(base, topic.version);
        if (m === null) covered = false;
        else if (m !== undefined) tables.set(name, m);
      }
      if (covered) {
        const delta = this.delta(ch, base, topic.version, summary.changes, tables, [], 1, true);
        let snapBytes = 0;
        for (const p of snap) snapBytes += p.byteLength;
        if (delta.byteLength <= snapBytes) made = { kind: 'delta', parts: [delta] };
      }
    }
    remember(this.catchUps, key, { ...made, epoch: topic.epoch, version: topic.version });
    return made;
  }
}

const EMPTY: Changes = new Map();
const EMPTY_TABLES: Map<string, TableChange> = new Map();

function viewKey(ch: Channel): string {
  // The channel key without its tier: tiers share snapshots and catch-ups.
  return ch.key.slice(ch.key.indexOf('|') + 1);
}

function onlyFields(m: ReadonlyMap<string, FieldValue | null>, fields: ReadonlySet<string> | null): ReadonlyMap<string, FieldValue | null> {
  if (!fields) return m;
  const out = new Map<string, FieldValue | null>();
  for (const [k, v] of m) if (fields.has(k)) out.set(k, v);
  return out;
}

function remember<V>(cache: Map<string, V>, key: string, v: V): void {
  cache.delete(key);
  cache.set(key, v);
  if (cache.size > MAX_CACHED) cache.delete(cache.keys().next().value!);
}

/** Refusal of a keyed topic on a protocol-1 connection (docs/protocol.md, "Keyed topics"). */
export function keyedNeedsProtocol2(topic: string): TickfanError {
  return new TickfanError(
    ErrorCode.PROTOCOL_VERSION,
    `topic ${topic} is keyed (tables of rows): it is served to protocol-2 WebSocket clients (Hello with protocol 2), SSE and STOMP; protocol-1 WebSocket subscriptions are refused`,
  );
}

export type { TableViewRequest };
