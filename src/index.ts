// tickfan: high-throughput market-data fan-out. Package root: the embeddable server.
export { startServer } from './start.js';
export { resolveOptions, DEFAULT_OPTIONS, OptionError, NativeUwsMissingError, isNativeUws } from './server/index.js';
export type { TickfanServer, PublishResult, ServerOptions, BatchInput, FieldsInput, RowOpInput } from './server/index.js';
export { KeyedBatchError } from './engine/index.js';
export type { TableSpec, Key, KeyType, SortOrder, BatchRefusal } from './engine/index.js';
export { ErrorCode, CloseCode, ERROR_CODE_TEXT, CLOSE_CODE_TEXT, TickfanError, PROTOCOL_VERSION } from './protocol/index.js';
export type { FieldValue, Changes, State } from './protocol/index.js';
