// A topic: its latest state, its (epoch, version), and a bounded history of
// recent deltas. The only place a topic's state and version change.

import type { Changes, FieldValue, State } from '../protocol/index.js';
import { applyChanges } from './conflation.js';
import { HistoryRing } from './history-ring.js';

/** How to bring a holder of `(epoch, version)` up to date. */
export type CatchUpPlan =
  | { kind: 'current' }
  | { kind: 'delta'; base: number; version: number; updates: number; changes: Changes }
  | { kind: 'snapshot' };

/** The record of one accepted publish, as fan-out needs it. */
export interface Accepted {
  readonly topic: Topic;
  readonly base: number;
  readonly version: number;
  readonly changes: Changes;
  readonly created: boolean;
}

export class Topic {
  readonly name: string;
  private _epoch: number;
  private _version = 0;
  /** Server time (ms since 1970) of the last accepted publish. */
  ts = 0;
  readonly state: State = new Map();
  readonly history: HistoryRing;
  /** Set by fan-out: a stale topic's subscribers were told so. */
  stale = false;

  constructor(name: string, epoch: number, historySize: number) {
    this.name = name;
    this._epoch = epoch;
    this.history = new HistoryRing(historySize);
  }

  get version(): number {
    return this._version;
  }

  get epoch(): number {
    return this._epoch;
  }

  /**
   * Replaces the whole state at a given (epoch, version): a replica catching
   * up from its sequencer's snapshot. History before it is gone.
   */
  reset(epoch: number, version: number, state: Iterable<[string, FieldValue]>, ts: number): void {
    this._epoch = epoch;
    this._version = version;
    this.ts = ts;
    this.state.clear();
    for (const [k, v] of state) this.state.set(k, v);
    this.history.clear();
  }

  /** Applies an update sequenced elsewhere; false (nothing applied) unless it is the next version. */
  applyAt(version: number, changes: Changes, ts: number): boolean {
    if (version !== this._version + 1) return false;
    this.apply(changes, ts);
    return true;
  }

  /** Applies one publish; returns the new version. */
  apply(changes: Changes, ts: number): number {
    applyChanges(this.state, changes);
    this._version++;
    this.ts = ts;
    this.history.push(this._version, changes);
    return this._version;
  }

  /** The smallest correct way to bring `(epoch, version)` to the current version. */
  plan(epoch: number, version: number): CatchUpPlan {
    if (epoch === this._epoch && version === this._version) return { kind: 'current' };
    if (epoch === this._epoch && version < this._version) {
      const merged = this.history.mergeFrom(version);
      if (merged) return { kind: 'delta', base: version, ...merged };
    }
    return { kind: 'snapshot' };
  }

  /** Field count after `changes` would apply (for the fields-per-topic limit). */
  fieldCountAfter(changes: Changes): number {
    let n = this.state.size;
    for (const [k, v] of changes) {
      const had = this.state.has(k);
      if (v === null && had) n--;
      else if (v !== null && !had) n++;
    }
    return n;
  }

  /** A plain copy of the state, for JSON answers. */
  snapshotObject(): Record<string, FieldValue> {
    return Object.fromEntries(this.state);
  }
}
