// tickfan client SDK for Node and browsers. Imports only the protocol.
export { connect, TickfanClient, endpoints } from './client.js';
export type { ClientOptions, ClientStats, ClientEvents, ConnectionState, PublishAck, TransportKind, WebSocketCtor, WebSocketLike } from './client.js';
export { FetchEventSource, type EventSourceCtor, type EventSourceLike, type FetchLike } from './event-stream.js';
export { Subscription } from './subscription.js';
export type { SubscribeOptions, Update, StatusEvent, SubscriptionEvents } from './subscription.js';
export { ClientError, ClientErrorCode } from './errors.js';
export { Backoff, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
export { TickfanError, ErrorCode, CloseCode } from '../protocol/index.js';
export type { FieldValue } from '../protocol/index.js';
