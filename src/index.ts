// tickfan: high-throughput market-data fan-out. Package root: the embeddable server.
export { startServer } from './start.js';
export { resolveOptions, DEFAULT_OPTIONS, OptionError, NativeUwsMissingError, isNativeUws } from './server/index.js';
export type { TickfanServer, PublishResult, ServerOptions } from './server/index.js';
export { ErrorCode, CloseCode, ERROR_CODE_TEXT, CLOSE_CODE_TEXT, TickfanError, PROTOCOL_VERSION } from './protocol/index.js';
export type { FieldValue, Changes, State } from './protocol/index.js';
