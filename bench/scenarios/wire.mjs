// wire — bytes on the wire and CPU per delivered update, tickfan's protocol 1
// and 2 (with and without permessage-deflate) against the text forms of the
// same updates: compact JSON, Socket.IO's event packet, a Lightstreamer TLCP
// line. Three parts, each in its own processes:
//
// 1. Bytes: real servers (tickfan with compression off / shared / dedicated,
//    and Socket.IO) publish the same feed — the demo market simulator, then
//    the fan-out scenario's payload — to SDK clients (protocol 1 and 2, the
//    `ws` package negotiating deflate where the server offers it) behind
//    counting TCP proxies, and to a raw Socket.IO client. The JSON, Socket.IO
//    and Lightstreamer forms are also computed exactly from the updates the
//    protocol-2 client received.
// 2. CPU: encode per update (Encoder.delta, Encoder.delta2, JSON.stringify)
//    and the SDK's decode per update (frame reader + protocol-2 dictionaries
//    against JSON.parse), in a Node process of its own and in headless Chromium.
// 3. Deflate on the fan-out path: server CPU and bytes per delivered update
//    with 1, 100 and 1,000 subscribers of each published frame, compression
//    off / shared / dedicated, protocol 1 and 2 — if compression happened
//    once per publish its cost per delivery would fall with the subscriber
//    count; if it stays flat, every subscriber's copy is compressed.
//
// Every part repeats `repeat` times, interleaved; medians and spreads reported.

import { spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { fmtRatio, fmtSi, progress, sleep, topicNames, waitQuiet } from '../lib/common.mjs';
import { COLORS, barChart, lineChart, stack } from '../lib/chart.mjs';
import { mdTable, targetsTable } from '../lib/report.mjs';
import { startServerProc } from '../lib/procs.mjs';
import { CountingProxy } from '../lib/count-proxy.mjs';
import { WireClients } from '../lib/wire-clients.mjs';
import { browserCpu } from '../lib/wire-browser.mjs';
import { lightstreamerLine, sioPacket, wsHeader } from '../lib/wire-forms.mjs';
import { eachServerFrame, upgradeRequest, wsFrame } from '../lib/wire.mjs';

export const meta = {
  name: 'wire',
  title: 'Bytes and CPU per update on the wire',
  question: 'How many bytes per delivered update do protocol 1, protocol 2 and protocol 2 + deflate put on the wire against Socket.IO, compact JSON and a Lightstreamer line, and what do encoding, decoding and compression cost?',
  defaults: {
    repeat: 3,
    parts: 'bytes,cpu,deflate',
    feedRate: 2000,
    symbols: 300,
    topics: 10,
    fields: 4,
    fanoutRate: 2000,
    warmupMs: 1000,
    windowMs: 2500,
    cpuUpdates: 20000,
    browser: true,
    subscribers: [1, 100, 1000],
    deliveries: 20000,
    deflateTopics: 20,
    deflateWindowMs: 1000,
    modes: 'off,shared,dedicated',
  },
  quick: { repeat: 2, windowMs: 1500, warmupMs: 500, cpuUpdates: 5000, subscribers: [1, 100], deliveries: 10000, deflateWindowMs: 600 },
  options: {
    repeat: 'rounds of every measurement, interleaved (medians and spread reported)',
    parts: 'which parts to run: bytes (real servers and clients), cpu (encode/decode in Node and Chromium), deflate (compression cost by subscriber count)',
    feedRate: 'demo feed updates/s (px.*, fx.* and the order book, as `tickfan serve --demo`)',
    symbols: 'demo feed symbols',
    topics: 'fan-out payload: topics published round-robin',
    fields: 'fan-out payload: fields per update besides the timestamp',
    fanoutRate: 'fan-out payload: updates/s',
    warmupMs: 'bytes part: a first, uncounted window (JIT and sockets warm up)',
    windowMs: 'bytes part: length of each window',
    cpuUpdates: 'cpu part: updates encoded / decoded per run',
    browser: 'cpu part: also decode in headless Chromium (/usr/bin/chromium)',
    subscribers: 'deflate part: subscribers of each published frame (comma-separated)',
    deliveries: 'deflate part: deliveries/s asked for in every cell (update rate = this ÷ subscribers)',
    deflateTopics: 'deflate part: topics per subscriber group (the 1-subscriber group gets 10×, so a frame holds one update)',
    deflateWindowMs: 'deflate part: length of each cell',
    modes: 'deflate part: server compression settings compared',
  },
};

const MODES_ALL = ['off', 'shared', 'dedicated'];

function median(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** { median, min, max, runs } of a list of numbers. */
function spread(xs) {
  const f = xs.filter((x) => Number.isFinite(x));
  return { median: median(f), min: f.length ? Math.min(...f) : NaN, max: f.length ? Math.max(...f) : NaN, runs: xs };
}

function rotate(list, by) {
  const k = by % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

// ------------------------------------------------------------ part 1: bytes

/** A raw Socket.IO (Engine.IO v4, WebSocket transport) client: joins rooms, counts bytes and "42" event frames. */
class SioCounter {
  constructor(port, topics) {
    this.port = port;
    this.topics = topics;
    this.reset();
  }

  reset() {
    this.bytes = 0;
    this.events = 0;
  }

  open() {
    return new Promise((resolve, reject) => {
      const sock = (this.sock = net.connect({ host: '127.0.0.1', port: this.port, noDelay: true }));
      let hs = null;
      let carry = null;
      let upgraded = false;
      const send = (text) => sock.write(wsFrame(Buffer.from(text), 1));
      sock.on('connect', () => sock.write(upgradeRequest('/socket.io/?EIO=4&transport=websocket', this.port)));
      sock.on('error', reject);
      sock.on('data', (chunk) => {
        if (!upgraded) {
          hs = hs ? Buffer.concat([hs, chunk]) : chunk;
          const end = hs.indexOf('\r\n\r\n');
          if (end < 0) return;
          upgraded = true;
          chunk = hs.subarray(end + 4);
        }
        const b = carry ? Buffer.concat([carry, chunk]) : chunk;
        carry = null;
        const o = eachServerFrame(b, (first, p, len, h) => {
          this.bytes += h + len;
          if ((first & 15) === 1) {
            const c0 = b[p];
            const c1 = b[p + 1];
            if (c0 === 0x34 && c1 === 0x32) this.events++; // 42[...] event
            else if (c0 === 0x30) send('40'); // Engine.IO open → connect the default namespace
            else if (c0 === 0x34 && c1 === 0x30) send(`421${JSON.stringify(['sub', this.topics])}`);
            else if (c0 === 0x34 && c1 === 0x33) resolve(); // 43: the "sub" ack
            else if (c0 === 0x32) send('3'); // ping → pong
          }
        });
        if (o < b.length) carry = Buffer.from(b.subarray(o));
      });
    });
  }

  close() {
    this.sock?.destroy();
  }
}

/** The SDK clients of the bytes part: which server (compression), which protocol. */
const SDK_FORMS = [
  { key: 'p1', label: 'tickfan protocol 1', mode: 'off', protocol: 1 },
  { key: 'p2', label: 'tickfan protocol 2', mode: 'off', protocol: 2 },
  { key: 'p2+shared', label: 'protocol 2 + deflate (shared)', mode: 'shared', protocol: 2 },
  { key: 'p2+dedicated', label: 'protocol 2 + deflate (dedicated)', mode: 'dedicated', protocol: 2 },
  { key: 'p1+shared', label: 'protocol 1 + deflate (shared)', mode: 'shared', protocol: 1 },
  { key: 'p1+dedicated', label: 'protocol 1 + deflate (dedicated)', mode: 'dedicated', protocol: 1 },
];

/**
 * One feed on every server at once (every form under the same conditions).
 * Each window starts idle and drained: counters zeroed, the feed runs for the
 * window, stops, and what is in flight drains — so the bytes and the updates
 * counted are exactly the same ones, however far a client lags (the `ws`
 * package inflates asynchronously). A first window warms up, uncounted.
 * Returns per form: bytes per update (spread), updates/s; and the
 * protocol-2 client's updates for the computed forms.
 */
async function bytesPass(feed, o, ctx) {
  const { connect } = await import('../../dist/client/index.js');
  const servers = {};
  const cleanup = [];
  const counts = {};
  const recorded = { images: [], updates: [] };
  let recording = false;
  try {
    for (const mode of MODES_ALL) servers[mode] = await startServerProc('tickfan', { options: { ...ctx.serverOptions, compression: mode } });
    servers.sio = await startServerProc('sio', { env: { BENCH_SIO_SHAPE: 'update' } });
    for (const s of Object.values(servers)) cleanup.push(() => s.stop());
    const all = Object.values(servers);
    // Topics and their first images first (patterns match what exists), then the clients.
    let topics;
    let patterns;
    let start;
    if (feed === 'demo') {
      const answers = await Promise.all(all.map((s) => s.ask('demo', { symbols: o.symbols })));
      topics = answers[0].topics.filter((t) => t.startsWith('px.') || t.startsWith('fx.'));
      patterns = ['px.*', 'fx.*'];
      start = () => Promise.all(all.map((s) => s.ask('demoRun', { rate: o.feedRate })));
    } else {
      topics = topicNames(o.topics, 'px.H');
      patterns = ['px.*'];
      await Promise.all(all.map((s) => s.ask('seed', { topics, fields: o.fields })));
      start = () => Promise.all(all.map((s) => s.ask('publish', { rate: o.fanoutRate, topics, fields: o.fields })));
    }
    // Clients: the SDK behind a counting proxy per form; a raw Socket.IO client.
    const clients = [];
    for (const f of SDK_FORMS) {
      const proxy = await CountingProxy.start(servers[f.mode].port);
      cleanup.push(() => proxy.close());
      const client = connect(`ws://127.0.0.1:${proxy.port}/ws`, { protocol: f.protocol, transport: 'ws' });
      cleanup.push(() => client.close());
      counts[f.key] = 0;
      const subs = patterns.map((p) => client.subscribe(p));
      for (const s of subs) {
        s.on('update', (u) => {
          if (u.snapshot) {
            if (f.key === 'p2') recorded.images.push({ name: u.topic, version: u.version, changes: new Map(Object.entries(u.changes)) });
            return;
          }
          counts[f.key]++;
          if (recording && f.key === 'p2') recorded.updates.push({ name: u.topic, version: u.version, changes: new Map(Object.entries(u.changes)) });
        });
      }
      await Promise.all(subs.map((s) => s.ready));
      clients.push({ f, proxy, client });
    }
    const sio = new SioCounter(servers.sio.port, topics);
    cleanup.push(() => sio.close());
    await sio.open();
    const totals = () => [...clients.map((c) => counts[c.f.key] + c.proxy.down), sio.events + sio.bytes].join();
    const drain = async () => {
      // Every client has what was sent when nothing moves for 300 ms.
      for (let last = '', t1 = performance.now(); performance.now() - t1 < 10_000; ) {
        await sleep(150);
        const now = totals();
        if (now === last) break;
        last = now;
      }
    };
    const windows = [];
    for (let r = -1; r < o.repeat; r++) {
      await drain();
      for (const c of clients) c.proxy.reset();
      sio.reset();
      const at = { ...counts };
      recording = r >= 0;
      await start();
      const t0 = performance.now();
      await sleep(r < 0 ? o.warmupMs : o.windowMs);
      await Promise.all(all.map((s) => s.ask('stop')));
      const secs = (performance.now() - t0) / 1000;
      await drain();
      recording = false;
      if (r < 0) continue;
      const w = {};
      for (const c of clients) {
        const n = counts[c.f.key] - at[c.f.key];
        w[c.f.key] = { bytes: c.proxy.down, updates: n, bytesPerUpdate: n ? c.proxy.down / n : NaN, updatesPerSec: n / secs };
      }
      w.sio = { bytes: sio.bytes, updates: sio.events, bytesPerUpdate: sio.events ? sio.bytes / sio.events : NaN, updatesPerSec: sio.events / secs };
      windows.push(w);
      progress(`  ${feed} window ${r + 1}/${o.repeat}: ` + Object.entries(w).map(([k, v]) => `${k} ${v.bytesPerUpdate.toFixed(1)} B`).join(', '));
    }
    const forms = {};
    for (const k of Object.keys(windows[0])) {
      forms[k] = { bytesPerUpdate: spread(windows.map((w) => w[k].bytesPerUpdate)), updatesPerSec: median(windows.map((w) => w[k].updatesPerSec)), updates: windows.reduce((a, w) => a + w[k].updates, 0) };
    }
    return { topics: topics.length, patterns, forms, computed: computedForms(recorded), windows };
  } finally {
    for (const f of cleanup.reverse()) await Promise.resolve(f()).catch(() => {});
  }
}

/**
 * The text forms computed exactly from the updates the protocol-2 client got:
 * compact JSON (one WebSocket text frame per update), Socket.IO's packet, the
 * Lightstreamer line (+ CR LF; its server packs many lines per frame: no header).
 */
function computedForms({ images, updates }) {
  const utf8 = new TextEncoder();
  const ls = new Map(); // prefix → { id, schema, items }
  const lsOf = (u, schemaFrom) => {
    const prefix = u.name.slice(0, u.name.indexOf('.') + 1);
    let sub = ls.get(prefix);
    if (!sub) ls.set(prefix, (sub = { id: ls.size + 1, schema: [...schemaFrom.keys()], items: new Map() }));
    for (const k of u.changes.keys()) if (!sub.schema.includes(k)) sub.schema.push(k);
    if (!sub.items.has(u.name)) sub.items.set(u.name, sub.items.size + 1);
    return { sub, item: sub.items.get(u.name) };
  };
  for (const u of images) lsOf(u, u.changes);
  const sum = { json: 0, jsonPayload: 0, sio: 0, lightstreamer: 0, fields: 0 };
  for (const u of updates) {
    const json = JSON.stringify({ topic: u.name, version: u.version, changes: Object.fromEntries(u.changes) });
    const j = utf8.encode(json).byteLength;
    const s = utf8.encode(sioPacket(json)).byteLength;
    const { sub, item } = lsOf(u, u.changes);
    sum.json += j + wsHeader(j);
    sum.jsonPayload += j;
    sum.sio += s + wsHeader(s);
    sum.lightstreamer += utf8.encode(lightstreamerLine(sub.id, item, sub.schema, u.changes)).byteLength + 2;
    sum.fields += u.changes.size;
  }
  const n = updates.length || NaN;
  return { updates: updates.length, ...Object.fromEntries(Object.entries(sum).map(([k, v]) => [k, v / n])) };
}

// ------------------------------------------------------------ part 2: CPU

function nodeCpu(o) {
  return new Promise((resolve, reject) => {
    const script = fileURLToPath(new URL('../lib/wire-cpu.mjs', import.meta.url));
    const child = spawn(process.execPath, [script, JSON.stringify({ updates: o.cpuUpdates, repeat: o.repeat * 2 })], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`wire-cpu exited with ${code}`))));
  });
}

// ------------------------------------------------------------ part 3: deflate

/**
 * Compression's cost by subscriber count. One server per compression mode,
 * each with `max(subscribers)` raw clients per protocol (all offering
 * deflate); subscriber groups: every client takes the topics of each group
 * whose size is above its index, so a group-N topic has exactly N subscribers.
 */
async function deflatePass(o, ctx) {
  const modes = o.modes.split(',');
  const Ns = (Array.isArray(o.subscribers) ? o.subscribers : [o.subscribers]).map(Number).sort((a, b) => a - b);
  const maxN = Ns[Ns.length - 1];
  const protocols = [1, 2];
  const groups = new Map();
  for (const p of protocols) for (const N of Ns) groups.set(`${p}:${N}`, topicNames(N === 1 ? o.deflateTopics * 10 : o.deflateTopics, `z${p}n${N}.T`));
  const specs = [];
  for (const p of protocols) {
    for (let i = 0; i < maxN; i++) specs.push({ protocol: p, deflate: true, topics: Ns.filter((N) => i < N).flatMap((N) => groups.get(`${p}:${N}`)) });
  }
  const member = (p, N) => specs.map((s, i) => (s.protocol === p && i - (p - 1) * maxN < N ? i : -1)).filter((i) => i >= 0);
  const env = {};
  const cleanup = [];
  const cells = [];
  const memory = {};
  try {
    for (const mode of modes) {
      // No heartbeats: their bytes and CPU would land in every cell.
      const server = await startServerProc('tickfan', { options: { ...ctx.serverOptions, compression: mode, heartbeatMs: 3_600_000 } });
      cleanup.push(() => server.stop());
      const rss0 = server.usage().rss;
      await server.ask('seed', { topics: [...groups.values()].flat(), fields: o.fields });
      const clients = new WireClients(server.port, specs);
      cleanup.push(() => clients.close());
      const c = await clients.connect();
      if (c.failed) throw new Error(`deflate/${mode}: ${c.failed} clients failed (${c.error})`);
      // Subscribed when the server counts every Subscribe (then let the snapshots go out).
      for (let t0 = performance.now(); ; ) {
        const { stats } = await server.ask('counters');
        if (stats.subscriptions >= specs.length) break;
        if (performance.now() - t0 > 30_000) throw new Error(`deflate/${mode}: only ${stats.subscriptions} of ${specs.length} subscriptions after 30 s`);
        await sleep(100);
      }
      await sleep(500);
      memory[mode] = { connections: specs.length, rssBytes: server.usage().rss, rssPerConnection: (server.usage().rss - rss0) / specs.length };
      env[mode] = { server, clients, negotiated: c.negotiated, extensions: c.extensions };
      progress(`  deflate: ${mode} server, ${c.connected} clients (${c.negotiated} negotiated permessage-deflate${c.extensions ? `: ${c.extensions}` : ''}), RSS ${(memory[mode].rssPerConnection / 1024).toFixed(1)} KiB per connection`);
    }
    for (let r = 0; r < o.repeat; r++) {
      for (const N of Ns) {
        for (const p of protocols) {
          for (const mode of rotate(modes, r)) {
            const { server, clients } = env[mode];
            const topics = groups.get(`${p}:${N}`);
            const rate = Math.max(1, Math.round(o.deliveries / N));
            await server.ask('publish', { rate, topics, fields: o.fields });
            await sleep(200);
            await clients.reset();
            // CPU from the server process itself (process.cpuUsage(): every thread, µs resolution).
            const before = await server.ask('counters');
            const t0 = performance.now();
            await sleep(o.deflateWindowMs);
            const [after, per] = await Promise.all([server.ask('counters'), clients.collect()]);
            const ms = performance.now() - t0;
            await server.ask('stop');
            let bytes = 0;
            let frames = 0;
            let compressed = 0;
            for (const i of member(p, N)) (bytes += per[i][0]), (frames += per[i][1]), (compressed += per[i][2]);
            const deliveries = after.stats.deliveries - before.stats.deliveries;
            const published = after.published - before.published;
            const cpuSec = (after.cpuUs - before.cpuUs) / 1e6;
            cells.push({
              round: r,
              mode,
              protocol: p,
              subscribers: N,
              rate,
              published,
              publishRatio: published / ((rate * ms) / 1000),
              deliveries,
              deliveriesPerSec: deliveries / (ms / 1000),
              cpuUsPerDelivery: deliveries ? (cpuSec * 1e6) / deliveries : NaN,
              serverCpuPct: (cpuSec * 1000 * 100) / ms,
              bytesPerDelivery: deliveries ? bytes / deliveries : NaN,
              updatesPerFrame: frames ? deliveries / frames : NaN,
              compressedShare: frames ? compressed / frames : 0,
            });
            await sleep(100);
          }
          const last = cells.slice(-modes.length);
          progress(`  deflate round ${r + 1}/${o.repeat}, p${p}, ${N} subscriber${N > 1 ? 's' : ''}: ` + last.map((x) => `${x.mode} ${x.cpuUsPerDelivery.toFixed(2)} µs ${x.bytesPerDelivery.toFixed(1)} B`).join(' | '));
        }
      }
    }
  } finally {
    for (const f of cleanup.reverse()) await Promise.resolve(f()).catch(() => {});
  }
  // Medians per (mode, protocol, N), and compression's extra over "off".
  const table = [];
  for (const p of protocols) {
    for (const N of Ns) {
      const row = { protocol: p, subscribers: N, rate: Math.max(1, Math.round(o.deliveries / N)), modes: {} };
      for (const mode of modes) {
        const xs = cells.filter((c) => c.mode === mode && c.protocol === p && c.subscribers === N);
        row.modes[mode] = {
          cpuUsPerDelivery: spread(xs.map((c) => c.cpuUsPerDelivery)),
          bytesPerDelivery: spread(xs.map((c) => c.bytesPerDelivery)),
          updatesPerFrame: median(xs.map((c) => c.updatesPerFrame)),
          compressedShare: median(xs.map((c) => c.compressedShare)),
          publishRatio: Math.min(...xs.map((c) => c.publishRatio)),
        };
      }
      for (const mode of modes) {
        if (mode === 'off' || !row.modes.off) continue;
        // Per round, against the same round's "off" (interleaved: same conditions), then the median.
        const extra = [];
        for (let r = 0; r < o.repeat; r++) {
          const on = cells.find((c) => c.round === r && c.mode === mode && c.protocol === p && c.subscribers === N);
          const off = cells.find((c) => c.round === r && c.mode === 'off' && c.protocol === p && c.subscribers === N);
          if (on && off) extra.push(on.cpuUsPerDelivery - off.cpuUsPerDelivery);
        }
        row.modes[mode].extraCpuUsPerDelivery = spread(extra);
      }
      table.push(row);
    }
  }
  // Once or per subscriber: the extra cost per delivery at the largest group against the smallest.
  const verdict = {};
  for (const mode of modes.filter((m) => m !== 'off')) {
    for (const p of protocols) {
      const lo = table.find((t) => t.protocol === p && t.subscribers === Ns[0])?.modes[mode]?.extraCpuUsPerDelivery.median;
      const hi = table.find((t) => t.protocol === p && t.subscribers === maxN)?.modes[mode]?.extraCpuUsPerDelivery.median;
      verdict[`${mode}/p${p}`] = { smallUs: lo, largeUs: hi, ratio: hi / lo, perSubscriber: hi / lo > 0.25 };
    }
  }
  const negotiation = Object.fromEntries(Object.entries(env).map(([m, e]) => [m, { negotiated: e.negotiated, extensions: e.extensions }]));
  return { subscribers: Ns, cells, table, verdict, memory, negotiation };
}

// ------------------------------------------------------------ run

export async function run(o, ctx) {
  const parts = String(o.parts).split(',');
  const out = { partSeconds: {} };
  const timed = async (name, f) => {
    const t0 = performance.now();
    await f();
    out.partSeconds[name] = Math.round((performance.now() - t0) / 100) / 10;
    progress(`  (${name}: ${out.partSeconds[name]} s)`);
  };
  if (parts.includes('cpu')) {
    await timed('cpu', async () => {
      progress(`wire: CPU — encode and decode per update, ${o.cpuUpdates} updates × ${o.repeat * 2} rounds in Node${o.browser ? ' and in headless Chromium' : ''}`);
      await waitQuiet(10_000);
      out.cpu = { node: await nodeCpu(o) };
      if (o.browser) {
        out.cpu.chromium = await browserCpu({ updates: o.cpuUpdates, repeat: o.repeat * 2 }).catch((err) => ({ skipped: String(err?.message ?? err) }));
        if (out.cpu.chromium.skipped) progress(`  Chromium skipped: ${out.cpu.chromium.skipped}`);
      }
      const n = out.cpu.node.demo.nsPerUpdate;
      progress(`  demo feed, Node: encode p1 ${fmtNs(n.encode.p1.median)} p2 ${fmtNs(n.encode.p2.median)} JSON ${fmtNs(n.encode.json.median)}; decode p1 ${fmtNs(n.decode.p1.median)} p2 ${fmtNs(n.decode.p2.median)} JSON.parse ${fmtNs(n.decode.json.median)}`);
    });
  }
  if (parts.includes('bytes')) {
    out.bytes = {};
    for (const feed of ['demo', 'fanout']) {
      await timed(`bytes ${feed}`, async () => {
        progress(`wire: bytes per delivered update — ${feed === 'demo' ? `demo feed (${o.symbols} symbols, ${o.feedRate} updates/s)` : `fan-out payload (${o.topics} topics, ${o.fields} fields + timestamp, ${o.fanoutRate} updates/s)`}, ${o.repeat} windows of ${o.windowMs / 1000} s`);
        await waitQuiet(10_000);
        out.bytes[feed] = await bytesPass(feed, o, ctx);
      });
    }
  }
  if (parts.includes('deflate')) {
    await timed('deflate', async () => {
      progress(`wire: deflate on the fan-out path — ${o.modes} × protocol 1, 2 × ${[].concat(o.subscribers).join(', ')} subscribers per frame, ${o.deliveries} deliveries/s, ${o.repeat} rounds`);
      await waitQuiet(10_000);
      out.deflate = await deflatePass(o, ctx);
    });
  }
  out.targets = targets(out);
  return out;
}

function targets(out) {
  const t = [];
  const d = out.bytes?.demo;
  if (d) {
    const ratio = d.forms.p2.bytesPerUpdate.median / d.computed.json;
    t.push({ name: 'protocol 2 bytes per delivered update ≤ 0.6× compact JSON (demo feed, default settings)', target: 0.6, measured: ratio, unit: '×', met: ratio <= 0.6 });
  }
  return t;
}

// ------------------------------------------------------------ rendering

function fmtNs(ns) {
  if (!Number.isFinite(ns)) return '–';
  return ns >= 1000 ? `${(ns / 1000).toFixed(2)} µs` : `${Math.round(ns)} ns`;
}

function fmtB(b) {
  return Number.isFinite(b) ? b.toFixed(1) : '–';
}

function fmtSpread(s, f = fmtB) {
  if (!s || !Number.isFinite(s.median)) return '–';
  return s.min === s.max ? f(s.median) : `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
}

const ROWS = [
  { key: 'p1', label: 'tickfan protocol 1', short: 'tickfan protocol 1', how: 'measured' },
  { key: 'p2', label: 'tickfan protocol 2 (SDK default)', short: 'tickfan protocol 2', how: 'measured' },
  { key: 'p2+shared', label: 'protocol 2 + deflate, shared compressor', short: 'p2 + deflate (shared)', how: 'measured' },
  { key: 'p2+dedicated', label: 'protocol 2 + deflate, dedicated compressor', short: 'p2 + deflate (dedicated)', how: 'measured' },
  { key: 'p1+shared', label: 'protocol 1 + deflate, shared compressor', short: 'p1 + deflate (shared)', how: 'measured' },
  { key: 'p1+dedicated', label: 'protocol 1 + deflate, dedicated compressor', short: 'p1 + deflate (dedicated)', how: 'measured' },
  { key: 'sio', label: 'Socket.IO `42["update",{…}]`', short: 'Socket.IO', how: 'measured (socket.io server)' },
  { key: 'c:sio', label: 'Socket.IO `42["update",{…}]`', short: 'Socket.IO (computed)', how: 'computed' },
  { key: 'c:json', label: 'compact JSON `{"topic","version","changes"}`', short: 'compact JSON', how: 'computed' },
  { key: 'c:lightstreamer', label: 'Lightstreamer TLCP `U,<sub>,<item>,v1|v2||…`', short: 'Lightstreamer line', how: 'computed' },
];

function rowValue(feed, key) {
  if (!feed) return NaN;
  if (key.startsWith('c:')) return feed.computed[key.slice(2)];
  return feed.forms[key]?.bytesPerUpdate.median;
}

export function render(doc) {
  const p = doc.params;
  const md = [];
  const b = doc.bytes;
  if (b) {
    md.push('## Bytes per delivered update', '');
    md.push(
      `WebSocket payload + frame header bytes per delivered update, as received. tickfan: the SDK (\`connect(url, { protocol })\`, Node's \`ws\`, which offers permessage-deflate; ` +
        `the server's \`compression\` setting decides) behind a counting TCP proxy; Socket.IO: a socket.io server (default \`ws\` engine) emitting \`update\` with the compact JSON, read by a raw client. ` +
        `Computed rows: the updates the protocol-2 client received, written in that form (JSON and Socket.IO: one WebSocket frame each; Lightstreamer: the line + CR LF, no frame header, as its server packs many lines per frame). ` +
        `Demo feed: \`tickfan serve --demo\`'s simulator, ${p.symbols} symbols, ${p.feedRate} updates/s, \`px.*\` and \`fx.*\` subscribed (${fmtB(b.demo?.computed.fields)} changed fields per update). ` +
        `Fan-out payload: the fanout scenario's update (integer ns timestamp + ${p.fields} prices, all changing), ${p.topics} topics, ${p.fanoutRate} updates/s. ${p.repeat} windows of ${p.windowMs / 1000} s; median (min–max).`,
      '',
    );
    const json = { demo: b.demo?.computed.json, fanout: b.fanout?.computed.json };
    md.push(
      mdTable(
        ['form', 'demo feed B/update', '× JSON', 'fan-out payload B/update', '× JSON', 'how'],
        ROWS.map((r) => {
          const dv = rowValue(b.demo, r.key);
          const fv = rowValue(b.fanout, r.key);
          const shown = (feed, v) => (r.key.startsWith('c:') ? fmtB(v) : fmtSpread(feed?.forms[r.key]?.bytesPerUpdate));
          return [r.label, shown(b.demo, dv), fmtRatio(dv / json.demo), shown(b.fanout, fv), fmtRatio(fv / json.fanout), r.how];
        }),
      ),
      '',
    );
    if (b.demo) md.push(`Compact JSON without its frame header: ${fmtB(b.demo.computed.jsonPayload)} B (demo), ${fmtB(b.fanout?.computed.jsonPayload)} B (fan-out payload).`, '');
  }
  const c = doc.cpu;
  if (c) {
    md.push('## CPU per update', '');
    md.push(
      `Encode: what the server does once per update per channel — \`Encoder.delta\` (protocol 1), \`Encoder.delta2\` (protocol 2), \`JSON.stringify\` of \`{topic, version, changes}\` (the object made from the change Map included). ` +
        `Decode: the SDK's path from a frame to a delta message — \`ServerFrameReader\` (protocol 1: verified FlatBuffers to a message), and for protocol 2 the same plus \`Protocol2Reader\` (topic id and field ids to names) — against \`JSON.parse\` of the JSON text. ` +
        `${p.cpuUpdates.toLocaleString('en-US')} updates per run, ${p.repeat * 2} runs interleaved after a warm-up; ns per update, median (min–max). Node: a process of its own; Chromium: ${c.chromium?.browser ?? 'not run'}${c.chromium?.skipped ? ` (${c.chromium.skipped})` : ''}.`,
      '',
    );
    const rows = [];
    for (const feed of ['demo', 'fanout']) {
      const n = c.node[feed].nsPerUpdate;
      const ch = c.chromium?.[feed]?.nsPerUpdate;
      const s = (x) => fmtSpread(x, fmtNs);
      rows.push([`${feed === 'demo' ? 'demo feed' : 'fan-out payload'}: encode (server, Node)`, s(n.encode.p1), s(n.encode.p2), s(n.encode.json), fmtRatio(n.encode.p2.median / n.encode.json.median)]);
      rows.push([`${feed === 'demo' ? 'demo feed' : 'fan-out payload'}: decode (SDK, Node)`, s(n.decode.p1), s(n.decode.p2), s(n.decode.json), fmtRatio(n.decode.p2.median / n.decode.json.median)]);
      if (ch) rows.push([`${feed === 'demo' ? 'demo feed' : 'fan-out payload'}: decode (SDK, Chromium)`, s(ch.decode.p1), s(ch.decode.p2), s(ch.decode.json), fmtRatio(ch.decode.p2.median / ch.decode.json.median)]);
    }
    md.push(mdTable(['per update', 'protocol 1', 'protocol 2', 'JSON', 'protocol 2 ÷ JSON'], rows), '');
  }
  const d = doc.deflate;
  if (d) {
    const modes = Object.keys(d.table[0]?.modes ?? {});
    md.push('## permessage-deflate on the fan-out path', '');
    md.push(
      `Server CPU (user + system of the server process, \`process.cpuUsage()\`) and bytes per delivered update while the fan-out payload (${p.fields} prices + timestamp) is published to topics with 1, 100 or 1,000 subscribers each ` +
        `(native \`app.publish\`, one update per frame), ${fmtSi(p.deliveries)} deliveries/s asked for in every cell, ${p.deflateWindowMs / 1000} s per cell, ${p.repeat} rounds interleaved across the three servers. ` +
        `Clients: raw sockets offering \`permessage-deflate\` (negotiated: ${Object.entries(d.negotiation).map(([m, n]) => `${m} ${n.negotiated ? `\`${n.extensions}\`` : 'none'}`).join('; ')}). ` +
        `"extra" = the mode's CPU per delivery minus "off"'s in the same round. If a published frame were compressed once, the extra per delivery would fall about N-fold with N subscribers.`,
      '',
    );
    const rows = d.table.map((t) => [
      `p${t.protocol}`,
      fmtSi(t.subscribers),
      fmtSi(t.rate),
      ...modes.map((m) => fmtSpread(t.modes[m].cpuUsPerDelivery, (x) => x.toFixed(2))),
      ...modes.filter((m) => m !== 'off').map((m) => fmtSpread(t.modes[m].extraCpuUsPerDelivery, (x) => x.toFixed(2))),
      ...modes.map((m) => fmtB(t.modes[m].bytesPerDelivery.median)),
    ]);
    md.push(
      mdTable(
        ['protocol', 'subscribers / frame', 'updates/s', ...modes.map((m) => `µs/delivery ${m}`), ...modes.filter((m) => m !== 'off').map((m) => `extra µs ${m}`), ...modes.map((m) => `B/delivery ${m}`)],
        rows,
      ),
      '',
    );
    md.push(
      mdTable(
        ['mode', 'protocol', `extra µs/delivery at ${fmtSi(d.subscribers[0])} subscriber`, `at ${fmtSi(d.subscribers.at(-1))}`, 'ratio', 'compressed'],
        Object.entries(d.verdict).map(([k, v]) => {
          const [m, pr] = k.split('/');
          return [m, pr, v.smallUs?.toFixed(2), v.largeUs?.toFixed(2), Number.isFinite(v.ratio) ? v.ratio.toFixed(2) : '–', v.perSubscriber ? 'once per subscriber' : 'once per publish'];
        }),
      ),
      '',
    );
    md.push(`Server RSS per connection after subscribing: ${Object.entries(d.memory).map(([m, x]) => `${m} ${(x.rssPerConnection / 1024).toFixed(1)} KiB`).join(', ')}.`, '');
  }
  md.push(targetsTable(doc.targets), '');
  if (doc.analysis) md.push(doc.analysis, '');

  // Charts.
  const svgs = [];
  if (b?.demo) {
    const json = b.demo.computed.json;
    svgs.push(
      barChart({
        title: 'Bytes on the wire per delivered update — demo feed',
        subtitle: `${p.symbols} symbols, ${fmtB(b.demo.computed.fields)} changed fields per update; WebSocket payload + frame header; dashed: 0.6× compact JSON`,
        fmt: (v) => `${Math.round(v)}`,
        target: { value: 0.6 * json, label: '0.6× JSON' },
        rows: ROWS.filter((r) => r.key !== 'c:sio').map((r) => {
          const v = rowValue(b.demo, r.key);
          return { label: r.short, value: v, color: r.key.startsWith('p2') ? COLORS.tickfan : r.key.startsWith('p1') ? COLORS.d : r.key === 'sio' ? COLORS.sio : COLORS.b, text: `${fmtB(v)} B  (${fmtRatio(v / json)} JSON)` };
        }),
      }),
    );
  }
  if (d) {
    const modes = Object.keys(d.table[0]?.modes ?? {}).filter((m) => m !== 'off');
    const series = [];
    const colors = { 'shared/1': COLORS.b, 'shared/2': COLORS.sio, 'dedicated/1': COLORS.c, 'dedicated/2': COLORS.tickfan };
    for (const m of modes) {
      for (const pr of [1, 2]) {
        series.push({
          name: `${m}, protocol ${pr}`,
          color: colors[`${m}/${pr}`],
          dashed: pr === 1,
          points: d.table.filter((t) => t.protocol === pr).map((t) => [t.subscribers, Math.max(0.01, t.modes[m].extraCpuUsPerDelivery.median)]),
        });
      }
    }
    // What "compressed once per publish" would look like: the 1-subscriber cost shared by N.
    const once = d.table.filter((t) => t.protocol === 2).map((t) => [t.subscribers, Math.max(0.01, (d.table.find((x) => x.protocol === 2 && x.subscribers === d.subscribers[0])?.modes.shared?.extraCpuUsPerDelivery.median ?? NaN) / t.subscribers)]);
    if (modes.includes('shared')) series.push({ name: 'if compressed once per publish (shared, p2)', color: COLORS.d, dashed: true, points: once });
    svgs.push(
      lineChart({
        title: 'Compression CPU per delivered update by subscribers per frame',
        subtitle: 'server µs per delivery over compression "off"; flat = every subscriber\'s copy is compressed',
        xLog: true,
        yLog: true,
        xLabel: 'subscribers of each published frame',
        yLabel: 'extra µs per delivery',
        xFmt: fmtSi,
        yFmt: (v) => `${v >= 1 ? v.toFixed(0) : v.toPrecision(1)} µs`,
        // Headroom above the lines for the legend (an invisible reference line).
        refs: [{ y: 30 * Math.max(...series.flatMap((x) => x.points.map((pt) => pt[1])).filter(Number.isFinite)), label: '', color: 'none' }],
        series,
      }),
    );
  }
  let headline = 'no bytes measured';
  if (b?.demo) {
    const j = b.demo.computed.json;
    const p2 = b.demo.forms.p2.bytesPerUpdate.median;
    headline = `demo feed: protocol 2 ${fmtB(p2)} B/update = ${fmtRatio(p2 / j)} compact JSON (protocol 1 ${fmtB(b.demo.forms.p1.bytesPerUpdate.median)} B, + dedicated deflate ${fmtB(b.demo.forms['p2+dedicated']?.bytesPerUpdate.median)} B, Lightstreamer ${fmtB(b.demo.computed.lightstreamer)} B)`;
  }
  if (d) {
    const v = d.verdict['shared/p2'] ?? Object.values(d.verdict)[0];
    if (v) headline += `; deflate compressed ${v.perSubscriber ? 'once per subscriber' : 'once per publish'} (+${v.largeUs?.toFixed(2)} µs per delivery at ${fmtSi(d.subscribers.at(-1))} subscribers)`;
  }
  return { md: md.join('\n'), svg: stack(svgs.length ? svgs : ['<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10" width="10" height="10"></svg>']), headline };
}
