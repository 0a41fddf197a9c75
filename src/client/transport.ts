// How the client reaches a server: a WebSocket (binary frames) or SSE (JSON
// events down, JSON commands up). Both take protocol messages and hand back
// numbered frames of them — each transport does its own encoding — so gap
// detection, catch-ups and resume are one piece of code whatever the transport.

import {
  Encoder,
  ServerFrameReader,
  clientFrame,
  type AnyMessage,
  type ClientMessage,
  type Protocol2Reader,
  type Unresolved,
} from '../protocol/index.js';

/** What a transport hands on: a message, or a protocol-2 message it could not resolve (a gap to heal). */
export type Incoming = AnyMessage | Unresolved;

/** The transport a client uses: WebSocket or Server-Sent Events. */
export type TransportKind = 'ws' | 'sse';

/** The subset of the browser WebSocket API the SDK needs. */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  /** Sends one binary message. */
  send(data: Uint8Array | ArrayBuffer): void;
  /** Closes the socket with a close code. */
  close(code?: number, reason?: string): void;
  /** Set by the SDK: the socket opened. */
  onopen: ((ev: unknown) => void) | null;
  /** Set by the SDK: a message arrived (`data` an ArrayBuffer, `binaryType` being `'arraybuffer'`). */
  onmessage: ((ev: { data: unknown }) => void) | null;
  /** Set by the SDK: the socket closed. */
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  /** Set by the SDK: the socket failed. */
  onerror: ((ev: unknown) => void) | null;
}
/** A WebSocket constructor (the browser's, `ws` in Node, or a test double): `connect(url, { WebSocket })`. */
export type WebSocketCtor = new (url: string) => WebSocketLike;

/** What an SSE server says when a stream opens. */
export interface SessionInfo {
  /** True when the server resumed the session of the Last-Event-ID it was given. */
  resumed: boolean;
  /** Subscriptions the server restored (id and pause state). */
  subs: { id: number; paused: boolean }[];
}

/** Callbacks a transport makes; none after `close()` was called. */
export interface TransportHandlers {
  /** Ready to send. `info` is null for a WebSocket. */
  open(info: SessionInfo | null): void;
  /** One server frame: its sequence number and messages, in order. */
  frame(seq: number, messages: readonly Incoming[]): void;
  /** Input that could not be decoded (the connection stays up). */
  error(err: Error): void;
  /** The connection ended (or could not open): a close code and a reason. */
  close(code: number, reason: string): void;
}

export interface Transport {
  readonly kind: TransportKind;
  /** True once open and able to send. */
  readonly ready: boolean;
  /** Sends client messages, in order (encoded as the transport's wire wants them). */
  send(messages: readonly ClientMessage[]): void;
  /** Closes without calling any handler again. */
  close(code: number, reason: string): void;
}

const OPEN = 1;

/**
 * Binary WebSocket: protocol-1 frames until the server's Welcome announces
 * protocol 2, then protocol-2 frames, whose snapshots and deltas `topics`
 * turns back into named ones (its topic ids are bound anew per connection).
 */
export class WsTransport implements Transport {
  readonly kind = 'ws';
  private readonly ws: WebSocketLike;
  private readonly enc = new Encoder(1024);
  private readonly frames = new ServerFrameReader();
  private done = false;

  constructor(
    url: string,
    Ctor: WebSocketCtor,
    private readonly h: TransportHandlers,
    private readonly topics: Protocol2Reader,
  ) {
    topics.reset();
    const ws = (this.ws = new Ctor(url));
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => {
      if (!this.done) h.open(null);
    };
    ws.onmessage = (ev) => {
      // A socket given up on (watchdog) may still deliver its backlog: not ours any more.
      if (!this.done) this.onData(ev.data);
    };
    ws.onerror = () => {
      // onclose follows with the code; nothing to do here.
    };
    ws.onclose = (ev) => {
      if (this.done) return;
      this.done = true;
      h.close(ev.code, ev.reason);
    };
  }

  get ready(): boolean {
    return !this.done && this.ws.readyState === OPEN;
  }

  send(messages: readonly ClientMessage[]): void {
    if (!this.ready) return;
    const parts: Uint8Array[] = [];
    for (const m of messages) {
      try {
        parts.push(this.enc.message(m));
      } catch (err) {
        // The client checks what it sends (publish values); one bad message must not sink the others.
        this.h.error(err as Error);
      }
    }
    if (parts.length) this.ws.send(clientFrame(parts));
  }

  close(code: number, reason: string): void {
    if (this.done) return;
    this.done = true;
    const ws = this.ws;
    ws.onclose = ws.onmessage = ws.onopen = null;
    // Not null: the `ws` package (Node) emits 'error' after close() on a socket still
    // connecting (the open timeout), and an 'error' without a listener is an uncaught exception.
    ws.onerror = () => {};
    try {
      ws.close(code, reason);
    } catch {
      // already closing
    }
  }

  private onData(data: unknown): void {
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : null;
    if (!bytes) return;
    let frame: { seq: number; messages: AnyMessage[]; error: unknown };
    try {
      frame = this.frames.read(bytes);
    } catch (err) {
      this.h.error(err as Error);
      return;
    }
    // Messages before a bad one in the same frame still count.
    const messages: Incoming[] = frame.messages;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      if (m.type === 'snapshot2' || m.type === 'delta2') messages[i] = this.topics.read(m);
      else if (m.type === 'keyedSnapshot2' || m.type === 'keyedDelta2') messages[i] = this.topics.readKeyed(m);
    }
    this.h.frame(frame.seq, messages);
    if (frame.error && !this.done) this.h.error(frame.error as Error);
  }
}
