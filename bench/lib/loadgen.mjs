// Main-thread side of the load generator: spreads clients over piscina
// worker threads (one long-lived task per worker), sends them commands and
// merges what they measured. Its own CPU use (every thread of this process)
// is reported next to the server's.

import { MessageChannel } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import Piscina from 'piscina';
import hdr from 'hdr-histogram-js';

const WORKER = new URL('./loadgen-worker.mjs', import.meta.url).href;

export const HIST = { lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 };

export function defaultWorkers() {
  return Math.max(1, Math.min(8, availableParallelism() - 1));
}

/** Summary of an HDR histogram in µs: count, p50, p90, p99, p99.9, max, mean. */
export function summarize(h) {
  if (!h || h.totalCount === 0) return { count: 0 };
  const q = (p) => h.getValueAtPercentile(p);
  return {
    count: h.totalCount,
    p50: q(50),
    p90: q(90),
    p99: q(99),
    p999: q(99.9),
    max: h.maxValue,
    mean: Math.round(h.mean),
  };
}

export class LoadGen {
  /**
   * @param {object} o
   * @param {'tickfan'|'uws'|'sio'} o.proto
   * @param {number} o.port
   * @param {string} o.path  WebSocket path
   * @param {{topics: string[], stalled?: boolean}[]} o.clients  one entry per client
   * @param {string[]} [o.addrs]  loopback source addresses, used round-robin
   * @param {number} [o.workers]
   * @param {number} [o.sampleEvery]  record the latency of one delivery in N (per worker)
   * @param {boolean} [o.trackVersions]
   * @param {number} [o.maxRate]  tickfan rate tier (0: every update)
   * @param {1|2} [o.protocol]  tickfan wire protocol (and the raw uWS peer's payload)
   */
  constructor(o) {
    this.o = o;
    const n = Math.max(1, Math.min(o.workers ?? defaultWorkers(), o.clients.length || 1));
    this.pool = new Piscina({ filename: WORKER, minThreads: n, maxThreads: n, idleTimeout: 60_000, concurrentTasksPerWorker: 1 });
    this.workers = [];
    this.nextId = 1;
    // One address: let connect() pick the port (bind-before-connect, needed to
    // choose a source address, makes the kernel search the port range on every bind).
    const addrs = o.addrs?.length > 1 ? o.addrs : [undefined];
    const parts = Array.from({ length: n }, () => []);
    o.clients.forEach((c, index) => parts[index % n].push({ index, topics: c.topics, stalled: !!c.stalled, addr: addrs[index % addrs.length] }));
    for (const clients of parts) {
      const { port1, port2 } = new MessageChannel();
      const pending = new Map();
      port1.on('message', (m) => {
        const p = pending.get(m.id);
        if (!p) return;
        pending.delete(m.id);
        if (m.error) p.reject(new Error(m.error));
        else p.resolve(m.result);
      });
      const spec = {
        proto: o.proto,
        port: o.port,
        path: o.path,
        clients,
        sampleEvery: o.sampleEvery ?? 1,
        trackVersions: !!o.trackVersions,
        maxRate: o.maxRate ?? 0,
        protocol: o.protocol ?? 1,
      };
      const task = this.pool.run({ ctl: port2, spec }, { transferList: [port2] });
      task.catch(() => {});
      this.workers.push({ port: port1, pending, task, size: clients.length });
    }
    this.cpuAt = process.cpuUsage();
    this.wallAt = performance.now();
  }

  /** Sends a command to every worker; resolves with their answers. */
  ask(type, args, timeoutMs = 120_000) {
    return Promise.all(
      this.workers.map(
        (w) =>
          new Promise((resolve, reject) => {
            const id = this.nextId++;
            const timer = setTimeout(() => {
              w.pending.delete(id);
              reject(new Error(`load generator: "${type}" got no answer in ${timeoutMs} ms`));
            }, timeoutMs);
            w.pending.set(id, {
              resolve: (v) => (clearTimeout(timer), resolve(v)),
              reject: (e) => (clearTimeout(timer), reject(e)),
            });
            w.port.postMessage({ id, type, args });
          }),
      ),
    );
  }

  /** Opens and subscribes every client. */
  async connect({ concurrency = 256, timeoutMs = 120_000, upTo } = {}) {
    const per = Math.max(1, Math.ceil(concurrency / this.workers.length));
    const r = await this.ask('connect', { concurrency: per, upTo: upTo === undefined ? undefined : Math.ceil(upTo / this.workers.length) }, timeoutMs);
    return {
      connected: r.reduce((a, x) => a + x.connected, 0),
      failed: r.reduce((a, x) => a + x.failed, 0),
      ms: Math.max(...r.map((x) => x.ms)),
      lastError: r.find((x) => x.lastError)?.lastError,
    };
  }

  /** Starts a measurement window: zeroes counters and histograms, marks CPU. */
  async window() {
    await this.ask('reset');
    this.cpuAt = process.cpuUsage();
    this.wallAt = performance.now();
  }

  /** Ends a window: merged counters, latency summary, and this process's CPU share (100 = one core). */
  async collect({ reset = false } = {}) {
    const r = await this.ask('collect', { reset });
    const cpu = process.cpuUsage(this.cpuAt);
    const ms = performance.now() - this.wallAt;
    const h = hdr.build(HIST);
    const sum = { deliveries: 0, frames: 0, bytes: 0, snapshots: 0, seqGaps: 0, errors: 0, serverErrors: 0, samples: 0, ready: 0, closes: {} };
    for (const x of r) {
      for (const k of Object.keys(sum)) if (k !== 'closes') sum[k] += x[k];
      for (const [code, n] of Object.entries(x.closes)) sum.closes[code] = (sum.closes[code] ?? 0) + n;
      const wh = hdr.decodeFromCompressedBase64(x.hist);
      h.add(wh);
    }
    sum.ms = ms;
    sum.cpuPct = ((cpu.user + cpu.system) / 1000 / ms) * 100;
    sum.latencyUs = summarize(h);
    sum.histogram = h;
    if (reset) {
      this.cpuAt = process.cpuUsage();
      this.wallAt = performance.now();
    }
    return sum;
  }

  async counters() {
    const r = await this.ask('counters');
    return { deliveries: r.reduce((a, x) => a + x.deliveries, 0), ready: r.reduce((a, x) => a + x.ready, 0) };
  }

  stall(indices) {
    return this.ask('stall', { indices });
  }

  /** Reconnect storm: drop all, reconnect with full jitter, resume; time until each is current. */
  async drop(args) {
    const r = await this.ask('drop', args, (args.deadlineMs ?? 60_000) + 10_000);
    const merge = (k) => {
      const h = hdr.build(HIST);
      for (const x of r) h.add(hdr.decodeFromCompressedBase64(x[k]));
      return summarize(h);
    };
    return {
      connectedUs: merge('connected'),
      upgradedUs: merge('upgraded'),
      subscribedUs: r.every((x) => x.subscribed) ? merge('subscribed') : null,
      done: r.reduce((a, x) => a + x.done, 0),
      total: r.reduce((a, x) => a + x.total, 0),
      timedOut: r.some((x) => x.timedOut),
      retries: r.reduce((a, x) => a + x.retries, 0),
      timeUs: merge('times'),
      ownUs: merge('own'),
    };
  }

  async close() {
    try {
      await this.ask('close', {}, 10_000);
      await Promise.allSettled(this.workers.map((w) => w.task));
    } catch {
      // fall through to destroy
    }
    for (const w of this.workers) w.port.close();
    await this.pool.destroy();
  }
}
