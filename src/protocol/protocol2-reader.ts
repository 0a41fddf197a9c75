// A client's view of protocol 2: which topic each topic_id names on this
// connection, and the field names of each topic's epoch (learned from the
// entries that carry them). Turns Snapshot2 / Delta2 into the same Snapshot /
// Delta messages protocol 1 delivers, so everything after it is shared.

import type { DeltaMsg, Delta2Msg, SnapshotMsg, Snapshot2Msg } from './messages.js';
import type { PackedEntry } from './packed.js';
import type { Changes, State } from './values.js';

/** A message that could not be resolved: the client must heal `topic` (or report a server fault when null). */
export interface Unresolved {
  type: 'unresolved';
  topic: string | null;
  reason: string;
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

  /** A new connection: topic ids bound on the last one mean nothing now. */
  reset(): void {
    this.bindings = new Map();
  }

  /** Forgets a topic's field names (unsubscribed). */
  forget(topic: string): void {
    this.dictionaries.delete(topic);
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
