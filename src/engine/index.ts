// Topic engine: topics, versions, epochs, history ring, conflation, patterns. No I/O.
export { Topic, type CatchUpPlan, type Accepted } from './topic.js';
export { TopicStore, DEFAULT_ENGINE_LIMITS, type EngineLimits } from './topic-store.js';
export { planKeyed, type TopicBatch } from './topic-tables.js';
export { HistoryRing } from './history-ring.js';
export { FieldState } from './field-state.js';
export { mergeChanges, mergeAll, applyChanges } from './conflation.js';
// Topic names live in the protocol (the client SDK matches patterns with the same code).
export { TopicPattern, validateTopic, isPattern, DEFAULT_MAX_TOPIC_LENGTH } from '../protocol/index.js';
export { EpochClock } from './epoch.js';
export { KeyedTables, Table, DepthView, KeyedBatchError, ChangeHistory, mergeKeyedChanges, mergeTableChange, applyToRows, viewChecksum, type Batch, type RowOp, type TableSpec, type Key, type KeyedChange, type TableChange, type RowChange, type KeyedCatchUp, type KeyedImage, type ViewSpec, type KeyType, type SortOrder, type BatchRefusal } from './tables/index.js';
