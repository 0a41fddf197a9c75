// Shared helpers for the integration tests: a real server on port 0, real SDK
// clients over real sockets, a raw frame client that checks every sequence
// number, and bounded polling. Every test registers what it opens with a
// Harness and closes it in afterEach.

import { request } from 'node:http';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { startServer, type ServerOptions, type TickfanServer } from '../../src/index.js';
import { connect, type ClientOptions, type TickfanClient, type Subscription, type Update, type WebSocketCtor } from '../../src/client/index.js';
import { freePort as freeServerPort } from '../../src/server/free-port.js';
import { Encoder, clientFrame, decodeServerFrame, type AnyMessage, type FieldValue } from '../../src/protocol/index.js';

/** Encodes the Pings of RawClient.roundTrip(). */
const barrierEncoder = new Encoder();

/** Polls `predicate` until it is true; throws (naming `what`) after `timeoutMs`. */
export async function waitFor(predicate: () => boolean, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Lets queued I/O and setImmediate work (server flushes) run. */
export function tick(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

/** Server options every test starts from: loopback, port 0, quiet logs. */
export const QUIET = (): Partial<ServerOptions> => ({ port: 0, host: '127.0.0.1', log: () => {} });

/**
 * A port that was free a moment ago. For tests that restart a server on the
 * same port: uSockets sets SO_REUSEADDR only for an explicit port, so a server
 * started with port 0 leaves TIME_WAIT connections that block a re-listen.
 */
export function freePort(): Promise<number> {
  return freeServerPort('127.0.0.1');
}

export function wsUrl(server: TickfanServer | number): string {
  return `ws://127.0.0.1:${typeof server === 'number' ? server : server.port}/ws`;
}

/**
 * A WebSocket class (the `ws` package) that remembers every instance it
 * creates, so a test can reach the underlying net.Socket of an SDK client.
 */
export function trackingWebSocket(): { Ctor: WebSocketCtor; sockets: WebSocket[]; current(): WebSocket; tcp(): Socket } {
  const sockets: WebSocket[] = [];
  class Tracked extends WebSocket {
    constructor(url: string) {
      super(url);
      sockets.push(this);
    }
  }
  const current = (): WebSocket => {
    const ws = sockets[sockets.length - 1];
    if (!ws) throw new Error('no WebSocket was created yet');
    return ws;
  };
  return {
    Ctor: Tracked as unknown as WebSocketCtor,
    sockets,
    current,
    tcp: () => {
      const s = (current() as unknown as { _socket?: Socket })._socket;
      if (!s) throw new Error('the WebSocket has no underlying socket (not open yet?)');
      return s;
    },
  };
}

let barriers = 0;

/**
 * A round trip through an SDK client's connection, for "nothing else
 * arrived" checks: subscribes to a pattern that matches no topic, waits for
 * the server's answer (an ack, or an error such as PERMISSION_DENIED: either
 * proves the round trip) and drops it again. Frames on one connection are
 * ordered, so once this returns, whatever the server queued for this client
 * before it read the subscribe has arrived.
 */
export async function roundTrip(client: TickfanClient, timeoutMs = 5_000): Promise<void> {
  const sub = client.subscribe(`_barrier.b${++barriers}.*`);
  let answered = false;
  sub.ready.then(
    () => (answered = true),
    () => (answered = true),
  );
  await waitFor(() => answered, timeoutMs, 'a round trip through the client connection');
  sub.unsubscribe();
}

/** Everything a subscription emitted, with the state copied at emit time. */
export interface Recorded extends Omit<Update, 'state'> {
  state: Record<string, FieldValue>;
}

export function record(sub: Subscription): Recorded[] {
  const out: Recorded[] = [];
  sub.on('update', (u) => out.push({ ...u, changes: { ...u.changes }, state: { ...u.state } }));
  return out;
}

/**
 * Checks a topic's update stream as one subscriber saw it: a snapshot first,
 * and after it, each delta starts at the previous version and never crosses
 * an epoch. Returns a description of the first violation, or null.
 */
export function chainProblem(updates: readonly Recorded[], opts: { full?: boolean } = {}): string | null {
  let prev: Recorded | undefined;
  for (const [i, u] of updates.entries()) {
    if (!prev) {
      if (!u.snapshot) return `update #${i} (v${u.version}) is a delta before any snapshot`;
    } else if (!u.snapshot) {
      if (u.epoch !== prev.epoch) return `update #${i}: delta in epoch ${u.epoch} applied on epoch ${prev.epoch}`;
      if (u.updates !== u.version - prev.version) return `update #${i}: v${prev.version} → v${u.version} but updates = ${u.updates}`;
      if (u.version <= prev.version) return `update #${i}: version went from ${prev.version} to ${u.version}`;
      if (opts.full && u.version !== prev.version + 1) return `update #${i}: v${prev.version} → v${u.version} on a full-rate stream`;
    } else if (opts.full) {
      return `update #${i}: unexpected snapshot (v${u.version}) on a full-rate stream`;
    }
    prev = u;
  }
  return null;
}

/** A plain object of a topic's server-side state (what the client must hold). */
export function serverState(server: TickfanServer, topic: string): { epoch: number; version: number; state: Record<string, FieldValue> } {
  const t = server.store.get(topic);
  if (!t) throw new Error(`server has no topic ${topic}`);
  return { epoch: t.epoch, version: t.version, state: Object.fromEntries(t.state) };
}

/** True once the client holds the server's current (epoch, version) of `topic`. */
export function caughtUp(client: TickfanClient, server: TickfanServer, topic: string): boolean {
  const t = server.store.get(topic);
  const held = client.stateOf(topic);
  return !!t && !!held && held.epoch === t.epoch && held.version === t.version;
}

// ------------------------------------------------------------------ HTTP

export interface HttpAnswer {
  status: number;
  body: unknown;
}

/** One HTTP request without keep-alive (no socket outlives the test); no answer within `timeoutMs` rejects. */
export function http(port: number, method: string, path: string, body?: unknown, timeoutMs = 5_000): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const req = request(
      { host: '127.0.0.1', port, method, path, agent: false, headers: data ? { 'content-type': 'application/json', 'content-length': data.length } : {} },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined });
          } catch {
            resolve({ status: res.statusCode ?? 0, body: text });
          }
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path}: no answer in ${timeoutMs / 1000} s`)));
    req.on('error', reject);
    req.end(data);
  });
}

// ------------------------------------------------------------------ raw client

export interface RawFrame {
  /** The frame's number on its connection (explicit, or implied for a published frame). */
  seq: number;
  /** Sent by native publish to every subscriber of a channel (sequence field 0). */
  published: boolean;
  messages: AnyMessage[];
}

/**
 * A protocol client without the SDK: sends raw bytes, decodes every server
 * frame and checks that sequence numbers go 1, 2, 3, … on its connection
 * (a published frame carries 0 and counts as the next number).
 */
export class RawClient {
  readonly frames: RawFrame[] = [];
  /** Sequence problems and undecodable frames; must stay empty. */
  readonly problems: string[] = [];
  closeCode: number | null = null;
  private constructor(readonly ws: WebSocket) {
    ws.binaryType = 'arraybuffer';
    ws.on('message', (data, isBinary) => {
      if (!isBinary) {
        this.problems.push('the server sent a text frame');
        return;
      }
      const bytes = new Uint8Array(data as ArrayBuffer);
      try {
        const f = decodeServerFrame(bytes);
        const expected = this.frames.length + 1;
        // 0: published to many connections at once, its number implied by counting.
        if (f.seq !== 0 && f.seq !== expected) this.problems.push(`frame ${this.frames.length + 1} has sequence ${f.seq}, expected ${expected}`);
        this.frames.push({ ...f, seq: expected, published: f.seq === 0 });
      } catch (err) {
        this.problems.push(`undecodable server frame: ${(err as Error).message}`);
      }
    });
    ws.on('close', (code) => (this.closeCode = code));
  }

  static open(url: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      const c = new RawClient(ws);
      ws.once('open', () => resolve(c));
      ws.once('error', reject);
    });
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  get lastSeq(): number {
    return this.frames.length ? this.frames[this.frames.length - 1]!.seq : 0;
  }

  /** Every message received so far, in order. */
  get messages(): AnyMessage[] {
    return this.frames.flatMap((f) => f.messages);
  }

  /** Sends size-prefixed messages as one binary frame. */
  send(...msgs: Uint8Array[]): void {
    this.ws.send(clientFrame(msgs), { binary: true });
  }

  sendRaw(data: Uint8Array | string): void {
    this.ws.send(data, { binary: typeof data !== 'string' });
  }

  /** Waits for a message matching `pred` in a frame numbered above `afterSeq`. */
  async next<T extends AnyMessage>(pred: (m: AnyMessage) => m is T, afterSeq: number, timeoutMs = 5_000): Promise<{ frame: RawFrame; message: T }> {
    let found: { frame: RawFrame; message: T } | undefined;
    await waitFor(
      () => {
        for (const f of this.frames) {
          if (f.seq <= afterSeq) continue;
          const m = f.messages.find(pred);
          if (m) {
            found = { frame: f, message: m as T };
            return true;
          }
        }
        return false;
      },
      timeoutMs,
      'a matching server message',
    );
    return found!;
  }

  /**
   * A Ping/Pong round trip on this connection, for "nothing else arrived"
   * checks. Frames on one connection are ordered: once the Pong is here,
   * whatever the server queued for this client before it read the Ping has
   * arrived too.
   */
  async roundTrip(timeoutMs = 5_000): Promise<void> {
    const nonce = ++RawClient.nonces;
    const before = this.lastSeq;
    this.send(barrierEncoder.ping(nonce));
    await this.next((m): m is Extract<AnyMessage, { type: 'pong' }> => m.type === 'pong' && m.nonce === nonce, before, timeoutMs);
  }

  /** Ping nonces for roundTrip(), far from the small ones tests send themselves. */
  private static nonces = 1n << 40n;

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.ws.readyState === WebSocket.CLOSED) return resolve();
      const t = setTimeout(() => {
        this.ws.terminate();
        resolve();
      }, 1_000);
      this.ws.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      this.ws.close();
    });
  }
}

export function isType<K extends AnyMessage['type']>(type: K) {
  return (m: AnyMessage): m is Extract<AnyMessage, { type: K }> => m.type === type;
}

// ------------------------------------------------------------------ harness

/**
 * Owns the servers and clients one test opens. `close()` (in afterEach)
 * closes them all and checks that no SDK client saw a frame-sequence gap
 * and no raw client saw a bad sequence number.
 */
export class Harness {
  private readonly servers: TickfanServer[] = [];
  private readonly clients: TickfanClient[] = [];
  private readonly raws: RawClient[] = [];

  async server(opts: Partial<ServerOptions> = {}): Promise<TickfanServer> {
    const s = await startServer({ ...QUIET(), ...opts });
    this.servers.push(s);
    return s;
  }

  client(server: TickfanServer | number, opts: ClientOptions = {}): TickfanClient {
    const c = connect(wsUrl(server), { WebSocket: WebSocket as unknown as WebSocketCtor, backoff: { initialMs: 10, maxMs: 50 }, ...opts });
    this.clients.push(c);
    return c;
  }

  /** An SDK client that waits until it is connected. */
  async connected(server: TickfanServer | number, opts: ClientOptions = {}): Promise<TickfanClient> {
    const c = this.client(server, opts);
    await waitFor(() => c.state === 'connected', 5_000, 'the client to connect');
    return c;
  }

  async raw(server: TickfanServer): Promise<RawClient> {
    const r = await RawClient.open(wsUrl(server));
    this.raws.push(r);
    await waitFor(() => r.frames.length > 0, 5_000, 'the Welcome frame');
    return r;
  }

  /** Closes everything; throws if a client saw a sequence problem. */
  async close(): Promise<void> {
    const problems: string[] = [];
    for (const [i, c] of this.clients.entries()) {
      if (c.stats.sequenceGaps !== 0) problems.push(`SDK client #${i} saw ${c.stats.sequenceGaps} frame-sequence gaps`);
      c.close();
    }
    for (const [i, r] of this.raws.entries()) {
      for (const p of r.problems) problems.push(`raw client #${i}: ${p}`);
    }
    await Promise.all(this.raws.map((r) => r.close()));
    for (const s of this.servers) await s.close();
    this.clients.length = this.raws.length = this.servers.length = 0;
    if (problems.length) throw new Error(problems.join('; '));
  }
}

/** The state a topic holds after each version, for publishes made through it (checks conflated deltas step by step). */
export class Truth {
  readonly at = new Map<number, Record<string, FieldValue>>();
  private state: Record<string, FieldValue> = {};
  constructor(
    private readonly server: TickfanServer,
    readonly topic: string,
  ) {}

  publish(changes: Record<string, FieldValue | null>): number {
    const { version } = this.server.publish(this.topic, changes);
    const next = { ...this.state };
    for (const [k, v] of Object.entries(changes)) {
      if (v === null) delete next[k];
      else next[k] = v;
    }
    this.state = next;
    this.at.set(version, next);
    return version;
  }
}
