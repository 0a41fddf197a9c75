// slow-consumers — what stalled readers cost everyone else. The same load
// runs three times on a fresh server: no reader stalled, one stalled, and 10%
// stalled (they stop reading their sockets, so kernel buffers fill, then the
// server's backpressure puts them in the slow lane). Measured on the fast
// readers only: throughput and publish → receive latency.

import { fmtInt, fmtPct, fmtSi, fmtUs, layout, progress, sleep, topicNames } from '../lib/common.mjs';
import { COLORS, percentileChart, stack } from '../lib/chart.mjs';
import { repeatNote, withSpread } from '../lib/repeat.mjs';
import { mdTable, targetsTable } from '../lib/report.mjs';
import { measureQuiet, setup, stepLine, teardown } from '../lib/measure.mjs';

export const meta = {
  name: 'slow-consumers',
  title: 'Slow consumers',
  question: "With 1 and with 10% stalled readers, how do the fast readers' latency and throughput compare with none stalled?",
  defaults: {
    subscribers: 1000,
    topics: 10,
    topicsPerSub: 10,
    rate: 500,
    fields: 8,
    stalled: '0,1,10%',
    fillTimeoutMs: 30000,
    warmupMs: 1000,
    windowMs: 4000,
    sampleEvery: 4,
    targetRisePct: 10,
    workers: 0,
  },
  quick: { subscribers: 200, stalled: '0,10%', fillTimeoutMs: 10000, windowMs: 2000, warmupMs: 500 },
  options: {
    subscribers: 'WebSocket clients',
    topics: 'topics published round-robin',
    topicsPerSub: 'topics per client',
    rate: 'updates/s published',
    stalled: 'stalled readers per run: counts or percentages',
    fillTimeoutMs: 'how long to wait for the stalled readers to reach the slow lane before measuring',
    windowMs: 'measurement window',
    sampleEvery: 'latency of one delivery in N is recorded',
  },
};

function count(spec, n) {
  const s = String(spec).trim();
  return s.endsWith('%') ? Math.round((Number(s.slice(0, -1)) / 100) * n) : Number(s);
}

export async function run(o, ctx) {
  const topics = topicNames(o.topics, 'px.W');
  const subsPerTopic = (o.subscribers * Math.min(o.topicsPerSub, o.topics)) / o.topics;
  const runs = [];
  for (const spec of String(o.stalled).split(',')) {
    const k = count(spec, o.subscribers);
    // Stalled readers spread evenly over the clients (and so over the worker threads).
    const stalledIdx = new Set(Array.from({ length: k }, (_, i) => Math.floor((i * o.subscribers) / Math.max(1, k))));
    // Stalled from the moment they have subscribed: their kernel buffers stay at
    // their initial size (TCP autotuning grows them only while a reader reads),
    // so the server sees the backpressure within the run instead of minutes later.
    const clients = layout(o.subscribers, topics, o.topicsPerSub).map((c, i) => ({ ...c, stalled: stalledIdx.has(i) }));
    progress(`slow-consumers: ${fmtInt(k)} of ${fmtInt(o.subscribers)} readers stalled — ${o.rate} updates/s over ${o.topics} topics (${subsPerTopic} subscribers each)`);
    const env = await setup('tickfan', { clients, topics, fields: o.fields, workers: o.workers || undefined, sampleEvery: o.sampleEvery, profileDir: ctx.profileDir, serverOptions: ctx.serverOptions });
    try {
      const fastShare = (o.subscribers - k) / o.subscribers;
      const r = await measureQuiet(env, {
        rate: o.rate,
        topics,
        fields: o.fields,
        subsPerTopic: subsPerTopic * fastShare,
        warmupMs: o.warmupMs,
        windowMs: o.windowMs,
        label: `${k} stalled`,
        beforeWindow: async () => {
          if (k === 0) return { stalled: 0, slowLaneMs: 0 };
          const t0 = performance.now();
          let entered = 0;
          while (performance.now() - t0 < o.fillTimeoutMs) {
            await sleep(250);
            const st = (await env.server.ask('counters')).stats;
            entered = st.slowLaneEntries;
            if (entered >= k) break;
            progress(`  waiting for stalled readers to reach the slow lane: ${entered}/${k} after ${((performance.now() - t0) / 1000).toFixed(1)} s`, { live: true });
          }
          progress('', { live: true });
          return { stalled: k, inSlowLane: entered, slowLaneMs: performance.now() - t0 };
        },
      });
      delete r.histogram;
      r.stalled = k;
      runs.push(r);
      progress(`  ${String(k).padStart(5)} stalled → fast readers: ${stepLine(r)}; p99.9 ${fmtUs(r.latencyUs.p999)}${k ? `; ${r.pre.inSlowLane}/${k} in the slow lane after ${(r.pre.slowLaneMs / 1000).toFixed(1)} s, ${r.slowDisconnects} closed (4008) during the window` : ''}`);
    } finally {
      await teardown(env);
    }
  }
  const base = runs.find((r) => r.stalled === 0);
  for (const r of runs) {
    if (!base) break;
    r.p99Rise = r.latencyUs.p99 / base.latencyUs.p99 - 1;
    r.p50Rise = r.latencyUs.p50 / base.latencyUs.p50 - 1;
    r.throughputRatio = r.deliveriesPerSec / (base.deliveriesPerSec * ((o.subscribers - r.stalled) / o.subscribers));
  }
  const tenPct = runs.find((r) => r.stalled === Math.round(o.subscribers / 10));
  const targets = [];
  if (base && tenPct) {
    targets.push({
      name: `fast readers' p99 rises < ${o.targetRisePct}% with 10% stalled readers`,
      target: o.targetRisePct,
      measured: tenPct.p99Rise * 100,
      shown: `${tenPct.p99Rise >= 0 ? '+' : ''}${(tenPct.p99Rise * 100).toFixed(1)}% (${fmtUs(base.latencyUs.p99)} → ${fmtUs(tenPct.latencyUs.p99)})`,
      met: tenPct.p99Rise * 100 < o.targetRisePct,
    });
  }
  return { subsPerTopic, runs, targets };
}

export function render(doc) {
  const p = doc.params;
  const md = [];
  md.push(
    `${fmtInt(p.subscribers)} subscribers, each subscribed to ${p.topicsPerSub} of ${p.topics} topics, ${fmtSi(p.rate)} updates/s ` +
      `(${fmtSi(p.rate * doc.subsPerTopic)} deliveries/s offered). A fresh server per run. Stalled readers stop reading their sockets as soon as they have subscribed ` +
      `(so TCP autotuning never grows their buffers); the window starts once the server has put them in the slow lane (or after ${p.fillTimeoutMs / 1000} s). Figures are the fast readers'; ` +
      `throughput is normalised to the number of fast readers. ${repeatNote(doc)}`,
    '',
  );
  md.push(
    mdTable(
      ['stalled readers', 'fast readers deliveries/s', 'vs none stalled (per reader)', 'p50', 'p99', 'p99 change', 'p99.9', 'max', 'in slow lane after', 'closed 4008 in window', 'server CPU'],
      doc.runs.map((r, i) => [
        fmtInt(r.stalled),
        withSpread(doc, `runs.${i}.deliveriesPerSec`, fmtSi),
        r.throughputRatio !== undefined ? withSpread(doc, `runs.${i}.throughputRatio`, (v) => `${(v * 100).toFixed(1)}%`) : '–',
        withSpread(doc, `runs.${i}.latencyUs.p50`, fmtUs),
        withSpread(doc, `runs.${i}.latencyUs.p99`, fmtUs),
        r.p99Rise !== undefined && r.stalled ? withSpread(doc, `runs.${i}.p99Rise`, (v) => `${v >= 0 ? '+' : ''}${(v * 100).toFixed(1)}%`) : '–',
        withSpread(doc, `runs.${i}.latencyUs.p999`, fmtUs),
        withSpread(doc, `runs.${i}.latencyUs.max`, fmtUs),
        r.stalled ? `${(r.pre.slowLaneMs / 1000).toFixed(1)} s (${r.pre.inSlowLane}/${r.stalled})` : '–',
        r.stalled ? fmtInt(r.slowDisconnects) : '–',
        fmtPct(r.serverCpuPct),
      ]),
    ),
    '',
  );
  md.push(targetsTable(doc.targets), '');
  if (doc.analysis) md.push(doc.analysis, '');
  const colors = [COLORS.tickfan, COLORS.b, COLORS.sio, COLORS.a];
  const chart = percentileChart({
    title: `Fast readers' latency with stalled readers (${fmtInt(p.subscribers)} subscribers, ${fmtSi(p.rate)} updates/s)`,
    subtitle: 'publish → receive, by percentile; log scale',
    yLabel: 'latency',
    yFmt: fmtUs,
    series: doc.runs.map((r, i) => ({ name: `${fmtInt(r.stalled)} stalled (p99 ${fmtUs(r.latencyUs.p99)})`, color: colors[i % colors.length], points: r.curve })),
  });
  const t = doc.targets[0];
  const headline = t ? `fast readers' p99 ${t.shown} with 10% stalled` : 'not measured';
  return { md: md.join('\n'), svg: stack([chart]), headline };
}
