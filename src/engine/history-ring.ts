// Bounded per-topic history of recent deltas, so a client that fell a little
// behind gets one merged delta instead of a snapshot. Old entries are
// overwritten: memory stays at `capacity` deltas per topic.

import type { Changes } from '../protocol/index.js';
import { mergeChanges } from './conflation.js';

/** One accepted publish: turns the state at `version - 1` into `version`. */
export interface HistoryEntry {
  readonly version: number;
  readonly changes: Changes;
}

export class HistoryRing {
  private readonly slots: (HistoryEntry | undefined)[];
  private head = 0; // next slot to write
  private count = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError('history capacity must be an integer ≥ 0');
    this.slots = new Array(capacity);
  }

  get size(): number {
    return this.count;
  }

  /** Appends the delta for `version`; versions must be consecutive. */
  push(version: number, changes: Changes): void {
    if (this.capacity === 0) return;
    const newest = this.newestVersion();
    if (this.count > 0 && version !== newest + 1) this.clear();
    this.slots[this.head] = { version, changes };
    this.head = (this.head + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
  }

  clear(): void {
    this.slots.fill(undefined);
    this.head = 0;
    this.count = 0;
  }

  /** Version before the oldest entry: the oldest base the ring can serve. */
  oldestBase(): number {
    if (this.count === 0) return -1;
    return this.at(0).version - 1;
  }

  newestVersion(): number {
    return this.count === 0 ? -1 : this.at(this.count - 1).version;
  }

  private at(i: number): HistoryEntry {
    return this.slots[(this.head - this.count + i + this.capacity) % this.capacity]!;
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
    for (let i = first; i < this.count; i++) mergeChanges(changes, this.at(i).changes);
    return { changes, version: this.newestVersion(), updates: this.count - first };
  }
}
