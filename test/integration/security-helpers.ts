// Helpers for the security, limits and conformance tests: minting tokens,
// WebSocket upgrades that report refusals, a raw-TCP WebSocket client that
// writes frames byte by byte as RFC 6455 lays them out, and a control
// subscriber that proves other clients saw nothing change.

import { randomBytes } from 'node:crypto';
import { connect as tcpConnect, type Socket } from 'node:net';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { expect } from 'vitest';
import type { TickfanServer } from '../../src/index.js';
import type { ClientOptions, TickfanClient } from '../../src/client/index.js';
import { Encoder, type AnyMessage, type DeltaMsg, type SnapshotMsg } from '../../src/protocol/index.js';
import { chainProblem, record, serverState, waitFor, type Harness, type Recorded } from './helpers.js';

export const SECRET = 'test-secret-that-is-at-least-32-characters-long';

/** An HS256 token with the given grants; `exp` in seconds from now (omit for none). */
export async function token(
  claims: { subscribe?: unknown; publish?: unknown; [k: string]: unknown },
  opts: { secret?: string; expSec?: number; exp?: number; sub?: string; nbfSec?: number } = {},
): Promise<string> {
  const jwt = new SignJWT(claims as Record<string, unknown>).setProtectedHeader({ alg: 'HS256' }).setSubject(opts.sub ?? 'tester').setIssuedAt();
  if (opts.exp !== undefined) jwt.setExpirationTime(opts.exp);
  else if (opts.expSec !== undefined) jwt.setExpirationTime(Math.floor(Date.now() / 1000) + opts.expSec);
  if (opts.nbfSec !== undefined) jwt.setNotBefore(Math.floor(Date.now() / 1000) + opts.nbfSec);
  return jwt.sign(new TextEncoder().encode(opts.secret ?? SECRET));
}

export function b64url(s: string | Buffer): string {
  return Buffer.from(s).toString('base64url');
}

/** The outcome of a WebSocket upgrade: open (and the socket), or refused with an HTTP status and JSON body. */
export type ErrorBody = { error?: { code: number; name: string; message: string } };
export type Upgrade = { ok: true; ws: WebSocket } | { ok: false; status: number; body: ErrorBody };

export function upgrade(url: string, headers: Record<string, string> = {}): Promise<Upgrade> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.binaryType = 'arraybuffer';
    ws.once('open', () => resolve({ ok: true, ws }));
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        let body: unknown = {};
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          // not JSON
        }
        resolve({ ok: false, status: res.statusCode ?? 0, body: body as ErrorBody });
        ws.terminate();
      });
    });
    ws.once('error', (err) => reject(err));
  });
}

/** Resolves with the close code once `ws` closes. */
export function closed(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve(-1);
    ws.once('close', (code) => resolve(code));
  });
}

// ------------------------------------------------------------------ control subscriber

/**
 * A healthy SDK subscriber of its own topic. `check()` publishes a few more
 * versions and asserts it saw every one exactly, never disconnected, and holds
 * the server's state: "other clients see nothing change".
 */
export async function controlSubscriber(h: Harness, server: TickfanServer, opts: { topic?: string; client?: ClientOptions } = {}) {
  const topic = opts.topic ?? 'ctl.X';
  server.publish(topic, { v: 0 });
  const client: TickfanClient = await h.connected(server, opts.client);
  const disconnects: number[] = [];
  client.on('disconnect', (e) => disconnects.push(e.code));
  const sub = client.subscribe(topic);
  const ups: Recorded[] = record(sub);
  await sub.ready;
  return {
    client,
    async check(): Promise<void> {
      for (let i = 1; i <= 5; i++) server.publish(topic, { v: i });
      const want = server.store.get(topic)!.version;
      await waitFor(() => ups.at(-1)?.version === want, 5_000, `the control subscriber to reach v${want}`);
      expect(chainProblem(ups, { full: true }), 'control stream').toBeNull();
      expect(ups.map((u) => u.version)).toEqual(Array.from({ length: want }, (_, i) => i + 1));
      expect(sub.state).toEqual(serverState(server, topic).state);
      expect(disconnects, 'control disconnects').toEqual([]);
      expect(client.state).toBe('connected');
      expect(client.stats).toMatchObject({ gaps: 0, sequenceGaps: 0, reconnects: 0 });
    },
  };
}

// ------------------------------------------------------------------ raw TCP WebSocket

export interface WireFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  payload: Buffer;
}

export const Op = { CONT: 0, TEXT: 1, BINARY: 2, CLOSE: 8, PING: 9, PONG: 10 } as const;

/** One client frame, masked unless told otherwise; `length` overrides the declared payload length. */
export function wsFrame(opcode: number, payload: Uint8Array | string = '', opts: { fin?: boolean; rsv?: number; mask?: boolean; length?: number } = {}): Buffer {
  const data = Buffer.from(payload as Uint8Array);
  const len = opts.length ?? data.length;
  let head: Buffer;
  if (len < 126) {
    head = Buffer.alloc(2);
    head[1] = len;
  } else if (len < 65536) {
    head = Buffer.alloc(4);
    head[1] = 126;
    head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  head[0] = (opts.fin === false ? 0 : 0x80) | ((opts.rsv ?? 0) << 4) | opcode;
  if (opts.mask === false) return Buffer.concat([head, data]);
  head[1]! |= 0x80;
  const key = randomBytes(4);
  const masked = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) masked[i] = data[i]! ^ key[i & 3]!;
  return Buffer.concat([head, key, masked]);
}

/** Close frame payload: a 2-byte code and a reason. */
export function closePayload(code: number, reason = ''): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code);
  return Buffer.concat([b, Buffer.from(reason)]);
}

/**
 * A WebSocket client on a plain TCP socket: sends exactly the bytes a test
 * builds and parses every server frame (checking the server never masks and
 * never sets reserved bits).
 */
export class WireClient {
  readonly frames: WireFrame[] = [];
  readonly problems: string[] = [];
  /** The HTTP response head of the upgrade. */
  head = '';
  /** The TCP connection ended (by the server or us). */
  ended = false;
  private buf = Buffer.alloc(0);

  private constructor(readonly socket: Socket) {}

  /** Resolves once the upgrade is answered or the TCP connection ends (rejects after `timeoutMs`). */
  static open(port: number, path = '/ws', extraHeaders: Record<string, string> = {}, rawRequest?: string, timeoutMs = 10_000): Promise<WireClient> {
    return new Promise((resolve, reject) => {
      const s = tcpConnect(port, '127.0.0.1');
      const c = new WireClient(s);
      s.on('error', () => {});
      s.on('close', () => {
        c.ended = true;
        resolve(c);
      });
      s.on('data', (d: Buffer) => {
        c.buf = Buffer.concat([c.buf, d]);
        if (!c.head) {
          const end = c.buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          c.head = c.buf.subarray(0, end).toString('latin1');
          c.buf = c.buf.subarray(end + 4);
          if (!c.head.startsWith('HTTP/1.1 101')) {
            // Keep any body for the caller.
            c.frames.push({ fin: true, rsv: 0, opcode: -1, payload: c.buf });
            c.buf = Buffer.alloc(0);
          }
          resolve(c);
        }
        c.parse();
      });
      s.once('connect', () => {
        const headers = {
          Host: `127.0.0.1:${port}`,
          Upgrade: 'websocket',
          Connection: 'Upgrade',
          'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
          'Sec-WebSocket-Version': '13',
          ...extraHeaders,
        };
        s.write(rawRequest ?? `GET ${path} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
      });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`no upgrade answer in ${timeoutMs} ms`));
      }, timeoutMs);
      s.once('close', () => clearTimeout(timer));
      s.once('data', () => clearTimeout(timer));
    });
  }

  get status(): number {
    return Number(/^HTTP\/1\.1 (\d+)/.exec(this.head)?.[1] ?? 0);
  }

  private parse(): void {
    for (;;) {
      const b = this.buf;
      if (b.length < 2) return;
      if (b[1]! & 0x80) this.problems.push('the server sent a masked frame');
      let len = b[1]! & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      if (b.length < off + len) return;
      const f: WireFrame = { fin: !!(b[0]! & 0x80), rsv: (b[0]! >> 4) & 7, opcode: b[0]! & 15, payload: Buffer.from(b.subarray(off, off + len)) };
      if (f.rsv) this.problems.push('the server set reserved bits');
      this.frames.push(f);
      this.buf = b.subarray(off + len);
    }
  }

  write(...frames: Buffer[]): void {
    if (!this.ended) this.socket.write(Buffer.concat(frames));
  }

  /** The close frame the server sent, if any: its code (or null when it had no payload). */
  get closeFrame(): { code: number | null; reason: string } | undefined {
    const f = this.frames.find((x) => x.opcode === Op.CLOSE);
    if (!f) return undefined;
    return { code: f.payload.length >= 2 ? f.payload.readUInt16BE(0) : null, reason: f.payload.subarray(2).toString() };
  }

  /** Waits for a frame matching `pred` among those after index `from`. */
  async next(pred: (f: WireFrame) => boolean, from: number, timeoutMs = 3_000): Promise<WireFrame> {
    let found: WireFrame | undefined;
    await waitFor(() => !!(found = this.frames.slice(from).find(pred)), timeoutMs, 'a matching frame');
    return found!;
  }

  async untilEnded(timeoutMs = 3_000): Promise<void> {
    await waitFor(() => this.ended, timeoutMs, 'the server to end the TCP connection');
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * A control subscriber without the SDK (a RawClient): `check()` publishes a
 * few versions and asserts it got a snapshot and then every delta in order,
 * on frames numbered 1, 2, 3, …, and is still open.
 */
export async function rawControl(h: Harness, server: TickfanServer, topic = 'ctl.RAW') {
  server.publish(topic, { v: 0 });
  const r = await h.raw(server);
  r.send(new Encoder().subscribe(1, [topic], 0, [], []));
  await r.next((m): m is AnyMessage => m.type === 'snapshot' && m.topic === topic, 0);
  return {
    raw: r,
    async check(): Promise<void> {
      for (let i = 1; i <= 5; i++) server.publish(topic, { v: i });
      const want = server.store.get(topic)!.version;
      const seen = () => r.messages.filter((m) => (m.type === 'snapshot' || m.type === 'delta') && m.topic === topic) as (SnapshotMsg | DeltaMsg)[];
      await waitFor(() => seen().at(-1)?.version === want, 5_000, `the raw control to reach v${want}`);
      const list = seen();
      expect(list[0]!.type).toBe('snapshot');
      for (let i = 1; i < list.length; i++) {
        const d = list[i]!;
        expect(d.type).toBe('delta');
        if (d.type === 'delta') expect([d.base, d.version]).toEqual([list[i - 1]!.version, list[i - 1]!.version + 1]);
      }
      expect(r.problems).toEqual([]);
      expect(r.closeCode).toBeNull();
    },
  };
}
