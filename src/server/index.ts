// The server: the only folder that imports uWebSockets.js. Its public face:
// starting a node, options and their table-made docs, config loading, stats.
export { type TickfanServer, type PublishResult, type BatchInput, type FieldsInput, type RowOpInput } from './server.js';
export { keyedNotSupported } from './ingest.js';
export { createNode, type NodeInit, type TickfanNode } from './node.js';
export { resolveOptions, pinoLog, DEFAULT_OPTIONS, OptionError, type ServerOptions, type LogFn, type LogLevel } from './options.js';
export { serveOptionsHelp, optionsMarkdown } from './option-docs.js';
export { loadConfig, resolveConfig, explain, flagSpec, readConfigFile, type Config, type ResolvedConfig } from './config.js';
export { loadUws, isNativeUws, NativeUwsMissingError } from './uws.js';
export { ServerStats } from './stats.js';
