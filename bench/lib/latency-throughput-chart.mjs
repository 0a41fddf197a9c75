// The chart of p99 latency against delivered updates/s for every system of
// a fan-out result (the ramp's steps grouped by offered rate, medians over
// rounds: peer-report.mjs#curves), as an SVG and as ASCII. The fanout
// scenario writes the SVG with its results (fanout-latency-throughput.svg);
// bench/latency-throughput.mjs redraws both from any fanout.json.

import { COLORS, lineChart } from './chart.mjs';
import { fmtSi, fmtUs } from './common.mjs';
import { curves } from './peer-report.mjs';
import { SYSTEM_NAMES } from './peers.mjs';

export const LATENCY_THROUGHPUT_SVG = 'fanout-latency-throughput.svg';

/** The axes every p99-against-deliveries chart shares (this one and fanout.svg's every-step chart): log-log, the breakdown limit marked. */
export function p99Axes(maxP99Ms) {
  return {
    xLog: true,
    yLog: true,
    xLabel: 'deliveries per second achieved',
    yLabel: 'p99 publish → receive',
    xFmt: fmtSi,
    yFmt: fmtUs,
    refs: [{ y: maxP99Ms * 1000, label: `breakdown limit ${maxP99Ms} ms` }],
  };
}

/** The SVG: one line per system, log-log, hollow points where the step broke down. */
export function latencyThroughputSvg(doc) {
  const c = curves(doc);
  const p = doc.params;
  return lineChart({
    title: `p99 against delivered updates/s — ${p.subscribers.toLocaleString('en-US')} subscribers × ${Math.min(p.topicsPerSub, p.topics)} of ${p.topics} topics`,
    subtitle: `${doc.machine.cores} cores, tickfan ${doc.machine.commit}, ${doc.repeats > 1 ? `median of ${doc.repeats} rounds` : 'one round'}; hollow: the step broke down; lower and further right is better`,
    ...p99Axes(p.maxP99Ms),
    series: Object.keys(c).map((k) => ({
      name: SYSTEM_NAMES[k],
      color: COLORS[k],
      points: c[k].filter((x) => x.p99 > 0).map((x) => [x.deliveriesPerSec, x.p99, x.ok]),
      bad: (pt) => pt[2] === false,
    })),
  });
}

const LETTER = { tickfan: 'T', uws: 'U', sio: 'S', nats: 'N', mosquitto: 'M' };

/** The same curves as text lines (W × H characters): upper case held, lower case broke down, * several. */
export function latencyThroughputAscii(doc, W = 64, H = 18) {
  const c = curves(doc);
  const order = Object.keys(c);
  const pts = order.flatMap((k) => c[k].filter((x) => x.p99 > 0 && x.deliveriesPerSec > 0).map((x) => ({ k, ...x })));
  if (pts.length === 0) return ['(no step with a p99 and deliveries)'];
  const lx = pts.map((x) => Math.log10(x.deliveriesPerSec));
  const ly = pts.map((x) => Math.log10(x.p99));
  const [x0, x1] = [Math.floor(Math.min(...lx)), Math.ceil(Math.max(...lx))];
  const [y0, y1] = [Math.floor(Math.min(...ly)), Math.ceil(Math.max(...ly))];
  const grid = Array.from({ length: H }, () => Array(W).fill(' '));
  for (const x of pts) {
    const col = Math.min(W - 1, Math.round(((Math.log10(x.deliveriesPerSec) - x0) / (x1 - x0 || 1)) * (W - 1)));
    const row = H - 1 - Math.min(H - 1, Math.round(((Math.log10(x.p99) - y0) / (y1 - y0 || 1)) * (H - 1)));
    const ch = x.ok ? LETTER[x.k] : LETTER[x.k].toLowerCase();
    grid[row][col] = grid[row][col] === ' ' || grid[row][col] === ch ? ch : '*';
  }
  const lines = [`p99 (log) against delivered updates/s (log); ${order.map((k) => `${LETTER[k]} ${SYSTEM_NAMES[k]}`).join(', ')}; lower case: broke down; *: several`];
  grid.forEach((r, i) => {
    const label = i === 0 ? fmtUs(10 ** y1) : i === H - 1 ? fmtUs(10 ** y0) : '';
    lines.push(`${label.padStart(8)} |${r.join('')}`);
  });
  lines.push(`${''.padStart(8)} +${'-'.repeat(W)}`);
  lines.push(`${''.padStart(9)}${fmtSi(10 ** x0).padEnd(W - 6)}${fmtSi(10 ** x1)}`);
  return lines;
}
