// What a STOMP connection waits for from dispatch, by the numeric id it gave
// the message: a receipt after an ack (or after a pong, for frames dispatch
// does not answer), a reply for a request, the RECEIPT that ends a DISCONNECT.

import type { HeaderList } from './frame.js';

/** What the answer carrying one id completes. */
export type Pending =
  /** SUBSCRIBE, UNSUBSCRIBE, SEND to a topic, ACK…: a RECEIPT when asked for (and the receipt-id of an ERROR). */
  | { type: 'receipt'; receipt: string | null; headers?: HeaderList }
  /** SEND to /service/…: the answer goes to `replyTo` as a MESSAGE (dropped without one). */
  | { type: 'request'; receipt: string | null; replyTo: string | null; correlationId: string | null }
  /** DISCONNECT with a receipt: RECEIPT, then close. */
  | { type: 'disconnect'; receipt: string };

/**
 * Ids in flight, each with what its answers complete, oldest first: a
 * subscription's SUBSCRIBE and a later UNSUBSCRIBE share its id, and their
 * acks come back in the order they were sent.
 */
export class PendingTable {
  private readonly byId = new Map<number, Pending | Pending[]>();

  add(id: number, p: Pending): void {
    const had = this.byId.get(id);
    if (had === undefined) this.byId.set(id, p);
    else if (Array.isArray(had)) had.push(p);
    else this.byId.set(id, [had, p]);
  }

  /** The oldest entry waiting on `id`, removed; undefined when nothing waits on it. */
  take(id: number): Pending | undefined {
    const had = this.byId.get(id);
    if (!Array.isArray(had)) {
      this.byId.delete(id);
      return had;
    }
    const p = had.shift();
    if (had.length === 0) this.byId.delete(id);
    return p;
  }

  has(id: number): boolean {
    return this.byId.has(id);
  }

  get size(): number {
    return this.byId.size;
  }
}
