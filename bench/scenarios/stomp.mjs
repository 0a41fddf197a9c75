// stomp — deliveries per second to STOMP subscribers (/stomp: a text frame
// with JSON body per subscriber per update) against native subscribers (/ws,
// protocol 1: one encoding per channel, published natively) on the
// same fan-out: N subscribers of a hot set of topics, fed at fixed update
// rates by the server's in-process publisher. Per cell: deliveries/s received
// against those due, publish → receive latency (µs, HDR), server CPU and its
// cost per thousand deliveries. One protocol per cell on a fresh server;
// rounds interleaved, medians reported.
//
// Processes: the server (servers/tickfan.mjs) and the subscribers (this file,
// forked with TICKFAN_STOMP_ROLE set), so the server's CPU is read apart.

import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { fmtInt, fmtPct, fmtSi, fmtUs, layout, progress, sleep, topicNames, waitQuiet } from '../lib/common.mjs';
import { COLORS, barChart, stack } from '../lib/chart.mjs';
import { mdTable } from '../lib/report.mjs';
import { procUsage, startServerProc, serveCommands } from '../lib/procs.mjs';

export const meta = {
  name: 'stomp',
  title: 'STOMP against the native protocol',
  question: 'How many deliveries per second reach STOMP subscribers, against native subscribers of the same fan-out, at what latency and server CPU?',
  defaults: {
    protocols: 'native,stomp',
    subscribers: 200,
    topics: 10,
    topicsPerSub: 10,
    fields: 4,
    rates: [250, 1000],
    warmupMs: 1500,
    windowMs: 3000,
    sampleEvery: 16,
    repeat: 2,
  },
  quick: { subscribers: 50, rates: [250], warmupMs: 500, windowMs: 1000, repeat: 1 },
  options: {
    protocols: 'subscriber protocols to measure: native (protocol 1 over /ws), stomp (STOMP 1.2 over /stomp)',
    subscribers: 'subscriber connections',
    topics: 'hot topics published round-robin',
    topicsPerSub: 'topics each subscriber subscribes to (one subscription each)',
    fields: 'payload fields per update besides the timestamp',
    rates: 'update rates to measure (comma-separated: one cell each, deliveries due = rate × subscribers per topic)',
    warmupMs: 'publishing before each measured window (not recorded)',
    windowMs: 'measured window per cell',
    sampleEvery: 'latency of one delivery in N is recorded',
    repeat: 'rounds of every cell, interleaved (medians and spread reported)',
  },
};

// ------------------------------------------------------------ the subscribers (this file, forked)

const ROLE = process.env.TICKFAN_STOMP_ROLE;
if (ROLE) await subscribers();

async function subscribers() {
  const { default: WebSocket } = await import('ws');
  const hdr = (await import('hdr-histogram-js')).default;
  const { HIST, summarize } = await import('../lib/loadgen.mjs');
  const closers = [];
  let recording = false;
  let count = 0;
  let seen = 0;
  let images = 0;
  let closes = 0;
  let hist = hdr.build(HIST);
  let sampleEvery = 16;
  /** One delivery; `t` (the publish time, CLOCK_MONOTONIC ns) is read only for sampled ones. */
  const delivered = (readT) => {
    if (!recording) return;
    count++;
    if (++seen % sampleEvery !== 0) return;
    const t = readT();
    if (Number.isFinite(t)) hist.recordValue(Math.max(1, Math.round((Number(process.hrtime.bigint()) - t) / 1000)));
  };

  // A raw protocol-1 client (no SDK work: decoding only what is sampled), so both sides count as cheaply.
  const proto = await import('../../dist/protocol/index.js');
  const enc = new proto.Encoder();
  const openNative = (port, topics) =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
      closers.push(() => ws.terminate());
      let imaging = topics.length;
      ws.on('error', reject);
      ws.on('close', () => closes++);
      ws.on('open', () => {
        ws.send(enc.subscribe(1, topics, 0, [], []));
        resolve();
      });
      ws.on('message', (data) => {
        proto.splitMessages(data, proto.SERVER_FRAME_HEADER, (raw) => {
          // Until its snapshots are in, every message is decoded; after that only sampled ones.
          if (imaging > 0) {
            if (proto.decodeMessage(raw).type === 'snapshot') imaging--, images++;
            return;
          }
          delivered(() => {
            const m = proto.decodeMessage(raw);
            return m.type === 'delta' ? Number(m.changes.get('t')) : NaN;
          });
        });
      });
    });

  const openStomp = (port, topics) =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/stomp`, ['v12.stomp']);
      closers.push(() => ws.terminate());
      const started = new Set();
      ws.on('error', reject);
      ws.on('close', () => closes++);
      ws.on('open', () => {
        ws.send('CONNECT\naccept-version:1.2\nheart-beat:0,0\n\n\0');
        topics.forEach((t, i) => ws.send(`SUBSCRIBE\nid:${i}\ndestination:/topic/${t}\n\n\0`));
        resolve();
      });
      // The server writes one frame per WebSocket message: no stream parser needed to count them.
      ws.on('message', (data) => {
        if (data[0] !== 0x4d /* M */) return;
        const text = () => data.toString('utf8');
        // The first MESSAGE of each subscription is its snapshot.
        const sub = /\nsubscription:(\d+)\n/.exec(data.toString('latin1', 0, 200))?.[1];
        if (!started.has(sub)) return started.add(sub), images++;
        delivered(() => {
          const s = text();
          return JSON.parse(s.slice(s.indexOf('\n\n') + 2, -1)).t;
        });
      });
    });

  const handlers = {
    connect: async ({ port, protocol, clients, every }) => {
      sampleEvery = every;
      for (const { topics } of clients) await (protocol === 'stomp' ? openStomp(port, topics) : openNative(port, topics));
      const want = clients.reduce((n, c) => n + c.topics.length, 0);
      const t0 = Date.now();
      while (images < want) {
        if (Date.now() - t0 > 30_000) throw new Error(`${images} of ${want} snapshots after 30 s`);
        await sleep(20);
      }
      return { connections: clients.length, subscriptions: want };
    },
    start: () => {
      count = 0;
      hist = hdr.build(HIST);
      recording = true;
      return { at: performance.now(), cpu: process.cpuUsage() };
    },
    stop: () => {
      recording = false;
      return { deliveries: count, latencyUs: summarize(hist), closes, cpu: process.cpuUsage() };
    },
    exit: () => {
      for (const c of closers) c();
      setTimeout(() => process.exit(0), 50);
      return { exiting: true };
    },
  };
  serveCommands(handlers);
  process.send({ type: 'ready' });
}

// ------------------------------------------------------------ the parent side

const kids = new Set();
process.on('exit', () => {
  for (const k of kids) k.kill('SIGKILL');
});

async function forkSubscribers() {
  const proc = fork(fileURLToPath(import.meta.url), [], { env: { ...process.env, TICKFAN_STOMP_ROLE: 'subscribers' }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  kids.add(proc);
  const pending = new Map();
  let nextId = 1;
  let exited = false;
  await new Promise((resolve, reject) => {
    proc.on('message', (m) => {
      if (m?.type === 'ready') return resolve();
      const p = pending.get(m?.id);
      if (!p) return;
      pending.delete(m.id);
      if (m.error) p.reject(new Error(`subscribers: ${m.error}`));
      else p.resolve(m.result);
    });
    proc.on('exit', (code, signal) => {
      exited = true;
      kids.delete(proc);
      const err = new Error(`subscribers process exited (${signal ?? code})`);
      reject(err);
      for (const p of pending.values()) p.reject(err);
      pending.clear();
    });
    setTimeout(() => reject(new Error('subscribers process did not start within 15 s')), 15_000).unref();
  });
  const ask = (cmd, args = {}, timeoutMs = 60_000) =>
    new Promise((resolve, reject) => {
      if (exited) return reject(new Error('subscribers process has exited'));
      const id = nextId++;
      const t = setTimeout(() => (pending.delete(id), reject(new Error(`subscribers: "${cmd}" got no answer in ${timeoutMs} ms`))), timeoutMs);
      pending.set(id, { resolve: (v) => (clearTimeout(t), resolve(v)), reject: (e) => (clearTimeout(t), reject(e)) });
      proc.send({ id, cmd, args });
    });
  const stop = async () => {
    if (exited) return;
    await ask('exit', {}, 3_000).catch(() => {});
    const t = setTimeout(() => proc.kill('SIGKILL'), 3_000);
    await new Promise((r) => (exited ? r() : proc.once('exit', r)));
    clearTimeout(t);
  };
  return { pid: proc.pid, ask, stop };
}

/** One cell: a fresh server, the subscribers of one protocol, one update rate, one measured window. */
async function measureCell(o, ctx, protocol, rate) {
  await waitQuiet(5_000);
  const topics = topicNames(o.topics, 'px.S');
  const clients = layout(o.subscribers, topics, o.topicsPerSub);
  const subsPerTopic = (o.subscribers * Math.min(o.topicsPerSub, o.topics)) / o.topics;
  const server = await startServerProc('tickfan', { options: ctx.serverOptions, profileDir: ctx.profileDir });
  let subs;
  try {
    await server.ask('seed', { topics, fields: o.fields });
    subs = await forkSubscribers();
    await subs.ask('connect', { port: server.port, protocol, clients, every: o.sampleEvery }, 120_000);
    await server.ask('publish', { rate, topics, fields: o.fields, durationMs: o.warmupMs + o.windowMs + 5_000 });
    await sleep(o.warmupMs);
    const before = await server.ask('counters');
    const s0 = procUsage(server.pid);
    const start = await subs.ask('start');
    await sleep(o.windowMs);
    const end = await subs.ask('stop');
    const s1 = procUsage(server.pid);
    const after = await server.ask('counters');
    await server.ask('stop');
    const ms = o.windowMs;
    const published = after.published - before.published;
    const stat = (k) => (after.stats[k] ?? 0) - (before.stats[k] ?? 0);
    const serverCpuPct = ((s1.cpuSec - s0.cpuSec) * 1000 * 100) / ms;
    const deliveriesPerSec = end.deliveries / (ms / 1000);
    const rec = {
      protocol,
      rate,
      publishedPerSec: published / (ms / 1000),
      deliveriesPerSec,
      dueRatio: published ? end.deliveries / (published * subsPerTopic) : 0,
      latencyUs: end.latencyUs,
      serverCpuPct,
      serverCpuUsPer1k: end.deliveries ? ((s1.cpuSec - s0.cpuSec) * 1e6 * 1000) / end.deliveries : NaN,
      subscribersCpuPct: ((end.cpu.user + end.cpu.system - start.cpu.user - start.cpu.system) / 1000 / ms) * 100,
      serverBytesOut: stat('bytesOut'),
      slowLaneEntries: stat('slowLaneEntries'),
      slowDisconnects: stat('slowDisconnects'),
      closes: end.closes,
    };
    progress(
      `  ${protocol.padEnd(6)} ${String(rate).padStart(5)} updates/s → ${fmtSi(deliveriesPerSec)} deliveries/s (${(rec.dueRatio * 100).toFixed(1)}% of due), ` +
        `p50 ${fmtUs(rec.latencyUs.p50)} p99 ${fmtUs(rec.latencyUs.p99)}; server CPU ${fmtPct(serverCpuPct)} (${rec.serverCpuUsPer1k.toFixed(0)} µs per 1k deliveries), ` +
        `subscribers ${fmtPct(rec.subscribersCpuPct)}` +
        (rec.slowLaneEntries || rec.slowDisconnects || rec.closes ? `; slow lane ${rec.slowLaneEntries}, slow closes ${rec.slowDisconnects}, closes ${rec.closes}` : ''),
    );
    return rec;
  } finally {
    await subs?.stop();
    await server.stop();
  }
}

function median(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export async function run(o, ctx) {
  const protocols = String(o.protocols).split(',').map((p) => p.trim()).filter(Boolean);
  for (const p of protocols) if (p !== 'native' && p !== 'stomp') throw new Error(`--protocols: ${p} is neither native nor stomp`);
  const rates = [].concat(o.rates).map(Number);
  progress(
    `stomp: ${o.subscribers} subscribers × ${Math.min(o.topicsPerSub, o.topics)} of ${o.topics} topics, ${o.fields} fields, rates ${rates.join(', ')}/s, ` +
      `${protocols.join(' vs ')}; ${o.warmupMs / 1000} s warm-up + ${o.windowMs / 1000} s per cell, ${o.repeat} rounds interleaved`,
  );
  const cells = new Map();
  for (let r = 0; r < o.repeat; r++) {
    // The protocol order alternates each round: drift over the run lands on both alike.
    const order = r % 2 ? [...protocols].reverse() : protocols;
    for (const rate of rates) {
      for (const p of order) {
        const key = `${p}@${rate}`;
        if (!cells.has(key)) cells.set(key, []);
        cells.get(key).push(await measureCell(o, ctx, p, rate));
      }
    }
  }
  const results = [...cells.values()].map((runs) => {
    const pick = (f) => median(runs.map(f));
    return {
      protocol: runs[0].protocol,
      rate: runs[0].rate,
      deliveriesPerSec: pick((x) => x.deliveriesPerSec),
      dueRatio: pick((x) => x.dueRatio),
      p50Us: pick((x) => x.latencyUs.p50),
      p99Us: pick((x) => x.latencyUs.p99),
      serverCpuPct: pick((x) => x.serverCpuPct),
      serverCpuUsPer1k: pick((x) => x.serverCpuUsPer1k),
      subscribersCpuPct: pick((x) => x.subscribersCpuPct),
      slowLaneEntries: runs.reduce((a, x) => a + x.slowLaneEntries, 0),
      runs,
    };
  });
  return { results, targets: [] };
}

// ------------------------------------------------------------ rendering

export function render(doc) {
  const p = doc.params;
  const md = [];
  md.push(
    `${p.subscribers} subscribers over loopback, each subscribed to ${Math.min(p.topicsPerSub, p.topics)} of ${p.topics} topics, fed by the server's in-process publisher ` +
      `(${p.fields} number fields + a timestamp per update, round-robin over the topics). **native**: protocol 1 over \`/ws\` (the server encodes each update once per channel and publishes it natively to every subscriber). ` +
      `**stomp**: STOMP 1.2 over \`/stomp\`, one text MESSAGE frame per subscription per update (headers per connection, the JSON body made once per update). ` +
      `Same server, same fan-out, one protocol per cell on a fresh server; ${p.warmupMs / 1000} s warm-up, ${p.windowMs / 1000} s window, ${p.repeat} rounds, medians. ` +
      `Both subscribers are raw clients in one process that count what arrives and decode one delivery in ${p.sampleEvery} for its latency (publish → receive), ` +
      `so the comparison is of the server's work (native deliveries include the protocol's heartbeats, one per connection per ${'`heartbeatMs`'}).`,
    '',
  );
  md.push(
    mdTable(
      ['protocol', 'updates/s', 'deliveries/s', 'of due', 'p50', 'p99', 'server CPU', 'server µs per 1k deliveries', 'subscribers CPU', 'slow-lane entries'],
      doc.results.map((r) => [
        r.protocol,
        fmtInt(r.rate),
        fmtSi(r.deliveriesPerSec),
        `${(r.dueRatio * 100).toFixed(1)}%`,
        fmtUs(r.p50Us),
        fmtUs(r.p99Us),
        fmtPct(r.serverCpuPct),
        Number.isFinite(r.serverCpuUsPer1k) ? fmtInt(Math.round(r.serverCpuUsPer1k)) : '–',
        fmtPct(r.subscribersCpuPct),
        fmtInt(r.slowLaneEntries),
      ]),
    ),
    '',
  );
  const color = (proto) => (proto === 'native' ? COLORS.tickfan : COLORS.b);
  const bars = barChart({
    title: 'Deliveries per second',
    subtitle: `${p.subscribers} subscribers, ${Math.min(p.topicsPerSub, p.topics)} topics each`,
    fmt: fmtSi,
    rows: doc.results.map((r) => ({ label: `${r.protocol} @ ${fmtInt(r.rate)}/s`, value: r.deliveriesPerSec, color: color(r.protocol), text: `${fmtSi(r.deliveriesPerSec)}/s` })),
  });
  const cpu = barChart({
    title: 'Server CPU per 1 000 deliveries (µs)',
    fmt: (v) => `${Math.round(v)} µs`,
    rows: doc.results.map((r) => ({ label: `${r.protocol} @ ${fmtInt(r.rate)}/s`, value: r.serverCpuUsPer1k, color: color(r.protocol) })),
  });
  const by = (proto) => doc.results.filter((r) => r.protocol === proto);
  const native = by('native').at(-1);
  const stompR = by('stomp').at(-1);
  const headline =
    native && stompR
      ? `at ${fmtInt(stompR.rate)} updates/s: STOMP ${fmtSi(stompR.deliveriesPerSec)} deliveries/s (${Math.round(stompR.serverCpuUsPer1k)} µs server CPU per 1k) vs native ${fmtSi(native.deliveriesPerSec)} (${Math.round(native.serverCpuUsPer1k)} µs per 1k)`
      : doc.results.map((r) => `${r.protocol} ${fmtSi(r.deliveriesPerSec)} deliveries/s`).join('; ');
  return { md: md.join('\n'), svg: stack([bars, cpu]), headline };
}
