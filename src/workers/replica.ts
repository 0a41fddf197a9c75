// A worker's replica applies the sequencer's protocol-2 updates: field ids
// become names through the topic's own dictionary (or the names the update
// carries for new ids), and the dictionary it grows must agree with the
// sequencer's, id for id, or the replica resynchronises.

import type { Accepted, TopicStore } from '../engine/index.js';
import type { Changes, Delta2Msg } from '../protocol/index.js';
import type { UpdateHead } from './records.js';

/** Applies one sequenced update; null when it is not the next version or the dictionaries disagree (resync). */
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
