// connections — how many concurrent subscribed connections one server holds,
// and what each costs in server memory (RSS after a full GC, per
// connection). Clients come from several loopback source addresses so the
// count is not capped by one address's ephemeral ports; the open-file limit
// (`ulimit -n`) caps it instead, and the result says so.

import { fmtBytes, fmtInt, fmtSi, layout, loopbackAddrs, progress, sleep, topicNames } from '../lib/common.mjs';
import { COLORS, barChart, lineChart, stack } from '../lib/chart.mjs';
import { repeatNote, withSpread } from '../lib/repeat.mjs';
import { mdTable, targetsTable } from '../lib/report.mjs';
import { SYSTEM_NAMES, measureRate, setup, stepLine, teardown } from '../lib/measure.mjs';
import { usableSystems } from '../lib/peers.mjs';

export const meta = {
  name: 'connections',
  title: 'Concurrent connections and memory',
  question: 'How many concurrent subscribed connections does one server hold, and how much server RSS does each cost?',
  defaults: {
    systems: 'tickfan,uws,nats,mosquitto',
    connections: 50000,
    steps: 4,
    topics: 1000,
    topicsPerSub: 1,
    addrs: 4,
    rate: 1000,
    fields: 4,
    connectConcurrency: 400,
    settleMs: 300,
    targetConnections: 50000,
    targetBytesPerConn: 2048,
    workers: 0,
  },
  quick: { connections: 2000, steps: 2 },
  options: {
    systems: 'tickfan, uws (the transport\'s floor), nats, mosquitto (brokers not installed are skipped)',
    connections: 'connections to reach (capped by the open-file limit)',
    steps: 'memory is measured at this many evenly spaced counts',
    topics: 'topics the connections subscribe to',
    topicsPerSub: 'topics per connection',
    addrs: 'loopback source addresses 127.0.0.1 … 127.0.0.N',
    rate: 'updates/s published at the top, to check every connection is live',
    connectConcurrency: 'connection attempts in flight',
    settleMs: 'idle wait after each step before memory is read (tens of seconds let V8 give back the young generation the connect storm grew)',
  },
};

function slope(points) {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((a, p) => a + p[0], 0) / n;
  const my = points.reduce((a, p) => a + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den ? num / den : NaN;
}

async function runSystem(system, o, ctx, cap) {
  const topics = topicNames(o.topics, 'px.C');
  const n = cap;
  const clients = layout(n, topics, o.topicsPerSub);
  const env = await setup(system, {
    clients,
    topics,
    fields: o.fields,
    gc: true,
    connect: false,
    addrs: loopbackAddrs(o.addrs),
    workers: o.workers || undefined,
    profileDir: ctx.profileDir,
    serverOptions: ctx.serverOptions,
  });
  const points = [];
  let failed = 0;
  let lastError;
  try {
    const base = await env.server.ask('gc');
    points.push({ connections: 0, rss: base.rss, heapUsed: base.heapUsed, heapTotal: base.heapTotal, external: base.external, connectMs: 0 });
    progress(`  ${system}: baseline RSS ${fmtBytes(base.rss)} (heap ${fmtBytes(base.heapUsed)}) with ${o.topics} topics`);
    for (let i = 1; i <= o.steps; i++) {
      const target = Math.round((n * i) / o.steps);
      const c = await env.lg.connect({ concurrency: o.connectConcurrency, upTo: target, timeoutMs: 300_000 });
      failed += c.failed;
      lastError = c.lastError ?? lastError;
      await sleep(o.settleMs ?? 300);
      const m = await env.server.ask('gc');
      const counters = await env.server.ask('counters');
      const conns = counters.stats.connections ?? c.connected;
      points.push({ connections: conns, clientsReady: c.connected, rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, connectMs: c.ms });
      progress(
        `  ${system.padEnd(7)} ${fmtInt(conns).padStart(7)} connections (+${fmtInt(target - (points[points.length - 2]?.connections ?? 0))} in ${(c.ms / 1000).toFixed(1)} s): ` +
          `RSS ${fmtBytes(m.rss)}, ${fmtBytes((m.rss - base.rss) / Math.max(1, conns))}/connection${c.failed ? `, ${c.failed} failed (${c.lastError})` : ''}`,
      );
      if (c.connected < target) break;
    }
    // Every connection live: publish and count deliveries.
    const top = points[points.length - 1];
    const subsPerTopic = (top.clientsReady * Math.min(o.topicsPerSub, o.topics)) / o.topics;
    const live = await measureRate(env, { rate: o.rate, topics, fields: o.fields, subsPerTopic, warmupMs: 1000, windowMs: 2000, label: `${system} live check` });
    delete live.histogram;
    progress(`  ${system.padEnd(7)} live check at ${o.rate} updates/s → ${stepLine(live)}`);
    const per = (top.rss - points[0].rss) / Math.max(1, top.connections);
    const perSlope = slope(points.map((p) => [p.connections, p.rss]));
    // Outside brokers have no JS heap: their heap figures stay empty (NaN).
    const heapPer = top.heapUsed == null ? NaN : (top.heapUsed - points[0].heapUsed) / Math.max(1, top.connections);
    // What one more connection costs once the first step has paid the one-off
    // costs (every topic's channel and uWS topic, compiled code, the young
    // generation grown by the connect storm): from the first step to the top.
    const first = points[1];
    const marginal = first && top !== first ? (top.rss - first.rss) / (top.connections - first.connections) : NaN;
    const heapMarginal = first && top !== first && top.heapUsed != null ? (top.heapUsed - first.heapUsed) / (top.connections - first.connections) : NaN;
    return { system, name: SYSTEM_NAMES[system], points, failed, lastError, live, bytesPerConn: per, bytesPerConnSlope: perSlope, bytesPerConnMarginal: marginal, heapBytesPerConn: heapPer, heapBytesPerConnMarginal: heapMarginal, connections: top.connections };
  } finally {
    await teardown(env);
  }
}

export async function run(o, ctx) {
  // Each side needs one descriptor per connection (plus a few of its own).
  const fdCap = Math.max(100, Math.min(ctx.limits.soft, ctx.limits.hard) - 300);
  const cap = Math.min(o.connections, fdCap);
  const capped = cap < o.connections;
  if (capped) {
    progress(
      `connections: capped at ${fmtInt(cap)} (asked ${fmtInt(o.connections)}): the open-file limit is ${ctx.limits.soft} (hard ${ctx.limits.hard}); ` +
        'raising the hard limit needs root with CAP_SYS_RESOURCE (ulimit -Hn / prlimit)',
    );
  }
  const systems = {};
  const { systems: list, skipped } = usableSystems(o.systems, 'connections', progress);
  for (const s of list) {
    progress(`connections: ${SYSTEM_NAMES[s]} — up to ${fmtInt(cap)} connections, ${o.topicsPerSub} of ${o.topics} topics each, from ${o.addrs} source addresses`);
    systems[s] = await runSystem(s, o, ctx, cap);
  }
  const tf = systems.tickfan;
  const targets = [];
  if (tf) {
    targets.push({
      name: `${fmtInt(o.targetConnections)} concurrent subscribed connections`,
      target: o.targetConnections,
      measured: tf.connections,
      shown: fmtInt(tf.connections),
      met: tf.connections >= o.targetConnections,
      note: capped ? `capped by this machine's open-file limit (${ctx.limits.hard}, hard); not a server limit` : tf.failed ? `${tf.failed} failed: ${tf.lastError}` : '',
    });
    targets.push({
      name: `≤ ${fmtBytes(o.targetBytesPerConn)} server RSS per connection`,
      target: o.targetBytesPerConn,
      measured: tf.bytesPerConn,
      shown: fmtBytes(tf.bytesPerConn),
      met: tf.bytesPerConn <= o.targetBytesPerConn,
      note: tf.bytesPerConn > o.targetBytesPerConn ? `${(tf.bytesPerConn / o.targetBytesPerConn).toFixed(2)}× the target` : '',
    });
    if (Number.isFinite(tf.bytesPerConnMarginal)) {
      targets.push({
        name: `≤ ${fmtBytes(o.targetBytesPerConn)} server RSS per connection added after the first step`,
        target: o.targetBytesPerConn,
        measured: tf.bytesPerConnMarginal,
        shown: fmtBytes(tf.bytesPerConnMarginal),
        met: tf.bytesPerConnMarginal <= o.targetBytesPerConn,
        note: 'the one-off costs of the first step left out',
      });
    }
  }
  return { fdLimit: ctx.limits, cap, capped, systems, targets, skipped };
}

export function render(doc) {
  const p = doc.params;
  const order = Object.keys(doc.systems);
  const md = [];
  md.push(
    `Connections opened in ${p.steps} steps from ${p.addrs} loopback source addresses, each subscribed to ${p.topicsPerSub} of ${p.topics} topics; ` +
      `server RSS read after a full GC (\`--expose-gc\`) at each step, ${p.settleMs ?? 300} ms after its last connection. Then ${p.rate} updates/s for 2 s to check every connection is live.` +
      (doc.capped ? ` **Capped at ${fmtInt(doc.cap)} by this machine's open-file limit** (soft ${doc.fdLimit.soft}, hard ${doc.fdLimit.hard}; the sandbox has no CAP_SYS_RESOURCE to raise it).` : '') +
      ` ${repeatNote(doc)}`,
    '',
  );
  const rows = order.map((k) => {
    const s = doc.systems[k];
    const ratio = k !== 'tickfan' && doc.systems.tickfan ? `${(doc.systems.tickfan.bytesPerConn / s.bytesPerConn).toFixed(2)}×` : '1×';
    const w = (path, fmt) => withSpread(doc, `systems.${k}.${path}`, fmt);
    return [
      s.name,
      w('connections', fmtInt),
      fmtBytes(s.points[0].rss),
      fmtBytes(s.points[s.points.length - 1].rss),
      w('bytesPerConn', fmtBytes),
      w('bytesPerConnSlope', fmtBytes),
      w('bytesPerConnMarginal', fmtBytes),
      w('heapBytesPerConn', fmtBytes),
      w('heapBytesPerConnMarginal', fmtBytes),
      `${w('live.deliveriesPerSec', fmtSi)}/s (${(s.live.deliveryRatio * 100).toFixed(1)}%)`,
      ratio,
    ];
  });
  md.push(mdTable(['system', 'connections held', 'RSS at 0', 'RSS at top', 'RSS per connection', 'RSS slope per connection', 'RSS per connection after the first step', 'JS heap per connection', 'JS heap per connection after the first step', 'live check deliveries', 'tickfan ÷ system (bytes/conn)'], rows), '');
  const stepRows = [];
  for (const k of order) for (const pt of doc.systems[k].points) stepRows.push([doc.systems[k].name, fmtInt(pt.connections), fmtBytes(pt.rss), fmtBytes(pt.heapUsed), pt.heapTotal ? fmtBytes(pt.heapTotal) : '–', pt.connectMs ? `${(pt.connectMs / 1000).toFixed(1)} s` : '–']);
  md.push(mdTable(['system', 'connections', 'RSS (after GC)', 'JS heap used', 'JS heap reserved', 'connect time for the step'], stepRows), '');
  md.push(targetsTable(doc.targets), '');
  const skipped = Object.entries(doc.skipped ?? {});
  if (skipped.length) md.push(`Skipped: ${skipped.map(([k, why]) => `${SYSTEM_NAMES[k]} (${why})`).join(', ')}.`, '');
  md.push('For nats-server and mosquitto the RSS is the broker\'s own process (their publisher runs apart); for tickfan and raw uWS the server process\'s, its in-process publisher included.', '');
  if (doc.analysis) md.push(doc.analysis, '');
  const color = COLORS;
  const lines = lineChart({
    title: 'Server RSS (after GC) by concurrent subscribed connections',
    subtitle: doc.capped ? `capped at ${fmtInt(doc.cap)} by the machine's open-file limit` : '',
    xLabel: 'connections',
    yLabel: 'RSS',
    xFmt: fmtSi,
    yFmt: fmtBytes,
    series: order.map((k) => ({ name: doc.systems[k].name, color: color[k], points: doc.systems[k].points.map((pt) => [pt.connections, pt.rss]) })),
  });
  const bars = barChart({
    title: 'Server RSS per connection',
    fmt: fmtBytes,
    target: { value: p.targetBytesPerConn, label: `target ≤ ${fmtBytes(p.targetBytesPerConn)}` },
    rows: order.map((k) => ({ label: doc.systems[k].name, value: doc.systems[k].bytesPerConn, color: color[k], text: `${fmtBytes(doc.systems[k].bytesPerConn)} at ${fmtInt(doc.systems[k].connections)}` })),
  });
  const tf = doc.systems.tickfan;
  const headline = tf ? `tickfan held ${fmtInt(tf.connections)} subscribed connections at ${fmtBytes(tf.bytesPerConn)} RSS each${doc.capped ? ' (capped by the open-file limit)' : ''}` : 'not measured';
  return { md: md.join('\n'), svg: stack([bars, lines]), headline };
}

