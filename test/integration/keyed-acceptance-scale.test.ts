// Issue 19, "Memory and encoding": many subscribers on one (table, depth 10)
// view cost one encode per flush, and memory per subscriber does not grow
// with book size. 2,000 SDK subscribers (in a worker thread: the main
// thread's JS heap is the server's alone) hold a depth-10 view of both sides
// of a book; 20 versions that change the window are published: the server's
// encode counter must move by exactly 20 (one per update, whatever the
// subscriber count) and every subscriber must hold the last version. Done on
// a 4,000-level book, then on a 200-level one (levels a side), each on a
// fresh server. Memory per subscriber is the marginal cost, after GC: 500
// subscribers first, then 1,500 more, (after − mid) / 1,500, so that what the
// view costs once (its state over the book, ~0.9 MB at 4,000 levels) is not
// spread over the subscribers; that one-off figure is reported too.
//   - the main thread's heapUsed (the server's JS state: connections, fan-out
//     records): asserted ≤ 1.25 × the 200-level figure + 256 B (seen: ~1.5
//     KiB both, ±0.1). A subscriber holding anything proportional to the book
//     (a row map, a cursor per row) would cost ≥ 8,000 × ~50 B = 400 KB;
//   - RSS (server and the clients' thread, uWS buffers): reported, and only
//     coarsely asserted (≤ 2× + 8 KiB): freed memory is not returned to the
//     OS and the second run reuses it, so RSS deltas are noisy. The big book
//     runs first, so that reuse flatters the small book, not the big one.

import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { Harness, sleep, wsUrl } from './helpers.js';
import { seedBatch } from './keyed-acceptance-helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const h = new Harness();
const workers: Worker[] = [];
afterEach(async () => {
  for (const w of workers.splice(0)) await w.terminate();
  await h.close();
});

const SUBSCRIBERS = 2_000;

async function settled(): Promise<NodeJS.MemoryUsage> {
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(50);
  }
  return process.memoryUsage();
}

function next<T>(w: Worker): Promise<T> {
  return new Promise((resolve, reject) => {
    w.once('message', (m: T & { error?: string }) => (m && typeof m === 'object' && 'error' in m ? reject(new Error(m.error)) : resolve(m)));
    w.once('error', reject);
  });
}

const FIRST = 500;

/** Opens `count` subscribers in a worker thread; resolves once every one holds its snapshot. */
async function subscribers(url: string, topic: string, count: number): Promise<Worker> {
  const w = new Worker(new URL('./keyed-acceptance-subscribers.worker.mjs', import.meta.url), { workerData: { url, topic, count, depth: 10 } });
  workers.push(w);
  expect((await next<{ ready: number }>(w)).ready).toBe(count);
  return w;
}

async function run(levels: number) {
  const server = await h.server({ maxConnectionsPerIp: SUBSCRIBERS + 100 });
  const topic = `ka.scale${levels}`;
  server.publishBatch(topic, seedBatch(levels) as never);
  const e0 = server.stats.encodes;
  let version = 0;
  const publish = async (ws: Worker[]) => {
    for (let i = 0; i < 10; i++) {
      // A change inside both windows: one new version each.
      version = server.publishBatch(topic, { fields: {}, tables: { ops: [{ op: 'upsert', table: 'bids', key: 100_000, fields: { qty: 500 + version } }, { op: 'upsert', table: 'asks', key: 100_001, fields: { qty: 500 + version } }] } } as never).version;
      await sleep(5);
    }
    const got = await Promise.all(ws.map((w) => (w.postMessage({ until: version }), next<{ at: number; failed: number; reconnects: number }>(w))));
    for (const g of got) expect(g).toEqual({ at: version, failed: 0, reconnects: 0 });
  };
  const before = await settled();
  const first = await subscribers(wsUrl(server), topic, FIRST);
  await publish([first]);
  const mid = await settled();
  const rest = await subscribers(wsUrl(server), topic, SUBSCRIBERS - FIRST);
  await publish([first, rest]);
  const after = await settled();
  expect(server.stats.connections).toBe(SUBSCRIBERS);
  const encodes = server.stats.encodes - e0;
  for (const w of [first, rest]) {
    w.postMessage('close');
    await next(w);
    await w.terminate();
  }
  workers.length = 0;
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
  };
}

describe('one keyed view, thousands of subscribers', () => {
  it('2,000 subscribers of one (table, depth 10) view: one encode per update, memory per subscriber independent of book size', async () => {
    const big = await run(4_000);
    const small = await run(200);
    const kb = (n: number) => `${(n / 1024).toFixed(2)} KiB`;
    console.log(
      `scale: ${SUBSCRIBERS} subscribers, 20 updates → encodes ${big.encodes} (4,000 levels) / ${small.encodes} (200 levels); per subscriber (the last ${SUBSCRIBERS - FIRST}): heap ${kb(big.heapPerSub)} vs ${kb(small.heapPerSub)}, RSS ${kb(big.rssPerSub)} vs ${kb(small.rssPerSub)}; one-off heap with the first ${FIRST}: ${kb(big.heapOneOff)} vs ${kb(small.heapOneOff)} (4,000 vs 200 levels a side)`,
    );
    for (const r of [big, small]) expect(r.encodes, `${r.levels} levels: encodes for 20 updates`).toBe(20);
    expect(big.heapPerSub).toBeLessThanOrEqual(small.heapPerSub * 1.25 + 256);
    expect(big.rssPerSub).toBeLessThanOrEqual(small.rssPerSub * 2 + 8 * 1024);
  }, 60_000);
});
