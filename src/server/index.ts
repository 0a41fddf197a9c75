// The server: the only folder that imports uWebSockets.js.
export { startServer, type TickfanServer, type PublishResult } from './server.js';
export { resolveOptions, DEFAULT_OPTIONS, OptionError, type ServerOptions } from './options.js';
export { loadUws, isNativeUws, NativeUwsMissingError } from './uws.js';
export { ServerStats } from './stats.js';
