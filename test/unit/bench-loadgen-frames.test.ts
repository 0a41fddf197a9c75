// The load generator's frame parser (bench/lib/loadgen-client.mjs) and the raw
// uWebSockets.js peer's payload (bench/servers/payload.mjs): with protocol 2
// the peer sends the very frame tickfan sends for one update (sequence 0,
// then the Delta2), and the load generator reads both with one parser — so
// near saturation, where the reader's cost shows as latency, the two are
// measured alike. Also: a frame stream read in two pieces, cut anywhere,
// counts the same as read whole.

import { describe, expect, it } from 'vitest';
// @ts-expect-error — plain JavaScript bench modules, no type declarations
import { Client } from '../../bench/lib/loadgen-client.mjs';
// @ts-expect-error — plain JavaScript bench modules, no type declarations
import { payloadEncoder } from '../../bench/servers/payload.mjs';

/** An unmasked server-to-client binary WebSocket frame. */
function serverFrame(payload: Uint8Array): Buffer {
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0x82, n]) : Buffer.from([0x82, 126, n >> 8, n & 255]);
  return Buffer.concat([head, payload]);
}

interface Group {
  proto: string;
  deliveries: number;
  frames: number;
  bytes: number;
  seqGaps: number;
  stamps: number[];
}

function reader(proto: 'tickfan' | 'uws'): { g: Group; feed(b: Buffer): void } {
  const g = {
    proto,
    spec: { protocol: 2 },
    sampleEvery: 1,
    countdown: 1,
    deliveries: 0,
    frames: 0,
    bytes: 0,
    seqGaps: 0,
    snapshots: 0,
    serverErrors: 0,
    stamps: [] as number[],
    record(ns: number) {
      this.stamps.push(ns);
    },
  };
  const c = new Client(g, { index: 0, topics: ['bench.t0'], addr: '127.0.0.1' });
  // As open() leaves it once upgraded (no socket here).
  c.resetParser();
  Object.assign(c, { upgraded: true, hs: null, broker: null });
  // tickfan switches to protocol-2 framing after its Welcome{2}; the raw peer starts there.
  if (proto === 'tickfan') c.to2 = true;
  return { g, feed: (b: Buffer) => c.onData(b) };
}

describe('the raw uWS peer and tickfan, read alike', () => {
  const frames = (n: number) => {
    const pay = payloadEncoder(2, { frame: true });
    return Array.from({ length: n }, (_, i) => serverFrame(pay(`bench.t${i % 3}`, { t: 1_000_000 + i, a: 1.5 + i, b: 2.5 })));
  };

  it('a peer frame is sequence 0 and one Delta2; the parser counts it and reads its timestamp', () => {
    const r = reader('uws');
    r.feed(Buffer.concat(frames(5)));
    expect(r.g.frames).toBe(5);
    expect(r.g.deliveries).toBe(5);
    expect(r.g.seqGaps).toBe(0);
    expect(r.g.stamps).toEqual([1_000_000, 1_000_001, 1_000_002, 1_000_003, 1_000_004]);
  });

  it('the brokers still get the message alone (no sequence byte)', () => {
    const framed = payloadEncoder(2, { frame: true })('x.a', { t: 5 });
    const bare = payloadEncoder(2)('x.a', { t: 5 });
    expect(framed[0]).toBe(0);
    expect(Buffer.from(framed.subarray(1))).toEqual(Buffer.from(bare));
  });

  it('cut anywhere into two reads: the same counts and timestamps as whole', () => {
    const all = Buffer.concat(frames(12));
    const whole = reader('tickfan');
    whole.feed(all);
    for (let cut = 1; cut < all.length; cut++) {
      const r = reader('tickfan');
      r.feed(all.subarray(0, cut));
      r.feed(all.subarray(cut));
      expect([r.g.frames, r.g.deliveries, r.g.bytes, r.g.seqGaps, r.g.stamps], `cut at ${cut}`).toEqual([whole.g.frames, whole.g.deliveries, whole.g.bytes, whole.g.seqGaps, whole.g.stamps]);
    }
  });
});
