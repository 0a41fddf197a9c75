// tickfan client SDK for Node and browsers. Imports only the protocol.
export { connect, TickfanClient } from './client.js';
export type { ClientEvents } from './client.js';
export { endpoints } from './endpoints.js';
export { ConnectionState } from './connection.js';
export type { ClientOptions } from './options.js';
export type { TokenSource, TokenFunction } from './tokens.js';
export type { ClientStats } from './stats.js';
export type { PublishAck } from './publishes.js';
export type { RequestPayload, RequestMeta, RequestOptions, ServiceHandle, ServiceHandler } from './services.js';
export type { TransportKind, WebSocketCtor, WebSocketLike } from './transport.js';
export { FetchEventSource, HttpStatusError, type EventSourceCtor, type EventSourceLike, type FetchLike } from './event-stream.js';
export { Subscription } from './subscription.js';
export type { SubscribeOptions, Update, StatusEvent, SubscriptionEvents } from './subscription.js';
export { ClientError, ClientErrorCode } from './errors.js';
export { Backoff, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
export { TickfanError, ErrorCode, CloseCode } from '../protocol/index.js';
export type { FieldValue } from '../protocol/index.js';
