// A WebSocket connection's fan-out record, which is also its sink: binary
// frames in protocol 1's or protocol 2's framing, written to the
// uWebSockets.js socket, and the socket's uWS topics for native fan-out. One
// object instead of a Conn and a separate sink, the socket in the slot other
// connections keep their sink in (a connection's memory, issue 21); whether
// frames are deflated is the route's (the class), not a field.

import { FrameWriter, FrameWriter2 } from '../protocol/index.js';
import { Conn } from './fanout/index.js';
import type { NativeTopics, Sink, SendStatus } from './sink.js';
import type { UWS } from './uws.js';

const writer = new FrameWriter();
const writer2 = new FrameWriter2();

export class WsConn extends Conn implements Sink, NativeTopics {
  /** Its socket, from the open handler until it closes (held where other connections hold their sink). */
  get ws(): UWS.WebSocket<unknown> | null {
    return this.out as UWS.WebSocket<unknown> | null;
  }
  set ws(v: UWS.WebSocket<unknown> | null) {
    this.out = v;
  }

  /** Itself while its socket is open (fanout.open hands it itself; closing drops the socket). */
  override get sink(): Sink | null {
    return this.out ? this : null;
  }
  override set sink(v: Sink | null) {
    if (v === null) this.out = null;
    else if (v !== this) throw new TypeError('a WebSocket connection is its own sink');
  }

  /** Itself (a prototype getter, not a field). */
  get native(): NativeTopics {
    return this;
  }

  /** Deflate frames: the socket negotiated permessage-deflate (DeflateWsConn). */
  get compress(): boolean {
    return false;
  }

  subscribe(topic: string): void {
    this.ws!.subscribe(topic);
  }

  unsubscribe(topic: string): void {
    this.ws!.unsubscribe(topic);
  }

  send(seq: number, messages: readonly Uint8Array[], protocol: number): SendStatus {
    // The frame view is reused: uWebSockets.js copies it before send() returns.
    const frame = protocol === 2 ? writer2.write(seq, messages) : writer.write(seq, messages);
    return this.ws!.send(frame, true, this.compress) as SendStatus;
  }

  buffered(): number {
    return this.ws!.getBufferedAmount();
  }

  end(code: number, reason: string): void {
    this.ws!.end(code, reason);
  }
}

/** A WebSocket connection on a route with `compression` on: uWS deflates each frame for the sockets that negotiated it. */
export class DeflateWsConn extends WsConn {
  override get compress(): boolean {
    return true;
  }
}
