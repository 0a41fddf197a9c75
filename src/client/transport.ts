// How the client reaches a server: a WebSocket (binary frames) or SSE (JSON
// events down, JSON commands up). Both take protocol messages and hand back
// numbered frames of them — each transport does its own encoding — so gap
// detection, catch-ups and resume are one piece of code whatever the transport.

import { Encoder, SERVER_FRAME_HEADER, clientFrame, decodeMessage, frameSeq, splitMessages, type AnyMessage, type ClientMessage } from '../protocol/index.js';

export type TransportKind = 'ws' | 'sse';

/** The subset of the browser WebSocket API the SDK needs. */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: Uint8Array | ArrayBuffer): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}
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
  frame(seq: number, messages: readonly AnyMessage[]): void;
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

/** Binary WebSocket: `u64 seq + size-prefixed messages` per frame. */
export class WsTransport implements Transport {
  readonly kind = 'ws';
  private readonly ws: WebSocketLike;
  private readonly enc = new Encoder(1024);
  private done = false;

  constructor(url: string, Ctor: WebSocketCtor, private readonly h: TransportHandlers) {
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
    ws.onclose = ws.onmessage = ws.onerror = ws.onopen = null;
    try {
      ws.close(code, reason);
    } catch {
      // already closing
    }
  }

  private onData(data: unknown): void {
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : null;
    if (!bytes) return;
    let seq: number;
    try {
      seq = frameSeq(bytes);
    } catch (err) {
      this.h.error(err as Error);
      return;
    }
    // Messages before a bad one in the same frame still count.
    const messages: AnyMessage[] = [];
    let bad: unknown = null;
    try {
      splitMessages(bytes, SERVER_FRAME_HEADER, (m) => messages.push(decodeMessage(m)));
    } catch (err) {
      bad = err;
    }
    this.h.frame(seq, messages);
    if (bad && !this.done) this.h.error(bad as Error);
  }
}
