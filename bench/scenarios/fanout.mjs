// fanout — the most deliveries per second one server sustains to N
// subscribers of a hot set of topics, for tickfan and its peers. The update
// rate doubles until the step breaks down (publisher cannot keep the rate,
// deliveries fall behind, p99 passes the limit, or backpressure puts sockets
// in the slow lane), then bisects between the last good and first bad rate.

import { fmtPct, fmtRatio, fmtSi, fmtUs, layout, progress, topicNames } from '../lib/common.mjs';
import { COLORS, barChart, lineChart, stack } from '../lib/chart.mjs';
import { mdTable, targetsTable } from '../lib/report.mjs';
import { repeatNote, withSpread } from '../lib/repeat.mjs';
import { SYSTEM_NAMES, measureQuiet, setup, stepLine, teardown } from '../lib/measure.mjs';
import { DELIVERY, usableSystems } from '../lib/peers.mjs';
import { curveCheck, curveNote, curveTarget, deliveryNote } from '../lib/peer-report.mjs';
import { LATENCY_THROUGHPUT_SVG, latencyThroughputSvg, p99Axes } from '../lib/latency-throughput-chart.mjs';

export const meta = {
  name: 'fanout',
  title: 'Fan-out throughput',
  question: 'How many updates per second reach N subscribers of a hot set of topics before latency or backpressure breaks down?',
  defaults: {
    systems: 'tickfan,uws,sio,nats,mosquitto',
    subscribers: 1000,
    topics: 10,
    topicsPerSub: 10,
    fields: 4,
    maxRate: 0,
    // One start for every system, so their p99-vs-throughput curves share the low rates.
    startRate: 25,
    maxSteps: 14,
    refine: 2,
    fill: 6,
    warmupMs: 500,
    windowMs: 2000,
    maxP99Ms: 50,
    minRatio: 0.95,
    sampleEvery: 32,
    workers: 0,
    protocol: 2,
  },
  quick: { subscribers: 200, windowMs: 1000, warmupMs: 300, maxSteps: 4, refine: 0 },
  options: {
    systems: 'which systems to run: tickfan,uws,sio,nats,mosquitto (a broker not installed is skipped)',
    subscribers: 'WebSocket clients',
    topics: 'hot topics published round-robin',
    topicsPerSub: 'topics each client subscribes to',
    fields: 'payload fields per update besides the timestamp',
    maxRate: 'tickfan rate tier asked for (0: every update)',
    startRate: 'first update rate tried (one number for every system)',
    maxSteps: 'steps per system at most',
    refine: 'bisection steps after the first failure',
    fill: 'rates a peer held that tickfan\'s ramp skipped, measured for tickfan after the peers (at most this many per round; 0: none)',
    windowMs: 'measurement window per step',
    maxP99Ms: 'a step whose p99 passes this has broken down',
    minRatio: 'a step delivering or publishing less than this share of its rate has broken down',
    sampleEvery: 'latency of one delivery in N is recorded',
    protocol: 'tickfan wire protocol of the clients (2: the SDK\'s default; 1: the first one); the raw uWebSockets.js peer sends the same payload',
  },
};

function verdict(r, o) {
  const why = [];
  if (r.publishRatio < o.minRatio) why.push(`publisher kept ${(r.publishRatio * 100).toFixed(0)}% of the rate`);
  if (r.deliveryRatio < o.minRatio) why.push(`${(r.deliveryRatio * 100).toFixed(0)}% of the deliveries arrived`);
  if ((r.latencyUs.p99 ?? 0) > o.maxP99Ms * 1000) why.push(`p99 ${(r.latencyUs.p99 / 1000).toFixed(1)} ms > ${o.maxP99Ms} ms`);
  if (r.slowLaneEntries > 0 || r.slowDisconnects > 0) why.push(`backpressure: ${r.slowLaneEntries} slow-lane entries, ${r.slowDisconnects} disconnects`);
  if (Object.keys(r.closes).length) why.push(`connections closed: ${JSON.stringify(r.closes)}`);
  return why;
}

/**
 * A system's server and clients, and its step measurer: `tryRate(rate)`
 * measures one step (again once when it breaks down: one GC or scheduler
 * hiccup does not count) and keeps it in `steps`.
 */
async function openSystem(system, o, ctx) {
  const topics = topicNames(o.topics, 'px.H');
  const clients = layout(o.subscribers, topics, o.topicsPerSub);
  const subsPerTopic = (o.subscribers * Math.min(o.topicsPerSub, o.topics)) / o.topics;
  const env = await setup(system, {
    clients,
    topics,
    fields: o.fields,
    workers: o.workers || undefined,
    sampleEvery: o.sampleEvery,
    maxRate: o.maxRate,
    protocol: o.protocol,
    profileDir: ctx.profileDir, serverOptions: ctx.serverOptions,
  });
  progress(`  ${SYSTEM_NAMES[system]}: ${o.subscribers} subscribers connected in ${(env.connect.ms / 1000).toFixed(1)} s`);
  const steps = [];
  const measure = async (rate, warmupMs) => {
    const r = await measureQuiet(env, { rate, topics, fields: o.fields, subsPerTopic, warmupMs, windowMs: o.windowMs, label: `${system} @ ${rate}/s` });
    r.breakdown = verdict(r, o);
    r.ok = r.breakdown.length === 0;
    delete r.histogram;
    progress(`  ${system.padEnd(7)} ${String(rate).padStart(6)} updates/s → ${stepLine(r)} ${r.ok ? 'ok' : `✗ ${r.breakdown.join('; ')}`}`);
    return r;
  };
  const tryRate = async (rate, extra = {}) => {
    // The first step also warms up the JIT and the sockets' buffers.
    let r = await measure(rate, steps.length === 0 ? o.warmupMs * 4 : o.warmupMs);
    if (!r.ok) {
      const again = await measure(rate, o.warmupMs * 2);
      again.firstTry = { breakdown: r.breakdown, deliveriesPerSec: r.deliveriesPerSec, p99: r.latencyUs.p99 };
      if (again.ok) progress(`  ${system.padEnd(7)} ${String(rate).padStart(6)} updates/s held on the second try`);
      r = again;
    }
    steps.push(Object.assign(r, extra));
    return r.ok;
  };
  return { env, steps, subsPerTopic, tryRate };
}

/** A system's result from its steps: the best step held, the peak of any, whether one broke down. */
function summary(system, subsPerTopic, steps) {
  const passing = steps.filter((s) => s.ok);
  const best = passing.reduce((a, s) => (!a || s.deliveriesPerSec > a.deliveriesPerSec ? s : a), null);
  const peak = steps.reduce((a, s) => (!a || s.deliveriesPerSec > a.deliveriesPerSec ? s : a), null);
  // No step broke down: the ramp stopped at its step limit, short of saturation.
  const saturated = steps.some((s) => !s.ok);
  return { system, name: SYSTEM_NAMES[system], subsPerTopic, steps, best, peak, saturated };
}

async function rampSystem(system, o, ctx) {
  const sys = await openSystem(system, o, ctx);
  const { steps, tryRate } = sys;
  try {
    const start = typeof o.startRate === 'object' ? o.startRate[system] : o.startRate;
    let good = 0;
    let bad = 0;
    let rate = start;
    // Up by doubling, or down by halving when the first rate already fails.
    if (await tryRate(rate)) {
      good = rate;
      while (steps.length < o.maxSteps) {
        rate *= 2;
        if (await tryRate(rate)) good = rate;
        else {
          bad = rate;
          break;
        }
      }
    } else {
      bad = rate;
      while (steps.length < o.maxSteps && rate > 1) {
        rate = Math.max(1, Math.floor(rate / 2));
        if (await tryRate(rate)) {
          good = rate;
          break;
        }
        bad = rate;
      }
    }
    for (let i = 0; i < o.refine && good && bad && steps.length < o.maxSteps + o.refine; i++) {
      const mid = Math.round((good + bad) / 2);
      if (mid === good || mid === bad) break;
      if (await tryRate(mid)) good = mid;
      else bad = mid;
    }
  } finally {
    await teardown(sys.env);
  }
  return summary(system, sys.subsPerTopic, steps);
}

/**
 * Rates a peer held in this round that tickfan's ramp did not try (the
 * peers' bisection steps), below tickfan's highest step: tickfan is measured
 * there too, after the peers, so that its p99 is compared with theirs at the
 * same offered rate, never read off a line between two of its own steps.
 */
async function fillIn(results, systems, o, ctx) {
  const tf = results.tickfan;
  if (!tf || !(o.fill > 0)) return;
  const have = new Set(tf.steps.map((s) => s.offeredRate));
  const top = Math.max(...tf.steps.map((s) => s.offeredRate));
  const rates = new Set();
  for (const k of systems) {
    if (k === 'tickfan') continue;
    for (const s of results[k]?.steps ?? []) if (s.ok && !have.has(s.offeredRate) && s.offeredRate < top) rates.add(s.offeredRate);
  }
  const todo = [...rates].sort((a, b) => a - b).slice(0, o.fill);
  if (todo.length === 0) return;
  progress(`fanout: tickfan again at the peers' own rates (${todo.join(', ')} updates/s)`);
  const sys = await openSystem('tickfan', o, ctx);
  try {
    for (const rate of todo) await sys.tryRate(rate, { fill: true });
  } finally {
    await teardown(sys.env);
  }
  results.tickfan = summary('tickfan', tf.subsPerTopic, [...tf.steps, ...sys.steps]);
}

export async function run(o, ctx) {
  const { systems, skipped } = usableSystems(o.systems, 'fanout', progress);
  const results = {};
  for (const s of systems) {
    progress(`fanout: ${SYSTEM_NAMES[s]} — ${o.subscribers} subscribers × ${Math.min(o.topicsPerSub, o.topics)} of ${o.topics} hot topics, ${o.fields} fields + timestamp`);
    results[s] = await rampSystem(s, o, ctx);
  }
  await fillIn(results, systems, o, ctx);
  const tf = results.tickfan?.best;
  const ratios = {};
  for (const peer of systems.filter((k) => k !== 'tickfan')) {
    const p = results[peer];
    if (!tf || !p) continue;
    ratios[peer] = {
      sustained: p.best ? tf.deliveriesPerSec / p.best.deliveriesPerSec : null,
      peak: p.peak ? results.tickfan.peak.deliveriesPerSec / p.peak.deliveriesPerSec : null,
      // The transport's per-frame ceiling: tickfan's updates against the peer's frames.
      updatesPerPeerFrame: p.best ? tf.deliveriesPerSec / p.best.framesPerSec : null,
    };
  }
  const targets = [];
  if (ratios.uws) {
    targets.push({
      name: 'updates delivered/s ≥ 1.0× raw uWebSockets.js frames/s',
      target: 1.0,
      measured: ratios.uws.updatesPerPeerFrame,
      unit: '×',
      met: ratios.uws.updatesPerPeerFrame >= 1.0,
    });
  }
  if (ratios.sio) {
    targets.push({
      name: 'updates delivered/s ≥ 40× Socket.IO',
      target: 40,
      measured: ratios.sio.sustained,
      unit: '×',
      met: ratios.sio.sustained >= 40,
    });
  }
  const brokers = systems.filter((k) => k === 'nats' || k === 'mosquitto');
  if (tf && brokers.length) {
    const worst = brokers.map((k) => [k, ratios[k]?.sustained ?? Infinity]).sort((a, b) => a[1] - b[1])[0];
    targets.push({
      name: `updates delivered/s ahead of every broker (${brokers.map((k) => SYSTEM_NAMES[k]).join(', ')})`,
      target: 1,
      measured: worst[1],
      unit: '×',
      met: worst[1] > 1,
      note: brokers.map((k) => `${SYSTEM_NAMES[k]} ${fmtRatio(ratios[k]?.sustained)}`).join(', '),
    });
  }
  // p99 against deliveries/s: at every rate a peer sustains, tickfan's p99 at the same rate.
  const curve = curveCheck(results, systems);
  if (curve?.target) targets.push(curve.target);
  return { systems: results, ratios, targets, curve: curve?.points, delivery: Object.fromEntries(systems.map((k) => [k, DELIVERY[k]])), skipped };
}

/**
 * After every round (run.mjs): the curve target from the rounds' medians at
 * each rate (curveTarget), the single rounds' worst ratios in its note.
 */
export function finish(doc) {
  const i = doc.targets?.findIndex((t) => t.name.startsWith('p99 at or below every peer'));
  const t = curveTarget(doc);
  if (!t || i === undefined || i < 0) return doc;
  const perRound = doc.targets[i];
  const { points, significance, ...target } = t;
  if (doc.repeats > 1 && perRound.spread) target.note += `; single rounds' worst ${fmtRatio(perRound.spread[0])}–${fmtRatio(perRound.spread[1])} (met in ${perRound.metRounds} of ${perRound.rounds})`;
  doc.targets[i] = target;
  // The same comparison read over the rounds (rank-sum): next to it, replaced after each round.
  const j = doc.targets.findIndex((x) => x.name.startsWith('p99 not significantly above'));
  if (j >= 0) doc.targets.splice(j, 1);
  if (significance) doc.targets.splice(i + 1, 0, significance);
  doc.curveMedians = points;
  return doc;
}

// ------------------------------------------------------------ rendering

function fmtBytesShort(b) {
  return b >= 10_000 ? `${(b / 1024).toFixed(1)} KiB` : `${Math.round(b)} B`;
}

export function render(doc) {
  const p = doc.params;
  const order = Object.keys(doc.systems);
  const rows = order.map((k) => {
    const s = doc.systems[k];
    const b = s.best;
    const at = (path, fmt) => withSpread(doc, `systems.${k}.best.${path}`, fmt);
    const ratio = k === 'tickfan' ? '1×' : doc.ratios[k] ? withSpread(doc, `ratios.${k}.sustained`, fmtRatio) : '–';
    return [
      s.name,
      b ? `${at('deliveriesPerSec', fmtSi)}${s.saturated ? '' : ' (not saturated: step limit)'}` : 'none',
      b ? at('offeredRate', fmtSi) : '–',
      b ? at('framesPerSec', fmtSi) : '–',
      b ? at('updatesPerFrame', (v) => v.toFixed(1)) : '–',
      b ? at('bytesPerDelivery', (v) => String(Math.round(v))) : '–',
      b ? at('latencyUs.p50', fmtUs) : '–',
      b ? at('latencyUs.p99', fmtUs) : '–',
      b ? at('latencyUs.p999', fmtUs) : '–',
      b ? `${at('serverCpuPct', fmtPct)} / ${at('loadgenCpuPct', fmtPct)}` : '–',
      s.peak ? withSpread(doc, `systems.${k}.peak.deliveriesPerSec`, fmtSi) : '–',
      ratio,
    ];
  });
  // Server-side allocation and GC at each system's best step (servers/driver.mjs).
  const allocRows = order
    .filter((k) => doc.systems[k].best?.serverAlloc)
    .map((k) => {
      const a = (path, fmt) => withSpread(doc, `systems.${k}.best.serverAlloc.${path}`, fmt);
      const b = doc.systems[k].best;
      return [
        // An outside broker is native: the heap figures are its Node publisher's.
        k === 'nats' || k === 'mosquitto' ? `${doc.systems[k].name} (its publisher process only)` : doc.systems[k].name,
        withSpread(doc, `systems.${k}.best.deliveriesPerSec`, fmtSi),
        b.serverAlloc.bytesPerUpdate == null ? 'n/a' : a('bytesPerUpdate', fmtBytesShort),
        b.serverAlloc.bytesPerDelivery == null ? 'n/a' : a('bytesPerDelivery', (v) => v.toFixed(1)),
        a('gcPerMDeliveries', (v) => v.toFixed(1)),
        a('gcMsPerMDeliveries', (v) => `${v.toFixed(1)} ms`),
        withSpread(doc, `systems.${k}.best.serverGc.maxPauseMs`, (v) => `${v.toFixed(1)} ms`),
      ];
    });
  const md = [];
  md.push(
    `${p.subscribers.toLocaleString('en-US')} subscribers, each subscribed to ${Math.min(p.topicsPerSub, p.topics)} of ${p.topics} hot topics; ` +
      `${p.fields} payload fields + a timestamp per update; tickfan and raw uWebSockets.js in protocol ${p.protocol ?? 1}'s encoding; rate doubled per ${p.windowMs / 1000} s step until a step broke down ` +
      `(p99 > ${p.maxP99Ms} ms, < ${p.minRatio * 100}% of the rate published or delivered, or slow-lane backpressure), then bisected ${p.refine}×. ` +
      `Latency sampled on 1 delivery in ${p.sampleEvery}. ${repeatNote(doc)}`,
    '',
  );
  md.push(
    mdTable(
      ['system', 'max sustained deliveries/s', 'at updates/s', 'WS frames/s', 'updates/frame', 'bytes/update', 'p50', 'p99', 'p99.9', 'CPU server / load-gen', 'peak deliveries/s (any step)', 'tickfan ÷ system'],
      rows,
    ),
    '',
  );
  if (allocRows.length) {
    md.push(
      mdTable(['system (at its max sustained step)', 'deliveries/s', 'server heap bytes allocated / update published', '… / delivery', 'GCs / M deliveries', 'GC time / M deliveries', 'longest GC pause'], allocRows),
      '',
      'Server heap allocation: bytes the server process allocated on its JS heap during the step\'s window (what every GC freed, from `v8.GCProfiler`, plus the growth of the heap in use), divided by the updates published and by the deliveries. ' +
        'It includes the in-process publisher\'s own update object (`servers/driver.mjs`: a 5-field object, its doubles and a BigInt timestamp, ≈ 0.2 KB per update, the same for every system); native (uWS, C++) memory is not counted.',
      '',
    );
  }
  if (doc.ratios.uws) {
    md.push(
      `tickfan delivered **${withSpread(doc, 'ratios.uws.updatesPerPeerFrame', fmtRatio)}** as many updates per second as raw uWebSockets.js delivered frames ` +
        `(the transport's per-frame ceiling), ${fmtRatio(doc.ratios.uws.sustained)} its deliveries; ` +
        (doc.ratios.sio ? `**${fmtRatio(doc.ratios.sio.sustained)}** Socket.IO's.` : ''),
      '',
    );
  }
  md.push(targetsTable(doc.targets), '');
  md.push(deliveryNote(doc), '');
  const cn = curveNote(doc);
  if (cn) md.push(cn, '', `![p99 against delivered updates/s](${LATENCY_THROUGHPUT_SVG})`, '');
  if (doc.analysis) md.push(doc.analysis, '');
  md.push('<details><summary>Every step</summary>', '');
  const stepRows = [];
  for (const k of order) {
    for (const s of doc.systems[k].steps) {
      stepRows.push([
        s.round ? `${doc.systems[k].name} (round ${s.round})` : doc.systems[k].name,
        fmtSi(s.offeredRate),
        fmtSi(s.publishedPerSec),
        fmtSi(s.deliveriesPerSec),
        `${(s.deliveryRatio * 100).toFixed(0)}%`,
        s.updatesPerFrame.toFixed(1),
        fmtUs(s.latencyUs.p50),
        fmtUs(s.latencyUs.p99),
        fmtUs(s.latencyUs.max),
        fmtPct(s.serverCpuPct),
        fmtPct(s.loadgenCpuPct),
        fmtPct(s.otherCpuPct),
        s.ok ? 'ok' : s.breakdown.join('; '),
      ]);
    }
  }
  md.push(mdTable(['system', 'updates/s asked', 'published/s', 'deliveries/s', 'delivered', 'upd/frame', 'p50', 'p99', 'max', 'server CPU', 'load-gen CPU', 'other CPU', 'verdict'], stepRows), '');
  md.push('CPU: 100% = one core. "other CPU" = processes other than the server and the load generator (a test suite running beside the benchmark, say); steps where it passed 20% were measured again.', '', '</details>');

  const color = COLORS;
  const bars = barChart({
    title: `Max sustained deliveries/s — ${p.subscribers.toLocaleString('en-US')} subscribers × ${Math.min(p.topicsPerSub, p.topics)} hot topics`,
    subtitle: `${doc.machine.cores} cores, same run, same payload; log scale`,
    log: true,
    fmt: fmtSi,
    rows: order.map((k) => ({
      label: doc.systems[k].name,
      value: doc.systems[k].best?.deliveriesPerSec ?? NaN,
      color: color[k],
      text: doc.systems[k].best ? `${fmtSi(doc.systems[k].best.deliveriesPerSec)}/s${k !== 'tickfan' && doc.ratios[k] ? `  (tickfan ${fmtRatio(doc.ratios[k].sustained)})` : ''}` : 'no step passed',
    })),
  });
  const lines = lineChart({
    title: 'p99 latency as the offered load grows',
    subtitle: 'hollow points: the step broke down',
    ...p99Axes(p.maxP99Ms),
    series: order.map((k) => {
      const steps = [...doc.systems[k].steps].sort((a, b) => a.offeredRate - b.offeredRate);
      return {
        name: doc.systems[k].name,
        color: color[k],
        points: steps.map((s) => [s.deliveriesPerSec, s.latencyUs.p99, s.ok]),
        bad: (pt) => pt[2] === false,
      };
    }),
  });
  const best = doc.systems.tickfan?.best;
  const headline = best
    ? `tickfan ${fmtSi(best.deliveriesPerSec)} updates/s delivered` +
      (best.serverAlloc?.bytesPerUpdate != null ? ` (${fmtBytesShort(best.serverAlloc.bytesPerUpdate)} heap allocated per update, ${best.serverAlloc.gcPerMDeliveries.toFixed(1)} GCs per M deliveries)` : '') +
      (doc.repeats > 1 ? ` (median of ${doc.repeats})` : '') +
      (doc.ratios.uws ? `; ${fmtRatio(doc.ratios.uws.updatesPerPeerFrame)} raw uWS frames/s` : '') +
      (doc.ratios.sio ? `; ${fmtRatio(doc.ratios.sio.sustained)} Socket.IO` : '') +
      ['nats', 'mosquitto'].filter((k) => doc.ratios[k]).map((k) => `; ${fmtRatio(doc.ratios[k].sustained)} ${SYSTEM_NAMES[k]}`).join('')
    : 'no tickfan step passed';
  // Every system's p99 against delivered updates/s, from this one run (the README's chart).
  const files = { [LATENCY_THROUGHPUT_SVG]: latencyThroughputSvg(doc) };
  return { md: md.join('\n'), svg: stack([bars, lines]), headline, files };
}
