// Keyed tables (order books, blotters): declarations, batches, net changes,
// history and catch-ups, depth views, view checksums. Pure; not yet wired into
// topics, the protocol or fan-out. What the SDK needs too (declarations and row
// order, net row changes, size estimates, view checksums) lives in
// src/protocol/keyed/ and is re-exported here.
export {
  compareKeys,
  compareStrings,
  compareValues,
  keyProblem,
  rowRank,
  sameSpec,
  validateSpec,
  MAX_STRING_KEY_LENGTH,
  MAX_TABLES_PER_TOPIC,
  type Key,
  type KeyType,
  type Row,
  type RowRank,
  type SortDir,
  type SortOrder,
  type TableSpec,
} from '../../protocol/index.js';
export { Table, type KeyRange } from './table.js';
export { KeyedBatchError, DEFAULT_TABLE_LIMITS, prepareBatch, type Batch, type BatchRefusal, type Guard, type PreparedBatch, type RowOp, type TableLimits } from './batch.js';
export {
  DELETE,
  applyFields,
  applyToRows,
  diffRow,
  emptyKeyedChange,
  isEmptyChange,
  keyedChangeSize,
  mergeKeyedChanges,
  mergeRowChange,
  mergeTableChange,
  rowEntries,
  tableChangeSize,
  type KeyedChange,
  type RowChange,
  type TableChange,
} from '../../protocol/index.js';
export { ChangeHistory, DEFAULT_HISTORY_LIMITS, type HistoryLimits } from './change-history.js';
export { KeyedTables, type KeyedCatchUp, type KeyedImage } from './keyed-tables.js';
export { DepthView, type ViewSpec } from './depth-view.js';
export { crc32, canonicalView, viewChecksum, type ChecksumTable } from '../../protocol/index.js';
