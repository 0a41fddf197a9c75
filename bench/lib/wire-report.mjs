// The wire scenario's report (bench/scenarios/wire.mjs): render() turns its
// result into the Markdown tables (bytes per delivered update, CPU per
// update, deflate by subscribers per frame), the SVG charts and the headline;
// fmtNs is also used for run()'s progress lines.

import { fmtRatio, fmtSi } from './common.mjs';
import { COLORS, barChart, lineChart, stack } from './chart.mjs';
import { mdTable, targetsTable } from './report.mjs';

export function fmtNs(ns) {
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
