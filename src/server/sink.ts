// Where a connection's frames go: a WebSocket, or an SSE response. Fan-out
// talks to this narrow interface so both transports share one slow lane,
// one sequence counter and one catch-up path.

import { FrameWriter } from '../protocol/index.js';
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
  /** Sends one frame: the connection's sequence number and its messages, in order. */
  send(seq: number, messages: readonly Uint8Array[]): SendStatus;
  /** Bytes queued in user space, not yet accepted by the kernel. */
  buffered(): number;
  /** Ends the connection with a close code (WebSocket) or by closing the stream (SSE). */
  end(code: number, reason: string): void;
}

const writer = new FrameWriter();

/** A uWebSockets.js WebSocket: binary frames of `u64 seq + size-prefixed messages`. */
export class WsSink implements Sink, NativeTopics {
  readonly native: NativeTopics = this;
  constructor(private readonly ws: UWS.WebSocket<unknown>) {}

  subscribe(topic: string): void {
    this.ws.subscribe(topic);
  }

  unsubscribe(topic: string): void {
    this.ws.unsubscribe(topic);
  }

  send(seq: number, messages: readonly Uint8Array[]): SendStatus {
    // The frame view is reused: uWebSockets.js copies it before send() returns.
    return this.ws.send(writer.write(seq, messages), true, false) as SendStatus;
  }

  buffered(): number {
    return this.ws.getBufferedAmount();
  }

  end(code: number, reason: string): void {
    this.ws.end(code, reason);
  }
}
