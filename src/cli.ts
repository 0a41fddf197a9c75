#!/usr/bin/env node
// tickfan command line: `serve` (with an optional demo feed), `sub` (console
// subscriber), `pub` (one publish), `bench` (benchmarks).

import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { MarketSim } from './demo/index.js';
import { startServer } from './start.js';
import { explain, flagSpec, loadConfig, pinoLog, resolveOptions, serveOptionsHelp, OptionError, NativeUwsMissingError, type TickfanServer } from './server/index.js';
import { connect, type FieldValue } from './client/index.js';

const HELP = `tickfan — market-data fan-out server

Usage:
  tickfan serve [--config tickfan.yaml] [--port 8080] [--host 127.0.0.1] [--demo] [options]
  tickfan sub <topic-or-pattern> [--url ws://127.0.0.1:8080/ws] [--max-rate N] [--fields a,b] [--count N] [--json] [--token JWT]
  tickfan pub <topic> field=value ... [--url ws://127.0.0.1:8080/ws] [--token JWT]
  tickfan --help

${serveOptionsHelp()}

Examples:
  tickfan serve --demo                 # demo market feed on ws://127.0.0.1:8080/ws
  tickfan serve --config tickfan.yaml --auth-secret @/run/secrets/tickfan
  tickfan sub 'px.*' --max-rate 1      # every equity, at most one update per second each
  tickfan pub px.TEST bid=101.25 ask=101.27 note=hello gone=null
`;

function fail(msg: string, code = 2): never {
  console.error(`tickfan: ${msg}`);
  process.exit(code);
}

function intFlag(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) fail(`--${name} must be an integer (got "${v}")`);
  return n;
}

async function serve(argv: string[]): Promise<void> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options: { config: { type: 'string' }, help: { type: 'boolean', short: 'h' }, ...flagSpec() }, strict: true }));
  } catch (err) {
    fail(`${(err as Error).message}\n\n${HELP}`);
  }
  if (values.help) {
    console.log(HELP);
    return;
  }
  const { config, help: _help, ...flags } = values;
  const cfg = loadConfig({ file: config as string | undefined, flags });
  // Same logger as the server's (pino, JSON lines on stderr) unless the config replaces it.
  const log = pinoLog(resolveOptions({ ...cfg.options, log: () => {} }).logLevel);
  // `tickfan serve` uses every core unless told otherwise: one sequencer, one fan-out worker per core.
  const workers = cfg.options.workers ?? availableParallelism();
  // Graceful stop: stop accepting, tell every client 1001 "going away" (they
  // resume elsewhere), then exit; a stop that hangs is cut short. Installed
  // before the server starts, so a signal that comes early is handled too.
  let server: TickfanServer | undefined;
  let sim: MarketSim | undefined;
  let stopping = false;
  let started = false;
  const stop = async (why: string, exitCode: number) => {
    if (stopping) return;
    stopping = true;
    log(exitCode ? 'error' : 'info', `${why}: closing (clients are told 1001 going away)`, { exitCode });
    setTimeout(() => process.exit(exitCode || 1), 5_000).unref();
    // Still starting: the start finishes first, so workers are closed properly.
    while (!started) await new Promise((r) => setTimeout(r, 10));
    sim?.stop();
    try {
      await server?.close();
    } catch (err) {
      log('error', `close failed: ${(err as Error)?.stack ?? String(err)}`);
      exitCode ||= 1;
    }
    process.exit(exitCode);
  };
  process.on('SIGTERM', () => void stop('SIGTERM', 0));
  process.on('SIGINT', () => void stop('SIGINT', 0));
  // A bug must not leave clients hanging on a half-dead server: close it (they
  // get 1001 and resume elsewhere), then exit non-zero.
  process.on('uncaughtException', (err) => {
    log('error', `uncaught exception: ${err?.stack ?? String(err)}`);
    void stop('uncaught exception', 1);
  });
  process.on('unhandledRejection', (reason) => {
    log('error', `unhandled rejection: ${(reason as Error)?.stack ?? String(reason)}`);
    void stop('unhandled rejection', 1);
  });

  try {
    server = await startServer({ ...cfg.options, workers, log });
  } catch (err) {
    throw explain(err, cfg.layers);
  } finally {
    started = true;
  }
  const running = server;
  const base = `${running.host}:${running.port}`;
  console.log(`tickfan listening on ws://${base}/ws  (HTTP: http://${base}/healthz, /topics, /snapshot/<topic>, POST /publish/<topic>, /metrics)`);
  if (cfg.demo && !stopping) {
    sim = new MarketSim((topic, changes) => running.publish(topic, changes), cfg.demo);
    sim.start();
    console.log(`demo feed: ${sim.topics.length} topics (px.*, fx.*, book.BTC-USD) at ${cfg.demo.rate} updates/s — try: npx tickfan sub 'px.AAPL'`);
  }
}

function show(v: FieldValue | null): string {
  if (v === null) return '∅';
  if (v instanceof Uint8Array) return `<${v.length} bytes>`;
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

async function sub(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: 'string', default: process.env.TICKFAN_URL ?? 'ws://127.0.0.1:8080/ws' },
      'max-rate': { type: 'string' },
      fields: { type: 'string' },
      count: { type: 'string' },
      json: { type: 'boolean', default: false },
      token: { type: 'string', default: process.env.TICKFAN_TOKEN },
    },
  });
  const topic = positionals[0];
  if (!topic) fail('sub needs a topic or pattern, e.g. tickfan sub "px.*"');
  const client = connect(values.url, values.token ? { token: values.token } : {});
  const max = intFlag('count', values.count);
  const maxRate = values['max-rate'] !== undefined ? Number(values['max-rate']) : 0;
  const s = client.subscribe(topic, { maxRate, ...(values.fields ? { fields: values.fields.split(',') } : {}) });
  // A reader that goes away (`tickfan sub 'px.*' | head -3`) ends the command
  // quietly, as it does any Unix filter: no EPIPE stack trace, exit status 0.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') fail(`stdout: ${err.message}`, 1);
    client.close();
    process.exit(0);
  });
  let n = 0;
  client.on('state', ({ to }) => console.error(`[${to}]`));
  client.on('error', (err) => console.error(`tickfan: ${err.message}`));
  s.on('error', (err) => fail(`${err.code}: ${err.message}`, 1));
  s.on('status', (e) => console.log(`${e.topic} status ${e.status}`));
  s.on('update', (u) => {
    if (values.json) {
      console.log(JSON.stringify({ ...u, state: u.state }, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
    } else {
      const kind = u.snapshot ? 'snapshot' : u.updates > 1 ? `delta×${u.updates}` : 'delta';
      const body = Object.entries(u.changes).map(([k, v]) => `${k}=${show(v)}`).join(' ');
      console.log(`${u.topic} v${u.version} ${kind} ${body}`);
    }
    if (max !== undefined && ++n >= max) {
      client.close();
      process.exit(0);
    }
  });
}

function parseValue(raw: string): FieldValue | null {
  if (raw === 'null') return null;
  if (raw === 'true' || raw === 'false') return raw === 'true';
  if (raw !== '' && !Number.isNaN(Number(raw))) return Number(raw);
  return raw;
}

async function pub(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: 'string', default: process.env.TICKFAN_URL ?? 'ws://127.0.0.1:8080/ws' },
      token: { type: 'string', default: process.env.TICKFAN_TOKEN },
    },
  });
  const [topic, ...pairs] = positionals;
  if (!topic || pairs.length === 0) fail('pub needs a topic and field=value pairs, e.g. tickfan pub px.TEST bid=1.5');
  const fields: Record<string, FieldValue | null> = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0) fail(`"${p}" is not field=value`);
    fields[p.slice(0, eq)] = parseValue(p.slice(eq + 1));
  }
  const client = connect(values.url, { reconnect: false, ...(values.token ? { token: values.token } : {}) });
  try {
    const ack = await client.publish(topic, fields);
    console.log(`${ack.topic} v${ack.version} (epoch ${ack.epoch})`);
  } finally {
    client.close();
  }
}

async function main(): Promise<void> {
  const [cmd, ...rest] = process.argv.slice(2);
  switch (cmd) {
    case 'serve':
      return serve(rest);
    case 'sub':
      return sub(rest);
    case 'pub':
      return pub(rest);
    case 'bench': {
      const { runBenchCli } = await import('./bench-cli.js');
      return runBenchCli(rest);
    }
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      console.log(HELP);
      return;
    default:
      fail(`unknown command "${cmd}"\n\n${HELP}`);
  }
}

main().catch((err: unknown) => {
  if (err instanceof NativeUwsMissingError || err instanceof OptionError) fail(err.message, 1);
  const e = err as { code?: string; message?: string };
  fail(`${e.code ? `${e.code}: ` : ''}${e.message ?? String(err)}`, 1);
});
