// The load generator's client group (one per worker thread of
// loadgen-worker.mjs): its clients (loadgen-client.mjs), the counters and
// the HDR latency histogram (µs) they report into, connecting them at a
// bounded concurrency, and reconnect storms (drop every connection, reconnect
// with full-jitter backoff, time each client until it is current again).

import hdr from 'hdr-histogram-js';
import { BROKER_READERS } from './loadgen-brokers.mjs';
import { Client } from './loadgen-client.mjs';

const HIST = { lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 };
const MAX_US = HIST.highestTrackableValue;

function nowNs() {
  return Number(process.hrtime.bigint());
}

/** The clients of one worker thread and what they measure together. */
export class Group {
  constructor(spec, ctl) {
    this.spec = spec;
    this.ctl = ctl;
    this.proto = spec.proto;
    this.Broker = BROKER_READERS[spec.proto] ?? null;
    this.sampleEvery = Math.max(1, spec.sampleEvery ?? 1);
    this.countdown = this.sampleEvery;
    this.hist = hdr.build(HIST);
    this.epochs = new Map();
    this.reset();
    this.clients = spec.clients.map((c) => new Client(this, c));
    this.inflight = 0;
    this.queue = [];
    this.closing = false;
    this.storm = null;
  }

  reset() {
    this.deliveries = 0;
    this.frames = 0;
    this.bytes = 0;
    this.snapshots = 0;
    this.catchUps = 0;
    this.seqGaps = 0;
    this.errors = 0;
    this.serverErrors = 0;
    this.closes = {};
    this.samples = 0;
    this.late = 0;
    this.hist.reset();
  }

  record(ns) {
    let us = Math.round((nowNs() - ns) / 1000);
    if (us < 1) us = 1;
    if (us > MAX_US) us = MAX_US;
    this.hist.recordValue(us);
    this.samples++;
  }

  /** Connects every client not yet open, at most `concurrency` in flight. */
  connectAll(concurrency, upTo = Infinity) {
    const t0 = performance.now();
    return new Promise((resolve) => {
      const ready = this.readyCount();
      const pending = this.clients.filter((c) => !c.ready).slice(0, Math.max(0, upTo - ready));
      let left = pending.length;
      if (left === 0) return resolve({ connected: this.readyCount(), ms: 0, failed: 0 });
      let failed = 0;
      let i = 0;
      const next = () => {
        while (this.inflight < concurrency && i < pending.length) {
          const c = pending[i++];
          this.inflight++;
          c.open((ok) => {
            this.inflight--;
            if (!ok) failed++;
            if (--left === 0) resolve({ connected: this.readyCount(), ms: performance.now() - t0, failed });
            else next();
          });
        }
      };
      next();
    });
  }

  readyCount() {
    let n = 0;
    for (const c of this.clients) if (c.ready) n++;
    return n;
  }

  counters() {
    return {
      deliveries: this.deliveries,
      frames: this.frames,
      bytes: this.bytes,
      snapshots: this.snapshots,
      seqGaps: this.seqGaps,
      errors: this.errors,
      serverErrors: this.serverErrors,
      closes: this.closes,
      samples: this.samples,
      ready: this.readyCount(),
    };
  }

  /** Drops every connection at once, then each client reconnects after a full-jitter delay and resumes. */
  drop({ resume, jitterMs, targets, deadlineMs, firstMessage = false }) {
    const t0 = nowNs();
    // firstMessage (the raw uWS floor, which has no versions): a client counts once its first frame arrives again.
    const storm = (this.storm = { t0, resume, targets, firstMessage, done: 0, retries: 0, times: hdr.build(HIST), own: hdr.build(HIST), connected: hdr.build(HIST), upgraded: hdr.build(HIST), subscribed: hdr.build(HIST), max: 0, total: this.clients.length });
    for (const c of this.clients) c.kill();
    return new Promise((resolve) => {
      storm.resolve = resolve;
      storm.timer = setTimeout(() => this.finishStorm(true), deadlineMs);
      // Like the SDK: full-jitter backoff, doubling per failed attempt.
      const attempt = (c, n) => {
        if (n === 0) c.stormStart = nowNs();
        c.open((ok) => {
          if (ok || this.storm !== storm || n >= 8) return;
          storm.retries++;
          setTimeout(() => attempt(c, n + 1), Math.floor(Math.random() * jitterMs * 2 ** (n + 1)));
        }, resume);
      };
      for (const c of this.clients) {
        c.stormBehind = -1; // not current until proven
        setTimeout(() => attempt(c, 0), Math.floor(Math.random() * jitterMs));
      }
    });
  }

  /** Records a storm milestone (µs since the drop) in one of the storm's histograms. */
  stormMark(which) {
    const s = this.storm;
    if (!s) return;
    const us = Math.max(1, Math.round((nowNs() - s.t0) / 1000));
    s[which].recordValue(Math.min(us, MAX_US));
  }

  clientCurrent(c) {
    const s = this.storm;
    if (!s) return;
    const now = nowNs();
    // From the client's own first reconnect attempt: the resume itself, without the jitter.
    if (c.stormStart) s.own.recordValue(Math.min(MAX_US, Math.max(1, Math.round((now - c.stormStart) / 1000))));
    const us = Math.max(1, Math.round((now - s.t0) / 1000));
    s.times.recordValue(Math.min(us, MAX_US));
    if (us > s.max) s.max = us;
    if (++s.done === s.total) this.finishStorm(false);
  }

  finishStorm(timedOut) {
    const s = this.storm;
    if (!s) return;
    clearTimeout(s.timer);
    this.storm = null;
    s.resolve({
      done: s.done,
      total: s.total,
      timedOut,
      retries: s.retries,
      maxUs: s.max,
      times: hdr.encodeIntoCompressedBase64(s.times),
      own: hdr.encodeIntoCompressedBase64(s.own),
      connected: hdr.encodeIntoCompressedBase64(s.connected),
      upgraded: hdr.encodeIntoCompressedBase64(s.upgraded),
      subscribed: hdr.encodeIntoCompressedBase64(s.subscribed),
    });
  }
}
