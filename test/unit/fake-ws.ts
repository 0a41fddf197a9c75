// A fake WebSocket for the SDK's unit tests: records what the client sends
// (decoded client messages), and lets a test open it (with the protocol-1
// Welcome tickfan sends before it has read Hello), answer Hello, deliver server
// frames with the next sequence number, and drop it with a close code.

import type { WebSocketLike } from '../../src/client/index.js';
import { Encoder, FrameWriter, decodeMessage, splitMessages, type ClientMessage } from '../../src/protocol/index.js';

const enc = new Encoder();
const writer = new FrameWriter();

export class FakeWs implements WebSocketLike {
  /** Every socket made since the test reset it (`FakeWs.all = []`). */
  static all: FakeWs[] = [];
  binaryType = '';
  readyState = 0;
  readonly sent: ClientMessage[] = [];
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  private seq = 0;

  constructor(readonly url: string) {
    FakeWs.all.push(this);
  }

  static last(): FakeWs {
    return FakeWs.all[FakeWs.all.length - 1]!;
  }

  send(data: Uint8Array | ArrayBuffer): void {
    const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
    splitMessages(bytes, 0, (m) => this.sent.push(decodeMessage(m) as ClientMessage));
  }

  close(): void {
    this.readyState = 3;
  }

  /** The socket opens and, as tickfan does, a protocol-1 Welcome goes out before the server has read Hello. */
  open(welcome = true): void {
    this.readyState = 1;
    this.onopen?.({});
    if (welcome) this.deliver(enc.welcome('fake', 60_000, 1 << 20, []));
  }

  /** Opens and answers Hello as the server does: protocol 2 gets a Welcome of its own; for protocol 1 the first one was the answer. */
  accept(): void {
    this.open();
    const protocol = this.sentOf('hello').at(-1)!.protocol;
    if (protocol !== 1) this.deliver(enc.welcome('fake', 60_000, 1 << 20, [], protocol));
  }

  /** The server drops the connection. */
  drop(code = 1006): void {
    this.readyState = 3;
    this.onclose?.({ code, reason: 'dropped' });
  }

  /** One server frame with the next sequence number. */
  deliver(...messages: Uint8Array[]): void {
    this.onmessage?.({ data: writer.write(++this.seq, messages).slice() });
  }

  sentOf<K extends ClientMessage['type']>(type: K): Extract<ClientMessage, { type: K }>[] {
    return this.sent.filter((m): m is Extract<ClientMessage, { type: K }> => m.type === type);
  }

  /** The tokens of the Hellos sent. */
  hellos(): string[] {
    return this.sentOf('hello').map((m) => m.token);
  }
}
