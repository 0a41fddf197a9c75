// Where a connection's frames go: a WebSocket, or an SSE response. Fan-out
// talks to this narrow interface so both transports share one slow lane,
// one sequence counter and one catch-up path.

import { FrameWriter, FrameWriter2 } from '../protocol/index.js';
import type { UWS } from './uws.js';

export const SendStatus = { SENT: 0, BUFFERED: 1, DROPPED: 2 } as const;
export type SendStatus = (typeof SendStatus)[keyof typeof SendStatus];

/** A transport that can join uWebSockets.js topics, for native fan-out. */
export interface NativeTopics {
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
}

export interface Sink {
  /** Present when frames published natively to a topic reach this connection. */
  readonly native?: NativeTopics;
  /** Sends one frame: the connection's sequence number and its messages, in order, in `protocol`'s framing. */
  send(seq: number, messages: readonly Uint8Array[], protocol: number): SendStatus;
  /** Bytes queued in user space, not yet accepted by the kernel. */
  buffered(): number;
  /** Ends the connection with a close code (WebSocket) or by closing the stream (SSE). */
  end(code: number, reason: string): void;
}

const writer = new FrameWriter();
const writer2 = new FrameWriter2();

/** A uWebSockets.js WebSocket: binary frames in protocol 1's or protocol 2's framing. Two fields and no closures: one per connection. */
export class WsSink implements Sink, NativeTopics {
  constructor(
    private readonly ws: UWS.WebSocket<unknown>,
    /** Deflate frames when the socket negotiated permessage-deflate (the `compression` option). */
    private readonly compress = false,
  ) {}

  /** Itself (a prototype getter, not a field: one slot less per connection). */
  get native(): NativeTopics {
    return this;
  }

  subscribe(topic: string): void {
    this.ws.subscribe(topic);
  }

  unsubscribe(topic: string): void {
    this.ws.unsubscribe(topic);
  }

  send(seq: number, messages: readonly Uint8Array[], protocol: number): SendStatus {
    // The frame view is reused: uWebSockets.js copies it before send() returns.
    const frame = protocol === 2 ? writer2.write(seq, messages) : writer.write(seq, messages);
    return this.ws.send(frame, true, this.compress) as SendStatus;
  }

  buffered(): number {
    return this.ws.getBufferedAmount();
  }

  end(code: number, reason: string): void {
    this.ws.end(code, reason);
  }
}
