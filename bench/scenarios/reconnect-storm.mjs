// reconnect-storm — N subscribers dropped at once reconnect (full-jitter
// backoff, as the SDK does) and resume while updates keep flowing: the time
// until every one holds the current version of every topic it follows, and
// how many snapshot encodings the server made per topic (the snapshot cache
// should make that one per topic version, not one per client).
// "resume": clients send the (epoch, version) they hold; "fresh": they
// subscribe anew and need snapshots (as after a page reload).
// The floor: the same clients, dropped the same way, against raw
// uWebSockets.js (servers/uws-raw.mjs, same feed): the time until every one
// has its first message again. tickfan's all-current time is reported as a
// ratio to it (target ≤ 1.5×). Each system gets a fresh server; storms are
// bounded by --deadline-ms each and separated by --settle-ms.

import { fmtInt, fmtRatio, fmtSi, fmtUs, layout, loopbackAddrs, progress, sleep, tcpCounters, tcpDelta, topicNames } from '../lib/common.mjs';
import { COLORS, barChart, stack } from '../lib/chart.mjs';
import { mdTable, targetsTable } from '../lib/report.mjs';
import { SYSTEM_NAMES, setup, teardown } from '../lib/measure.mjs';
import { repeatNote, withSpread } from '../lib/repeat.mjs';

export const meta = {
  name: 'reconnect-storm',
  title: 'Reconnect storm',
  question: 'N subscribers dropped at once reconnect and resume: how long until every one holds the current version, and how many snapshot encodings per topic?',
  defaults: {
    systems: 'tickfan,uws',
    subscribers: 10000,
    topics: 100,
    topicsPerSub: 10,
    rate: 200,
    fields: 4,
    storms: 'resume:100,fresh:100,resume:1000',
    settleMs: 1500,
    deadlineMs: 30000,
    addrs: 4,
    targetMs: 1000,
    floorRatio: 1.5,
    workers: 0,
  },
  quick: { subscribers: 1000, storms: 'resume:100,fresh:100', settleMs: 500 },
  options: {
    systems: 'tickfan, and uws: raw uWebSockets.js as the floor (same clients and storms; time until each has its first message again)',
    subscribers: 'clients dropped at once',
    topics: 'topics',
    topicsPerSub: 'topics per client',
    rate: 'updates/s published throughout (round-robin over the topics)',
    storms: 'storms to run, mode:jitterMs — resume (send held versions) or fresh (subscribe anew: snapshots); each client waits uniform [0, jitterMs] before reconnecting (the SDK\'s first backoff step is 100 ms)',
    deadlineMs: 'give up waiting after this long (per storm)',
    settleMs: 'pause before each storm (the previous one\'s sockets leave TIME_WAIT and the SYN queue)',
    floorRatio: 'target: tickfan all current within this multiple of raw uWS\' all-first-message time',
    addrs: 'loopback source addresses',
  },
};

async function stormSystem(system, o, ctx, topics, clients) {
  const floor = system !== 'tickfan';
  const env = await setup(system, {
    clients,
    topics,
    fields: o.fields,
    workers: o.workers || undefined,
    trackVersions: true,
    addrs: loopbackAddrs(o.addrs),
    connectConcurrency: 400,
    profileDir: ctx.profileDir,
    serverOptions: system === 'tickfan' ? ctx.serverOptions : undefined,
  });
  const storms = [];
  try {
    progress(`  ${SYSTEM_NAMES[system]}: ${fmtInt(env.connect.connected)} clients subscribed in ${(env.connect.ms / 1000).toFixed(1)} s`);
    await env.server.ask('publish', { rate: o.rate, topics, fields: o.fields });
    for (const spec of String(o.storms).split(',')) {
      const [mode, j] = spec.split(':');
      const jitterMs = Number(j ?? 100);
      await sleep(o.settleMs);
      const tcp0 = tcpCounters();
      const before = await env.server.ask('counters');
      const targets = floor ? {} : await env.server.ask('versions', { topics });
      env.server.mark();
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const r = await env.lg.drop({ resume: mode === 'resume', jitterMs, targets, deadlineMs: o.deadlineMs, firstMessage: floor });
      const tcp = tcpDelta(tcp0, tcpCounters());
      const wallMs = performance.now() - t0;
      const after = await env.server.ask('counters');
      const versionsAfter = floor ? {} : await env.server.ask('versions', { topics });
      const sv = env.server.since();
      const cpu = process.cpuUsage(cpu0);
      const d = (k) => (after.stats[k] ?? 0) - (before.stats[k] ?? 0);
      // Versions each topic went through while the storm lasted (+1: the one current at the drop).
      let topicVersions = 0;
      if (!floor) for (const t of topics) topicVersions += versionsAfter[t].version - targets[t].version + 1;
      const s = {
        system,
        mode,
        key: `${mode}:${jitterMs}`,
        label: `${mode}, jitter ${jitterMs} ms`,
        jitterMs,
        tcp,
        connectedUs: r.connectedUs,
        ownUs: r.ownUs,
        upgradedUs: r.upgradedUs,
        subscribedUs: r.subscribedUs,
        clients: r.total,
        current: r.done,
        timedOut: r.timedOut,
        retries: r.retries,
        allCurrentMs: r.timeUs.max / 1000,
        timeUs: r.timeUs,
        wallMs,
        snapshotEncodes: d('snapshotEncodes'),
        snapshotEncodesPerTopic: d('snapshotEncodes') / o.topics,
        snapshotEncodesPerTopicVersion: floor ? 0 : d('snapshotEncodes') / topicVersions,
        topicVersions,
        catchUpSnapshots: d('catchUpSnapshots'),
        catchUpDeltas: d('catchUpDeltas'),
        serverCpuPct: sv.cpuPct,
        serverRss: sv.rss,
        loadgenCpuPct: ((cpu.user + cpu.system) / 1000 / wallMs) * 100,
        serverGcMaxPauseMs: after.gc.maxMs,
        serverLoopDelayMaxMs: after.loopDelay.maxMs,
      };
      storms.push(s);
      progress(
        `  ${system.padEnd(7)} ${`${mode}/${jitterMs}ms`.padEnd(13)} ${fmtInt(s.current)}/${fmtInt(s.clients)} ${floor ? 'have a message again' : 'current'}; all within ${fmtUs(r.timeUs.max)} (p50 ${fmtUs(r.timeUs.p50)}, p99 ${fmtUs(r.timeUs.p99)}); ` +
          (floor ? '' : `${s.snapshotEncodes} snapshot encodings for ${o.topics} topics (${s.snapshotEncodesPerTopicVersion.toFixed(2)} per topic version); catch-ups ${fmtInt(s.catchUpDeltas)} deltas / ${fmtInt(s.catchUpSnapshots)} snapshots; `) +
          `${s.retries} retried connects; server CPU ${Math.round(s.serverCpuPct)}%; ` +
          `from each client's own reconnect p50 ${fmtUs(r.ownUs.p50)} p99 ${fmtUs(r.ownUs.p99)}; TCP connected p50 ${fmtUs(r.connectedUs.p50)} max ${fmtUs(r.connectedUs.max)}, upgraded max ${fmtUs(r.upgradedUs.max)}; accept-queue overflows ${tcp.listenOverflows}, SYN retransmits ${tcp.synRetrans}`,
      );
    }
    await env.server.ask('stop');
  } finally {
    await teardown(env);
  }
  return storms;
}

export async function run(o, ctx) {
  const topics = topicNames(o.topics, 'px.S');
  const clients = layout(o.subscribers, topics, o.topicsPerSub);
  const subsPerTopic = (o.subscribers * Math.min(o.topicsPerSub, o.topics)) / o.topics;
  const systems = String(o.systems).split(',').filter(Boolean);
  const bySystem = {};
  for (const system of systems) {
    progress(`reconnect-storm: ${fmtInt(o.subscribers)} ${SYSTEM_NAMES[system]} clients × ${o.topicsPerSub} of ${o.topics} topics (${subsPerTopic} per topic), ${o.rate} updates/s throughout`);
    bySystem[system] = await stormSystem(system, o, ctx, topics, clients);
  }
  const storms = bySystem.tickfan ?? [];
  const floor = bySystem.uws ?? [];
  // tickfan all current ÷ raw uWS all with a message again, storm by storm (same jitter; uWS has no resume or snapshots, so its mode is moot).
  const floorRatios = {};
  for (const s of storms) {
    const f = floor.find((x) => x.key === s.key) ?? floor.find((x) => x.jitterMs === s.jitterMs);
    if (f) {
      floorRatios[s.key] = {
        ratio: f.allCurrentMs > 0 ? s.allCurrentMs / f.allCurrentMs : null,
        p50Ratio: f.timeUs.p50 > 0 ? s.timeUs.p50 / f.timeUs.p50 : null,
        floorMs: f.allCurrentMs,
        floorTimedOut: f.timedOut,
        // A stricter floor: until every raw uWS client has its subscription acknowledged (no wait for the next publish).
        subscribedRatio: f.subscribedUs?.max > 0 ? s.allCurrentMs / (f.subscribedUs.max / 1000) : null,
        floorSubscribedMs: f.subscribedUs?.max ? f.subscribedUs.max / 1000 : null,
      };
    }
  }
  const targets = [];
  for (const s of storms) {
    const fr = floorRatios[s.key];
    if (fr && fr.ratio !== null) {
      targets.push({
        name: `all current ≤ ${o.floorRatio}× raw uWS' all-first-message time (${s.label})`,
        target: o.floorRatio,
        measured: fr.ratio,
        unit: '×',
        shown: `${fr.ratio.toFixed(2)}× (${fmtUs(s.allCurrentMs * 1000)} vs ${fmtUs(fr.floorMs * 1000)})`,
        met: !s.timedOut && !fr.floorTimedOut && fr.ratio <= o.floorRatio,
      });
    }
    targets.push({
      name: `${fmtInt(s.clients)} clients all current within ${o.targetMs / 1000} s (${s.label})`,
      target: o.targetMs,
      measured: s.allCurrentMs,
      shown: s.timedOut ? `${fmtInt(s.current)} of ${fmtInt(s.clients)} in ${o.deadlineMs / 1000} s` : fmtUs(s.allCurrentMs * 1000),
      met: !s.timedOut && s.allCurrentMs <= o.targetMs,
      note: s.allCurrentMs > o.targetMs ? `${(s.allCurrentMs / o.targetMs).toFixed(2)}× the target` : '',
    });
    targets.push({
      name: `one snapshot encoding per topic version (${s.label})`,
      target: 1,
      measured: s.snapshotEncodesPerTopicVersion,
      shown: `${s.snapshotEncodesPerTopicVersion.toFixed(2)} (${s.snapshotEncodes} for ${s.topicVersions} topic versions)`,
      met: s.snapshotEncodesPerTopicVersion <= 1,
    });
  }
  return { subsPerTopic, storms, floor, floorRatios, targets };
}

export function render(doc) {
  const p = doc.params;
  const md = [];
  md.push(
    `${fmtInt(p.subscribers)} tickfan clients (raw sockets, from ${p.addrs} loopback addresses), each subscribed to ${p.topicsPerSub} of ${p.topics} topics (${doc.subsPerTopic} per topic), ` +
      `${p.rate} updates/s published throughout. All connections are dropped at once; each client reconnects after a delay uniform in [0, jitter] ` +
      `(the SDK's full-jitter backoff; its first step is 100 ms), retrying with doubling jitter on failure, and resubscribes — *resume*: with the (epoch, version) it holds; *fresh*: anew (snapshots). ` +
      `A client is current once it holds, for every topic, at least the version the server had at the moment of the drop. Times run from the drop.`,
    '',
  );
  const floor = doc.floor ?? [];
  if (floor.length) {
    md.push(
      `The floor: the same ${fmtInt(p.subscribers)} clients and storms against raw uWebSockets.js (\`servers/uws-raw.mjs\`, the same feed; no versions, so a client counts once its first message arrives again), on a server of its own. ` +
        `tickfan's time until every client is current is given as a multiple of the floor's time until every client has a message again (target ≤ ${p.floorRatio ?? 1.5}×). ` +
        `The floor's time includes the wait for the next update of one of its topics (each topic is published every ${fmtUs((p.topics / p.rate) * 1e6)} here), which tickfan's snapshots and catch-ups do not wait for; ` +
        `so "all subscribed after" (the last acknowledged subscription: tickfan's Ack, uWS' "ok") is given too, with tickfan's all-current time as a multiple of the floor's. ${repeatNote(doc)}`,
      '',
    );
  } else md.push(repeatNote(doc), '');
  const w = (path, fmt) => withSpread(doc, path, fmt);
  const us = (v) => fmtUs(v);
  const rows = [];
  doc.storms.forEach((s, i) => {
    const fr = doc.floorRatios?.[s.key];
    rows.push([
      `tickfan: ${s.label}`,
      `${fmtInt(s.current)} / ${fmtInt(s.clients)}`,
      w(`storms.${i}.allCurrentMs`, (v) => fmtUs(v * 1000)),
      fr?.ratio != null ? `**${w(`floorRatios.${s.key}.ratio`, fmtRatio)}**` : '–',
      s.subscribedUs?.max ? `${w(`storms.${i}.subscribedUs.max`, us)}${fr?.subscribedRatio != null ? ` (${w(`floorRatios.${s.key}.subscribedRatio`, fmtRatio)})` : ''}` : '–',
      w(`storms.${i}.timeUs.p50`, us),
      w(`storms.${i}.timeUs.p99`, us),
      w(`storms.${i}.connectedUs.max`, us),
      w(`storms.${i}.tcp.listenOverflows`, fmtInt),
      w(`storms.${i}.snapshotEncodes`, fmtInt),
      w(`storms.${i}.snapshotEncodesPerTopicVersion`, (v) => v.toFixed(2)),
      `${fmtInt(s.catchUpDeltas)} / ${fmtInt(s.catchUpSnapshots)}`,
      w(`storms.${i}.serverCpuPct`, (v) => `${Math.round(v)}%`),
    ]);
  });
  floor.forEach((s, i) => {
    rows.push([
      `raw uWS (floor): jitter ${s.jitterMs} ms${s.mode === 'fresh' ? ' (as fresh)' : ''}`,
      `${fmtInt(s.current)} / ${fmtInt(s.clients)}`,
      w(`floor.${i}.allCurrentMs`, (v) => fmtUs(v * 1000)),
      '1× (floor)',
      s.subscribedUs?.max ? w(`floor.${i}.subscribedUs.max`, us) : '–',
      w(`floor.${i}.timeUs.p50`, us),
      w(`floor.${i}.timeUs.p99`, us),
      w(`floor.${i}.connectedUs.max`, us),
      w(`floor.${i}.tcp.listenOverflows`, fmtInt),
      '–',
      '–',
      '–',
      w(`floor.${i}.serverCpuPct`, (v) => `${Math.round(v)}%`),
    ]);
  });
  md.push(
    mdTable(['storm', 'clients current (floor: with a message)', 'all current after (floor: all with a message)', 'tickfan ÷ raw uWS', 'all subscribed after (tickfan ÷ it)', 'p50', 'p99', 'last TCP connect', 'accept-queue overflows', 'snapshot encodings', 'per topic version', 'catch-up deltas / snapshots', 'server CPU'], rows),
    '',
  );
  md.push(targetsTable(doc.targets), '');
  if (doc.analysis) md.push(doc.analysis, '');
  const bars = barChart({
    title: `Reconnect storm: ${fmtInt(p.subscribers)} clients dropped at once — time until current`,
    subtitle: 'from the drop; p50, p99 and the last client',
    fmt: (v) => fmtUs(v * 1000),
    target: { value: p.targetMs, label: `target ${p.targetMs / 1000} s` },
    rows: doc.storms.flatMap((s) => {
      const f = (doc.floor ?? []).find((x) => x.key === s.key) ?? (doc.floor ?? []).find((x) => x.jitterMs === s.jitterMs);
      return [
        { label: `${s.mode}/${s.jitterMs} ms: p50`, value: s.timeUs.p50 / 1000, color: COLORS.c },
        { label: `${s.mode}/${s.jitterMs} ms: p99`, value: s.timeUs.p99 / 1000, color: COLORS.a },
        { label: `${s.mode}/${s.jitterMs} ms: all current`, value: s.allCurrentMs, color: s.allCurrentMs <= p.targetMs ? COLORS.uws : COLORS.sio },
        ...(f ? [{ label: `raw uWS floor, jitter ${f.jitterMs} ms: all with a message`, value: f.allCurrentMs, color: COLORS.uws, text: `${fmtUs(f.allCurrentMs * 1000)} (tickfan ${fmtRatio(s.allCurrentMs / f.allCurrentMs)})` }] : []),
      ];
    }),
  });
  const enc = barChart({
    title: 'Snapshot encodings per topic version during the storm',
    subtitle: `${fmtInt(p.subscribers)} clients, ${p.topics} topics; the snapshot cache should keep this at 1`,
    fmt: (v) => v.toFixed(2),
    target: { value: 1, label: 'target 1' },
    rows: doc.storms.map((s) => ({ label: `${s.mode}/${s.jitterMs} ms`, value: s.snapshotEncodesPerTopicVersion, color: COLORS.tickfan, text: `${s.snapshotEncodesPerTopicVersion.toFixed(2)} (${s.snapshotEncodes} encodings, ${fmtSi(s.catchUpSnapshots)} snapshots sent)` })),
  });
  const r = doc.storms.find((s) => s.mode === 'resume') ?? doc.storms[0];
  const rf = r ? doc.floorRatios?.[r.key] : null;
  const headline = r
    ? `${fmtInt(r.clients)} clients all current ${fmtUs(r.allCurrentMs * 1000)} after the drop (${r.label}${doc.repeats > 1 ? `, median of ${doc.repeats}` : ''})` +
      (rf?.ratio != null ? `, ${fmtRatio(rf.ratio)} raw uWS' ${fmtUs(rf.floorMs * 1000)}` : '') +
      `; ${r.snapshotEncodesPerTopicVersion.toFixed(2)} snapshot encodings per topic version`
    : 'not measured';
  return { md: md.join('\n'), svg: stack([bars, enc]), headline };
}


