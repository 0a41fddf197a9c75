// What the STOMP command handlers work on: one connection's session, its
// tables, the node's dispatch and fan-out, and the two ways a frame ends
// (refused: ERROR and close; or a RECEIPT in order behind what is queued).

import type { NodeParts } from '../node-parts.js';
import type { Session } from '../session.js';
import type { HeaderList, StompVersion } from './frame.js';
import type { PendingTable } from './pending.js';
import type { StompSubscriptions } from './subscriptions.js';

export interface StompContext {
  readonly node: Pick<NodeParts, 'dispatch' | 'fanout' | 'ingest' | 'opts' | 'sessions' | 'store'>;
  readonly session: Session;
  readonly subs: StompSubscriptions;
  readonly pending: PendingTable;
  readonly version: StompVersion;
  /** A numeric id free on this connection (for dispatch messages and pending answers). */
  nextId(): number;
  /** Refuses a frame: an ERROR (with its receipt-id) then the close, as STOMP requires. */
  refuse(err: unknown, receipt: string | null): void;
  /** A RECEIPT (with `headers`, if any) that goes out after everything already queued for the connection. */
  receiptInOrder(receipt: string, headers?: HeaderList): void;
}
