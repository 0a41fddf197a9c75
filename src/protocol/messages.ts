// Decoded protocol messages as plain objects, discriminated on `type`.
// Versions and epochs are numbers (kept below 2^53 by the server).

import type { PackedEntry } from './packed.js';
import type { Changes, State } from './values.js';

/** Protocol 1: the first protocol, spoken by every connection until its Hello asks for another. */
export const PROTOCOL_VERSION = 1;
/** The highest protocol this build speaks (Welcome.max_protocol). */
export const MAX_PROTOCOL = 2;

export interface ResumePoint {
  topic: string;
  epoch: number;
  version: number;
}

export const TopicState = { OK: 0, STALE: 1, GONE: 2 } as const;
export type TopicState = (typeof TopicState)[keyof typeof TopicState];

export type HelloMsg = { type: 'hello'; protocol: number; client: string; token: string };
export type WelcomeMsg = {
  type: 'welcome';
  protocol: number;
  server: string;
  heartbeatMs: number;
  maxFrame: number;
  rateTiers: number[];
  /** The highest protocol the server speaks (1 from servers that predate protocol 2). */
  maxProtocol: number;
};
export type SubscribeMsg = {
  type: 'subscribe';
  id: number;
  topics: string[];
  maxRate: number;
  fields: string[];
  resume: ResumePoint[];
  /** Protocol 2: deltas carry their publish time only when asked for. */
  timestamps: boolean;
};
export type UnsubscribeMsg = { type: 'unsubscribe'; id: number };
export type PublishMsg = { type: 'publish'; id: number; topic: string; changes: Changes };
export type CatchUpMsg = { type: 'catchUp'; topic: string; epoch: number; version: number };
export type PauseMsg = { type: 'pause'; id: number };
export type ResumeMsg = { type: 'resume'; id: number };
export type PingMsg = { type: 'ping'; nonce: bigint };
export type PongMsg = { type: 'pong'; nonce: bigint };
export type SnapshotMsg = { type: 'snapshot'; topic: string; epoch: number; version: number; fields: State; ts: number };
export type DeltaMsg = {
  type: 'delta';
  topic: string;
  epoch: number;
  base: number;
  version: number;
  updates: number;
  changes: Changes;
  ts: number;
};
/** Protocol 2 snapshot: binds topicId to (topic, epoch); every entry carries its name. */
export type Snapshot2Msg = {
  type: 'snapshot2';
  topicId: number;
  topic: string;
  epoch: number;
  version: number;
  entries: PackedEntry[];
  ts: number;
};
/** Protocol 2 delta: `topic` and `epoch` are present when it binds topicId (catch-ups); ts is 0 unless asked for. */
export type Delta2Msg = {
  type: 'delta2';
  topicId: number;
  topic: string | null;
  epoch: number;
  base: number;
  version: number;
  updates: number;
  entries: PackedEntry[];
  ts: number;
};
export type TopicStatusMsg = { type: 'topicStatus'; topic: string; state: TopicState; epoch: number; version: number };
export type AckMsg = { type: 'ack'; id: number; topic: string; epoch: number; version: number; count: number };
export type ErrorMsg = { type: 'error'; code: number; id: number; topic: string; message: string };
export type HeartbeatMsg = { type: 'heartbeat'; time: number; versions: ResumePoint[] };

/** A request's or a reply's payload: a field map (as in a publish) or bytes. */
export type Payload = { fields: Changes; data: null } | { fields: null; data: Uint8Array };

export type ServeMsg = { type: 'serve'; id: number; service: string };
export type UnserveMsg = { type: 'unserve'; id: number };
export type RequestMsg = { type: 'request'; id: number; service: string; payload: Payload; timeoutMs: number };
export type ServiceRequestMsg = {
  type: 'serviceRequest';
  correlation: number;
  serveId: number;
  service: string;
  requester: string;
  payload: Payload;
  timeoutMs: number;
};
export type ReplyMsg = { type: 'reply'; correlation: number; payload: Payload; failed: boolean; error: string };
/** code 0: `payload` is the reply; otherwise an error code and message. */
export type ResponseMsg = { type: 'response'; id: number; code: number; message: string; payload: Payload; responder: string };

export type ClientMessage =
  | HelloMsg
  | ServeMsg
  | UnserveMsg
  | RequestMsg
  | ReplyMsg
  | SubscribeMsg
  | UnsubscribeMsg
  | PublishMsg
  | CatchUpMsg
  | PauseMsg
  | ResumeMsg
  | PingMsg
  | PongMsg;

export type ServerMessage =
  | WelcomeMsg
  | ServiceRequestMsg
  | ResponseMsg
  | SnapshotMsg
  | DeltaMsg
  | Snapshot2Msg
  | Delta2Msg
  | TopicStatusMsg
  | AckMsg
  | ErrorMsg
  | HeartbeatMsg
  | PingMsg
  | PongMsg;

export type AnyMessage = ClientMessage | ServerMessage;

const CLIENT_TYPES: ReadonlySet<string> = new Set([
  'hello', 'subscribe', 'unsubscribe', 'publish', 'catchUp', 'pause', 'resume', 'ping', 'pong',
  'serve', 'unserve', 'request', 'reply',
]);

export function isClientMessage(m: AnyMessage): m is ClientMessage {
  return CLIENT_TYPES.has(m.type);
}
