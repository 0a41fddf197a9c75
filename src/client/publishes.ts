// Publishes waiting for the server's answer: an Ack resolves one, an Error
// rejects it, a dropped connection fails those already sent. And what may be
// published: field values only, checked before anything is sent.

import { ErrorCode, TickfanError, checkFieldValue, type AckMsg, type Changes, type FieldValue } from '../protocol/index.js';

/** What `client.publish()` resolves with: the version (and epoch) the server gave the publish. */
export interface PublishAck {
  topic: string;
  epoch: number;
  version: number;
}

interface Pending {
  resolve: (v: PublishAck) => void;
  reject: (err: Error) => void;
  /** Written to a socket; false while it waits in the queue for a connection. */
  sent: boolean;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * The change set of a publish, or a BAD_FIELD TickfanError naming the first
 * field whose value is not a field value (an object, an array, a Date,
 * undefined, a function…): such a value is refused, never sent as something else.
 */
export function changesOf(fields: Record<string, unknown>): Changes {
  if (typeof fields !== 'object' || fields === null) {
    throw new TickfanError(ErrorCode.BAD_REQUEST, 'publish takes an object of field → value (null deletes)');
  }
  const changes: Changes = new Map();
  for (const [k, v] of Object.entries(fields)) {
    checkFieldValue(k, v);
    changes.set(k, asSent(v));
  }
  return changes;
}

/** A plain object (no prototype) of a change set or state, as updates and replies hand them out. */
export function objectOf(c: ReadonlyMap<string, FieldValue | null>): Record<string, FieldValue | null> {
  const out: Record<string, FieldValue | null> = Object.create(null);
  for (const [k, v] of c) out[k] = v;
  return out;
}

/**
 * The value as the wire delivers it, whatever the transport: a bigint within
 * 2^53 arrives as a number (the binary protocol has one integer kind), and
 * bytes are copied now, so that changing the array later cannot change a
 * publish still waiting for a connection.
 */
function asSent(v: FieldValue | null): FieldValue | null {
  if (typeof v === 'bigint') return v >= -MAX_SAFE && v <= MAX_SAFE ? Number(v) : v;
  return v instanceof Uint8Array ? new Uint8Array(v) : v;
}

export class PendingPublishes {
  private readonly pending = new Map<number, Pending>();

  /**
   * Tracks publish `id` and hands it to `send`; the promise settles with the
   * server's answer, or rejects at once when `send` could not even queue it.
   */
  track(id: number, send: () => 'sent' | 'queued' | 'dropped', dropped: () => Error): Promise<PublishAck> {
    return new Promise<PublishAck>((resolve, reject) => {
      const p: Pending = { resolve, reject, sent: false };
      this.pending.set(id, p);
      const how = send();
      if (how === 'dropped') {
        this.pending.delete(id);
        reject(dropped());
      } else p.sent = how === 'sent';
    });
  }

  /** Resolves the publish an Ack answers; false when it answers none. */
  ack(m: AckMsg): boolean {
    const p = this.pending.get(m.id);
    if (!p) return false;
    this.pending.delete(m.id);
    p.resolve({ topic: m.topic, epoch: m.epoch, version: m.version });
    return true;
  }

  /** Rejects publish `id` with `err`; false when there is no such publish. */
  fail(id: number, err: Error): boolean {
    const p = this.pending.get(id);
    if (!p) return false;
    this.pending.delete(id);
    p.reject(err);
    return true;
  }

  /** A connection opened and took everything queued. */
  markSent(): void {
    for (const p of this.pending.values()) p.sent = true;
  }

  /** Rejects pending publishes (only those already sent when `onlySent`). */
  failAll(err: Error, onlySent = false): void {
    for (const [id, p] of this.pending) {
      if (onlySent && !p.sent) continue;
      this.pending.delete(id);
      p.reject(err);
    }
  }
}
