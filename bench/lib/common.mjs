// Helpers shared by the scenarios: topic sets, subscription layouts, the
// machine's own CPU accounting (to spot a run disturbed by other work),
// progress lines, and number formatting.

import { readFileSync } from 'node:fs';
import { cpus, totalmem, release } from 'node:os';
import { execFileSync } from 'node:child_process';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** `n` topic names: px.T0000, px.T0001, … */
export function topicNames(n, prefix = 'px.T') {
  return Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(4, '0')}`);
}

/**
 * Subscription layout: client i takes `perClient` consecutive topics starting
 * at i × perClient (mod topics), so every topic gets the same number of
 * subscribers (subscribers × perClient / topics).
 */
export function layout(subscribers, topics, perClient) {
  const k = Math.min(perClient, topics.length);
  return Array.from({ length: subscribers }, (_, i) => ({
    topics: Array.from({ length: k }, (_, j) => topics[(i * k + j) % topics.length]),
  }));
}

/** Loopback source addresses 127.0.0.1 … 127.0.0.n (each has its own ephemeral port range). */
export function loopbackAddrs(n) {
  return Array.from({ length: Math.max(1, n) }, (_, i) => `127.0.0.${i + 1}`);
}

/** Whole-machine CPU counters from /proc/stat: busy, kernel interrupt work (irq + softirq) and total jiffies. */
function machineTicks() {
  const line = readFileSync('/proc/stat', 'latin1').split('\n')[0];
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + (f[4] ?? 0);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - idle, irq: (f[5] ?? 0) + (f[6] ?? 0), total };
}

/**
 * The machine's busy share over a window (100 = one core). `irqPct` is the
 * kernel's interrupt work — on loopback mostly the TCP stack moving the
 * benchmark's own bytes, charged to no process.
 */
export class MachineCpu {
  constructor() {
    this.n = cpus().length;
    this.mark();
  }
  mark() {
    this.at = machineTicks();
  }
  since() {
    const now = machineTicks();
    const total = now.total - this.at.total;
    const pct = (x) => (total > 0 ? (x / total) * 100 * this.n : 0);
    return { busyPct: pct(now.busy - this.at.busy), irqPct: pct(now.irq - this.at.irq) };
  }
}

/**
 * Between measurements, when no server runs: waits (up to `maxMs`) until
 * other processes on the machine use less than `maxPct` of a core, so a
 * test suite running beside the benchmark does not land in its numbers.
 */
export async function waitQuiet(maxMs = 20_000, maxPct = 25) {
  const t0 = performance.now();
  let other = 0;
  let said = false;
  for (;;) {
    const m = new MachineCpu();
    const c0 = process.cpuUsage();
    await sleep(500);
    const s = m.since();
    const c = process.cpuUsage(c0);
    other = s.busyPct - s.irqPct - (c.user + c.system) / 5000;
    if (other < maxPct || performance.now() - t0 > maxMs) break;
    said = true;
    progress(`  waiting for the machine to go quiet: other processes use ${Math.round(other)}% of a core`, { live: true });
  }
  if (said) progress('', { live: true });
  return Math.max(0, other);
}

/** Kernel TCP counters that explain connection storms (accept-queue overflows, SYN retransmits). */
export function tcpCounters() {
  const lines = readFileSync('/proc/net/netstat', 'latin1').split('\n').filter((l) => l.startsWith('TcpExt:'));
  const h = lines[0].split(/\s+/);
  const v = lines[1].split(/\s+/);
  const d = Object.fromEntries(h.map((k, i) => [k, Number(v[i])]));
  return { listenOverflows: d.ListenOverflows ?? 0, listenDrops: d.ListenDrops ?? 0, synRetrans: d.TCPSynRetrans ?? 0, syncookiesSent: d.SyncookiesSent ?? 0 };
}

export function tcpDelta(a, b) {
  return Object.fromEntries(Object.keys(a).map((k) => [k, b[k] - a[k]]));
}

export function machineInfo() {
  let commit = '';
  let dirty = false;
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { encoding: 'utf8' }).trim() !== '';
  } catch {
    // not a git checkout
  }
  const c = cpus();
  return {
    cpu: c[0]?.model ?? 'unknown',
    cores: c.length,
    memGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    kernel: release(),
    commit: commit + (dirty ? '+dirty' : ''),
    date: new Date().toISOString(),
  };
}

// ------------------------------------------------------------ formatting

export function fmtInt(n) {
  return n === undefined || n === null || Number.isNaN(n) ? '–' : Math.round(n).toLocaleString('en-US');
}

/** 1234567 → "1.23M", 12345 → "12.3k". */
export function fmtSi(n) {
  if (n === undefined || n === null || Number.isNaN(n)) return '–';
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (a >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  if (a >= 1e3) return `${(n / 1e3).toFixed(2)}k`;
  return `${Math.round(n)}`;
}

/** µs → "840 µs" / "1.24 ms" / "2.1 s". */
export function fmtUs(us) {
  if (us === undefined || us === null || Number.isNaN(us)) return '–';
  if (us >= 1e6) return `${(us / 1e6).toFixed(2)} s`;
  if (us >= 1000) return `${(us / 1000).toFixed(us >= 1e4 ? 1 : 2)} ms`;
  return `${Math.round(us)} µs`;
}

export function fmtBytes(b) {
  if (b === undefined || b === null || Number.isNaN(b)) return '–';
  if (b >= 2 ** 30) return `${(b / 2 ** 30).toFixed(2)} GiB`;
  if (b >= 2 ** 20) return `${(b / 2 ** 20).toFixed(1)} MiB`;
  if (b >= 1024) return `${(b / 1024).toFixed(2)} KiB`;
  return `${Math.round(b)} B`;
}

export function fmtPct(p) {
  return p === undefined || p === null || Number.isNaN(p) ? '–' : `${Math.round(p)}%`;
}

export function fmtRatio(r) {
  return r === undefined || r === null || !Number.isFinite(r) ? '–' : `${r >= 10 ? r.toFixed(0) : r.toPrecision(3)}×`;
}

// ------------------------------------------------------------ progress

const tty = process.stderr.isTTY;
let lastLive = false;

/** One progress line on stderr; `live` lines overwrite each other on a terminal. */
export function progress(msg, { live = false } = {}) {
  if (tty) {
    process.stderr.write(`${lastLive ? '\r\x1b[2K' : ''}${msg}${live ? '' : '\n'}`);
    lastLive = live;
  } else if (!live) {
    process.stderr.write(`${msg}\n`);
  }
}

/** Counts down a window on a terminal, showing a live figure from `peek()`. */
export async function waitWindow(ms, label, peek) {
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    await sleep(Math.min(500, ms - (performance.now() - t0)));
    if (tty && peek) {
      const s = await peek().catch(() => '');
      const left = Math.max(0, (ms - (performance.now() - t0)) / 1000);
      progress(`  ${label} ${s} (${left.toFixed(1)} s left)`, { live: true });
    }
  }
  if (tty && peek) progress('', { live: true });
}
