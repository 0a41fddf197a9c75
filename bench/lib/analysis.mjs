// Plain-language notes on what limited a scenario, derived from its own
// numbers (which side's CPU was full, what the kernel counters and the
// server's event loop said), so a missed target comes with its reason.

import { fmtBytes, fmtInt, fmtPct, fmtSi, fmtUs } from './common.mjs';

function cpuSplit(r) {
  return `server ${fmtPct(r.serverCpuPct)}, load generator ${fmtPct(r.loadgenCpuPct)}, kernel network work ${fmtPct(r.kernelIrqCpuPct)}${r.otherCpuPct > 20 ? `, other processes ${fmtPct(r.otherCpuPct)}` : ''} (of ${200}% on 2 cores)`;
}

export function fanoutNotes(doc) {
  const out = [];
  for (const s of Object.values(doc.systems)) {
    const sorted = [...s.steps].sort((a, b) => a.offeredRate - b.offeredRate);
    const fail = sorted.find((x) => !x.ok && x.offeredRate > (s.best?.offeredRate ?? 0));
    if (!s.best) {
      out.push(`- **${s.name}**: no step passed.`);
      continue;
    }
    const b = s.best;
    let line = `- **${s.name}** held ${fmtSi(b.deliveriesPerSec)} deliveries/s (${b.updatesPerFrame.toFixed(1)} updates per WebSocket frame, ${fmtSi(b.framesPerSec)} frames/s) with CPU ${cpuSplit(b)}.`;
    if (fail) line += ` At ${fmtSi(fail.offeredRate)} updates/s it broke down: ${fail.breakdown.join('; ')}; CPU ${cpuSplit(fail)}.`;
    else if (!s.saturated) line += ' The ramp hit its step limit before any step broke down.';
    out.push(line);
  }
  out.push(
    '',
    'On this machine the server, the load generator and the kernel\'s loopback TCP work share two cores: when their CPU adds up to ≈ 200% the machine, not one side, is the limit, and the system that needs fewer frames (and so fewer system calls and wake-ups on both sides) per update delivers more.',
  );
  return out.join('\n');
}

export function latencyNotes(doc) {
  const out = [];
  for (const s of Object.values(doc.systems)) {
    for (const r of s.runs) {
      out.push(
        `- **${s.name}** at ${fmtSi(r.offeredRate)} updates/s: server event loop delayed up to ${r.serverLoopDelayMs.maxMs.toFixed(1)} ms; ` +
          `${r.serverGc.count} GCs took ${Math.round(r.serverGc.ms)} ms, the longest pause ${r.serverGc.maxPauseMs.toFixed(1)} ms; CPU ${cpuSplit(r)}.`,
      );
    }
  }
  return out.join('\n');
}

export function connectionsNotes(doc) {
  const out = [];
  for (const s of Object.values(doc.systems)) {
    const heap = Number.isFinite(s.heapBytesPerConn) ? `of which ${fmtBytes(s.heapBytesPerConn)} is live JavaScript heap` : 'a native process (no JavaScript heap)';
    out.push(`- **${s.name}**: ${fmtBytes(s.bytesPerConn)} RSS per connection, ${heap}; ${fmtInt(s.connections)} connections held${s.failed ? `, ${s.failed} failed (${s.lastError})` : ''}.`);
  }
  if (doc.capped) out.push(`- The count stopped at ${fmtInt(doc.cap)} because each side needs a descriptor per connection and this machine's hard open-file limit is ${doc.fdLimit.hard}.`);
  return out.join('\n');
}

export function stormNotes(doc) {
  const out = [];
  for (const s of doc.storms) {
    out.push(
      `- **${s.label}**: TCP connects completed p50 ${fmtUs(s.connectedUs.p50)} / last ${fmtUs(s.connectedUs.max)} after the drop; the kernel counted ${fmtInt(s.tcp.listenOverflows)} accept-queue overflows and ${fmtInt(s.tcp.synRetrans)} SYN retransmissions; ` +
        `from each client's own first attempt to current: p50 ${fmtUs(s.ownUs.p50)}, p99 ${fmtUs(s.ownUs.p99)}; server CPU ${fmtPct(s.serverCpuPct)} over the storm.`,
    );
  }
  for (const s of doc.floor ?? []) {
    out.push(
      `- **raw uWS floor, jitter ${s.jitterMs} ms${s.mode === 'fresh' ? ' (as fresh)' : ''}**: TCP connects completed p50 ${fmtUs(s.connectedUs.p50)} / last ${fmtUs(s.connectedUs.max)}; ${fmtInt(s.tcp.listenOverflows)} accept-queue overflows, ${fmtInt(s.tcp.synRetrans)} SYN retransmissions; ` +
        `every subscription acknowledged after ${s.subscribedUs?.max ? fmtUs(s.subscribedUs.max) : '–'}, every client with a message after ${fmtUs(s.allCurrentMs * 1000)}; server CPU ${fmtPct(s.serverCpuPct)}.`,
    );
  }
  out.push(
    '',
    'A dropped SYN is retried by the client\'s kernel after 1 s, then 3 s, 7 s …: when the accept queue overflows, completion times cluster at those marks, whatever the server does afterwards.',
  );
  return out.join('\n');
}

export function slowNotes(doc) {
  return doc.runs
    .filter((r) => r.stalled)
    .map((r) => `- **${fmtInt(r.stalled)} stalled**: ${r.pre.inSlowLane} slow-lane entries ${(r.pre.slowLaneMs / 1000).toFixed(1)} s after the warm-up (the kernel's socket buffers absorb the first megabytes); fast readers' CPU split: ${cpuSplit(r)}.`)
    .join('\n');
}

export function wireNotes(doc) {
  const out = [];
  const d = doc.deflate;
  const demo = doc.bytes?.demo;
  if (d) {
    for (const [k, v] of Object.entries(d.verdict)) {
      out.push(`- **${k.replace('/', ', ')}**: compression added ${v.smallUs?.toFixed(2)} µs of server CPU per delivery with ${fmtInt(d.subscribers[0])} subscriber per frame and ${v.largeUs?.toFixed(2)} µs with ${fmtInt(d.subscribers.at(-1))} (ratio ${v.ratio?.toFixed(2)}): ${v.perSubscriber ? 'uWebSockets.js compresses each subscriber\'s copy of a published frame: the cost grows with deliveries (updates × subscribers), not with updates' : 'the cost is shared by the subscribers of a frame'}.`);
    }
    const big = d.table.find((t) => t.protocol === 2 && t.subscribers === d.subscribers.at(-1));
    if (big) {
      const rate = (m) => (big.modes[m] ? 1e6 / big.modes[m].cpuUsPerDelivery.median : NaN);
      const mem = (m) => (d.memory[m] && d.memory.off ? (d.memory[m].rssPerConnection - d.memory.off.rssPerConnection) / 1024 : NaN);
      out.push(
        `- **What it costs at fan-out scale** (protocol 2, ${fmtInt(big.subscribers)} subscribers per frame, one update per frame): one core of this machine delivers ≈ ${fmtSi(rate('off'))} updates/s uncompressed, ${fmtSi(rate('shared'))} with the shared compressor, ${fmtSi(rate('dedicated'))} with the dedicated one; ` +
          `the dedicated compressor also holds ${mem('dedicated').toFixed(0)} KiB more per connection (shared: ${mem('shared').toFixed(0)} KiB).`,
      );
    }
  }
  if (demo) {
    const p2 = demo.forms.p2.bytesPerUpdate.median;
    const sh = demo.forms['p2+shared']?.bytesPerUpdate.median;
    const de = demo.forms['p2+dedicated']?.bytesPerUpdate.median;
    out.push(
      `- **What it gives** (demo feed, protocol 2): ${p2.toFixed(1)} → ${sh?.toFixed(1)} B per update with the shared compressor (${((1 - sh / p2) * 100).toFixed(0)}% less: each small delta is deflated alone), → ${de?.toFixed(1)} B with the dedicated one (${((1 - de / p2) * 100).toFixed(0)}% less: its window holds the previous deltas). ` +
        'Worth it where the client\'s bandwidth is the limit (mobile, metered or long-haul links) and subscribers per server are few; not for raw fan-out throughput, where it multiplies the server\'s CPU per delivery. Protocol 1 clients gain more from it (their deltas repeat every field name).',
    );
  }
  return out.join('\n');
}
