// The keyed part of a topic (order books, blotters): a publish as one batch of
// summary changes and row ops, and catch-up planning that spans both the
// summary's history ring and the tables' change history. Flat topics never
// reach this file; their publish path stays topic.ts#apply.

import { fieldsSize, keyedChangeSize, type Changes, type KeyedChange, type State } from '../protocol/index.js';
import type { HistoryRing } from './history-ring.js';
import type { Batch, KeyedTables } from './tables/index.js';

/** One publish to a topic: summary changes plus, optionally, row ops over its tables (one version for all of it). */
export interface TopicBatch {
  /** Summary changes (null deletes a field); may be empty when `tables` has ops. */
  readonly fields: Changes;
  readonly tables?: Batch;
}

/** What catch-up planning reads of a topic holding tables. */
export interface KeyedParts {
  readonly history: HistoryRing;
  readonly state: State;
  readonly tables: KeyedTables;
}

/** A keyed topic's plan (topic.ts's CatchUpPlan, with the row changes always there). */
export type KeyedPlan =
  | { readonly kind: 'snapshot' }
  | { readonly kind: 'delta'; readonly base: number; readonly version: number; readonly updates: number; readonly changes: Changes; readonly tables: KeyedChange };

/**
 * Catch-up for a topic holding tables, same epoch and an older version: a
 * merged delta only when both the summary ring and the tables' history cover
 * the gap and the two merged parts together are smaller than a snapshot of
 * the summary and every table; a snapshot otherwise (never a delta missing
 * row changes or tombstones past the tables' horizon).
 */
export function planKeyed(topic: KeyedParts, version: number): KeyedPlan {
  const tables = topic.tables;
  const summary = topic.history.mergeFrom(version);
  if (summary === undefined) return { kind: 'snapshot' };
  const rows = tables.history.mergeFrom(version);
  if (rows === undefined) return { kind: 'snapshot' };
  const deltaBytes = fieldsSize(summary.changes) + keyedChangeSize(rows.change);
  const snapshotBytes = fieldsSize(topic.state) + tables.snapshotBytes;
  if (deltaBytes >= snapshotBytes) return { kind: 'snapshot' };
  return { kind: 'delta', base: version, version: summary.version, updates: summary.updates, changes: summary.changes, tables: rows.change };
}

/** True when a batch has nothing in it. */
export function isEmptyBatch(batch: TopicBatch): boolean {
  const t = batch.tables;
  return batch.fields.size === 0 && (t === undefined || ((t.declare?.length ?? 0) === 0 && t.ops.length === 0));
}
