// Decoded protocol messages as plain objects, discriminated on `type`.
// Versions and epochs are numbers (kept below 2^53 by the server).

import type { Key, KeyedChange, TableSpec } from './keyed/index.js';
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
  /** Keyed topics: the views asked for, by table name (a table not listed: every row, every field). */
  tables?: TableViewRequest[];
  /** Keyed topics: every keyed snapshot and delta carries the view's checksum. */
  checksums?: boolean;
};
/** A subscriber's view of one table: the top `depth` rows (0: all) with `fields` (empty: all). */
export interface TableViewRequest {
  table: string;
  depth: number;
  fields: string[];
}
export type UnsubscribeMsg = { type: 'unsubscribe'; id: number };
export type PublishMsg = {
  type: 'publish';
  id: number;
  topic: string;
  changes: Changes;
  /** Keyed topics: the batch's declarations and row ops, atomic with `changes` (one version). */
  keyed?: KeyedBatchMsg;
  /**
   * Keyed topics, JSON commands (SSE, STOMP): a batch in the HTTP publish's
   * JSON form naming a table this node cannot read (a cluster edge that does
   * not follow the topic has no key types for it). Sent as given to the
   * topic's origin, which reads it with its own tables; `changes` is empty.
   */
  keyedJson?: { fields?: Record<string, unknown>; tables?: Record<string, unknown> };
};

// ---------------------------------------------------------------- keyed topics: publish

/** `ifNew`: refused when the row exists at that point of the batch; `ifExists`: when it does not. */
export type RowGuard = 'ifNew' | 'ifExists';
/** deleteRange bounds: inclusive unless marked exclusive; a missing bound is open. */
export interface KeyRangeMsg {
  from?: Key;
  to?: Key;
  fromExclusive?: boolean;
  toExclusive?: boolean;
}
/** One row op of a publish (structurally the engine's RowOp). */
export type KeyedRowOp =
  | { op: 'upsert'; table: string; key: Key; fields: Changes; guard?: RowGuard }
  | { op: 'replace'; table: string; key: Key; fields: Changes; guard?: RowGuard }
  | { op: 'delete'; table: string; key: Key; guard?: RowGuard }
  | { op: 'clear'; table: string }
  | ({ op: 'deleteRange'; table: string } & KeyRangeMsg);
/** A publish's keyed part (structurally the engine's Batch). */
export interface KeyedBatchMsg {
  declare?: TableSpec[];
  ops: KeyedRowOp[];
}
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

// ---------------------------------------------------------------- keyed topics: server → client
//
// THE CONTRACT between the codec (src/protocol) and the SDK's keyed view
// (src/client). Two layers, like Snapshot2/Delta2 → Snapshot/Delta:
//   * KeyedSnapshot2Msg / KeyedDelta2Msg: what decodeMessage2 returns for
//     frame kinds 3 / 4 — ids as on the wire (topic_id, table ids, field ids
//     with names only where they travelled);
//   * KeyedSnapshotMsg / KeyedDeltaMsg: resolved by Protocol2Reader (topic and
//     field names, tables by name) and what SSE/STOMP JSON decode to. The SDK
//     consumes these.
// A client applies a KeyedDeltaMsg to its view at `base` with applyToRows per
// table (`change.tables`), the summary with the Changes; the view then equals
// the server's view at `version` exactly, evictions included (a row leaving a
// depth window is a `delete`). When `checksum` is not null it is viewChecksum
// of the view at `version` (src/protocol/keyed/view-checksum.ts).

/** A table as a subscriber sees it: its declaration and the view's window. */
export interface KeyedTableView {
  /** Name, key type and sort order (maxRows is not carried). */
  spec: TableSpec;
  /** Rows in the window, best first; 0: every row. */
  depth: number;
  /** The fields rows carry in this view; empty: all. */
  fields: string[];
}

/** A table bound to `id` (the op stream's table number) for the topic's binding on this connection. */
export interface KeyedTableBinding extends KeyedTableView {
  id: number;
  /** Int tables: the key a message's first key of the table is written against (absent: 0). */
  keyBase?: number;
}

/** One row change as decoded from the wire: fields as packed entries (names resolved later). */
export type WireRowChange =
  | { op: 'upsert'; entries: PackedEntry[] }
  | { op: 'replace'; entries: PackedEntry[]; existed: boolean }
  | { op: 'delete' };

/** A table's net change on the wire: `clear` first, then one change per key in key order. */
export interface WireTableChange {
  clear: boolean;
  /** The ops' key-type bit (a string-keyed table): known even for a lone clear. */
  stringKeys: boolean;
  /** Set when the int keys are offsets from the table's key base, which this message does not bind (Protocol2Reader adds it). */
  relative?: boolean;
  rows: Map<Key, WireRowChange>;
}

/**
 * Frame kind 3: a keyed topic's state at one version (or one part of it),
 * binding topicId to (topic, epoch) and every table of the view to its id.
 * Part 0 replaces the whole view; parts 1… (same version, no delta of the
 * topic in between) add rows; `last` ends the snapshot.
 */
export type KeyedSnapshot2Msg = {
  type: 'keyedSnapshot2';
  topicId: number;
  topic: string;
  epoch: number;
  version: number;
  /** Summary fields (every entry named), in part 0; empty in later parts. */
  summary: PackedEntry[];
  /** Every table of the view (in every part). */
  tables: KeyedTableBinding[];
  /** Rows by table id: each a `replace` (existed false), never a clear or delete. */
  rows: Map<number, Map<Key, PackedEntry[]>>;
  part: number;
  last: boolean;
  /** Checksum of the whole view at `version` (in the last part only), or null. */
  checksum: number | null;
  ts: number;
};

/**
 * Frame kind 4: the view at base = version − updates turned into the view at
 * `version`. `topic`/`epoch` present (not null) when it binds topicId
 * (catch-ups): it then binds every table of the view again.
 */
export type KeyedDelta2Msg = {
  type: 'keyedDelta2';
  topicId: number;
  topic: string | null;
  epoch: number;
  base: number;
  version: number;
  updates: number;
  summary: PackedEntry[];
  /** Tables bound by this message (all of the view's when it binds topicId; else tables new to the view). */
  tables: KeyedTableBinding[];
  /** Net changes by table id. */
  rows: Map<number, WireTableChange>;
  checksum: number | null;
  ts: number;
};

/** A resolved keyed snapshot (part): names everywhere, tables by name. */
export type KeyedSnapshotMsg = {
  type: 'keyedSnapshot';
  topic: string;
  epoch: number;
  version: number;
  /** Summary fields the view holds (part 0; empty in later parts). */
  summary: State;
  /** Every table of the view by name. */
  tables: Map<string, KeyedTableView>;
  /** Rows by table name (part 0 starts from an empty view; later parts add rows). */
  rows: Map<string, Map<Key, State>>;
  part: number;
  last: boolean;
  checksum: number | null;
  ts: number;
};

/** A resolved keyed delta: apply `summary` and `change` to the view at `base` to get the view at `version`. */
export type KeyedDeltaMsg = {
  type: 'keyedDelta';
  topic: string;
  epoch: number;
  base: number;
  version: number;
  updates: number;
  summary: Changes;
  /** Tables (re)bound by this message, by name; `change.declared` lists their specs. */
  tables: Map<string, KeyedTableView>;
  /** The net row changes (evictions are deletes; a re-entry is a replace). */
  change: KeyedChange;
  checksum: number | null;
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
  | KeyedSnapshot2Msg
  | KeyedDelta2Msg
  | KeyedSnapshotMsg
  | KeyedDeltaMsg
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

/** What protocol 2 needs to know of a topic to encode it (the engine's Topic is one). */
export interface TopicRef {
  /** The topic's number, bound to its name and epoch by snapshots and catch-ups. */
  readonly id: number;
  readonly name: string;
  readonly epoch: number;
  /** The field's id in this topic's epoch; 0 when it has none (its name then always travels). */
  fieldId(name: string): number;
}
