// Clients of tickfan's JSON transports that tests share: a stompjs Client
// over `ws` (the real STOMP client) that collects ERROR frames, and a raw SSE
// reader that keeps every message of its stream (subclasses look at each).

import { request } from 'node:http';
import { Client, type IFrame } from '@stomp/stompjs';
import WebSocket from 'ws';

/** Closers a test file runs after each test. */
export type Cleanup = (() => unknown)[];

/** A connected stompjs Client on `port`'s /stomp; its ERROR frames collected. Closed by `cleanup`. */
export async function stompClient(port: number, cleanup: Cleanup): Promise<{ client: Client; errors: IFrame[] }> {
  const errors: IFrame[] = [];
  let socket: WebSocket | null = null;
  const client = new Client({
    webSocketFactory: () => (socket = new WebSocket(`ws://127.0.0.1:${port}/stomp`, ['v12.stomp'])),
    reconnectDelay: 0,
    heartbeatIncoming: 0,
    heartbeatOutgoing: 0,
    debug: () => {},
  });
  client.onStompError = (f) => errors.push(f);
  const ready = new Promise<void>((resolve, reject) => {
    client.onConnect = () => resolve();
    setTimeout(() => reject(new Error('no CONNECTED within 5 s')), 5_000).unref();
  });
  client.activate();
  cleanup.push(async () => {
    await client.deactivate({ force: true });
    (socket as WebSocket | null)?.terminate();
  });
  await ready;
  return { client, errors };
}

/** A raw SSE reader: its session id and every message of the stream; `onMessage` sees each as it comes. */
export class RawSse {
  session = '';
  readonly messages: Record<string, any>[] = [];
  private buf = '';

  /** Opens GET `path` on `port` (closed by `cleanup`); resolves at the response. */
  static open<T extends RawSse>(this: new () => T, port: number, cleanup: Cleanup, path = '/sse'): Promise<T> {
    return new Promise((resolve, reject) => {
      const s = new this();
      const req = request({ host: '127.0.0.1', port, path, agent: false, headers: { accept: 'text/event-stream' } });
      req.on('response', (res) => {
        res.setEncoding('utf8');
        res.on('data', (c: string) => s.onData(c));
        resolve(s);
      });
      req.on('error', reject);
      req.end();
      cleanup.push(() => req.destroy());
    });
  }

  /** The ack or error answering command `id`, if it has come. */
  answer(id: number): Record<string, any> | undefined {
    return this.messages.find((m) => (m.type === 'ack' || m.type === 'error') && m.id === id);
  }

  protected onMessage(_m: Record<string, any>): void {}

  private onData(chunk: string): void {
    this.buf += chunk;
    let at: number;
    while ((at = this.buf.indexOf('\n\n')) >= 0) {
      const block = this.buf.slice(0, at);
      this.buf = this.buf.slice(at + 2);
      for (const line of block.split('\n')) {
        if (!line.startsWith('data: ')) continue;
        for (const m of JSON.parse(line.slice(6)) as Record<string, any>[]) {
          if (m.type === 'session') this.session = m.session;
          this.messages.push(m);
          this.onMessage(m);
        }
      }
    }
  }
}
