// The in-process publisher and IPC control loop shared by every server the
// benchmarks start (tickfan and its peers), so each one is fed the same
// updates on the same schedule and reports CPU and memory the same way.
// Each update carries `t`, the CLOCK_MONOTONIC time of its publish in ns,
// first among its fields: the load generator measures publish → receive.

import { serveCommands } from '../lib/procs.mjs';
import { PerformanceObserver, constants, monitorEventLoopDelay } from 'node:perf_hooks';
import v8 from 'node:v8';
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';

const NAMES = ['bid', 'ask', 'last', 'size', 'bidSize', 'askSize', 'high', 'low', 'open', 'volume'];

/** Field names of a payload with `n` fields besides `t`. */
export function fieldNames(n) {
  return Array.from({ length: n }, (_, i) => NAMES[i] ?? `f${i}`);
}

export function nowNs() {
  return Number(process.hrtime.bigint());
}

/**
 * Paces publishes: every timer tick (≈1 ms) publishes the updates due since
 * the start, round-robin over the topics. A tick never publishes more than
 * `maxBurstMs` worth: when the process cannot keep up, the shortfall shows in
 * `published` instead of turning into an ever-growing burst.
 */
class Pacer {
  constructor(publishOne) {
    this.publishOne = publishOne;
    this.timer = null;
    this.published = 0;
    this.skipped = 0;
  }

  start({ rate, topics, fields = 4, maxBurstMs = 20, durationMs = 600_000 }) {
    this.stop();
    const names = fieldNames(fields);
    const price = names.map((_, i) => 100 + i * 0.25);
    const t0 = performance.now();
    let due0 = 0;
    let next = 0;
    this.published = 0;
    this.skipped = 0;
    this.rate = rate;
    this.startedAt = t0;
    const cap = Math.max(1, Math.ceil((rate * maxBurstMs) / 1000));
    const tick = () => {
      const now = performance.now();
      if (now - t0 > durationMs) return this.stop();
      const dueTotal = Math.floor(((now - t0) * rate) / 1000);
      let due = dueTotal - due0;
      if (due > cap) {
        this.skipped += due - cap;
        due = cap;
      }
      due0 = dueTotal;
      for (let i = 0; i < due; i++) {
        const topic = topics[next];
        next = next + 1 === topics.length ? 0 : next + 1;
        const fieldsObj = { t: nowNs() };
        for (let j = 0; j < names.length; j++) {
          // Moves every time, never an integer (integers would encode as Int).
          price[j] += (j & 1 ? -0.0625 : 0.0625) + 0.001;
          fieldsObj[names[j]] = price[j];
        }
        this.publishOne(topic, fieldsObj);
        this.published++;
      }
    };
    this.timer = setInterval(tick, 1);
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    return { published: this.published, skipped: this.skipped, ms: performance.now() - (this.startedAt ?? performance.now()) };
  }
}

/**
 * Cumulative JS-heap allocation of this process: Σ (used before − used after)
 * over every GC, from v8.GCProfiler, + (heap used now − heap used at start).
 * Without GCProfiler (Node < 18.15) `bytes` is null.
 */
function heapAllocation() {
  if (typeof v8.GCProfiler !== 'function') return { read: () => ({ bytes: null, gcs: 0 }) };
  let profiler = new v8.GCProfiler();
  profiler.start();
  const used0 = v8.getHeapStatistics().used_heap_size;
  let freed = 0;
  let gcs = 0;
  return {
    read() {
      const r = profiler.stop();
      profiler = new v8.GCProfiler();
      profiler.start();
      for (const g of r?.statistics ?? []) {
        const d = (g.beforeGC?.heapStatistics?.usedHeapSize ?? 0) - (g.afterGC?.heapStatistics?.usedHeapSize ?? 0);
        if (d > 0) freed += d;
        gcs++;
      }
      return { bytes: freed + v8.getHeapStatistics().used_heap_size - used0, gcs };
    },
  };
}

/**
 * V8's sampling heap profiler over a publish window, when BENCH_HEAP_PROFILE
 * names a file (`tickfan bench … --heap-profile`): every sampled allocation,
 * the ones already collected by a GC included, so it shows what a window
 * allocates (not what it keeps). Written as a .heapprofile at `stop`.
 */
function heapSampler(file) {
  if (!file) return { start() {}, stop() {} };
  const session = new Session();
  session.connect();
  return {
    start() {
      session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    },
    stop() {
      session.post('HeapProfiler.stopSampling', (err, r) => {
        if (!err && r?.profile) writeFileSync(file, JSON.stringify(r.profile));
      });
    },
  };
}

/**
 * Runs the IPC loop. `server` gives:
 *   publish(topic, fields)   one update
 *   stats()                  counters (optional; may return a promise)
 *   memory()                 { rss, … } of the process that holds the connections,
 *                            when that is not this one (optional: outside brokers)
 *   versions(topics)         topic → version (optional)
 *   close()                  async shutdown
 */
export function serve(server) {
  // Garbage-collection pauses of the server's thread: the usual source of a latency tail.
  const gc = { count: 0, ms: 0, maxMs: 0, major: 0 };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gc.count++;
      gc.ms += e.duration;
      if (e.duration > gc.maxMs) gc.maxMs = e.duration;
      if (e.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) gc.major++;
    }
  }).observe({ entryTypes: ['gc'] });
  // Bytes allocated on the JS heap since start: what each GC freed (its heap
  // use before minus after, from v8.GCProfiler) plus the growth of the heap
  // in use. The profiler is restarted at every `counters` so its per-GC
  // records never pile up in the process under test.
  const alloc = heapAllocation();
  // Event-loop delay: how long a ready callback waited (any stall of the thread shows here).
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const pacer = new Pacer((topic, fields) => server.publish(topic, fields));
  const sampler = heapSampler(process.env.BENCH_HEAP_PROFILE);
  // The demo feed (`tickfan serve --demo`'s market simulator), for the wire scenario.
  let sim = null;
  let simTimer = null;
  let eluMark = performance.eventLoopUtilization();
  const handlers = {
    seed: ({ topics, fields = 4 }) => {
      const names = fieldNames(fields);
      for (const topic of topics) {
        const f = { t: nowNs() };
        names.forEach((n, i) => (f[n] = 100.5 + i));
        server.publish(topic, f);
      }
      return { seeded: topics.length };
    },
    publish: (args) => {
      pacer.start(args);
      sampler.start();
      return { started: true };
    },
    /**
     * The demo feed: the first call makes the simulator (seeded: every server
     * gets the same updates) and publishes every topic's first image; answers
     * the topics. `demoRun` then ticks it (as `tickfan serve --demo` does:
     * every 20 ms the steps due) until `stop`.
     */
    demo: async ({ symbols = 300, seed = 42 }) => {
      if (!sim) {
        const { MarketSim } = await import('../../dist/demo/market-sim.js');
        sim = new MarketSim((topic, changes) => server.publish(topic, changes), { symbols, seed });
        sim.start();
        sim.stop();
      }
      return { topics: sim.topics };
    },
    demoRun: ({ rate = 2000 }) => {
      clearInterval(simTimer);
      let carry = 0;
      simTimer = setInterval(() => {
        carry += (rate * 20) / 1000;
        const n = Math.floor(carry);
        carry -= n;
        for (let i = 0; i < n; i++) sim.step();
      }, 20);
      return { started: true };
    },
    stop: () => {
      clearInterval(simTimer);
      simTimer = null;
      sampler.stop();
      return { ...pacer.stop(), demoPublished: sim?.published ?? 0 };
    },
    counters: async () => {
      const elu = performance.eventLoopUtilization(eluMark);
      eluMark = performance.eventLoopUtilization();
      const loopDelay = { p99Ms: loop.percentile(99) / 1e6, maxMs: loop.max / 1e6 };
      loop.reset();
      const cpu = process.cpuUsage();
      const out = { published: pacer.published, skipped: pacer.skipped, elu: elu.utilization, gc: { ...gc }, alloc: alloc.read(), loopDelay, cpuUs: cpu.user + cpu.system, stats: (await server.stats?.()) ?? {} };
      gc.maxMs = 0; // the max is per window; count and ms are cumulative
      return out;
    },
    versions: ({ topics }) => server.versions?.(topics) ?? {},
    gc: () => {
      // An outside broker answers for its own process (RSS from /proc; no JS heap).
      if (server.memory) return server.memory();
      for (let i = 0; i < 3; i++) globalThis.gc?.();
      const m = process.memoryUsage();
      return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, gc: typeof globalThis.gc === 'function' };
    },
    exit: async () => {
      pacer.stop();
      await server.close();
      // Exit after the reply has gone (and after --cpu-prof has written its profile).
      setTimeout(() => process.exit(0), 50);
      return { exiting: true };
    },
  };
  serveCommands(handlers);
}
