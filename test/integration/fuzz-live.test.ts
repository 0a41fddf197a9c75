// Live-server fuzzing (RELIABILITY 2–3): over 100 000 random and mutated
// frames (seeded, so a failure replays) through real sockets into the running
// server. Figures: 0 crashes, 0 untyped exceptions (no INTERNAL error, nothing
// logged at error level), every server frame well-formed and numbered in
// order, only documented close codes, and a control subscriber that saw every
// version exactly throughout. The decoder-only fuzz is test/unit/verify.test.ts.

import { afterEach, describe, expect, it } from 'vitest';
import { CloseCode, ErrorCode } from '../../src/index.js';
import { Encoder, clientFrame } from '../../src/protocol/index.js';
import { Harness, RawClient, sleep, waitFor, wsUrl } from './helpers.js';
import { controlSubscriber } from './security-helpers.js';
import { rng } from '../../src/demo/index.js';

const h = new Harness();
const raws: RawClient[] = [];
afterEach(async () => {
  await Promise.all(raws.splice(0).map((r) => r.close()));
  await h.close();
});

const SEED = Number(process.env.FUZZ_SEED ?? 0x7f4a7c15);
const FRAMES = Number(process.env.FUZZ_FRAMES ?? 100_000);
const CONNECTIONS = 4;
const BATCH = 250;


const enc = new Encoder();

/** Valid client messages of every kind: the seeds that mutations start from. */
const CORPUS: Uint8Array[] = [
  enc.hello(1, 'fuzz', ''),
  enc.hello(1, 'fuzz', 'not-a-token'),
  enc.subscribe(1, ['fz.A'], 0, [], []),
  enc.subscribe(2, ['fz.*', 'fz.>', 'fz.B.c'], 4, ['bid', 'ask'], [{ topic: 'fz.A', epoch: 1, version: 3 }]),
  enc.subscribe(3, ['>'], 1, [], []),
  enc.unsubscribe(1),
  enc.publish(4, 'fz.A', [
    ['bid', 101.25],
    ['n', 7n],
    ['s', 'text'],
    ['b', true],
    ['d', new Uint8Array([1, 2, 3])],
    ['gone', null],
  ]),
  enc.publish(0, 'fz.B.c', [['x', -0.5]]),
  enc.catchUp('fz.A', 1, 2),
  enc.pause(2),
  enc.resume(2),
  enc.ping(9n),
  enc.pong(9n),
];

function concat(parts: Uint8Array[]): Uint8Array {
  return clientFrame(parts.length ? parts : [new Uint8Array(0)]);
}

const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff];

/** One fuzz frame: random bytes, or a mutated valid message (or several). */
function fuzzFrame(r: () => number): Uint8Array {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
  const kind = r();
  if (kind < 0.25) {
    const n = r() < 0.9 ? Math.floor(r() * 64) : Math.floor(r() * 2048);
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
    // Half of them with a plausible size prefix, so they get past the framing.
    if (n >= 4 && r() < 0.5) new DataView(b.buffer).setUint32(0, n - 4, true);
    return b;
  }
  const msgs = Array.from({ length: r() < 0.8 ? 1 : 2 + Math.floor(r() * 3) }, () => pick(CORPUS));
  const b = Uint8Array.from(concat(msgs));
  const edits = 1 + Math.floor(r() * 4);
  let out: Uint8Array = b;
  for (let e = 0; e < edits; e++) {
    const op = r();
    if (out.length === 0) break;
    const at = Math.floor(r() * out.length);
    if (op < 0.35) out[at] = out[at]! ^ (1 << Math.floor(r() * 8));
    else if (op < 0.6) out[at] = pick(INTERESTING);
    else if (op < 0.7) out = out.subarray(0, at);
    else if (op < 0.8) {
      const tail = new Uint8Array(1 + Math.floor(r() * 16)).map(() => Math.floor(r() * 256));
      out = concat([out, tail]);
    } else if (op < 0.9) {
      // A 32-bit field (offset, vector length, size prefix) set to something large or negative.
      const at4 = Math.min(at, Math.max(0, out.length - 4));
      if (out.length >= 4) new DataView(out.buffer, out.byteOffset).setUint32(at4, pick([0x7fffffff, 0xffffffff, 0x10000, out.length, 3]), true);
    } else {
      const from = Math.floor(r() * out.length);
      out = concat([out.subarray(0, at), out.subarray(from, Math.min(out.length, from + 8)), out.subarray(at)]);
    }
  }
  return out;
}

describe('live-server fuzzing', () => {
  it(`${FRAMES} random and mutated frames: 0 crashes, 0 untyped exceptions, the control served exactly`, async () => {
    const logged: string[] = [];
    const server = await h.server({
      maxBadFrames: 1_000_000,
      maxPublishesPerSecond: 1_000_000,
      limits: { maxTopics: 5_000 },
      log: (level, msg) => {
        if (level === 'error') logged.push(msg);
      },
    });
    const control = await controlSubscriber(h, server, { topic: 'ctl.FUZZ' });
    let feeding = true;
    const feed = (async () => {
      for (let i = 100; feeding; i++) {
        server.publish('ctl.FUZZ', { v: i, s: `x${i}` });
        await sleep(5); // pacing, not a wait: a steady control stream for as long as the fuzzing runs
      }
    })();

    const closes = new Map<number, number>();
    const problems: string[] = [];
    let sent = 0;
    let reconnects = 0;
    const t0 = performance.now();

    async function worker(index: number): Promise<void> {
      const r = rng(SEED + index);
      let c: RawClient | null = null;
      let nonce = 1_000_000 * (index + 1);
      while (sent < FRAMES) {
        if (!c || c.closeCode !== null) {
          if (c) {
            closes.set(c.closeCode!, (closes.get(c.closeCode!) ?? 0) + 1);
            problems.push(...c.problems);
            reconnects++;
          }
          c = await RawClient.open(wsUrl(server));
          raws.push(c);
          await waitFor(() => c!.frames.length > 0, 5_000, 'Welcome');
        }
        for (let i = 0; i < BATCH && sent < FRAMES; i++, sent++) c.sendRaw(fuzzFrame(r));
        // Sentinel: once its Pong is back, every frame before it was handled.
        const n = BigInt(++nonce);
        const before = c.lastSeq;
        c.send(enc.ping(n));
        const conn = c;
        await waitFor(() => conn.closeCode !== null || conn.messages.some((m) => m.type === 'pong' && m.nonce === n), 10_000, 'the sentinel pong').catch((err: unknown) => {
          problems.push(`worker ${index}: ${(err as Error).message} (after seq ${before})`);
          conn.ws.terminate();
        });
        // Keep memory flat: forget what was checked.
        if (conn.closeCode === null && conn.frames.length > 5_000) {
          problems.push(...conn.problems);
          await conn.close();
          closes.set(-1, (closes.get(-1) ?? 0) + 1);
          c = null;
        }
      }
      if (c) {
        problems.push(...c.problems);
        await c.close();
      }
    }

    await Promise.all(Array.from({ length: CONNECTIONS }, (_, i) => worker(i)));
    const seconds = (performance.now() - t0) / 1000;
    feeding = false;
    await feed;

    const errors = Object.fromEntries([...server.stats.errorsByCode].map(([code, n]) => [code, n]));
    console.log(
      `live fuzz: seed ${SEED}, ${sent} frames in ${seconds.toFixed(1)} s (${Math.round(sent / seconds)}/s) over ${CONNECTIONS} connections, ` +
        `${reconnects} reconnects, closes by code ${JSON.stringify(Object.fromEntries(closes))}, errors by code ${JSON.stringify(errors)}, ` +
        `${server.stats.publishes} publishes accepted, ${server.store.size} topics`,
    );
    expect(sent).toBeGreaterThanOrEqual(FRAMES);
    expect(problems).toEqual([]);
    expect(logged).toEqual([]);
    expect(server.stats.errorsByCode.get(ErrorCode.INTERNAL) ?? 0).toBe(0);
    expect(server.stats.errorsByCode.get(ErrorCode.BAD_FRAME) ?? 0).toBeGreaterThan(FRAMES / 10);
    // Only documented closes: client-side recycling (-1 here, 1005 on the wire), 1000, protocol version (1002).
    for (const code of closes.keys()) expect([-1, 1000, 1005, CloseCode.PROTOCOL_ERROR]).toContain(code);
    await control.check();
    await waitFor(() => server.stats.connections === 1, 3_000, 'every fuzz connection to be gone');
  }, 120_000);
});

