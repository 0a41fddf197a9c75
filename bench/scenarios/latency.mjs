// latency — publish → receive latency at fixed rates below saturation, for
// tickfan and its peers with the same subscribers, topics and payload. Every
// delivery's latency is recorded (timestamps carried in the updates, one
// machine clock) in an HDR histogram.

import { fmtPct, fmtRatio, fmtSi, fmtUs, layout, progress, topicNames } from '../lib/common.mjs';
import { COLORS, percentileChart, stack } from '../lib/chart.mjs';
import { mdTable, targetsTable } from '../lib/report.mjs';
import { repeatNote, withSpread } from '../lib/repeat.mjs';
import { SYSTEM_NAMES, measureQuiet, setup, stepLine, teardown } from '../lib/measure.mjs';
import { DELIVERY, usableSystems } from '../lib/peers.mjs';
import { deliveryNote } from '../lib/peer-report.mjs';

export const meta = {
  name: 'latency',
  title: 'Latency at fixed rates',
  question: 'What are p50 / p99 / p99.9 publish → receive at fixed rates below saturation (1k subscribers × 10k updates/s)?',
  defaults: {
    systems: 'tickfan,uws,sio,nats,mosquitto',
    subscribers: 1000,
    topics: 1000,
    topicsPerSub: 10,
    rates: [10000],
    fields: 4,
    maxRate: 0,
    warmupMs: 1000,
    windowMs: 5000,
    sampleEvery: 1,
    targetP99Ms: 1,
    targetRate: 10000,
    workers: 0,
    protocol: 2,
  },
  quick: { subscribers: 200, windowMs: 2000, warmupMs: 500 },
  options: {
    systems: 'which systems to run: tickfan,uws,sio,nats,mosquitto (a broker not installed is skipped)',
    subscribers: 'WebSocket clients',
    topics: 'topics published round-robin',
    topicsPerSub: 'topics each client subscribes to (subscribers per topic = subscribers × this ÷ topics)',
    rates: 'update rates to measure (updates/s published, comma-separated)',
    fields: 'payload fields per update besides the timestamp',
    maxRate: 'tickfan rate tier asked for (0: every update)',
    windowMs: 'measurement window per rate',
    sampleEvery: 'latency of one delivery in N is recorded',
    protocol: 'tickfan wire protocol of the clients (2: the SDK\'s default; 1: the first one); the raw uWebSockets.js peer sends the same payload',
    targetP99Ms: 'the p99 target at targetRate',
  },
};

export async function run(o, ctx) {
  const rates = Array.isArray(o.rates) ? o.rates : [o.rates];
  const topics = topicNames(o.topics, 'px.L');
  const clients = layout(o.subscribers, topics, o.topicsPerSub);
  const subsPerTopic = (o.subscribers * Math.min(o.topicsPerSub, o.topics)) / o.topics;
  const systems = {};
  const { systems: list, skipped } = usableSystems(o.systems, 'latency', progress);
  for (const system of list) {
    progress(`latency: ${SYSTEM_NAMES[system]} — ${o.subscribers} subscribers × ${o.topicsPerSub} of ${o.topics} topics (${subsPerTopic} per topic)`);
    const env = await setup(system, { clients, topics, fields: o.fields, workers: o.workers || undefined, sampleEvery: o.sampleEvery, maxRate: o.maxRate, protocol: o.protocol, profileDir: ctx.profileDir, serverOptions: ctx.serverOptions });
    const runs = [];
    try {
      for (const rate of rates) {
        const r = await measureQuiet(env, { rate, topics, fields: o.fields, subsPerTopic, warmupMs: o.warmupMs, windowMs: o.windowMs, label: `${system} @ ${rate}/s` });
        delete r.histogram;
        runs.push(r);
        progress(`  ${system.padEnd(7)} ${String(rate).padStart(6)} updates/s → ${stepLine(r)}; p99.9 ${fmtUs(r.latencyUs.p999)} max ${fmtUs(r.latencyUs.max)}`);
      }
    } finally {
      await teardown(env);
    }
    systems[system] = { system, name: SYSTEM_NAMES[system], runs };
  }
  const at = (s) => systems[s]?.runs.find((r) => r.offeredRate === o.targetRate) ?? systems[s]?.runs[0];
  const tf = at('tickfan');
  const ratios = {};
  for (const peer of list.filter((k) => k !== 'tickfan')) {
    const p = at(peer);
    if (!tf || !p) continue;
    ratios[peer] = {
      p50: tf.latencyUs.p50 / p.latencyUs.p50,
      p99: tf.latencyUs.p99 / p.latencyUs.p99,
      p999: tf.latencyUs.p999 / p.latencyUs.p999,
    };
  }
  const targets = [];
  if (tf) {
    targets.push({
      name: `p99 ≤ ${o.targetP99Ms} ms at ${o.subscribers.toLocaleString('en-US')} subscribers × ${fmtSi(tf.offeredRate)} updates/s`,
      target: o.targetP99Ms * 1000,
      measured: tf.latencyUs.p99,
      shown: fmtUs(tf.latencyUs.p99),
      met: tf.latencyUs.p99 <= o.targetP99Ms * 1000,
      note: tf.latencyUs.p99 > o.targetP99Ms * 1000 ? `${fmtRatio(tf.latencyUs.p99 / (o.targetP99Ms * 1000))} the target` : '',
    });
  }
  if (ratios.uws) {
    for (const [q, limit] of [['p50', 1.2], ['p99', 1.5]]) {
      targets.push({
        name: `${q} ≤ ${limit}× raw uWebSockets.js' at ${fmtSi(tf.offeredRate)} updates/s`,
        target: limit,
        measured: ratios.uws[q],
        unit: '×',
        shown: `${fmtRatio(ratios.uws[q])} (${fmtUs(tf.latencyUs[q])} vs ${fmtUs(at('uws').latencyUs[q])})`,
        met: ratios.uws[q] <= limit,
      });
    }
  }
  // The issue's target: at or below every peer's p99 at this load (and the share each peer delivered).
  const peers = Object.keys(ratios);
  if (tf && peers.length) {
    const worst = peers.reduce((a, k) => (ratios[k].p99 > ratios[a].p99 ? k : a));
    targets.push({
      name: `p99 at or below every peer's at ${fmtSi(tf.offeredRate)} updates/s`,
      target: 1,
      measured: ratios[worst].p99,
      unit: '×',
      shown: `${fmtRatio(ratios[worst].p99)} ${SYSTEM_NAMES[worst]}'s (worst)`,
      met: ratios[worst].p99 <= 1,
      note: peers.map((k) => `${SYSTEM_NAMES[k]} ${fmtUs(at(k).latencyUs.p99)}, ${(at(k).deliveryRatio * 100).toFixed(0)}% delivered`).join('; '),
    });
  }
  return { subsPerTopic, systems, ratios, targets, delivery: Object.fromEntries(list.map((k) => [k, DELIVERY[k]])), skipped };
}

export function render(doc) {
  const p = doc.params;
  const order = Object.keys(doc.systems);
  const rows = [];
  for (const k of order) {
    doc.systems[k].runs.forEach((r, i) => {
      const w = (path, fmt) => withSpread(doc, `systems.${k}.runs.${i}.${path}`, fmt);
      rows.push([
        doc.systems[k].name,
        fmtSi(r.offeredRate),
        w('deliveriesPerSec', fmtSi),
        w('deliveryRatio', (v) => `${(v * 100).toFixed(1)}%`),
        w('latencyUs.p50', fmtUs),
        w('latencyUs.p90', fmtUs),
        w('latencyUs.p99', fmtUs),
        w('latencyUs.p999', fmtUs),
        w('latencyUs.max', fmtUs),
        fmtSi(r.latencyUs.count),
        w('serverCpuPct', fmtPct),
        w('loadgenCpuPct', fmtPct),
        w('kernelIrqCpuPct', fmtPct),
        r.serverAlloc ? `${w('serverGc.count', (v) => String(Math.round(v)))}× / ${w('serverGc.maxPauseMs', (v) => `${v.toFixed(1)} ms`)}` : '–',
      ]);
    });
  }
  const md = [];
  md.push(
    `${p.subscribers.toLocaleString('en-US')} subscribers, each subscribed to ${p.topicsPerSub} of ${p.topics} topics (${doc.subsPerTopic} subscribers per topic); ` +
      `updates published round-robin at a fixed rate for ${p.windowMs / 1000} s after ${p.warmupMs / 1000} s of warm-up; ` +
      `${p.fields} payload fields + a timestamp; ${p.sampleEvery === 1 ? 'every delivery' : `1 delivery in ${p.sampleEvery}`} timed. ${repeatNote(doc)}` +
      (doc.repeats > 1 ? ' Ratios to the peers are the median of the per-round ratios.' : ''),
    '',
  );
  md.push(mdTable(['system', 'updates/s', 'deliveries/s', 'delivered', 'p50', 'p90', 'p99', 'p99.9', 'max', 'samples', 'server CPU', 'load-gen CPU', 'kernel net CPU', 'server GCs / longest pause'], rows), '');
  const rr = [];
  for (const peer of Object.keys(doc.ratios)) {
    const w = (q) => withSpread(doc, `ratios.${peer}.${q}`, fmtRatio);
    rr.push(`${doc.systems[peer].name}: p50 ${w('p50')}, p99 ${w('p99')}, p99.9 ${w('p999')}`);
  }
  if (rr.length) md.push(`tickfan's latency as a multiple of each peer's (below 1× is faster): ${rr.join('; ')}.`, '');
  md.push(targetsTable(doc.targets), '');
  md.push(deliveryNote(doc), '');
  if (doc.analysis) md.push(doc.analysis, '');
  const color = COLORS;
  const rates = [...new Set(order.flatMap((k) => doc.systems[k].runs.map((r) => r.offeredRate)))];
  const charts = rates.map((rate) =>
    percentileChart({
      title: `Latency by percentile at ${fmtSi(rate)} updates/s (${p.subscribers.toLocaleString('en-US')} subscribers, ${doc.subsPerTopic} per topic)`,
      subtitle: 'publish → receive, log scale; lower is better',
      yLabel: 'latency',
      yFmt: fmtUs,
      refs: rate === p.targetRate ? [{ y: p.targetP99Ms * 1000, label: `target p99 ≤ ${p.targetP99Ms} ms` }] : [],
      series: order
        .map((k) => ({ k, r: doc.systems[k].runs.find((x) => x.offeredRate === rate) }))
        .filter((x) => x.r)
        .map(({ k, r }) => ({ name: `${doc.systems[k].name} (p99 ${fmtUs(r.latencyUs.p99)})`, color: color[k], points: r.curve })),
    }),
  );
  const tf = doc.systems.tickfan?.runs.find((r) => r.offeredRate === p.targetRate) ?? doc.systems.tickfan?.runs[0];
  const headline = tf
    ? `tickfan p50 ${fmtUs(tf.latencyUs.p50)}, p99 ${fmtUs(tf.latencyUs.p99)}, p99.9 ${fmtUs(tf.latencyUs.p999)} at ${fmtSi(tf.offeredRate)} updates/s${doc.repeats > 1 ? ` (median of ${doc.repeats})` : ''}` +
      Object.entries(doc.ratios)
        .map(([peer, r]) => `; p99 ${fmtRatio(r.p99)} ${peer === 'uws' ? 'raw uWS' : SYSTEM_NAMES[peer]}`)
        .join('')
    : 'not measured';
  return { md: md.join('\n'), svg: stack(charts), headline };
}
