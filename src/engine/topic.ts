// A topic: its latest state, its (epoch, version), a bounded history of
// recent deltas, and its field dictionary (protocol 2's field ids, assigned in
// order of first use within the epoch and never reused). The only place a
// topic's state and version change.

import type { Changes, FieldValue, KeyedChange, State } from '../protocol/index.js';
import { FieldState } from './field-state.js';
import { HistoryRing } from './history-ring.js';
import type { KeyedTables, PreparedBatch } from './tables/index.js';
import { planKeyed } from './topic-tables.js';

/** How to bring a holder of `(epoch, version)` up to date. */
export type CatchUpPlan =
  | { kind: 'current' }
  | { kind: 'delta'; base: number; version: number; updates: number; changes: Changes; /** Keyed topics: the merged row changes. */ tables?: KeyedChange }
  | { kind: 'snapshot' };

/** The record of one accepted publish, as fan-out needs it. */
export interface Accepted {
  readonly topic: Topic;
  readonly base: number;
  readonly version: number;
  readonly changes: Changes;
  readonly created: boolean;
  /** Field ids from this one on were first assigned by this publish. */
  readonly namesFrom: number;
  /** A keyed batch's net row changes (absent for flat publishes). */
  readonly keyed?: KeyedChange;
}

export class Topic {
  readonly name: string;
  /** The topic's number on the wire (protocol 2), assigned by its sequencer (a replica takes the sequencer's). */
  private _id: number;
  private _epoch: number;
  private _version = 0;
  /** Field name by id; id 0 is "no id" (past the dictionary's limit the name always travels). */
  private names: string[] = [''];
  private ids = new Map<string, number>();
  /** Server time (ms since 1970) of the last accepted publish. */
  ts = 0;
  /** Field → value; numbers kept unboxed (field-state.ts). */
  readonly state: State = new FieldState();
  readonly history: HistoryRing;
  /** Set by fan-out: a stale topic's subscribers were told so. */
  stale = false;
  /** The topic's keyed tables, once a batch declared one (topic-tables.ts); undefined for flat topics. */
  private _tables: KeyedTables | undefined = undefined;

  constructor(
    name: string,
    epoch: number,
    historySize: number,
    id = 0,
    /** Field ids assigned per epoch at most (a churning order book must not grow it for ever). */
    private readonly maxFieldIds = 4096,
  ) {
    this.name = name;
    this._epoch = epoch;
    this._id = id;
    this.history = new HistoryRing(historySize);
  }

  get id(): number {
    return this._id;
  }

  /** The field's id in this epoch; 0 when it has none. */
  fieldId(name: string): number {
    return this.ids.get(name) ?? 0;
  }

  /** The name of field `id` (undefined for an id not assigned in this epoch). */
  fieldName(id: number): string | undefined {
    return id > 0 ? this.names[id] : undefined;
  }

  /** Ids assigned so far + 1 (the next id to assign). */
  get fieldIdsEnd(): number {
    return this.names.length;
  }

  /** Field names by id (index 0 unused), for replicas' images. */
  fieldNames(): readonly string[] {
    return this.names;
  }

  /** Gives `k` the next field id unless it has one (or the dictionary is full). */
  private assignId(k: string, v: FieldValue | null): void {
    // Deleting a field the topic never had gives it no id: later images would
    // not name it, and its first real value would reach late joiners unnamed.
    if (this.ids.has(k) || this.names.length > this.maxFieldIds || (v === null && !this.state.has(k))) return;
    this.ids.set(k, this.names.length);
    this.names.push(k);
  }


  get version(): number {
    return this._version;
  }

  get tables(): KeyedTables | undefined {
    return this._tables;
  }

  get epoch(): number {
    return this._epoch;
  }

  /**
   * Replaces the whole state at a given (epoch, version): a replica catching
   * up from its sequencer's snapshot. History before it is gone.
   */
  reset(epoch: number, version: number, state: Iterable<[string, FieldValue]>, ts: number, fieldNames: readonly string[] = [''], id = this._id, tables?: KeyedTables): void {
    if (tables !== undefined && tables.version !== version) throw new RangeError(`topic ${this.name}: tables at ${tables.version}, image at ${version}`);
    this._tables = tables;
    this._id = id;
    this._epoch = epoch;
    this._version = version;
    this.ts = ts;
    this.state.clear();
    for (const [k, v] of state) this.state.set(k, v);
    this.history.clear();
    this.names = [...fieldNames];
    this.ids = new Map(this.names.map((n, i) => [n, i] as [string, number]).slice(1));
  }

  /** Applies an update sequenced elsewhere; false (nothing applied) unless it is the next version. */
  applyAt(version: number, changes: Changes, ts: number): boolean {
    if (version !== this._version + 1) return false;
    this.apply(changes, ts);
    return true;
  }

  /** Applies one publish; returns the new version. */
  apply(changes: Changes, ts: number): number {
    this.applySummary(changes, ts);
    if (this._tables !== undefined) this._tables.skip(this._version);
    return this._version;
  }

  /**
   * Applies one keyed batch, already validated (`prepared` by `tables`, which
   * this topic takes on if it had none): the summary, then the rows, as one
   * version. Returns the batch's net row change.
   */
  applyBatch(changes: Changes, tables: KeyedTables, prepared: PreparedBatch, ts: number): KeyedChange {
    if (this._tables !== undefined && this._tables !== tables) throw new Error(`topic ${this.name}: a batch prepared against other tables`);
    if (tables.version !== this._version) throw new RangeError(`topic ${this.name}: tables at ${tables.version}, topic at ${this._version}`);
    this._tables = tables;
    this.applySummary(changes, ts);
    return tables.commit(prepared, this._version);
  }

  /**
   * Replica side: a keyed batch sequenced elsewhere (its summary changes and
   * net row change) as the next version; `tables` (this topic's, or new ones
   * it takes on) must hold every table `change` touches and does not declare.
   * Returns the row change as applied (replace entries' `existed` recomputed).
   */
  applyChangeAt(changes: Changes, tables: KeyedTables, change: KeyedChange, ts: number): KeyedChange {
    if (this._tables !== undefined && this._tables !== tables) throw new Error(`topic ${this.name}: a row change for other tables`);
    if (tables.version !== this._version) throw new RangeError(`topic ${this.name}: tables at ${tables.version}, topic at ${this._version}`);
    this._tables = tables;
    this.applySummary(changes, ts);
    return tables.applyChange(change, this._version);
  }

  private applySummary(changes: Changes, ts: number): void {
    // Ids and state in one pass (applyChanges' rule: null deletes).
    const state = this.state;
    for (const k of changes.keys()) {
      const v = changes.get(k)!;
      this.assignId(k, v);
      if (v === null) state.delete(k);
      else state.set(k, v);
    }
    this._version++;
    this.ts = ts;
    this.history.push(this._version, changes);
  }

  /** The smallest correct way to bring `(epoch, version)` to the current version. */
  plan(epoch: number, version: number): CatchUpPlan {
    if (epoch === this._epoch && version === this._version) return { kind: 'current' };
    if (epoch === this._epoch && version < this._version) {
      if (this._tables !== undefined) return planKeyed({ history: this.history, state: this.state, tables: this._tables }, version);
      const merged = this.history.mergeFrom(version);
      if (merged) return { kind: 'delta', base: version, ...merged };
    }
    return { kind: 'snapshot' };
  }

  /** Field count after `changes` would apply (for the fields-per-topic limit). */
  fieldCountAfter(changes: Changes): number {
    let n = this.state.size;
    for (const k of changes.keys()) {
      const v = changes.get(k);
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
