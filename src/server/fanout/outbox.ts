// Direct frames: messages for one connection alone (welcome, acks, errors,
// catch-ups, heartbeats) are queued per connection and sent as one frame per
// connection per event-loop turn, carrying its exact sequence number.

import { serverFrameSize } from '../../protocol/index.js';
import { SendStatus } from '../sink.js';
import type { ServerStats } from '../stats.js';
import type { Conn } from './state.js';

/** A direct frame is sent early once its messages reach this size. */
export const MAX_FRAME_BYTES = 512 * 1024;

export interface OutboxHooks {
  /** Published frames `conn` has received so far (its sequence number counts them). */
  fastFrames(conn: Conn): number;
  /** The transport refused a frame (past its hard cap). */
  dropped(conn: Conn): void;
  /** A frame went out (the slow lane looks at the buffer). */
  sent(conn: Conn): void;
  /** Something was queued: a flush must run later in this turn. */
  schedule(): void;
}

export class Outbox {
  private readonly dirty: Conn[] = [];

  constructor(
    private readonly stats: ServerStats,
    private readonly hooks: OutboxHooks,
  ) {}

  queue(conn: Conn, msg: Uint8Array): void {
    if (conn.closed) return;
    conn.outbox.push(msg);
    conn.outboxBytes += msg.byteLength;
    if (!conn.queued) {
      conn.queued = true;
      this.dirty.push(conn);
      this.hooks.schedule();
    }
    if (conn.outboxBytes >= MAX_FRAME_BYTES) this.flushConn(conn);
  }

  /** Sends every connection's queued messages. */
  flushAll(): void {
    const conns = this.dirty.splice(0);
    for (const conn of conns) {
      conn.queued = false;
      this.flushConn(conn);
    }
  }

  flushConn(conn: Conn): void {
    const sink = conn.sink;
    if (conn.closed || !sink || conn.outbox.length === 0) {
      conn.outbox.length = 0;
      conn.outboxBytes = 0;
      return;
    }
    this.stats.frames++;
    // Its number counts the published frames it received since its last direct one.
    const fast = sink.native ? this.hooks.fastFrames(conn) : 0;
    conn.seq += fast - conn.fastAtLastSend + 1;
    conn.fastAtLastSend = fast;
    this.stats.bytesOut += serverFrameSize(conn.protocol, conn.seq, conn.outbox);
    const r = sink.send(conn.seq, conn.outbox, conn.protocol);
    // A fresh array: an idle connection keeps no backing store from its last burst.
    conn.outbox = [];
    conn.outboxBytes = 0;
    if (r === SendStatus.DROPPED) this.hooks.dropped(conn);
    else this.hooks.sent(conn);
  }
}
