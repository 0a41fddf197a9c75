#!/usr/bin/env node
// Bounded soak with churn (RELIABILITY 20): a tickfan server in this process,
// and a load process that keeps connecting, subscribing (patterns, rate tiers,
// pause/resume), publishing over WebSocket and HTTP, and closing — cleanly or
// by dropping the socket — for a few minutes. Reports RSS, heap and handle
// counts at the start, after a warm-up and at the end (each idle, after GC)
// and the server's bookkeeping; exits non-zero if anything grew past its
// bound between the warm baseline and the end.
//
//   npm run soak                       # ~2.5 minutes of churn
//   npm run soak -- --minutes 30       # longer
//   options: --minutes N --sessions N --rate N (publishes/s) --topics N
//
// Loopback only; the server listens on a free port on 127.0.0.1.

import { fork } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import vm from 'node:vm';

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '2.5' },
    sessions: { type: 'string', default: '120' },
    rate: { type: 'string', default: '2000' },
    topics: { type: 'string', default: '250' },
    load: { type: 'string' }, // internal: run as the load process against this port
  },
});
const minutes = Number(args.minutes);
const sessions = Number(args.sessions);
const rate = Number(args.rate);
const topicCount = Number(args.topics);
for (const [k, v] of Object.entries({ minutes, sessions, rate, topics: topicCount })) {
  if (!(v > 0)) {
    console.error(`soak: --${k} must be a positive number`);
    process.exit(2);
  }
}

const topicNames = Array.from({ length: topicCount }, (_, i) => (i % 5 === 4 ? `soak.fx.F${i}` : `soak.px.T${i}`));

if (args.load) await load(Number(args.load));
else await main();

// ------------------------------------------------------------------ server side

function gc() {
  v8.setFlagsFromString('--expose-gc');
  const collect = globalThis.gc ?? vm.runInNewContext('gc');
  for (let i = 0; i < 3; i++) collect();
}

function sample(server) {
  const mem = process.memoryUsage();
  return {
    rssMB: mem.rss / 2 ** 20,
    heapMB: mem.heapUsed / 2 ** 20,
    externalMB: mem.external / 2 ** 20,
    handles: process.getActiveResourcesInfo().length,
    connections: server.stats.connections,
    subscriptions: server.stats.subscriptions,
    topics: server.store.size,
  };
}

function fmt(s) {
  return `rss ${s.rssMB.toFixed(1)} MB, heap ${s.heapMB.toFixed(1)} MB, external ${s.externalMB.toFixed(1)} MB, handles ${s.handles}, connections ${s.connections}, subscriptions ${s.subscriptions}, topics ${s.topics}`;
}

async function main() {
  const { startServer } = await import('../dist/index.js');
  const errors = [];
  const server = await startServer({
    port: 0,
    host: '127.0.0.1',
    maxPublishesPerSecond: 100_000,
    log: (level, msg) => {
      if (level === 'error') errors.push(msg);
    },
  });
  console.log(`soak: ${minutes} min of churn, ${sessions} concurrent sessions, ${rate} publishes/s over ${topicCount} topics, server on 127.0.0.1:${server.port} (pid ${process.pid}, node ${process.version})`);

  // Fill every topic and its history ring first: retained state, not growth.
  for (let v = 0; v < 300; v++) for (const t of topicNames) server.publish(t, { bid: v, ask: v + 0.01, seq: v, note: `v${v}` });
  for (let i = 0; i < 50; i++) server.publish(`soak.own.S${i}`, { x: 0 }); // what sessions publish to
  await sleep(500);
  gc();
  const start = sample(server);
  console.log(`start (idle, after GC): ${fmt(start)}`);

  // Two runs of the same churn: a warm-up (a fifth of the time) that fills
  // caches, pools and allocator arenas, then the measured run. Flat means the
  // measured run ends where it started: warm baseline → end, both idle after GC.
  const t0 = Date.now();
  const warmMinutes = Math.max(0.25, minutes / 5);
  const runMinutes = Math.max(0.25, minutes - warmMinutes);
  let report = null;
  const runLoad = async (label, mins) => {
    console.log(`${label}: ${mins.toFixed(2)} min of churn`);
    const child = fork(new URL(import.meta.url), ['--load', String(server.port), '--minutes', String(mins), '--sessions', String(sessions), '--rate', String(rate), '--topics', String(topicCount)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.on('message', (m) => (report = m));
    let lastPub = server.stats.publishes;
    let lastDel = server.stats.deliveries;
    let lastAt = Date.now();
    const every = Math.min(30_000, Math.max(5_000, (mins * 60_000) / 8));
    const ticker = setInterval(() => {
      const now = Date.now();
      const dt = (now - lastAt) / 1000;
      const pubs = (server.stats.publishes - lastPub) / dt;
      const dels = (server.stats.deliveries - lastDel) / dt;
      [lastPub, lastDel, lastAt] = [server.stats.publishes, server.stats.deliveries, now];
      console.log(`  +${Math.round((now - t0) / 1000)}s: ${fmt(sample(server))}, ${Math.round(pubs)} publishes/s, ${Math.round(dels)} deliveries/s`);
    }, every);
    const code = await new Promise((resolve) => child.once('exit', (c) => resolve(c)));
    clearInterval(ticker);
    // Everything the load opened is closed (or dropped): wait for the server to notice.
    const settleBy = Date.now() + 15_000;
    while (server.stats.connections > 0 && Date.now() < settleBy) await sleep(100);
    await sleep(1_000);
    gc();
    return code;
  };

  const warmCode = await runLoad('warm-up', warmMinutes);
  const base = sample(server);
  console.log(`baseline (idle, after GC): ${fmt(base)}`);
  const code = await runLoad('measured run', runMinutes);
  const end = sample(server);
  console.log(`end (idle, after GC):      ${fmt(end)}`);

  const s = server.stats;
  console.log(
    `server: ${s.publishes} publishes, ${s.deliveries} deliveries, ${s.frames} frames, ${(s.bytesOut / 2 ** 20).toFixed(0)} MB out, ` +
      `${s.catchUpSnapshots} snapshot / ${s.catchUpDeltas} delta catch-ups, ${s.conflated} conflated, ${s.slowDisconnects} slow disconnects, ` +
      `errors by code ${JSON.stringify(Object.fromEntries(s.errorsByCode))}`,
  );
  if (report) {
    console.log(
      `load (measured run): ${report.connects} connections opened (${report.sdk} SDK, ${report.raw} raw; ${report.dropped} dropped without a close), ` +
        `${report.subscribes} subscribes, ${report.updates} updates received, ${report.publishes} WebSocket + ${report.httpPublishes} HTTP publishes, ` +
        `${report.snapshots} HTTP snapshots, ${report.failures} unexpected failures${report.failureSamples.length ? ` (e.g. ${report.failureSamples.join('; ')})` : ''}`,
    );
  }

  const checks = [
    ['load processes exited cleanly', code === 0 && warmCode === 0],
    ['connections back to 0', base.connections === 0 && end.connections === 0],
    ['subscriptions back to 0', base.subscriptions === 0 && end.subscriptions === 0],
    ['topics unchanged', end.topics === start.topics],
    [`heap baseline → end ${(end.heapMB - base.heapMB).toFixed(1)} MB (< 8 MB)`, end.heapMB - base.heapMB < 8],
    [`RSS baseline → end ${(end.rssMB - base.rssMB).toFixed(1)} MB (< 32 MB; cold start → end ${(end.rssMB - start.rssMB).toFixed(1)} MB)`, end.rssMB - base.rssMB < 32],
    [`handles ${start.handles} → ${base.handles} → ${end.handles}`, end.handles <= start.handles + 2],
    ['no errors logged by the server', errors.length === 0],
    ['no unexpected load failures', !!report && report.failures === 0],
    ['no INTERNAL errors', !s.errorsByCode.get(50)],
  ];
  for (const [what, ok] of checks) console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${what}`);
  for (const e of errors.slice(0, 5)) console.log(`  server error: ${e}`);
  await server.close();
  const failed = checks.filter(([, ok]) => !ok).length;
  console.log(failed ? `soak: FAILED (${failed} checks)` : `soak: passed in ${((Date.now() - t0) / 60_000).toFixed(1)} min`);
  process.exit(failed ? 1 : 0);
}

// ------------------------------------------------------------------ load side

async function load(port) {
  const { connect } = await import('../dist/client/index.js');
  const { Encoder, clientFrame } = await import('../dist/protocol/index.js');
  const { default: WebSocket } = await import('ws');
  const url = `ws://127.0.0.1:${port}/ws`;
  const deadline = Date.now() + minutes * 60_000;
  const enc = new Encoder();
  const r = { connects: 0, sdk: 0, raw: 0, dropped: 0, subscribes: 0, updates: 0, publishes: 0, httpPublishes: 0, snapshots: 0, failures: 0, failureSamples: [] };
  const fail = (what, err) => {
    r.failures++;
    if (r.failureSamples.length < 5) r.failureSamples.push(`${what}: ${err?.message ?? err}`);
  };
  const pick = (a) => a[Math.floor(Math.random() * a.length)];
  const within = (p, ms, what) => Promise.race([p, sleep(ms).then(() => Promise.reject(new Error(`${what}: no answer in ${ms} ms`)))]);

  // A steady publisher over WebSocket, reconnecting if it ever drops.
  const publisher = connect(url, { backoff: { initialMs: 50, maxMs: 500 } });
  let seq = 0;
  const perTick = Math.max(1, Math.round(rate / 100));
  const pubTimer = setInterval(() => {
    if (publisher.state !== 'connected') return;
    for (let i = 0; i < perTick; i++) {
      const t = topicNames[seq++ % topicNames.length];
      r.publishes++;
      publisher.publish(t, { bid: seq, ask: seq + 0.01, seq }).catch((err) => fail('publish', err));
    }
  }, 10);

  const patterns = ['soak.px.*', 'soak.fx.>', 'soak.>', ...topicNames.slice(0, 20)];

  async function sdkSession() {
    const c = connect(url, { reconnect: false });
    r.connects++;
    r.sdk++;
    try {
      await within(new Promise((resolve, reject) => {
        if (c.state === 'connected') return resolve();
        c.on('state', ({ to }) => (to === 'connected' ? resolve() : to === 'disconnected' ? reject(new Error('disconnected while connecting')) : undefined));
      }), 5_000, 'connect');
      const subs = [];
      for (let i = 0, n = 1 + Math.floor(Math.random() * 3); i < n; i++) {
        const s = c.subscribe(pick(patterns), { maxRate: pick([0, 0, 1, 4, 10, 50]), ...(Math.random() < 0.3 ? { fields: ['bid'] } : {}) });
        s.on('update', () => r.updates++);
        subs.push(s);
        r.subscribes++;
      }
      await within(Promise.all(subs.map((s) => s.ready)), 5_000, 'subscribe');
      if (Math.random() < 0.3) {
        for (let i = 0; i < 5; i++) await within(c.publish(`soak.own.S${Math.floor(Math.random() * 50)}`, { x: i }), 5_000, 'own publish');
        r.publishes += 5;
      }
      if (Math.random() < 0.2) {
        subs[0].pause();
        await sleep(200 + Math.random() * 500);
        subs[0].resume();
      }
      if (Math.random() < 0.2) subs[0].unsubscribe();
      await sleep(200 + Math.random() * 2_500);
    } catch (err) {
      fail('sdk session', err);
    } finally {
      c.close();
    }
  }

  async function rawSession() {
    r.connects++;
    r.raw++;
    const ws = new WebSocket(url);
    try {
      await within(new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject))), 5_000, 'raw connect');
      ws.on('message', () => r.updates++);
      ws.send(clientFrame([enc.subscribe(1, [pick(patterns)], pick([0, 4]), [], [])]));
      r.subscribes++;
      if (Math.random() < 0.3) ws.send(Buffer.from([1, 2, 3, 4, 5])); // a malformed frame now and then
      await sleep(100 + Math.random() * 1_500);
      // Half vanish without a close frame (a dropped network), half close properly.
      if (Math.random() < 0.5) {
        r.dropped++;
        ws.terminate();
      } else ws.close(1000);
    } catch (err) {
      fail('raw session', err);
      ws.terminate();
    }
  }

  async function httpSide() {
    while (Date.now() < deadline) {
      try {
        const t = pick(topicNames);
        if (Math.random() < 0.5) {
          const res = await fetch(`http://127.0.0.1:${port}/publish/${t}`, { method: 'POST', body: JSON.stringify({ bid: Math.random() }), headers: { 'content-type': 'application/json' } });
          await res.arrayBuffer();
          if (res.status !== 200) fail('http publish', new Error(`status ${res.status}`));
          r.httpPublishes++;
        } else {
          const res = await fetch(`http://127.0.0.1:${port}/snapshot/${t}`);
          await res.arrayBuffer();
          if (res.status !== 200) fail('http snapshot', new Error(`status ${res.status}`));
          r.snapshots++;
        }
      } catch (err) {
        fail('http', err);
      }
      await sleep(20);
    }
  }

  async function lane() {
    while (Date.now() < deadline) {
      if (Math.random() < 0.75) await sdkSession();
      else await rawSession();
    }
  }

  await Promise.all([...Array.from({ length: sessions }, lane), httpSide()]);
  clearInterval(pubTimer);
  await sleep(200);
  publisher.close();
  await sleep(300);
  process.send?.(r);
  process.exit(0);
}
