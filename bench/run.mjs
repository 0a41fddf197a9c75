#!/usr/bin/env node
// tickfan benchmark runner: `npm run bench` (every scenario, a few minutes)
// or `tickfan bench <scenario> [--option value …]`. Each scenario writes
// bench/results/<scenario>.json, .md and .svg; the summary (README.md) and
// the chart page (index.html) in bench/results/ are rebuilt from every
// result present. See bench/README.md.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fileLimit } from './lib/procs.mjs';
import { machineInfo, progress } from './lib/common.mjs';
import { topSelf } from './lib/profile.mjs';
import { writeScenario, writeSummary } from './lib/report.mjs';
import { resetQuietBudget } from './lib/measure.mjs';
import { mergeRounds } from './lib/repeat.mjs';
import { connectionsNotes, fanoutNotes, latencyNotes, slowNotes, stormNotes, wireNotes } from './lib/analysis.mjs';

const ANALYSIS = {
  fanout: fanoutNotes,
  latency: latencyNotes,
  connections: connectionsNotes,
  'reconnect-storm': stormNotes,
  'slow-consumers': slowNotes,
  wire: wireNotes,
};

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const ORDER = ['fanout', 'latency', 'connections', 'reconnect-storm', 'slow-consumers', 'http-publish', 'wire', 'request-reply', 'stomp', 'cluster', 'book'];

const HELP = `tickfan bench — benchmarks of tickfan against raw uWebSockets.js, Socket.IO, nats-server and mosquitto

Usage:
  npm run bench                         every scenario with its defaults (≈ 8 minutes on 2 cores)
  tickfan bench <scenario…> [options]   one or more scenarios; "all" for every one
  tickfan bench <scenario> --help       the scenario's options and defaults

Scenarios:
  fanout           most deliveries/s to N subscribers of hot topics; p99 against deliveries/s (peers: uws, sio, nats, mosquitto)
  latency          p50/p99/p99.9 publish → receive at fixed rates below saturation (peers: uws, sio, nats, mosquitto)
  connections      concurrent subscribed connections one server holds; server RSS per connection (peers: uws, nats, mosquitto)
  reconnect-storm  N subscribers dropped at once reconnect and resume: time until all are current
  slow-consumers   fast readers' latency and throughput with 0, 1 and 10% stalled readers
  http-publish     autocannon against POST /publish/<topic>
  wire             bytes and CPU per update: protocol 1, 2, 2 + deflate vs Socket.IO, JSON, Lightstreamer
  request-reply    request → reply round trips/s and p50/p99/p99.9 with 1 and 3 competing responders
  stomp            STOMP deliveries/s against the native protocol on the same fan-out
  cluster          origin + 2 edges on NATS against one node: latency per hop, bytes on NATS per update

Options for every scenario:
  --out DIR        where results go (default bench/results)
  --workers N      tickfan fan-out worker threads for the server under test (default 0: one thread)
  --loadgen-workers N  load-generator worker threads (default: cores − 1)
  --profile        run servers under node --cpu-prof; the top functions go into the results
  --server-options JSON  tickfan ServerOptions for the server under test, e.g. '{"limits":{"historySize":0}}'
  --repeat N       N rounds, systems interleaved (tickfan, uws, …, tickfan, uws, …); tables show
                   the median with (min–max), headlines the median (default 1; wire, request-reply
                   and stomp repeat inside themselves and default to their own count)
  --pause-ms MS    pause between rounds, so one round's sockets (TIME_WAIT, SYN queues) are gone (default 2000)
  --quick          shorter windows and smaller sizes (a smoke run, not for the README)
Options are --kebab-case; lists are comma-separated: --systems tickfan,uws --rates 5000,10000

nats-server and mosquitto are Debian's packages, started by the bench itself (loopback, temporary
config, free ports); a scenario skips one that is not installed with one line. node bench/peers-check.mjs
checks their drivers end to end in a few seconds; node bench/latency-throughput.mjs charts p99
against deliveries/s from a fanout result.
`;

// ------------------------------------------------------------ arguments

function camel(s) {
  return s.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
}

function parseValue(v) {
  if (v === undefined) return true;
  if (/^-?\d+(\.\d+)?$/.test(v)) return Number(v);
  if (/^-?\d+(\.\d+)?(,-?\d+(\.\d+)?)+$/.test(v)) return v.split(',').map(Number);
  if (v === 'true' || v === 'false') return v === 'true';
  return v;
}

function parseArgs(argv) {
  const names = [];
  const opts = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const [k, inline] = a.slice(2).split('=');
      const next = argv[i + 1];
      const v = inline ?? (next !== undefined && !next.startsWith('--') ? (i++, next) : undefined);
      opts[camel(k)] = parseValue(v);
    } else if (a === '-h') opts.help = true;
    else names.push(a);
  }
  return { names, opts };
}

// ------------------------------------------------------------ open files

/**
 * Many sockets need many descriptors: re-run under the hard limit when the
 * soft one is lower. The hard limit itself needs root with CAP_SYS_RESOURCE
 * (`ulimit -Hn`); the connections scenario reports what it was capped to.
 */
function ensureFileLimit() {
  const { soft, hard } = fileLimit();
  if (soft >= hard || process.env.TICKFAN_BENCH_ULIMIT) return;
  const want = hard === Infinity ? 1_048_576 : hard;
  const r = spawnSync('/bin/sh', ['-c', `ulimit -n ${want} && exec "$0" "$@"`, process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, TICKFAN_BENCH_ULIMIT: String(want) },
  });
  process.exit(r.status ?? 1);
}

// ------------------------------------------------------------ main

async function main() {
  const { names, opts } = parseArgs(process.argv.slice(2));
  if (opts.help && names.length === 0) {
    console.log(HELP);
    return;
  }
  const list = names.length === 0 || names.includes('all') ? ORDER : names;
  for (const n of list) {
    if (!ORDER.includes(n)) {
      console.error(`tickfan bench: unknown scenario "${n}"\n\n${HELP}`);
      process.exit(2);
    }
  }
  if (opts.help) {
    for (const n of list) {
      const { meta } = await import(`./scenarios/${n}.mjs`);
      console.log(`${meta.name} — ${meta.question}\n`);
      for (const [k, d] of Object.entries(meta.options)) {
        const def = meta.defaults[k];
        const shown = typeof def === 'object' && def !== null ? JSON.stringify(def) : def;
        console.log(`  --${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`).padEnd(22)} ${d} (default ${shown})`);
      }
      console.log('');
    }
    return;
  }
  if (!existsSync(join(root, 'dist', 'index.js'))) {
    console.error('tickfan bench: dist/ is missing; run `npm run build` first (npm run bench does)');
    process.exit(2);
  }
  ensureFileLimit();
  const out = resolve(opts.out ?? join(here, 'results'));
  mkdirSync(out, { recursive: true });
  const machine = machineInfo();
  const limits = fileLimit();
  progress(`tickfan bench: ${list.join(', ')} — ${machine.cores} × ${machine.cpu}, Node ${machine.node}, open files ${limits.soft}/${limits.hard}`);
  const failures = [];
  const t0 = performance.now();
  for (const name of list) {
    const mod = await import(`./scenarios/${name}.mjs`);
    const o = { ...mod.meta.defaults };
    for (const [k, v] of Object.entries(opts)) if (k in o || k === 'quick') o[k] = v;
    // Scenarios call the load generator's threads `workers`; `--workers` is the server's.
    if (opts.loadgenWorkers !== undefined) o.workers = opts.loadgenWorkers;
    if (typeof o.systems === 'string') o.systems = o.systems.replace(/\s/g, '');
    if (opts.quick && mod.meta.quick) Object.assign(o, mod.meta.quick, Object.fromEntries(Object.entries(opts).filter(([k]) => k in o && k !== 'quick')));
    const profileDir = opts.profile ? join(out, 'profiles', name) : undefined;
    let serverOptions;
    try {
      serverOptions = typeof opts.serverOptions === 'string' ? JSON.parse(opts.serverOptions) : undefined;
    } catch (err) {
      console.error(`tickfan bench: --server-options must be JSON (tickfan ServerOptions): ${err.message}`);
      process.exit(2);
    }
    if (opts.workers !== undefined) serverOptions = { ...serverOptions, workers: Number(opts.workers) };
    if (serverOptions) o.serverOptions = serverOptions;
    const ctx = { profileDir, machine, limits, out, serverOptions };
    resetQuietBudget();
    const started = performance.now();
    progress(`\n▶ ${name}: ${mod.meta.question}`);
    try {
      // Scenarios with a `repeat` option of their own interleave inside; the rest are run N times here.
      const repeat = 'repeat' in mod.meta.defaults ? 1 : Math.max(1, Math.floor(Number(opts.repeat ?? 1)));
      let result;
      if (repeat === 1) result = await mod.run(o, ctx);
      else {
        const rounds = [];
        for (let r = 0; r < repeat; r++) {
          if (r > 0) await new Promise((res) => setTimeout(res, Number(opts.pauseMs ?? 2000)));
          progress(`  — round ${r + 1} of ${repeat}`);
          resetQuietBudget();
          rounds.push(await mod.run(o, ctx));
        }
        result = mergeRounds(rounds);
      }
      // Targets that need every round at once (fanout: the p99 curve from medians per rate).
      if (mod.finish) result = mod.finish({ ...result, repeats: result.repeats ?? 1 });
      const doc = {
        scenario: name,
        title: mod.meta.title,
        question: mod.meta.question,
        command: ['npx tickfan bench', name, ...process.argv.slice(2).filter((a) => !ORDER.includes(a) && a !== 'all')].join(' '),
        params: 'repeat' in o ? o : { ...o, repeat },
        machine,
        openFiles: limits,
        durationSec: Math.round((performance.now() - started) / 1000),
        ...result,
      };
      const notes = ANALYSIS[name]?.(doc);
      if (notes) doc.analysis = `**What limited it**\n\n${notes}`;
      if (profileDir && existsSync(profileDir)) {
        doc.profiles = readdirSync(profileDir)
          .filter((f) => f.endsWith('.cpuprofile'))
          .map((f) => ({ file: join('profiles', name, f), ...topSelf(join(profileDir, f), 15, root) }));
      }
      await writeScenario(out, doc);
      progress(`✔ ${name} in ${doc.durationSec} s → ${join(out, `${name}.json`)}`);
    } catch (err) {
      failures.push(name);
      progress(`✘ ${name} failed: ${err?.stack ?? err}`);
    }
  }
  await writeSummary(out);
  progress(`\ntickfan bench: done in ${Math.round((performance.now() - t0) / 1000)} s; summary ${join(out, 'README.md')}, charts ${join(out, 'index.html')}`);
  if (failures.length) {
    progress(`failed: ${failures.join(', ')}`);
    process.exitCode = 1;
  }
}

main()
  .catch((err) => {
    console.error(err?.stack ?? err);
    process.exitCode = 1;
  })
  .finally(() => {
    // Children are killed by the exit handler in lib/procs.mjs.
    setTimeout(() => process.exit(process.exitCode ?? 0), 100).unref();
  });

