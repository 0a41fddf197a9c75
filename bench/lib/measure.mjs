// One measured step: a server process publishing at a fixed rate to clients
// of the load generator, a warm-up, a measurement window, then a drain. Both
// sides' CPU, the machine's (to spot outside load), deliveries, latency and
// the server's own counters come back as one plain record.

import { LoadGen, HIST } from './loadgen.mjs';
import { startServerProc } from './procs.mjs';
import { SYSTEM_NAMES } from './peers.mjs';
import { MachineCpu, fmtPct, fmtSi, fmtUs, progress, sleep, waitQuiet, waitWindow } from './common.mjs';

export const WS_PATH = { tickfan: '/ws', uws: '/ws', sio: '/socket.io/?EIO=4&transport=websocket', nats: '/', mosquitto: '/mqtt' };

export { SYSTEM_NAMES };

/** Percentile → value points of a histogram, for percentile plots (µs). */
export function percentileCurve(h) {
  if (!h || h.totalCount === 0) return [];
  const ps = [0, 10, 25, 50, 75, 90, 95, 97.5, 99, 99.5, 99.75, 99.9, 99.95, 99.99, 99.995, 99.999, 100];
  return ps.map((p) => [p, p === 100 ? h.maxValue : h.getValueAtPercentile(p)]);
}

/**
 * Starts a server and a load generator for it, connects and subscribes every client.
 * @returns {Promise<{ server, lg, connect: object }>}
 */
export async function setup(system, { clients, topics, fields = 4, workers, sampleEvery = 1, trackVersions = false, maxRate = 0, addrs, serverOptions, profileDir, gc = false, connectConcurrency = 256, seed = true, connect: doConnect = true, protocol = 1 }) {
  const quiet = await waitQuiet(Math.min(15_000, Math.max(0, quietBudgetMs)));
  // Protocol 2 for tickfan and the raw uWS peer (same payload); versions are tracked in protocol 1 only.
  if (trackVersions) protocol = 1;
  const server = await startServerProc(system, { options: serverOptions, profileDir, gc, env: { BENCH_PROTOCOL: String(protocol) } });
  let lg;
  try {
    if (seed) await server.ask('seed', { topics, fields });
    lg = new LoadGen({ proto: system, port: server.port, path: WS_PATH[system], clients, workers, sampleEvery, trackVersions, maxRate, addrs, protocol });
    if (!doConnect) return { server, lg, connect: null, otherCpuBeforePct: quiet };
    const connect = await lg.connect({ concurrency: connectConcurrency });
    if (connect.connected < clients.length) {
      throw new Error(`${system}: only ${connect.connected} of ${clients.length} clients subscribed (${connect.failed} failed; last error: ${connect.lastError ?? 'none'})`);
    }
    return { server, lg, connect, otherCpuBeforePct: quiet };
  } catch (err) {
    await lg?.close().catch(() => {});
    await server.stop();
    throw err;
  }
}

export async function teardown({ server, lg }) {
  await lg?.close().catch(() => {});
  await server?.stop();
}

/**
 * Publishes at `rate` updates/s round-robin over `topics` and measures one window.
 * @param {object} o
 * @param {number} o.subsPerTopic  subscribers of each topic (expected deliveries = published × this)
 * @param {() => Promise<unknown>} [o.beforeWindow]  runs after the warm-up, before the window (its result is kept as `pre`)
 */
export async function measureRate({ server, lg }, { rate, topics, fields = 4, subsPerTopic, warmupMs = 500, windowMs = 2000, drainMs = 3000, label = '', beforeWindow }) {
  const machine = new MachineCpu();
  await server.ask('publish', { rate, topics, fields });
  await sleep(warmupMs);
  const pre = beforeWindow ? await beforeWindow() : undefined;
  const before = await server.ask('counters');
  await lg.window();
  server.mark();
  machine.mark();
  await waitWindow(windowMs, label, async () => {
    const c = await lg.counters();
    return `${fmtSi(c.deliveries / ((windowMs) / 1000))}…`;
  });
  const [c, after] = await Promise.all([lg.collect(), server.ask('counters')]);
  const sv = server.since();
  const machinePct = machine.since();
  await server.ask('stop');
  // Drain: let what is in flight arrive before the next step.
  const t0 = performance.now();
  let last = -1;
  while (performance.now() - t0 < drainMs) {
    await sleep(150);
    const now = (await lg.counters()).deliveries;
    if (now === last) break;
    last = now;
  }
  const secs = c.ms / 1000;
  const published = after.published - before.published;
  const expected = published * subsPerTopic;
  const stat = (k) => (after.stats[k] ?? 0) - (before.stats[k] ?? 0);
  const rec = {
    offeredRate: rate,
    publishedPerSec: published / secs,
    publishRatio: published / ((rate * c.ms) / 1000),
    deliveriesPerSec: c.deliveries / secs,
    deliveryRatio: expected > 0 ? c.deliveries / expected : 0,
    framesPerSec: c.frames / secs,
    updatesPerFrame: c.frames > 0 ? c.deliveries / c.frames : 0,
    bytesPerDelivery: c.deliveries > 0 ? c.bytes / c.deliveries : 0,
    mbPerSec: c.bytes / secs / 1e6,
    latencyUs: c.latencyUs,
    curve: percentileCurve(c.histogram),
    serverCpuPct: sv.cpuPct,
    serverElu: after.elu,
    serverRss: sv.rss,
    loadgenCpuPct: c.cpuPct,
    machineCpuPct: machinePct.busyPct,
    kernelIrqCpuPct: machinePct.irqPct,
    otherCpuPct: Math.max(0, machinePct.busyPct - machinePct.irqPct - sv.cpuPct - c.cpuPct),
    seqGaps: c.seqGaps,
    clientErrors: c.errors,
    serverErrors: c.serverErrors,
    closes: c.closes,
    slowLaneEntries: stat('slowLaneEntries'),
    slowDisconnects: stat('slowDisconnects'),
    serverFrames: stat('frames'),
    serverLoopDelayMs: after.loopDelay,
    serverGc: { count: after.gc.count - before.gc.count, ms: after.gc.ms - before.gc.ms, maxPauseMs: after.gc.maxMs, major: after.gc.major - before.gc.major },
    // JS heap allocated by the server process during the window (servers/driver.mjs: v8.GCProfiler),
    // per update published and per delivery; GCs and their time per million deliveries.
    serverAlloc: allocRecord(before, after, published, c.deliveries),
    encodes: stat('encodes'),
    windowMs: c.ms,
    histogram: c.histogram,
    pre,
  };
  return rec;
}

function allocRecord(before, after, published, deliveries) {
  const gcCount = after.gc.count - before.gc.count;
  const gcMs = after.gc.ms - before.gc.ms;
  const perM = deliveries > 0 ? 1e6 / deliveries : NaN;
  const bytes = before.alloc?.bytes != null && after.alloc?.bytes != null ? after.alloc.bytes - before.alloc.bytes : null;
  return {
    bytes,
    bytesPerUpdate: bytes !== null && published > 0 ? bytes / published : null,
    bytesPerDelivery: bytes !== null && deliveries > 0 ? bytes / deliveries : null,
    gcPerMDeliveries: gcCount * perM,
    gcMsPerMDeliveries: gcMs * perM,
  };
}

/** Time a scenario may spend waiting for, and re-measuring after, outside load. */
let quietBudgetMs = 60_000;
export function resetQuietBudget(ms = 60_000) {
  quietBudgetMs = ms;
}

/**
 * measureRate(), repeated (up to `retries` times) when other processes on the
 * machine took more than `maxOtherPct` of a core during the window: a step
 * measured beside someone's test suite says little about the server.
 */
export async function measureQuiet(env, args, { retries = 1, maxOtherPct = 20 } = {}) {
  let r;
  for (let i = 0; i <= retries; i++) {
    if (i > 0) {
      // Bounded: on a machine that never goes quiet the run still ends, its steps marked.
      if (quietBudgetMs <= 0) break;
      progress(`  (other processes took ${Math.round(r.otherCpuPct)}% of a core during that window: measuring again)`);
      const t0 = performance.now();
      await waitQuiet(Math.min(10_000, quietBudgetMs), maxOtherPct);
      quietBudgetMs -= performance.now() - t0 + (args.windowMs ?? 2000);
    }
    r = await measureRate(env, args);
    r.attempts = i + 1;
    if (r.otherCpuPct <= maxOtherPct) return r;
  }
  r.disturbed = true;
  return r;
}

/** A one-line account of a step for the progress output. */
export function stepLine(r) {
  return (
    `${fmtSi(r.deliveriesPerSec)} deliveries/s (${fmtSi(r.publishedPerSec)} updates/s published), ` +
    `p50 ${fmtUs(r.latencyUs.p50)} p99 ${fmtUs(r.latencyUs.p99)}; CPU server ${fmtPct(r.serverCpuPct)} load-gen ${fmtPct(r.loadgenCpuPct)} kernel-net ${fmtPct(r.kernelIrqCpuPct)}` +
    `; server loop delay max ${r.serverLoopDelayMs.maxMs.toFixed(1)} ms, GC ${r.serverGc.count}× ${Math.round(r.serverGc.ms)} ms (max pause ${r.serverGc.maxPauseMs.toFixed(1)} ms)` +
    (r.otherCpuPct > 20 ? ` other processes ${fmtPct(r.otherCpuPct)}` : '')
  );
}

export { HIST, progress };
