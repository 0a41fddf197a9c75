// http-publish — autocannon against POST /publish/<topic> (JSON fields):
// requests per second and request latency, with nobody subscribed and with
// WebSocket subscribers receiving what is published (publish → receive
// latency measured from the timestamp in the body).

import autocannon from 'autocannon';
import { fmtInt, fmtPct, fmtSi, fmtUs, layout, progress, topicNames } from '../lib/common.mjs';
import { COLORS, barChart, stack } from '../lib/chart.mjs';
import { repeatNote, withSpread } from '../lib/repeat.mjs';
import { mdTable, targetsTable } from '../lib/report.mjs';
import { setup, teardown } from '../lib/measure.mjs';
import { MachineCpu } from '../lib/common.mjs';
import { fieldNames, nowNs } from '../servers/driver.mjs';

export const meta = {
  name: 'http-publish',
  title: 'HTTP publish',
  question: 'How many POST /publish/<topic> requests per second does one server take, at what latency?',
  defaults: {
    subscribers: '0,1000',
    topics: 100,
    topicsPerSub: 10,
    fields: 4,
    connections: 64,
    pipelining: 1,
    durationSec: 5,
    workers: 0,
  },
  quick: { subscribers: '0,200', durationSec: 2 },
  options: {
    subscribers: 'WebSocket subscribers per run (comma-separated: one run each)',
    topics: 'topics published round-robin',
    topicsPerSub: 'topics per subscriber',
    fields: 'JSON fields per request besides the timestamp',
    connections: 'autocannon connections',
    pipelining: 'autocannon requests in flight per connection',
    durationSec: 'seconds per run',
  },
};

async function runOne(o, ctx, subscribers) {
  const topics = topicNames(o.topics, 'px.P');
  const clients = layout(subscribers, topics, o.topicsPerSub);
  const subsPerTopic = subscribers ? (subscribers * Math.min(o.topicsPerSub, o.topics)) / o.topics : 0;
  const env = await setup('tickfan', { clients, topics, fields: o.fields, workers: o.workers || undefined, sampleEvery: 4, profileDir: ctx.profileDir, serverOptions: ctx.serverOptions });
  try {
    const names = fieldNames(o.fields);
    let i = 0;
    const before = await env.server.ask('counters');
    await env.lg.window();
    env.server.mark();
    const machine = new MachineCpu();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const result = await new Promise((resolve, reject) => {
      const inst = autocannon(
        {
          url: `http://127.0.0.1:${env.server.port}`,
          connections: o.connections,
          pipelining: o.pipelining,
          duration: o.durationSec,
          requests: [
            {
              method: 'POST',
              setupRequest: (req) => {
                const n = i++;
                const body = { t: nowNs() };
                for (let j = 0; j < names.length; j++) body[names[j]] = 100.25 + ((n + j) % 97) * 0.125;
                return { ...req, path: `/publish/${topics[n % topics.length]}`, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
              },
            },
          ],
        },
        (err, res) => (err ? reject(err) : resolve(res)),
      );
      autocannon.track(inst, { renderProgressBar: false, renderResultsTable: false, renderLatencyTable: false });
    });
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const sv = env.server.since();
    const m = machine.since();
    const c = await env.lg.collect();
    const after = await env.server.ask('counters');
    const published = (after.stats.publishes ?? 0) - (before.stats.publishes ?? 0);
    const r = {
      subscribers,
      subsPerTopic,
      requestsPerSec: result.requests.average,
      requests: result.requests.total,
      non2xx: result.non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
      latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, p999: result.latency.p99_9, max: result.latency.max, mean: result.latency.average },
      published,
      deliveriesPerSec: c.deliveries / (c.ms / 1000),
      deliveryRatio: published && subsPerTopic ? c.deliveries / (published * subsPerTopic) : null,
      deliveryLatencyUs: c.latencyUs,
      serverCpuPct: sv.cpuPct,
      loadgenCpuPct: ((cpu.user + cpu.system) / 1000 / wallMs) * 100,
      kernelIrqCpuPct: m.irqPct,
      otherCpuPct: Math.max(0, m.busyPct - m.irqPct - sv.cpuPct - ((cpu.user + cpu.system) / 1000 / wallMs) * 100),
      gcMaxPauseMs: after.gc.maxMs,
    };
    progress(
      `  ${fmtInt(subscribers).padStart(5)} subscribers → ${fmtSi(r.requestsPerSec)} requests/s, latency p50 ${r.latencyMs.p50} ms p99 ${r.latencyMs.p99} ms max ${r.latencyMs.max} ms` +
        `${r.non2xx ? `, ${r.non2xx} non-2xx` : ''}${subscribers ? `; ${fmtSi(r.deliveriesPerSec)} deliveries/s, publish → receive p99 ${fmtUs(c.latencyUs.p99)}` : ''}; ` +
        `CPU server ${fmtPct(r.serverCpuPct)} autocannon+load-gen ${fmtPct(r.loadgenCpuPct)} kernel-net ${fmtPct(r.kernelIrqCpuPct)}`,
    );
    return r;
  } finally {
    await teardown(env);
  }
}

export async function run(o, ctx) {
  const list = Array.isArray(o.subscribers) ? o.subscribers : String(o.subscribers).split(',').map(Number);
  const runs = [];
  for (const n of list) {
    progress(`http-publish: autocannon, ${o.connections} connections × ${o.pipelining} in flight, ${o.durationSec} s, ${o.topics} topics, ${fmtInt(n)} WebSocket subscribers`);
    runs.push(await runOne(o, ctx, n));
  }
  return { runs, targets: [] };
}

export function render(doc) {
  const p = doc.params;
  const md = [];
  md.push(
    `autocannon with ${p.connections} connections × ${p.pipelining} request${p.pipelining > 1 ? 's' : ''} in flight for ${p.durationSec} s, ` +
      `POST /publish/<topic> round-robin over ${p.topics} topics, a JSON body of ${p.fields} fields + a timestamp. ` +
      `autocannon runs in the load-generator process (its CPU is shown with the subscribers' load generator). ${repeatNote(doc)}`,
    '',
  );
  md.push(
    mdTable(
      ['WS subscribers', 'requests/s', 'p50', 'p90', 'p99', 'p99.9', 'max', 'non-2xx', 'deliveries/s', 'publish → receive p99', 'server CPU', 'autocannon + load-gen CPU'],
      doc.runs.map((r, i) => [
        fmtInt(r.subscribers),
        withSpread(doc, `runs.${i}.requestsPerSec`, fmtSi),
        withSpread(doc, `runs.${i}.latencyMs.p50`, (v) => `${v} ms`),
        withSpread(doc, `runs.${i}.latencyMs.p90`, (v) => `${v} ms`),
        withSpread(doc, `runs.${i}.latencyMs.p99`, (v) => `${v} ms`),
        withSpread(doc, `runs.${i}.latencyMs.p999`, (v) => `${v} ms`),
        withSpread(doc, `runs.${i}.latencyMs.max`, (v) => `${v} ms`),
        fmtInt(r.non2xx),
        r.subscribers ? withSpread(doc, `runs.${i}.deliveriesPerSec`, fmtSi) : '–',
        r.subscribers ? withSpread(doc, `runs.${i}.deliveryLatencyUs.p99`, fmtUs) : '–',
        withSpread(doc, `runs.${i}.serverCpuPct`, fmtPct),
        withSpread(doc, `runs.${i}.loadgenCpuPct`, fmtPct),
      ]),
    ),
    '',
  );
  md.push(targetsTable(doc.targets), '');
  if (doc.analysis) md.push(doc.analysis, '');
  const bars = barChart({
    title: 'POST /publish/<topic>: requests per second',
    subtitle: `autocannon, ${p.connections} connections, ${p.durationSec} s`,
    fmt: fmtSi,
    rows: doc.runs.map((r, i) => ({ label: `${fmtInt(r.subscribers)} subscribers`, value: r.requestsPerSec, color: [COLORS.tickfan, COLORS.a, COLORS.c][i % 3], text: `${fmtSi(r.requestsPerSec)}/s, p99 ${r.latencyMs.p99} ms` })),
  });
  const lat = barChart({
    title: 'Request latency (ms)',
    fmt: (v) => `${v} ms`,
    rows: doc.runs.flatMap((r) => [
      { label: `${fmtInt(r.subscribers)} subs: p50`, value: r.latencyMs.p50, color: COLORS.c },
      { label: `${fmtInt(r.subscribers)} subs: p99`, value: r.latencyMs.p99, color: COLORS.a },
    ]),
  });
  const r0 = doc.runs[0];
  const headline = r0 ? doc.runs.map((r) => `${fmtSi(r.requestsPerSec)} requests/s (p99 ${r.latencyMs.p99} ms) with ${fmtInt(r.subscribers)} subscribers`).join('; ') : 'not measured';
  return { md: md.join('\n'), svg: stack([bars, lat]), headline };
}
