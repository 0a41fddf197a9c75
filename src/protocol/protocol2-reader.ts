// A client's view of protocol 2: which topic each topic_id names on this
// connection, and the field names of each topic's epoch (learned from the
// entries that carry them). Turns Snapshot2 / Delta2 into the same Snapshot /
// Delta messages protocol 1 delivers, so everything after it is shared.

import type { Key, RowChange, TableChange } from './keyed/index.js';
import type { DeltaMsg, Delta2Msg, KeyedDelta2Msg, KeyedDeltaMsg, KeyedSnapshot2Msg, KeyedSnapshotMsg, KeyedTableBinding, KeyedTableView, SnapshotMsg, Snapshot2Msg } from './messages.js';
import type { PackedEntry } from './packed.js';
import type { Changes, State } from './values.js';

/** A message that could not be resolved: the client must heal `topic` (or report a server fault when null). */
export interface Unresolved {
  type: 'unresolved';
  topic: string | null;
  reason: string;
}

interface KeyedState {
  bindings: Map<number, string>;
  dictionaries: Map<string, Dictionary>;
  tableBindings: Map<number, Map<number, KeyedTableBinding>>;
}

interface Dictionary {
  epoch: number;
  /** Field name by id (index); ids are never reused within an epoch. */
  names: string[];
}

export class Protocol2Reader {
  /** topic_id → topic name, for the current connection only. */
  private bindings = new Map<number, string>();
  /** Field names per topic, valid for its epoch across connections. */
  private readonly dictionaries = new Map<string, Dictionary>();

  /** Keyed topics: table bindings per topic id, for the current connection only. */
  private tableBindings = new Map<number, Map<number, KeyedTableBinding>>();

  /** A new connection: topic ids bound on the last one mean nothing now. */
  reset(): void {
    this.bindings = new Map();
    this.tableBindings = new Map();
  }

  /** Forgets a topic's field names (unsubscribed). */
  forget(topic: string): void {
    this.dictionaries.delete(topic);
  }

  /** Keyed topics: KeyedSnapshot2 / KeyedDelta2 → KeyedSnapshot / KeyedDelta (names resolved, tables by name). */
  readKeyed(m: KeyedSnapshot2Msg | KeyedDelta2Msg): KeyedSnapshotMsg | KeyedDeltaMsg | Unresolved {
    return resolveKeyed({ bindings: this.bindings, dictionaries: this.dictionaries, tableBindings: this.tableBindings }, m);
  }

  read(m: Snapshot2Msg | Delta2Msg): SnapshotMsg | DeltaMsg | Unresolved {
    let topic: string | undefined;
    if (m.topic !== null) {
      topic = m.topic;
      this.bindings.set(m.topicId, topic);
    } else topic = this.bindings.get(m.topicId);
    if (topic === undefined) return { type: 'unresolved', topic: null, reason: `topic id ${m.topicId} was never bound on this connection` };
    let dict = this.dictionaries.get(topic);
    const epoch = m.topic !== null ? m.epoch : dict?.epoch;
    if (epoch === undefined) return { type: 'unresolved', topic, reason: `no epoch known for ${topic}` };
    if (!dict || dict.epoch !== epoch) this.dictionaries.set(topic, (dict = { epoch, names: [] }));
    const changes = resolve(m.entries, dict);
    if (typeof changes === 'string') return { type: 'unresolved', topic, reason: changes };
    if (m.type === 'snapshot2') {
      for (const v of changes.values()) if (v === null) return { type: 'unresolved', topic, reason: 'a snapshot entry deletes a field' };
      return { type: 'snapshot', topic, epoch, version: m.version, fields: changes as State, ts: m.ts };
    }
    return { type: 'delta', topic, epoch, base: m.base, version: m.version, updates: m.updates, changes, ts: m.ts };
  }
}

/**
 * Keyed topics: KeyedSnapshot2 / KeyedDelta2 resolved to names (topic,
 * fields, tables). A message that binds topic_id (a snapshot, a catch-up)
 * replaces the topic's table bindings; any other adds the ones it carries.
 */
function resolveKeyed(r: KeyedState, m: KeyedSnapshot2Msg | KeyedDelta2Msg): KeyedSnapshotMsg | KeyedDeltaMsg | Unresolved {
  let topic: string | undefined;
  if (m.topic !== null) {
    topic = m.topic;
    r.bindings.set(m.topicId, topic);
    r.tableBindings.set(m.topicId, new Map());
  } else topic = r.bindings.get(m.topicId);
  if (topic === undefined) return { type: 'unresolved', topic: null, reason: `topic id ${m.topicId} was never bound on this connection` };
  let dict = r.dictionaries.get(topic);
  const epoch = m.topic !== null ? m.epoch : dict?.epoch;
  if (epoch === undefined) return { type: 'unresolved', topic, reason: `no epoch known for ${topic}` };
  if (!dict || dict.epoch !== epoch) r.dictionaries.set(topic, (dict = { epoch, names: [] }));
  let held = r.tableBindings.get(m.topicId);
  if (!held) r.tableBindings.set(m.topicId, (held = new Map()));
  const views = new Map<string, KeyedTableView>();
  for (const t of m.tables) {
    held.set(t.id, t);
    views.set(t.spec.name, { spec: t.spec, depth: t.depth, fields: t.fields });
  }
  // Names first: every name the message carries, summary and rows alike.
  for (const e of m.summary) if (e.name !== undefined && e.id > 0) dict.names[e.id] = e.name;
  const learn = (es: readonly PackedEntry[]) => {
    for (const e of es) if (e.name !== undefined && e.id > 0) dict!.names[e.id] = e.name;
  };
  if (m.type === 'keyedSnapshot2') for (const rows of m.rows.values()) for (const es of rows.values()) learn(es);
  else for (const tc of m.rows.values()) for (const c of tc.rows.values()) if (c.op !== 'delete') learn(c.entries);
  const summary = resolve(m.summary, dict);
  if (typeof summary === 'string') return { type: 'unresolved', topic, reason: summary };
  const tableName = (id: number, stringKeys: boolean | undefined): string | undefined => {
    const b = held!.get(id);
    if (!b || (stringKeys !== undefined && (b.spec.key === 'string') !== stringKeys)) return undefined;
    return b.spec.name;
  };
  if (m.type === 'keyedSnapshot2') {
    const rows = new Map<string, Map<Key, State>>();
    for (const [id, rs] of m.rows) {
      const name = tableName(id, undefined);
      if (name === undefined) return { type: 'unresolved', topic, reason: `table id ${id} is not bound` };
      const out = new Map<Key, State>();
      for (const [k, es] of rs) {
        const f = resolve(es, dict);
        if (typeof f === 'string') return { type: 'unresolved', topic, reason: f };
        out.set(k, f as State);
      }
      rows.set(name, out);
    }
    return { type: 'keyedSnapshot', topic, epoch, version: m.version, summary: summary as State, tables: views, rows, part: m.part, last: m.last, checksum: m.checksum, ts: m.ts };
  }
  const tables = new Map<string, TableChange>();
  for (const [id, tc] of m.rows) {
    const name = tableName(id, tc.stringKeys);
    if (name === undefined) return { type: 'unresolved', topic, reason: `table id ${id} is not bound (or its key type differs)` };
    const rows = new Map<Key, RowChange>();
    // Int keys sent against the table's key base (bound earlier on this connection).
    const kb = tc.relative ? held.get(id)!.keyBase ?? 0 : 0;
    for (const [offset, c] of tc.rows) {
      const k = kb === 0 ? offset : (offset as number) + kb;
      if (typeof k === 'number' && !Number.isSafeInteger(k)) return { type: 'unresolved', topic, reason: `table ${name}: key ${kb} + ${String(offset)} is past 2^53` };
      if (c.op === 'delete') {
        rows.set(k, { op: 'delete' });
        continue;
      }
      const f = resolve(c.entries, dict);
      if (typeof f === 'string') return { type: 'unresolved', topic, reason: f };
      rows.set(k, c.op === 'upsert' ? { op: 'upsert', fields: f } : { op: 'replace', fields: f as State, existed: c.existed });
    }
    tables.set(name, { clear: tc.clear, rows });
  }
  const change = { declared: [...views.values()].map((v) => v.spec), tables };
  return { type: 'keyedDelta', topic, epoch, base: m.base, version: m.version, updates: m.updates, summary, tables: views, change, checksum: m.checksum, ts: m.ts };
}

/** Entries → changes by name, learning names that travel; a string says why it failed. */
function resolve(entries: readonly PackedEntry[], dict: Dictionary): Changes | string {
  // Every name the message carries is learnt first, even when an earlier
  // entry's id is unknown: the server names a new id only once.
  for (const e of entries) if (e.name !== undefined && e.id > 0) dict.names[e.id] = e.name;
  const changes: Changes = new Map();
  for (const e of entries) {
    const name = e.name ?? dict.names[e.id];
    if (name === undefined) return `field id ${e.id} is not known yet`;
    changes.set(name, e.value);
  }
  return changes;
}
