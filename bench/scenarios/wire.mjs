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
// Parts 1 and 2 are here; part 3 is ../lib/wire-deflate.mjs, the report
// (render) ../lib/wire-report.mjs.

import { spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { progress, sleep, topicNames, waitQuiet } from '../lib/common.mjs';
import { startServerProc } from '../lib/procs.mjs';
import { CountingProxy } from '../lib/count-proxy.mjs';
import { browserCpu } from '../lib/wire-browser.mjs';
import { lightstreamerLine, sioPacket, wsHeader } from '../lib/wire-forms.mjs';
import { eachServerFrame, upgradeRequest, wsFrame } from '../lib/wire.mjs';
import { deflatePass } from '../lib/wire-deflate.mjs';
import { fmtNs } from '../lib/wire-report.mjs';
import { median, spread } from '../lib/wire-stats.mjs';

export { render } from '../lib/wire-report.mjs';

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

