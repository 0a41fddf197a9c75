// Issue 19, "Memory and encoding": many subscribers on one (table, depth 10)
// view cost one encode per flush, and memory per subscriber does not grow
// with book size. SDK subscribers (in a child process: this process holds
// the server alone, and their sockets do not count against its open-file
// limit) hold a depth-10 view of both sides of a book; 20 versions that
// change the window are published: the server's encode counter
// (tickfan_encodes_total) must move by exactly 20 (one per update, whatever
// the subscriber count) and every subscriber must hold the last version.
// Done on a 4,000-level book, then on a 200-level one (levels a side), each
// on a fresh server. 2,000 subscribers in the default run (~16 s);
// KEYED_SCALE_SUBSCRIBERS=10000 runs the 10,000 (38 to 77 s on 2
// shared cores: too slow for every run). Memory per subscriber
// is the marginal cost, after GC: 500 subscribers first, then the rest,
// (after − mid) / rest, so that what the view costs once (its state over the
// book, ~0.9 MB at 4,000 levels) is not spread over the subscribers; that
// one-off figure is reported too.
//   - this process' heapUsed (the server's JS state: connections, fan-out
//     records): asserted ≤ 1.25 × the 200-level figure + 256 B. A subscriber
//     holding anything proportional to the book (a row map, a cursor per
//     row) would cost ≥ 8,000 × ~50 B = 400 KB;
//   - this process' RSS (the server's, uWS buffers included): reported, and
//     only coarsely asserted (≤ 2× + 16 KiB; the first run's fresh pages
//     alone were seen at 7.7–9.9 KiB a subscriber, still 25× below a copy of
//     the book per subscriber): freed memory is not returned to
//     the OS and the second run reuses it (or is, and a delta is negative),
//     so RSS deltas are noisy. The big book runs first, so that reuse
//     flatters the small book, not the big one.

import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { fork, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { Harness, sleep, wsUrl } from './helpers.js';
import { seedBatch } from './keyed-acceptance-helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const h = new Harness();
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) c.kill();
  await h.close();
});

const SUBSCRIBERS = Number(process.env.KEYED_SCALE_SUBSCRIBERS ?? 2_000);

async function settled(): Promise<NodeJS.MemoryUsage> {
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(50);
  }
  return process.memoryUsage();
}

function next<T>(c: ChildProcess): Promise<T> {
  return new Promise((resolve, reject) => {
    const exit = (code: number | null) => reject(new Error(`the subscribers' process exited (${code})`));
    c.once('exit', exit);
    c.once('message', (m: T & { error?: string }) => {
      c.off('exit', exit);
      if (m && typeof m === 'object' && 'error' in m) reject(new Error(m.error));
      else resolve(m);
    });
  });
}

const FIRST = 500;

/** Opens `count` subscribers in a child process; resolves once every one holds its snapshot. */
async function subscribers(url: string, topic: string, count: number): Promise<ChildProcess> {
  const c = fork(new URL('./keyed-acceptance-subscribers.child.mjs', import.meta.url), [JSON.stringify({ url, topic, count, depth: 10 })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.push(c);
  expect((await next<{ ready: number }>(c)).ready).toBe(count);
  return c;
}

async function run(levels: number) {
  const server = await h.server({ maxConnectionsPerIp: SUBSCRIBERS + 100 });
  const topic = `ka.scale${levels}`;
  server.publishBatch(topic, seedBatch(levels) as never);
  const e0 = server.stats.encodes;
  let version = 0;
  const publish = async (ws: ChildProcess[]) => {
    for (let i = 0; i < 10; i++) {
      // A change inside both windows: one new version each.
      version = server.publishBatch(topic, { fields: {}, tables: { ops: [{ op: 'upsert', table: 'bids', key: 100_000, fields: { qty: 500 + version } }, { op: 'upsert', table: 'asks', key: 100_001, fields: { qty: 500 + version } }] } } as never).version;
      await sleep(5);
    }
    const got = await Promise.all(ws.map((w) => (w.send({ until: version }), next<{ at: number; failed: number; reconnects: number }>(w))));
    for (const g of got) expect(g).toEqual({ at: version, failed: 0, reconnects: 0 });
  };
  const before = await settled();
  const first = await subscribers(wsUrl(server), topic, FIRST);
  await publish([first]);
  const mid = await settled();
  const t0 = Date.now();
  const rest = await subscribers(wsUrl(server), topic, SUBSCRIBERS - FIRST);
  const openMs = Date.now() - t0;
  await publish([first, rest]);
  const after = await settled();
  expect(server.stats.connections).toBe(SUBSCRIBERS);
  const encodes = server.stats.encodes - e0;
  for (const c of [first, rest]) {
    c.send('close');
    await next(c);
    c.kill();
  }
  children.length = 0;
  await h.close();
  const n = SUBSCRIBERS - FIRST;
  const heapPerSub = (after.heapUsed - mid.heapUsed) / n;
  return {
    levels,
    encodes,
    heapPerSub,
    rssPerSub: (after.rss - mid.rss) / n,
    /** What the first subscribers cost beyond their per-subscriber share: the view's one-off state. */
    heapOneOff: mid.heapUsed - before.heapUsed - FIRST * heapPerSub,
    openMs,
  };
}

describe('one keyed view, thousands of subscribers', () => {
  it(`${SUBSCRIBERS.toLocaleString('en')} subscribers of one (table, depth 10) view: one encode per update, memory per subscriber independent of book size`, async () => {
    const big = await run(4_000);
    const small = await run(200);
    const kb = (n: number) => `${(n / 1024).toFixed(2)} KiB`;
    console.log(
      `scale: ${SUBSCRIBERS} subscribers, 20 updates → encodes ${big.encodes} (4,000 levels) / ${small.encodes} (200 levels); per subscriber (the last ${SUBSCRIBERS - FIRST}): heap ${kb(big.heapPerSub)} vs ${kb(small.heapPerSub)}, RSS ${kb(big.rssPerSub)} vs ${kb(small.rssPerSub)}; one-off heap with the first ${FIRST}: ${kb(big.heapOneOff)} vs ${kb(small.heapOneOff)} (4,000 vs 200 levels a side); ${SUBSCRIBERS - FIRST} subscribers opened in ${(big.openMs / 1000).toFixed(1)} s / ${(small.openMs / 1000).toFixed(1)} s`,
    );
    for (const r of [big, small]) expect(r.encodes, `${r.levels} levels: encodes for 20 updates`).toBe(20);
    expect(big.heapPerSub).toBeLessThanOrEqual(small.heapPerSub * 1.25 + 256);
    // Clamped at 0: the server's RSS alone can shrink between two points (pages given back), seen -3.1 KiB.
    // 16 KiB: the first run's fresh pages (seen up to 9.9 KiB against 0.48 KiB), far below a book's 400 KB.
    expect(big.rssPerSub).toBeLessThanOrEqual(Math.max(0, small.rssPerSub) * 2 + 16 * 1024);
  }, 60_000 + SUBSCRIBERS * 15);
});
