// book — one keyed market-by-price book (2,000 levels a side, the demo's
// BookSim) churned at ≥ 20k level changes/s by the server's in-process
// publisher (server.publishBatch, one batch per event), to 1,000 subscribers of
// a depth-10 view and 100 of the full book, over loopback. Measures deliveries/s
// and bytes per delivered update per class, rows per delivered update (an SDK
// observer per class), server CPU and encodes (from /metrics); and computes,
// from the same seeded changes, bytes per row change and per update for
// protocol 2, a Lightstreamer COMMAND line, a depth-update JSON message and
// today's flat `b.<price>` form (lib/book-forms.mjs).
//
// Processes: the server (this file, TICKFAN_BOOK_ROLE=server) and the
// subscribers (TICKFAN_BOOK_ROLE=subs), so the server's CPU is read apart.

import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { fmtInt, fmtPct, fmtSi, progress, sleep } from '../lib/common.mjs';
import { barChart, stack } from '../lib/chart.mjs';
import { mdTable } from '../lib/report.mjs';
import { procUsage } from '../lib/procs.mjs';

export const meta = {
  name: 'book',
  title: 'Keyed order book: depth views',
  question: 'One 2,000-level book at ≥ 20k level changes/s to 1,000 depth-10 and 100 full-depth subscribers: deliveries/s, bytes per row change and per update against Lightstreamer COMMAND, depth-update JSON and the flat form, encodes, server CPU?',
  defaults: { levels: 2000, changes: 20_000, depthSubscribers: 1000, fullSubscribers: 100, depth: 10, maxRate: 0, warmupMs: 1500, windowMs: 4000, formEvents: 20_000, seed: 19 },
  quick: { changes: 5000, depthSubscribers: 100, fullSubscribers: 10, warmupMs: 500, windowMs: 1500, formEvents: 3000 },
  options: {
    levels: 'price levels a side',
    changes: 'level (row) changes per second published',
    depthSubscribers: 'subscribers of the depth view (bids and asks at --depth)',
    fullSubscribers: 'subscribers of the full book (every level)',
    depth: 'depth of the depth view',
    maxRate: 'the subscribers\' maxRate (0: every version)',
    warmupMs: 'publishing before the measured window',
    windowMs: 'measured window',
    formEvents: 'events of the computed forms (bytes per row change and per update)',
    seed: 'seed of the book',
  },
};

const TOPIC = 'book.BENCH';
const ROLE = process.env.TICKFAN_BOOK_ROLE;
const wsHeader = (n) => (n < 126 ? 2 : n < 65536 ? 4 : 10);
if (ROLE === 'server') await serverRole();
else if (ROLE === 'subs') await subsRole();

// ------------------------------------------------------------ server (forked)

async function serverRole() {
  const o = JSON.parse(process.env.TICKFAN_BOOK_OPTS);
  const { startServer } = await import('../../dist/index.js');
  const { benchBook } = await import('../lib/book-forms.mjs');
  // Every subscriber comes from 127.0.0.1: lift the per-IP cap (default 1,000) as bench/servers/tickfan.mjs does.
  const server = await startServer({ port: 0, host: '127.0.0.1', workers: 0, log: () => {}, maxConnectionsPerIp: 10_000_000, ...o.serverOptions });
  const book = benchBook(o.levels, o.seed);
  server.publishBatch(TOPIC, book.image());
  let timer = null;
  let published = { events: 0, rows: 0 };
  process.on('message', async (m) => {
    if (m.cmd === 'start') {
      // Every 2 ms, the events due: row changes follow the rate, one publishBatch per event.
      const t0 = performance.now();
      const rows0 = book.rowChanges;
      timer = setInterval(() => {
        const due = ((performance.now() - t0) * m.changes) / 1000;
        while (book.rowChanges - rows0 < due) {
          server.publishBatch(TOPIC, book.event());
          published.events++;
        }
        published.rows = book.rowChanges - rows0;
      }, 2);
      process.send({ id: m.id, result: true });
    } else if (m.cmd === 'count') process.send({ id: m.id, result: { ...published, at: performance.timeOrigin + performance.now() } });
    else if (m.cmd === 'stop') {
      clearInterval(timer);
      process.send({ id: m.id, result: { ...published } });
    } else if (m.cmd === 'exit') {
      await server.close();
      process.exit(0);
    }
  });
  process.send({ type: 'ready', port: server.port });
}

// ------------------------------------------------------------ subscribers (forked)

async function subsRole() {
  const o = JSON.parse(process.env.TICKFAN_BOOK_OPTS);
  const { default: WebSocket } = await import('ws');
  const proto = await import('../../dist/protocol/index.js');
  const { connect } = await import('../../dist/client/index.js');
  const enc = new proto.Encoder();
  const classes = { depth: { n: o.depthSubscribers, depth: o.depth }, full: { n: o.fullSubscribers, depth: 0 } };
  const counts = Object.fromEntries(Object.keys(classes).map((c) => [c, { deliveries: 0, bytes: 0, frames: 0, rows: 0, updates: 0, opened: 0, closed: 0 }]));
  const sockets = [];
  const clients = [];
  const tables = (depth) => [{ table: 'bids', depth, fields: [] }, { table: 'asks', depth, fields: [] }];
  // One SDK subscriber per view, before the crowd connects: rows per delivered update, as an application sees them.
  for (const [name, c] of Object.entries(classes)) {
    const k = counts[name];
    const client = connect(`ws://127.0.0.1:${o.port}/ws`, { transport: 'ws' });
    clients.push(client);
    client.subscribe(TOPIC, { maxRate: o.maxRate, tables: { bids: { depth: c.depth }, asks: { depth: c.depth } } }).on('update', (u) => {
      if (u.snapshot) return;
      k.updates++;
      k.rows += u.rows?.length ?? 0;
    });
  }
  for (const [name, c] of Object.entries(classes)) {
    const k = counts[name];
    for (let i = 0; i < c.n; i++) {
      const ws = new WebSocket(`ws://127.0.0.1:${o.port}/ws`);
      sockets.push(ws);
      ws.on('open', () => {
        k.opened++;
        ws.send(proto.clientFrame([enc.hello(2, 'bench-book', ''), enc.subscribe(1, [TOPIC], o.maxRate, [], [], false, tables(c.depth))]));
      });
      ws.on('close', () => k.closed++);
      ws.on('error', () => {});
      const reader = new proto.ServerFrameReader();
      ws.on('message', (data) => {
        k.frames++;
        k.bytes += data.length + wsHeader(data.length);
        // Protocol-1 framing until the Welcome that announces protocol 2; counted raw after it.
        if (reader.protocol === 1) return void reader.read(data);
        // Count keyed snapshots (kind 3) and deltas (kind 4, or 5: a delta's body alone): one per delivered book update.
        const { next } = proto.readVarint(data, 0);
        proto.splitMessages2(data, next, (msg) => {
          if (msg[0] === 3 || msg[0] === 4 || msg[0] === 5) k.deliveries++;
        });
      });
    }
  }
  process.on('message', (m) => {
    if (m.cmd === 'count') process.send({ id: m.id, result: { ...JSON.parse(JSON.stringify(counts)), at: performance.timeOrigin + performance.now() } });
    else if (m.cmd === 'exit') {
      for (const ws of sockets) ws.terminate();
      for (const c of clients) c.close();
      process.exit(0);
    }
  });
  process.send({ type: 'ready' });
}

// ------------------------------------------------------------ driver (the bench process)

function spawnRole(role, opts) {
  const child = fork(fileURLToPath(import.meta.url), [], { env: { ...process.env, TICKFAN_BOOK_ROLE: role, TICKFAN_BOOK_OPTS: JSON.stringify(opts) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--max-old-space-size=4096'] });
  const pending = new Map();
  let id = 0;
  const ready = new Promise((resolve, reject) => {
    child.on('message', (m) => {
      if (m?.type === 'ready') return resolve(m);
      pending.get(m?.id)?.(m.result);
      pending.delete(m?.id);
    });
    child.once('exit', (code) => reject(new Error(`${role} exited (${code})`)));
    setTimeout(() => reject(new Error(`${role} did not start within 20 s`)), 20_000).unref();
  });
  child.on('error', () => {}); // a send to a child that is gone: the call below rejects instead
  const call = (cmd, args = {}) =>
    new Promise((resolve, reject) => {
      if (!child.connected) return reject(new Error(`${role} is gone (exit ${child.exitCode ?? child.signalCode})`));
      pending.set(++id, resolve);
      child.send({ cmd, id, ...args });
    });
  return { child, ready, call, kill: () => child.kill('SIGKILL') };
}

async function metrics(port) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const get = (name) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { encodes: get('tickfan_encodes_total'), deliveries: get('tickfan_deliveries_total'), frames: get('tickfan_frames_total'), bytesOut: get('tickfan_bytes_out_total'), publishes: get('tickfan_publishes_total'), conflated: get('tickfan_conflated_updates_total') };
}

export async function run(o, ctx) {
  const { bookForms } = await import('../lib/book-forms.mjs');
  progress(`  computing the forms over ${fmtInt(o.formEvents)} events of a ${fmtInt(o.levels)}-level book …`);
  const forms = bookForms({ levels: o.levels, events: o.formEvents, seed: o.seed });
  const server = spawnRole('server', { levels: o.levels, seed: o.seed, serverOptions: ctx?.serverOptions ?? {} });
  let subs;
  try {
    const { port } = await server.ready;
    subs = spawnRole('subs', { port, depthSubscribers: o.depthSubscribers, fullSubscribers: o.fullSubscribers, depth: o.depth, maxRate: o.maxRate });
    await subs.ready;
    // Every subscriber connected and holding its snapshot (or a deadline).
    const want = { depth: o.depthSubscribers, full: o.fullSubscribers };
    for (const t0 = Date.now(); Date.now() - t0 < 30_000; await sleep(200)) {
      const c = await subs.call('count');
      if (c.depth.deliveries >= want.depth && c.full.deliveries >= want.full) break;
    }
    await server.call('start', { changes: o.changes });
    await sleep(o.warmupMs);
    // Each process stamps its own counts (a busy one answers late): rates use each one's own window.
    const snap = async () => {
      const [c, p, u, s] = await Promise.all([subs.call('count'), server.call('count'), procUsage(server.child.pid), procUsage(subs.child.pid)]);
      const t = performance.timeOrigin + performance.now();
      return { c, p, m: await metrics(port), mt: performance.timeOrigin + performance.now(), u, s, t };
    };
    const a = await snap();
    await sleep(o.windowMs);
    const b = await snap();
    const [c0, p0, m0, u0, s0, c1, p1, m1, u1, s1] = [a.c, a.p, a.m, a.u, a.s, b.c, b.p, b.m, b.u, b.s];
    const sec = (b.t - a.t) / 1000;
    const subSec = (c1.at - c0.at) / 1000;
    const pubSec = (p1.at - p0.at) / 1000;
    const mSec = (b.mt - a.mt) / 1000;
    await server.call('stop');
    const cls = (name, n) => {
      const d = (k) => c1[name][k] - c0[name][k];
      return {
        subscribers: n,
        connected: c1[name].opened - c1[name].closed,
        deliveriesPerSec: d('deliveries') / subSec,
        deliveriesPerSubPerSec: n ? d('deliveries') / subSec / n : 0,
        bytesPerDelivery: d('deliveries') ? d('bytes') / d('deliveries') : null,
        rowsPerDelivery: d('updates') ? d('rows') / d('updates') : null,
        mbitPerSec: (d('bytes') * 8) / subSec / 1e6,
      };
    };
    const dm = (k) => m1[k] - m0[k];
    const events = p1.events - p0.events;
    return {
      published: { eventsPerSec: events / pubSec, rowChangesPerSec: (p1.rows - p0.rows) / pubSec, rowChangesPerEvent: events ? (p1.rows - p0.rows) / events : null },
      classes: { depth: cls('depth', o.depthSubscribers), full: cls('full', o.fullSubscribers) },
      server: {
        cpuPct: ((u1.cpuSec - u0.cpuSec) / sec) * 100,
        rssMiB: u1.rss / 2 ** 20,
        encodesPerSec: dm('encodes') / mSec,
        encodesPerPublish: dm('publishes') ? dm('encodes') / dm('publishes') : null,
        framesPerSec: dm('frames') / mSec,
        deliveriesPerSec: dm('deliveries') / mSec,
        bytesOutPerSec: dm('bytesOut') / mSec,
        conflatedPerSec: dm('conflated') / mSec,
      },
      subscribersCpuPct: ((s1.cpuSec - s0.cpuSec) / sec) * 100,
      forms: forms.forms,
      formRowChangesPerEvent: forms.rowChangesPerEvent,
      missing: ['encodes per flush: /metrics counts encodes and frames, not flushes; encodes per publish is shown instead'],
    };
  } finally {
    await Promise.race([server.call('exit').catch(() => {}), sleep(3000)]);
    server.kill();
    subs?.call('exit').catch(() => {});
    await sleep(200);
    subs?.kill();
  }
}

// ------------------------------------------------------------ report

const B = (v) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : `${v.toFixed(1)} B`);

export function render(doc) {
  const p = doc.params;
  const f = doc.forms;
  const md = [];
  md.push(
    `One book \`${TOPIC}\` of ${fmtInt(p.levels)} levels a side (BookSim, seed ${p.seed}), published in-process with \`server.publishBatch\` at ${fmtInt(p.changes)} level changes/s ` +
      `(measured ${fmtInt(Math.round(doc.published.rowChangesPerSec))}/s in ${fmtInt(Math.round(doc.published.eventsPerSec))} batches/s, ${doc.published.rowChangesPerEvent?.toFixed(2)} changes a batch); ` +
      `${fmtInt(p.depthSubscribers)} subscribers of a depth-${p.depth} view and ${fmtInt(p.fullSubscribers)} of the full book, protocol 2, maxRate ${p.maxRate}, loopback; window ${p.windowMs} ms after ${p.warmupMs} ms.`,
    '',
  );
  md.push(
    mdTable(
      ['view', 'subscribers', 'deliveries/s', 'per subscriber/s', 'bytes per delivered update', 'rows per delivered update', 'Mbit/s'],
      Object.entries(doc.classes).map(([k, c]) => [k === 'depth' ? `depth ${p.depth}` : 'full book', fmtInt(c.subscribers), fmtSi(c.deliveriesPerSec), c.deliveriesPerSubPerSec.toFixed(0), B(c.bytesPerDelivery), c.rowsPerDelivery?.toFixed(2) ?? '–', c.mbitPerSec.toFixed(1)]),
    ),
    '',
  );
  const s = doc.server;
  md.push(
    mdTable(
      ['server CPU', 'RSS', 'encodes/s', 'encodes per publish', 'frames/s', 'deliveries/s (server)', 'subscribers\' CPU'],
      [[fmtPct(s.cpuPct), `${s.rssMiB.toFixed(0)} MiB`, fmtSi(s.encodesPerSec), s.encodesPerPublish?.toFixed(2) ?? '–', fmtSi(s.framesPerSec), fmtSi(s.deliveriesPerSec), fmtPct(doc.subscribersCpuPct)]],
    ),
    '',
  );
  md.push(
    `Computed from the same seeded changes (${fmtInt(p.formEvents)} events, ${doc.formRowChangesPerEvent.toFixed(2)} row changes each) as a full-book subscriber receives them; ` +
      'per row change = the message less the same message without its row changes; Lightstreamer lines with CR LF and no WebSocket header (as in `wire`), the rest with theirs.',
    '',
    mdTable(
      ['form', 'bytes per row change', 'bytes per book update', '÷ Lightstreamer COMMAND'],
      [
        ['tickfan protocol 2 (KeyedDelta2)', B(f.protocol2.perRowChange), B(f.protocol2.perUpdate), (f.protocol2.perUpdate / f.lightstreamerCommand.perUpdate).toFixed(2)],
        ['Lightstreamer COMMAND (TLCP lines)', B(f.lightstreamerCommand.perRowChange), B(f.lightstreamerCommand.perUpdate), '1.00'],
        ['depth-update JSON (Binance style)', B(f.depthJson.perRowChange), B(f.depthJson.perUpdate), (f.depthJson.perUpdate / f.lightstreamerCommand.perUpdate).toFixed(2)],
        ['flat fields b.<price> (protocol 2 Delta2)', B(f.flatFields.perRowChange), B(f.flatFields.perUpdate), (f.flatFields.perUpdate / f.lightstreamerCommand.perUpdate).toFixed(2)],
      ],
      ['l', 'r', 'r', 'r'],
    ),
    '',
  );
  if (doc.missing?.length) md.push(`Not measured: ${doc.missing.join('; ')}.`, '');
  const d = doc.classes.depth;
  const svg = stack([
    barChart({ title: 'Deliveries per second', fmt: fmtSi, rows: Object.entries(doc.classes).map(([k, c]) => ({ label: k === 'depth' ? `depth ${p.depth}` : 'full book', value: c.deliveriesPerSec, text: `${fmtSi(c.deliveriesPerSec)}/s` })) }),
    barChart({ title: 'Bytes per book update (computed, same changes)', fmt: (v) => `${v.toFixed(0)} B`, rows: Object.entries(f).map(([k, v]) => ({ label: k, value: v.perUpdate })) }),
  ]);
  const headline = `${fmtSi(d.deliveriesPerSec + doc.classes.full.deliveriesPerSec)} deliveries/s at ${fmtInt(Math.round(doc.published.rowChangesPerSec))} level changes/s; protocol 2 ${B(f.protocol2.perRowChange)} per row change, ${(f.protocol2.perUpdate / f.lightstreamerCommand.perUpdate).toFixed(2)}× a Lightstreamer COMMAND update; server CPU ${fmtPct(s.cpuPct)}`;
  return { md: md.join('\n'), svg, headline };
}
