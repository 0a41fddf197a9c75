// Bounded per-topic history of recent deltas, so a client that fell a little
// behind gets one merged delta instead of a snapshot. Old entries are
// overwritten: memory stays at `capacity` deltas per topic.

import type { Changes, FieldValue } from '../protocol/index.js';

export class HistoryRing {
  // Entries are kept flat — versions in one array, each delta as
  // [field, value, field, value, …] — rather than one object and one Map per
  // publish: at thousands of publishes per second the ring is most of what
  // survives into the old generation, and fewer, smaller objects make GC cheaper.
  private readonly versions: Float64Array;
  private readonly deltas: ((string | FieldValue | null)[] | undefined)[];
  private head = 0; // next slot to write
  private count = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError('history capacity must be an integer ≥ 0');
    this.versions = new Float64Array(capacity);
    this.deltas = new Array(capacity);
  }

  get size(): number {
    return this.count;
  }

  /** Appends the delta for `version`; versions must be consecutive. */
  push(version: number, changes: Changes): void {
    if (this.capacity === 0) return;
    const newest = this.newestVersion();
    if (this.count > 0 && version !== newest + 1) this.clear();
    const flat: (string | FieldValue | null)[] = new Array(changes.size * 2);
    let i = 0;
    for (const [k, v] of changes) {
      flat[i++] = k;
      flat[i++] = v;
    }
    this.versions[this.head] = version;
    this.deltas[this.head] = flat;
    this.head = (this.head + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
  }

  clear(): void {
    this.deltas.fill(undefined);
    this.head = 0;
    this.count = 0;
  }

  private slot(i: number): number {
    return (this.head - this.count + i + this.capacity) % this.capacity;
  }

  /** Version before the oldest entry: the oldest base the ring can serve. */
  oldestBase(): number {
    if (this.count === 0) return -1;
    return this.versions[this.slot(0)]! - 1;
  }

  newestVersion(): number {
    return this.count === 0 ? -1 : this.versions[this.slot(this.count - 1)]!;
  }

  /** True when every delta in (base, newest] is still held. */
  covers(base: number): boolean {
    // Versions are integers; a fractional base would index between slots.
    return this.count > 0 && Number.isInteger(base) && base >= this.oldestBase() && base <= this.newestVersion();
  }

  /**
   * One merged delta from `base` to the newest version, or undefined when the
   * ring no longer covers `base`.
   */
  mergeFrom(base: number): { changes: Changes; version: number; updates: number } | undefined {
    if (!this.covers(base)) return undefined;
    const changes: Changes = new Map();
    const first = base - this.oldestBase();
    // Later entries overwrite earlier ones field by field: conflation.
    for (let i = first; i < this.count; i++) {
      const flat = this.deltas[this.slot(i)]!;
      for (let j = 0; j < flat.length; j += 2) changes.set(flat[j] as string, flat[j + 1] as FieldValue | null);
    }
    return { changes, version: this.newestVersion(), updates: this.count - first };
  }
}
