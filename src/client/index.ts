// tickfan client SDK for Node and browsers. Imports only the protocol.
export { connect, TickfanClient } from './client.js';
export type { ClientOptions, ClientStats, ClientEvents, ConnectionState, PublishAck, WebSocketCtor, WebSocketLike } from './client.js';
export { Subscription } from './subscription.js';
export type { SubscribeOptions, Update, StatusEvent, SubscriptionEvents } from './subscription.js';
export { ClientError, ClientErrorCode } from './errors.js';
export { Backoff, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
export { TickfanError, ErrorCode, CloseCode } from '../protocol/index.js';
export type { FieldValue } from '../protocol/index.js';
