// Where a connection's frames go: a WebSocket (ws-conn.ts), an SSE response
// or a STOMP socket. Fan-out talks to this narrow interface so every
// transport shares one slow lane, one sequence counter and one catch-up path.

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
