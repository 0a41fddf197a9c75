// Bounded history of a topic's keyed changes (its row changes and
// tombstones), by versions and by estimated bytes, so a catch-up can be one
// merged net delta. Past the horizon nothing is known: a holder of an older
// version must get a snapshot, never a delta missing the deletes it needs.
// Versions with no keyed change have no entry (they cost nothing).

import { keyedChangeSize, mergeKeyedChanges, type KeyedChange } from '../../protocol/index.js';

export interface HistoryLimits {
  /** Versions (entries with changes) held at most. */
  maxVersions: number;
  /** Estimated encoded bytes held at most (a clear of a big table costs what it deletes). */
  maxBytes: number;
}

export const DEFAULT_HISTORY_LIMITS: HistoryLimits = { maxVersions: 1024, maxBytes: 1 << 20 };

interface Entry {
  readonly version: number;
  readonly change: KeyedChange;
  readonly bytes: number;
}

export class ChangeHistory {
  private entries: Entry[] = [];
  private head = 0; // index of the oldest held entry
  private _bytes = 0;
  private _horizon: number;
  private newest: number;

  /** `version`: the version the history starts at (it can serve catch-ups from there on). */
  constructor(
    readonly limits: HistoryLimits = DEFAULT_HISTORY_LIMITS,
    version = 0,
  ) {
    this._horizon = version;
    this.newest = version;
  }

  /** The oldest version a catch-up can start from. */
  get horizon(): number {
    return this._horizon;
  }

  get bytes(): number {
    return this._bytes;
  }

  get size(): number {
    return this.entries.length - this.head;
  }

  /** Records the change of `version` (versions increase; gaps are versions without keyed changes). */
  push(version: number, change: KeyedChange, bytes = keyedChangeSize(change)): void {
    if (version <= this.newest) throw new RangeError(`history: version ${version} after ${this.newest}`);
    this.newest = version;
    if (bytes > this.limits.maxBytes || this.limits.maxVersions === 0) {
      // Bigger than the whole budget: nothing before it can be served any more.
      this.reset(version);
      return;
    }
    this.entries.push({ version, change, bytes });
    this._bytes += bytes;
    while (this.size > this.limits.maxVersions || this._bytes > this.limits.maxBytes) this.evict();
  }

  /** Notes that `version` passed with no keyed change (keeps `covers` exact for later versions). */
  skip(version: number): void {
    if (version > this.newest) this.newest = version;
  }

  /** Forgets everything: catch-ups can start at `version` or later. */
  reset(version: number): void {
    this.entries = [];
    this.head = 0;
    this._bytes = 0;
    this._horizon = version;
    this.newest = Math.max(this.newest, version);
  }

  /** True when every change after `from` is held. */
  covers(from: number): boolean {
    return Number.isInteger(from) && from >= this._horizon && from <= this.newest;
  }

  /** One net change for (from, newest], or undefined when `from` is past the horizon. */
  mergeFrom(from: number): { change: KeyedChange; updates: number } | undefined {
    if (!this.covers(from)) return undefined;
    const picked: KeyedChange[] = [];
    // Binary search for the first entry after `from`.
    let lo = this.head;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.entries[mid]!.version <= from) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.entries.length; i++) picked.push(this.entries[i]!.change);
    return { change: mergeKeyedChanges(picked), updates: picked.length };
  }

  private evict(): void {
    const e = this.entries[this.head]!;
    this.entries[this.head] = undefined as unknown as Entry; // let it go
    this.head++;
    this._bytes -= e.bytes;
    this._horizon = e.version;
    if (this.head > 64 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}
