#!/usr/bin/env node
// p99 latency against delivered updates/s for every system of a fan-out
// result — the chart the README shows, generated from bench results, never
// drawn by hand. Reads a `fanout.json` (default bench/results/fanout.json;
// every step of every ramp, grouped by offered rate, medians over rounds:
// lib/peer-report.mjs), writes an SVG beside it (`fanout-latency-throughput.svg`,
// or --svg PATH) and prints an ASCII chart and the Markdown table to stdout.
//
//   node bench/latency-throughput.mjs [path/to/fanout.json] [--svg out.svg] [--width 64 --height 18]

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { COLORS, lineChart } from './lib/chart.mjs';
import { fmtSi, fmtUs } from './lib/common.mjs';
import { curves, curveNote } from './lib/peer-report.mjs';
import { SYSTEM_NAMES } from './lib/peers.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const input = resolve(args.find((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--')) ?? join(here, 'results', 'fanout.json'));
const doc = JSON.parse(readFileSync(input, 'utf8'));
const c = curves(doc);
const order = Object.keys(c);
const p = doc.params;

// ------------------------------------------------------------ SVG

const svg = lineChart({
  title: `p99 against delivered updates/s — ${p.subscribers.toLocaleString('en-US')} subscribers × ${Math.min(p.topicsPerSub, p.topics)} of ${p.topics} topics`,
  subtitle: `${doc.machine.cores} cores, tickfan ${doc.machine.commit}, ${doc.repeats > 1 ? `median of ${doc.repeats} rounds` : 'one round'}; hollow: the step broke down; lower and further right is better`,
  xLog: true,
  yLog: true,
  xLabel: 'deliveries per second achieved',
  yLabel: 'p99 publish → receive',
  xFmt: fmtSi,
  yFmt: fmtUs,
  refs: [{ y: p.maxP99Ms * 1000, label: `breakdown limit ${p.maxP99Ms} ms` }],
  series: order.map((k) => ({
    name: SYSTEM_NAMES[k],
    color: COLORS[k],
    points: c[k].filter((x) => x.p99 > 0).map((x) => [x.deliveriesPerSec, x.p99, x.ok]),
    bad: (pt) => pt[2] === false,
  })),
});
const svgPath = resolve(opt('svg', join(dirname(input), 'fanout-latency-throughput.svg')));
writeFileSync(svgPath, svg);

// ------------------------------------------------------------ ASCII

const W = Number(opt('width', 64));
const H = Number(opt('height', 18));
const LETTER = { tickfan: 'T', uws: 'U', sio: 'S', nats: 'N', mosquitto: 'M' };
const pts = order.flatMap((k) => c[k].filter((x) => x.p99 > 0 && x.deliveriesPerSec > 0).map((x) => ({ k, ...x })));
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
const lines = [];
lines.push(`p99 (log) against delivered updates/s (log); ${order.map((k) => `${LETTER[k]} ${SYSTEM_NAMES[k]}`).join(', ')}; lower case: broke down; *: several`);
grid.forEach((r, i) => {
  const label = i === 0 ? fmtUs(10 ** y1 * 1) : i === H - 1 ? fmtUs(10 ** y0) : '';
  lines.push(`${label.padStart(8)} |${r.join('')}`);
});
lines.push(`${''.padStart(8)} +${'-'.repeat(W)}`);
lines.push(`${''.padStart(9)}${fmtSi(10 ** x0).padEnd(W - 6)}${fmtSi(10 ** x1)}`);
console.log(['```', ...lines, '```', '', curveNote(doc), '', `SVG: ${svgPath}`].join('\n'));
