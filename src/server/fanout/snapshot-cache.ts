// Encoded snapshots cached per (topic, field subset, wire form) at the
// topic's current (epoch, version), so a reconnect storm encodes each
// snapshot once per form.

import type { Topic } from '../../engine/index.js';
import type { ServerStats } from '../stats.js';
import type { Form, Wire } from './wire.js';

interface Entry {
  epoch: number;
  version: number;
  bytes: Uint8Array;
}

export class SnapshotCache {
  private readonly entries = new Map<string, Entry>();
  /** Chosen catch-up (merged delta or snapshot) per (topic, fields, base) at the current version. */
  private readonly catchUps = new Map<string, Entry & { kind: 'delta' | 'snapshot' }>();

  constructor(
    private readonly wire: Wire,
    private readonly stats: ServerStats,
    private readonly maxEntries = 10_000,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /**
   * The catch-up from `base` to the current version, encoded once for every
   * client resuming from the same point (a reconnect storm): `build` runs only
   * on a miss.
   */
  catchUp(
    topic: Topic,
    fields: ReadonlySet<string> | null,
    form: Form,
    base: number,
    build: () => { kind: 'delta' | 'snapshot'; bytes: Uint8Array },
  ): { kind: 'delta' | 'snapshot'; bytes: Uint8Array } {
    const key = `${topic.name}|${fields ? [...fields].sort().join(',') : '*'}|${form}|${base}`;
    const hit = this.catchUps.get(key);
    if (hit && hit.epoch === topic.epoch && hit.version === topic.version) return hit;
    const made = build();
    this.catchUps.delete(key);
    this.catchUps.set(key, { ...made, epoch: topic.epoch, version: topic.version });
    if (this.catchUps.size > this.maxEntries) this.catchUps.delete(this.catchUps.keys().next().value!);
    return made;
  }

  /** The encoded snapshot of `topic` now, restricted to `fields` when given. */
  get(topic: Topic, fields: ReadonlySet<string> | null, form: Form): Uint8Array {
    const key = `${topic.name}|${fields ? [...fields].sort().join(',') : '*'}|${form}`;
    const hit = this.entries.get(key);
    if (hit && hit.epoch === topic.epoch && hit.version === topic.version) return hit.bytes;
    const bytes = this.wire.snapshot(form, topic, fields);
    this.stats.snapshotEncodes++;
    this.entries.delete(key);
    this.entries.set(key, { epoch: topic.epoch, version: topic.version, bytes });
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    return bytes;
  }
}
