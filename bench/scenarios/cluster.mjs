// cluster — what a hop through NATS costs: the same subscribers and updates
// served by one tickfan node, and by an origin + two edges on one nats-server
// (every process on this machine). Reports latency publish → receive (added
// by the hop), bytes on NATS per update, and each process's CPU.
// Runs as `tickfan bench cluster` or alone: `node bench/scenarios/cluster.mjs [--quick]`.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as tcp } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import hdr from 'hdr-histogram-js';
import { fmtPct, fmtSi, fmtUs, layout, machineInfo, progress, topicNames } from '../lib/common.mjs';
import { HIST, LoadGen, summarize } from '../lib/loadgen.mjs';
import { COLORS, percentileChart, stack } from '../lib/chart.mjs';
import { repeatNote, withSpread } from '../lib/repeat.mjs';
import { mdTable, writeScenario } from '../lib/report.mjs';
import { percentileCurve } from '../lib/measure.mjs';
import { procUsage, startServerProc } from '../lib/procs.mjs';

export const meta = {
  name: 'cluster',
  title: 'Cluster on NATS: the cost of a hop',
  question: 'What does serving clients from two edges behind an origin on NATS cost, against one node doing the same work: latency added by the hop, bytes on NATS per update, CPU per process?',
  defaults: { subscribers: 400, topics: 100, topicsPerSub: 10, rates: [1000, 5000], fields: 4, warmupMs: 1500, windowMs: 4000, workers: 1 },
  quick: { subscribers: 100, rates: [1000], windowMs: 2000, warmupMs: 1000 },
  options: {
    subscribers: 'WebSocket clients (split evenly over the two edges in the cluster layout)',
    topics: 'topics published round-robin',
    topicsPerSub: 'topics each client subscribes to',
    rates: 'update rates (updates/s published at the origin)',
    fields: 'payload fields per update besides the timestamp',
    windowMs: 'measurement window per rate',
  },
};

const NATS = ['/usr/sbin/nats-server', '/usr/bin/nats-server'].find((p) => existsSync(p)) ?? 'nats-server';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

async function startNats() {
  const [port, http] = [await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), 'tickfan-bench-nats-'));
  const p = spawn(NATS, ['-js', '-a', '127.0.0.1', '-p', String(port), '-m', String(http), '-sd', dir], { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    const up = await new Promise((r) => tcp(port, '127.0.0.1').once('connect', function () { this.destroy(); r(true); }).once('error', () => r(false)));
    if (up) break;
    await sleep(25);
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    pid: p.pid,
    varz: async () => (await fetch(`http://127.0.0.1:${http}/varz`)).json(),
    stop: () => {
      p.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** CPU % (100 = one core) of each pid between mark() and since(). */
function cpuMeter(pids) {
  let at = performance.now();
  let before = pids.map((p) => procUsage(p).cpuSec);
  return {
    mark() {
      at = performance.now();
      before = pids.map((p) => procUsage(p).cpuSec);
    },
    since() {
      const ms = performance.now() - at;
      return pids.map((p, i) => ((procUsage(p).cpuSec - before[i]) * 1000 * 100) / ms);
    },
  };
}

/** One window at `rate`: publish at the origin, collect every load generator. */
async function windowAt(origin, lgs, meter, o, rate, topics, natsVarz) {
  await origin.ask('publish', { rate, topics, fields: o.fields });
  await sleep(o.warmupMs);
  for (const lg of lgs) await lg.window();
  const before = await origin.ask('counters');
  const vz0 = natsVarz ? await natsVarz() : null;
  meter.mark();
  await sleep(o.windowMs);
  const cs = await Promise.all(lgs.map((lg) => lg.collect()));
  const after = await origin.ask('counters');
  const vz1 = natsVarz ? await natsVarz() : null;
  const cpu = meter.since();
  await origin.ask('stop');
  await sleep(1000);
  const h = hdr.build(HIST);
  for (const c of cs) h.add(c.histogram);
  const published = after.published - before.published;
  const secs = cs[0].ms / 1000;
  const deliveries = cs.reduce((a, c) => a + c.deliveries, 0);
  const expected = (published * o.subscribers * Math.min(o.topicsPerSub, o.topics)) / o.topics;
  const nats = vz0 && {
    inBytesPerUpdate: (vz1.in_bytes - vz0.in_bytes) / published,
    outBytesPerUpdate: (vz1.out_bytes - vz0.out_bytes) / published,
    inMsgsPerUpdate: (vz1.in_msgs - vz0.in_msgs) / published,
    outMsgsPerUpdate: (vz1.out_msgs - vz0.out_msgs) / published,
  };
  return {
    offeredRate: rate,
    publishedPerSec: published / secs,
    deliveriesPerSec: deliveries / secs,
    deliveryRatio: expected ? deliveries / expected : 0,
    bytesPerDelivery: deliveries ? cs.reduce((a, c) => a + c.bytes, 0) / deliveries : 0,
    latencyUs: summarize(h),
    curve: percentileCurve(h),
    seqGaps: cs.reduce((a, c) => a + c.seqGaps, 0),
    loadgenCpuPct: cs.reduce((a, c) => a + c.cpuPct, 0),
    cpuPct: cpu,
    nats,
  };
}

export async function run(o) {
  const rates = Array.isArray(o.rates) ? o.rates : [o.rates];
  const topics = topicNames(o.topics, 'px.C');
  const clients = layout(o.subscribers, topics, o.topicsPerSub);
  const half = Math.ceil(clients.length / 2);
  const lgOpts = (port, cl) => ({ proto: 'tickfan', port, path: '/ws', clients: cl, workers: o.workers, sampleEvery: 1, protocol: 2 });
  const out = { single: [], cluster: [] };

  progress(`cluster: one node — ${o.subscribers} subscribers × ${o.topicsPerSub} of ${o.topics} topics`);
  const single = await startServerProc('tickfan', { env: { BENCH_PROTOCOL: '2' } });
  let lg = null;
  try {
    await single.ask('seed', { topics, fields: o.fields });
    lg = new LoadGen(lgOpts(single.port, clients));
    await lg.connect();
    const meter = cpuMeter([single.pid]);
    for (const rate of rates) {
      const r = await windowAt(single, [lg], meter, o, rate, topics, null);
      r.cpuPct = { node: r.cpuPct[0] };
      out.single.push(r);
      progress(`  one node  ${rate}/s → ${fmtSi(r.deliveriesPerSec)} deliveries/s, p50 ${fmtUs(r.latencyUs.p50)} p99 ${fmtUs(r.latencyUs.p99)}`);
    }
  } finally {
    await lg?.close().catch(() => {});
    await single.stop();
  }

  progress('cluster: origin + 2 edges on nats-server');
  const nats = await startNats();
  const procs = [];
  const lgs = [];
  try {
    const base = { nats: nats.url, natsPrefix: 'bench' };
    const origin = await startServerProc('tickfan', { options: { ...base, role: 'origin' }, env: { BENCH_PROTOCOL: '2' } });
    procs.push(origin);
    await origin.ask('seed', { topics, fields: o.fields });
    const edges = [await startServerProc('tickfan', { options: { ...base, role: 'edge' } }), await startServerProc('tickfan', { options: { ...base, role: 'edge' } })];
    procs.push(...edges);
    lgs.push(new LoadGen(lgOpts(edges[0].port, clients.slice(0, half))), new LoadGen(lgOpts(edges[1].port, clients.slice(half))));
    for (const l of lgs) await l.connect();
    await sleep(1000); // images of every topic reach both edges
    const meter = cpuMeter([origin.pid, edges[0].pid, edges[1].pid, nats.pid]);
    for (const rate of rates) {
      const r = await windowAt(origin, lgs, meter, o, rate, topics, nats.varz);
      r.cpuPct = { origin: r.cpuPct[0], edgeA: r.cpuPct[1], edgeB: r.cpuPct[2], nats: r.cpuPct[3] };
      out.cluster.push(r);
      progress(`  cluster   ${rate}/s → ${fmtSi(r.deliveriesPerSec)} deliveries/s, p50 ${fmtUs(r.latencyUs.p50)} p99 ${fmtUs(r.latencyUs.p99)}; NATS ${r.nats.inBytesPerUpdate.toFixed(1)} B in / ${r.nats.outBytesPerUpdate.toFixed(1)} B out per update`);
    }
  } finally {
    for (const l of lgs) await l.close().catch(() => {});
    for (const p of procs.reverse()) await p.stop();
    nats.stop();
  }
  const hops = rates.map((rate, i) => ({
    rate,
    p50Us: out.cluster[i].latencyUs.p50 - out.single[i].latencyUs.p50,
    p99Us: out.cluster[i].latencyUs.p99 - out.single[i].latencyUs.p99,
  }));
  return { ...out, hops };
}

export function render(doc) {
  const rows = [];
  for (const [layoutName, key, runs] of [['one node', 'single', doc.single], ['origin + 2 edges', 'cluster', doc.cluster]]) {
    for (const [i, r] of runs.entries()) {
      const w = (path, fmt) => withSpread(doc, `${key}.${i}.${path}`, fmt);
      const cpu = Object.entries(r.cpuPct).map(([k, v]) => `${k} ${fmtPct(v)}`).join(', ');
      rows.push([layoutName, fmtSi(r.offeredRate), w('deliveriesPerSec', fmtSi), `${(r.deliveryRatio * 100).toFixed(1)}%`, w('latencyUs.p50', fmtUs), w('latencyUs.p99', fmtUs), w('latencyUs.p999', fmtUs), r.bytesPerDelivery.toFixed(1), r.nats ? `${r.nats.inBytesPerUpdate.toFixed(1)} / ${r.nats.outBytesPerUpdate.toFixed(1)}` : '–', cpu, fmtPct(r.loadgenCpuPct)]);
    }
  }
  const p = doc.params;
  const md = [
    `${p.subscribers} subscribers (protocol 2, every update), each subscribed to ${p.topicsPerSub} of ${p.topics} topics; ${p.fields} fields + a timestamp per update, published at the origin (the one node). In the cluster the subscribers are split evenly over the two edges. ${repeatNote(doc)}`,
    '',
    mdTable(['layout', 'updates/s', 'deliveries/s', 'delivered', 'p50', 'p99', 'p99.9', 'WS bytes/delivery', 'NATS payload bytes in / out per update', 'CPU by process (100% = a core)', 'load-gen CPU'], rows),
    '',
    `Latency added by the hop (cluster − one node): ${doc.hops.map((h) => `${fmtSi(h.rate)}/s: p50 ${fmtUs(h.p50Us)}, p99 ${fmtUs(h.p99Us)}`).join('; ')}.`,
    '',
    'NATS bytes are payload bytes as nats-server counts them (/varz): in = the origin\'s one copy of each update (the encoded update: a 22-byte head with the topic name, then the protocol-2 Delta2 the clients get), out = one copy per edge that follows the topic. Each message also carries its subject and about 20 bytes of protocol line on the wire.',
    '',
    `**What 2 cores can and cannot show.** Here nats-server, the origin, both edges and the load generator share ${doc.machine.cores} cores, so the cluster cannot deliver more than one node: it does the same fan-out work plus a hop, on the same cores. What the run does show is the cost per hop — latency added between the origin's publish and an edge's client, bytes on NATS per update, the edge CPU that applying replicas costs next to the fan-out it does — and that edges hold exact replicas at these rates (delivered 100%, no sequence gaps). What it cannot show is scaling: on separate machines each edge's fan-out capacity is one node's (bench fanout / connections), and the origin's work per update does not grow with subscribers.`,
  ];
  const rates = doc.single.map((r) => r.offeredRate);
  const charts = rates.map((rate, i) =>
    percentileChart({
      title: `Latency by percentile at ${fmtSi(rate)} updates/s: one node vs origin + 2 edges`,
      subtitle: 'publish → receive, log scale; lower is better',
      yLabel: 'latency',
      yFmt: fmtUs,
      refs: [],
      series: [
        { name: `one node (p99 ${fmtUs(doc.single[i].latencyUs.p99)})`, color: COLORS.tickfan, points: doc.single[i].curve },
        { name: `origin + 2 edges (p99 ${fmtUs(doc.cluster[i].latencyUs.p99)})`, color: COLORS.uws, points: doc.cluster[i].curve },
      ],
    }),
  );
  const c = doc.cluster.at(-1);
  const headline = `hop adds p50 ${fmtUs(doc.hops[0].p50Us)} at ${fmtSi(doc.hops[0].rate)}/s; ${c.nats.inBytesPerUpdate.toFixed(0)} B per update into NATS`;
  return { md: md.join('\n'), svg: stack(charts), headline };
}

// Alone: node bench/scenarios/cluster.mjs [--quick] [--rates 1000,5000] [--subscribers N].
// Not a top-level await: writing the results imports this module again (its render).
async function alone() {
  const args = process.argv.slice(2);
  const o = { ...meta.defaults, ...(args.includes('--quick') ? meta.quick : {}) };
  for (let i = 0; i < args.length; i++) {
    const k = args[i].replace(/^--/, '').replace(/-([a-z])/g, (_, ch) => ch.toUpperCase());
    if (k in o && args[i + 1] !== undefined) o[k] = args[i + 1].includes(',') ? args[++i].split(',').map(Number) : Number(args[++i]);
  }
  const root = fileURLToPath(new URL('../..', import.meta.url));
  if (!existsSync(join(root, 'dist', 'index.js'))) spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
  const out = join(root, 'bench', 'results');
  mkdirSync(out, { recursive: true });
  const started = performance.now();
  const result = await run(o);
  const doc = { scenario: 'cluster', title: meta.title, question: meta.question, command: `node bench/scenarios/cluster.mjs ${args.join(' ')}`.trim(), params: o, machine: machineInfo(), durationSec: Math.round((performance.now() - started) / 1000), ...result };
  for (const r of [...doc.single, ...doc.cluster]) delete r.histogram;
  await writeScenario(out, doc);
  progress(`cluster: results in ${join(out, 'cluster.md')}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  alone().then(
    () => process.exit(0),
    (err) => {
      console.error(err?.stack ?? err);
      process.exit(1);
    },
  );
}
