// The wire scenario's part 3 (bench/scenarios/wire.mjs): permessage-deflate
// on the fan-out path. Server CPU and bytes per delivered update with 1, 100
// and 1,000 subscribers of each published frame, compression off / shared /
// dedicated, protocol 1 and 2 — if compression happened once per publish its
// cost per delivery would fall with the subscriber count; if it stays flat,
// every subscriber's copy is compressed.

import { progress, sleep, topicNames } from './common.mjs';
import { startServerProc } from './procs.mjs';
import { WireClients } from './wire-clients.mjs';
import { median, spread } from './wire-stats.mjs';

function rotate(list, by) {
  const k = by % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

/**
 * Compression's cost by subscriber count. One server per compression mode,
 * each with `max(subscribers)` raw clients per protocol (all offering
 * deflate); subscriber groups: every client takes the topics of each group
 * whose size is above its index, so a group-N topic has exactly N subscribers.
 */
export async function deflatePass(o, ctx) {
  const modes = o.modes.split(',');
  const Ns = (Array.isArray(o.subscribers) ? o.subscribers : [o.subscribers]).map(Number).sort((a, b) => a - b);
  const maxN = Ns[Ns.length - 1];
  const protocols = [1, 2];
  const groups = new Map();
  for (const p of protocols) for (const N of Ns) groups.set(`${p}:${N}`, topicNames(N === 1 ? o.deflateTopics * 10 : o.deflateTopics, `z${p}n${N}.T`));
  const specs = [];
  for (const p of protocols) {
    for (let i = 0; i < maxN; i++) specs.push({ protocol: p, deflate: true, topics: Ns.filter((N) => i < N).flatMap((N) => groups.get(`${p}:${N}`)) });
  }
  const member = (p, N) => specs.map((s, i) => (s.protocol === p && i - (p - 1) * maxN < N ? i : -1)).filter((i) => i >= 0);
  const env = {};
  const cleanup = [];
  const cells = [];
  const memory = {};
  try {
    for (const mode of modes) {
      // No heartbeats: their bytes and CPU would land in every cell.
      const server = await startServerProc('tickfan', { options: { ...ctx.serverOptions, compression: mode, heartbeatMs: 3_600_000 } });
      cleanup.push(() => server.stop());
      const rss0 = server.usage().rss;
      await server.ask('seed', { topics: [...groups.values()].flat(), fields: o.fields });
      const clients = new WireClients(server.port, specs);
      cleanup.push(() => clients.close());
      const c = await clients.connect();
      if (c.failed) throw new Error(`deflate/${mode}: ${c.failed} clients failed (${c.error})`);
      // Subscribed when the server counts every Subscribe (then let the snapshots go out).
      for (let t0 = performance.now(); ; ) {
        const { stats } = await server.ask('counters');
        if (stats.subscriptions >= specs.length) break;
        if (performance.now() - t0 > 30_000) throw new Error(`deflate/${mode}: only ${stats.subscriptions} of ${specs.length} subscriptions after 30 s`);
        await sleep(100);
      }
      await sleep(500);
      memory[mode] = { connections: specs.length, rssBytes: server.usage().rss, rssPerConnection: (server.usage().rss - rss0) / specs.length };
      env[mode] = { server, clients, negotiated: c.negotiated, extensions: c.extensions };
      progress(`  deflate: ${mode} server, ${c.connected} clients (${c.negotiated} negotiated permessage-deflate${c.extensions ? `: ${c.extensions}` : ''}), RSS ${(memory[mode].rssPerConnection / 1024).toFixed(1)} KiB per connection`);
    }
    for (let r = 0; r < o.repeat; r++) {
      for (const N of Ns) {
        for (const p of protocols) {
          for (const mode of rotate(modes, r)) {
            const { server, clients } = env[mode];
            const topics = groups.get(`${p}:${N}`);
            const rate = Math.max(1, Math.round(o.deliveries / N));
            await server.ask('publish', { rate, topics, fields: o.fields });
            await sleep(200);
            await clients.reset();
            // CPU from the server process itself (process.cpuUsage(): every thread, µs resolution).
            const before = await server.ask('counters');
            const t0 = performance.now();
            await sleep(o.deflateWindowMs);
            const [after, per] = await Promise.all([server.ask('counters'), clients.collect()]);
            const ms = performance.now() - t0;
            await server.ask('stop');
            let bytes = 0;
            let frames = 0;
            let compressed = 0;
            for (const i of member(p, N)) (bytes += per[i][0]), (frames += per[i][1]), (compressed += per[i][2]);
            const deliveries = after.stats.deliveries - before.stats.deliveries;
            const published = after.published - before.published;
            const cpuSec = (after.cpuUs - before.cpuUs) / 1e6;
            cells.push({
              round: r,
              mode,
              protocol: p,
              subscribers: N,
              rate,
              published,
              publishRatio: published / ((rate * ms) / 1000),
              deliveries,
              deliveriesPerSec: deliveries / (ms / 1000),
              cpuUsPerDelivery: deliveries ? (cpuSec * 1e6) / deliveries : NaN,
              serverCpuPct: (cpuSec * 1000 * 100) / ms,
              bytesPerDelivery: deliveries ? bytes / deliveries : NaN,
              updatesPerFrame: frames ? deliveries / frames : NaN,
              compressedShare: frames ? compressed / frames : 0,
            });
            await sleep(100);
          }
          const last = cells.slice(-modes.length);
          progress(`  deflate round ${r + 1}/${o.repeat}, p${p}, ${N} subscriber${N > 1 ? 's' : ''}: ` + last.map((x) => `${x.mode} ${x.cpuUsPerDelivery.toFixed(2)} µs ${x.bytesPerDelivery.toFixed(1)} B`).join(' | '));
        }
      }
    }
  } finally {
    for (const f of cleanup.reverse()) await Promise.resolve(f()).catch(() => {});
  }
  // Medians per (mode, protocol, N), and compression's extra over "off".
  const table = [];
  for (const p of protocols) {
    for (const N of Ns) {
      const row = { protocol: p, subscribers: N, rate: Math.max(1, Math.round(o.deliveries / N)), modes: {} };
      for (const mode of modes) {
        const xs = cells.filter((c) => c.mode === mode && c.protocol === p && c.subscribers === N);
        row.modes[mode] = {
          cpuUsPerDelivery: spread(xs.map((c) => c.cpuUsPerDelivery)),
          bytesPerDelivery: spread(xs.map((c) => c.bytesPerDelivery)),
          updatesPerFrame: median(xs.map((c) => c.updatesPerFrame)),
          compressedShare: median(xs.map((c) => c.compressedShare)),
          publishRatio: Math.min(...xs.map((c) => c.publishRatio)),
        };
      }
      for (const mode of modes) {
        if (mode === 'off' || !row.modes.off) continue;
        // Per round, against the same round's "off" (interleaved: same conditions), then the median.
        const extra = [];
        for (let r = 0; r < o.repeat; r++) {
          const on = cells.find((c) => c.round === r && c.mode === mode && c.protocol === p && c.subscribers === N);
          const off = cells.find((c) => c.round === r && c.mode === 'off' && c.protocol === p && c.subscribers === N);
          if (on && off) extra.push(on.cpuUsPerDelivery - off.cpuUsPerDelivery);
        }
        row.modes[mode].extraCpuUsPerDelivery = spread(extra);
      }
      table.push(row);
    }
  }
  // Once or per subscriber: the extra cost per delivery at the largest group against the smallest.
  const verdict = {};
  for (const mode of modes.filter((m) => m !== 'off')) {
    for (const p of protocols) {
      const lo = table.find((t) => t.protocol === p && t.subscribers === Ns[0])?.modes[mode]?.extraCpuUsPerDelivery.median;
      const hi = table.find((t) => t.protocol === p && t.subscribers === maxN)?.modes[mode]?.extraCpuUsPerDelivery.median;
      verdict[`${mode}/p${p}`] = { smallUs: lo, largeUs: hi, ratio: hi / lo, perSubscriber: hi / lo > 0.25 };
    }
  }
  const negotiation = Object.fromEntries(Object.entries(env).map(([m, e]) => [m, { negotiated: e.negotiated, extensions: e.extensions }]));
  return { subscribers: Ns, cells, table, verdict, memory, negotiation };
}

