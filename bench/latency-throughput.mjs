#!/usr/bin/env node
// p99 latency against delivered updates/s for every system of a fan-out
// result — the chart the README shows, generated from bench results, never
// drawn by hand. `tickfan bench fanout` writes it with its results; this
// redraws it from any `fanout.json` (default bench/results/fanout.json):
// an SVG beside it (`fanout-latency-throughput.svg`, or --svg PATH), and an
// ASCII chart and the Markdown table on stdout.
//
//   node bench/latency-throughput.mjs [path/to/fanout.json] [--svg out.svg] [--width 64 --height 18]

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LATENCY_THROUGHPUT_SVG, latencyThroughputAscii, latencyThroughputSvg } from './lib/latency-throughput-chart.mjs';
import { curveNote } from './lib/peer-report.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const input = resolve(args.find((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--')) ?? join(here, 'results', 'fanout.json'));
const doc = JSON.parse(readFileSync(input, 'utf8'));
const svgPath = resolve(opt('svg', join(dirname(input), LATENCY_THROUGHPUT_SVG)));
writeFileSync(svgPath, latencyThroughputSvg(doc));
const lines = latencyThroughputAscii(doc, Number(opt('width', 64)), Number(opt('height', 18)));
console.log(['```', ...lines, '```', '', curveNote(doc), '', `SVG: ${svgPath}`].join('\n'));
