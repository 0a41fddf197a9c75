// Bounded per-topic history of recent deltas, so a client that fell a little
// behind gets one merged delta instead of a snapshot. Old entries are
// overwritten: the ring holds the last `capacity` versions.
//
// Storage allocates nothing per publish. Every publish's fields go into one
// circular field log of typed arrays — a field number (the ring's own name
// table) and a float64 per field — with a side array only for values that are
// not numbers (strings, bigints, booleans, bytes, null). Versions are
// consecutive, so an entry is just its field count. At thousands of publishes
// a second the ring used to be most of what survived young-generation GCs
// (one array per publish, kept for `capacity` versions): every scavenge copied
// it, then the old generation had to collect it again. The log grows by
// doubling when the held entries need more room; it never shrinks.

import type { Changes } from '../protocol/index.js';
import { ValueSlots } from './value-slots.js';

export class HistoryRing {
  /** Field count of each held entry, circular over `capacity`. */
  private readonly lengths: Uint32Array;
  private head = 0; // next entry slot to write
  private count = 0;
  private newest = -1;
  // The field log, circular over its length (a power of two). Positions are
  // absolute counts of fields ever written (integers below 2^53); position p
  // lives at index p & mask.
  private fids = new Uint32Array(0);
  private vals = new ValueSlots(0);
  private mask = -1;
  private logTail = 0; // position of the oldest held entry's first field
  private logHead = 0; // position of the next field to write
  // The ring's field names: field number → name. Rebuilt from the held
  // entries when it outgrows them (a topic whose field names churn).
  private names: string[] = [];
  private ids = new Map<string, number>();
  // The last publish's field names and numbers, in order: most topics publish
  // the same fields in the same order, so a name is usually found by identity
  // at its position here instead of by a Map lookup.
  private lastNames: string[] = [];
  private lastIds: number[] = [];

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError('history capacity must be an integer ≥ 0');
    this.lengths = new Uint32Array(capacity);
  }

  get size(): number {
    return this.count;
  }

  /** Appends the delta for `version`; versions must be consecutive. */
  push(version: number, changes: Changes): void {
    if (this.capacity === 0) return;
    if (this.count > 0 && version !== this.newest + 1) this.clear();
    if (this.count === this.capacity) this.evictOldest();
    const n = changes.size;
    this.reserve(n);
    // More names than held fields (and a thousand to spare): renumber the ones
    // still held, so a churning set of field names cannot grow it for ever.
    if (this.names.length >= 1024 && this.names.length > 2 * (this.logHead - this.logTail)) this.renumber();
    let p = this.logHead;
    let j = 0;
    const lastNames = this.lastNames;
    const lastIds = this.lastIds;
    for (const name of changes.keys()) {
      const i = p & this.mask;
      let id: number;
      if (lastNames[j] === name) id = lastIds[j]!;
      else {
        id = this.idOf(name);
        lastNames[j] = name;
        lastIds[j] = id;
      }
      j++;
      this.fids[i] = id;
      this.vals.write(i, changes.get(name)!);
      p++;
    }
    this.logHead = p;
    this.lengths[this.head] = n;
    this.head = this.head + 1 === this.capacity ? 0 : this.head + 1;
    this.count++;
    this.newest = version;
  }

  clear(): void {
    this.vals.dropAll();
    this.head = 0;
    this.count = 0;
    this.newest = -1;
    this.logTail = this.logHead = 0;
    this.names = [];
    this.ids.clear();
    this.lastNames = [];
    this.lastIds = [];
  }

  /** Version before the oldest entry: the oldest base the ring can serve. */
  oldestBase(): number {
    return this.count === 0 ? -1 : this.newest - this.count;
  }

  newestVersion(): number {
    return this.newest;
  }

  /** True when every delta in (base, newest] is still held. */
  covers(base: number): boolean {
    // Versions are integers; a fractional base would index between slots.
    return this.count > 0 && Number.isInteger(base) && base >= this.oldestBase() && base <= this.newest;
  }

  /**
   * One merged delta from `base` to the newest version, or undefined when the
   * ring no longer covers `base`.
   */
  mergeFrom(base: number): { changes: Changes; version: number; updates: number } | undefined {
    if (!this.covers(base)) return undefined;
    const changes: Changes = new Map();
    const first = base - this.oldestBase();
    let p = this.logTail;
    for (let e = 0; e < first; e++) p += this.lengths[this.slot(e)]!;
    // Later entries overwrite earlier ones field by field: conflation.
    for (; p < this.logHead; p++) {
      const i = p & this.mask;
      changes.set(this.names[this.fids[i]!]!, this.vals.read(i));
    }
    return { changes, version: this.newest, updates: this.count - first };
  }

  /** Entry slot of the i-th held entry, oldest first. */
  private slot(i: number): number {
    return (this.head - this.count + i + this.capacity) % this.capacity;
  }

  private evictOldest(): void {
    const n = this.lengths[this.slot(0)]!;
    for (let p = this.logTail; p < this.logTail + n; p++) this.vals.drop(p & this.mask);
    this.logTail += n;
    this.count--;
  }

  /** Makes room for `n` more fields in the log, growing it (never dropping held entries). */
  private reserve(n: number): void {
    const need = this.logHead - this.logTail + n;
    if (need <= this.fids.length) return;
    let size = Math.max(16, this.fids.length * 2);
    while (size < need) size *= 2;
    const fids = new Uint32Array(size);
    const vals = new ValueSlots(size);
    const mask = size - 1;
    for (let p = this.logTail; p < this.logHead; p++) {
      const from = p & this.mask;
      fids[p & mask] = this.fids[from]!;
      vals.copy(this.vals, from, p & mask);
    }
    this.fids = fids;
    this.vals = vals;
    this.mask = mask;
  }

  private idOf(name: string): number {
    const id = this.ids.get(name);
    if (id !== undefined) return id;
    this.ids.set(name, this.names.length);
    this.names.push(name);
    return this.names.length - 1;
  }

  private renumber(): void {
    const old = this.names;
    this.names = [];
    this.ids.clear();
    this.lastNames = [];
    this.lastIds = [];
    for (let p = this.logTail; p < this.logHead; p++) {
      const i = p & this.mask;
      const name = old[this.fids[i]!]!;
      let id = this.ids.get(name);
      if (id === undefined) {
        id = this.names.length;
        this.ids.set(name, id);
        this.names.push(name);
      }
      this.fids[i] = id;
    }
  }
}
