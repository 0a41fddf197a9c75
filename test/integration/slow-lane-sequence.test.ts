// Frame numbers across a slow-lane episode, read from the raw WebSocket frames
// the server sends: an SDK client connects through a TCP proxy that parses every
// server frame and can stop reading from the server. While it stalls, the
// socket enters the slow lane (taken off every channel right after the turn's
// native publishes); after it, each direct frame must carry exactly the count
// of frames sent before it, and the SDK must take one catch-up per topic
// (per episode).

import { createServer, connect as tcpConnect, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ServerFrameReader } from '../../src/protocol/index.js';
import { Harness, caughtUp, sleep, waitFor } from './helpers.js';

const h = new Harness();
let proxy: StallingProxy | null = null;
afterEach(async () => {
  await proxy?.close();
  proxy = null;
  await h.close();
});

/** One binary frame from the server: its number (0: published natively, counted by the client) and ordinal. */
interface WireFrame {
  ordinal: number;
  seq: number;
}

/**
 * Reads the server's side of one WebSocket connection: skips the HTTP 101
 * answer, then splits the bytes into WebSocket frames (unmasked, as a server
 * sends them) and reads each binary one's sequence number in the framing the
 * connection uses (protocol 1, then 2 once a Welcome announces it).
 */
class ServerWire {
  readonly frames: WireFrame[] = [];
  readonly problems: string[] = [];
  private buf: Buffer = Buffer.alloc(0);
  private upgraded = false;
  private readonly reader = new ServerFrameReader();

  push(data: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, data]) : data;
    if (!this.upgraded) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      this.buf = this.buf.subarray(end + 4);
      this.upgraded = true;
    }
    for (;;) {
      if (this.buf.length < 2) return;
      const b0 = this.buf[0]!;
      let len = this.buf[1]! & 0x7f;
      let at = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = Number(this.buf.readBigUInt64BE(2));
        at = 10;
      }
      if (this.buf.length < at + len) return;
      const payload = this.buf.subarray(at, at + len);
      this.buf = this.buf.subarray(at + len);
      if ((b0 & 0x70) !== 0) this.problems.push('a compressed or extended frame (the test expects none)');
      if ((b0 & 0x80) === 0) this.problems.push('a fragmented frame (the test expects none)');
      if ((b0 & 0x0f) !== 2) continue; // control frames carry no number
      const { seq, error } = this.reader.read(new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength));
      if (error) this.problems.push(`frame #${this.frames.length + 1}: ${String(error)}`);
      this.frames.push({ ordinal: this.frames.length + 1, seq });
    }
  }

  /** Direct frames whose number is not their ordinal: the client counting frames would see a gap there. */
  misnumbered(): string[] {
    return this.frames.filter((f) => f.seq !== 0 && f.seq !== f.ordinal).map((f) => `frame #${f.ordinal} carries ${f.seq}`);
  }
}

/** A TCP proxy in front of the server that parses what the server sends and can stop reading it. */
class StallingProxy {
  readonly wires: ServerWire[] = [];
  private readonly upstreams = new Set<Socket>();
  private stalled = false;
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(target: number): Promise<StallingProxy> {
    let self: StallingProxy | null = null;
    const server = createServer((client) => {
      const up = tcpConnect(target, '127.0.0.1');
      const wire = new ServerWire();
      self!.wires.push(wire);
      self!.upstreams.add(up);
      client.on('data', (d) => up.write(d));
      up.on('data', (d: Buffer) => {
        wire.push(d);
        if (!client.write(d)) {
          up.pause();
          client.once('drain', () => {
            if (!self!.stalled) up.resume();
          });
        }
      });
      const end = (): void => {
        self!.upstreams.delete(up);
        client.destroy();
        up.destroy();
      };
      for (const s of [client, up]) {
        s.on('close', end);
        s.on('error', end);
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    self = new StallingProxy(server, (server.address() as AddressInfo).port);
    return self;
  }

  /** Stops (or restarts) reading from the server: its socket buffers fill as for a reader that stalls. */
  stall(on: boolean): void {
    this.stalled = on;
    for (const up of this.upstreams) {
      if (on) up.pause();
      else up.resume();
    }
  }

  close(): Promise<void> {
    for (const up of this.upstreams) up.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}

describe('frame sequence numbers across a slow-lane episode (raw frames)', () => {
  it('stay contiguous, and the SDK takes exactly one catch-up per topic', async () => {
    const server = await h.server({ slowThresholdBytes: 64 * 1024, slowTimeoutMs: 10_000 });
    const topics = Array.from({ length: 30 }, (_, i) => `sq.K${i}`);
    for (const t of topics) server.publish(t, { bid: 0 });
    proxy = await StallingProxy.start(server.port);
    const client = await h.connected(proxy.port);
    const sub = client.subscribe('sq.*');
    await sub.ready;
    await waitFor(() => topics.every((t) => client.stateOf(t) !== undefined), 5_000, 'an image of every topic');

    const pad = 'x'.repeat(1_500);
    let k = 0;
    /** Every topic once per round, a round per millisecond or so, until `done()` or `ms` passed. */
    const publishFor = async (ms: number, note: boolean, done: () => boolean = () => false): Promise<void> => {
      const end = Date.now() + ms;
      while (Date.now() < end && !done()) {
        for (const t of topics) server.publish(t, { bid: ++k, note: note ? pad + k : null });
        await sleep(1);
      }
    };
    await publishFor(300, false);
    const before = { ...server.stats };
    const catchUpsBefore = client.stats.catchUps;

    // The reader stalls until its socket is in the slow lane, and a little longer.
    const [wire] = proxy.wires;
    expect(proxy.wires).toHaveLength(1);
    const readBeforeStall = wire!.frames.length;
    proxy.stall(true);
    await publishFor(6_000, true, () => server.stats.slowLaneEntries > before.slowLaneEntries);
    expect(server.stats.slowLaneEntries - before.slowLaneEntries).toBe(1);
    await publishFor(200, true);
    proxy.stall(false);
    await publishFor(300, false);
    await waitFor(() => topics.every((t) => caughtUp(client, server, t)), 5_000, 'the client to catch up on every topic');

    expect(proxy.wires).toHaveLength(1);
    expect(wire!.problems).toEqual([]);
    // Direct frames after the episode (its catch-ups) carry numbers: each one is its ordinal.
    const numbered = wire!.frames.filter((f) => f.seq !== 0);
    expect(numbered.at(-1)!.ordinal).toBeGreaterThan(readBeforeStall);
    expect(wire!.misnumbered()).toEqual([]);

    expect(server.stats.slowDisconnects).toBe(0);
    // One catch-up per topic per episode: usually one episode, but kernel buffers that grow
    // while the reader stalls can let the socket drain, rejoin and enter the slow lane again.
    const episodes = server.stats.slowLaneEntries - before.slowLaneEntries;
    expect(server.stats.catchUpDeltas + server.stats.catchUpSnapshots - before.catchUpDeltas - before.catchUpSnapshots).toBe(topics.length * episodes);
    expect(client.stats.sequenceGaps).toBe(0);
    expect(client.stats.gaps).toBe(0);
    expect(client.stats.reconnects).toBe(0);
    expect(client.stats.catchUps - catchUpsBefore).toBe(topics.length * episodes);
  });
});
