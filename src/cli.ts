#!/usr/bin/env node
// tickfan command line: `serve` (with an optional demo feed), `sub` (console
// subscriber), `pub` (one publish), `bench` (benchmarks).

import { parseArgs } from 'node:util';
import { MarketSim } from './demo/index.js';
import { startServer, OptionError, NativeUwsMissingError, type ServerOptions } from './server/index.js';
import { connect, type FieldValue } from './client/index.js';

const HELP = `tickfan — market-data fan-out server

Usage:
  tickfan serve [--port 8080] [--host 127.0.0.1] [--demo] [--demo-rate 2000] [--demo-symbols 300]
                [--history 256] [--heartbeat-ms 5000] [--rate-tiers 50,10,4,1]
                [--slow-threshold-bytes 262144] [--hard-cap-bytes 8388608] [--slow-timeout-ms 15000]
  tickfan sub <topic-or-pattern> [--url ws://127.0.0.1:8080/ws] [--max-rate N] [--fields a,b] [--count N] [--json]
  tickfan pub <topic> field=value ... [--url ws://127.0.0.1:8080/ws]
  tickfan --help

Examples:
  tickfan serve --demo                 # demo market feed on ws://127.0.0.1:8080/ws
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
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      demo: { type: 'boolean', default: false },
      'demo-rate': { type: 'string' },
      'demo-symbols': { type: 'string' },
      history: { type: 'string' },
      'heartbeat-ms': { type: 'string' },
      'rate-tiers': { type: 'string' },
      'slow-threshold-bytes': { type: 'string' },
      'hard-cap-bytes': { type: 'string' },
      'slow-timeout-ms': { type: 'string' },
    },
    strict: true,
  });
  const num = (flag: keyof typeof values) => intFlag(flag, values[flag] as string | undefined);
  const o: Partial<ServerOptions> = {
    port: intFlag('port', values.port ?? process.env.TICKFAN_PORT) ?? 8080,
    host: values.host ?? process.env.TICKFAN_HOST ?? '127.0.0.1',
  };
  if (values['heartbeat-ms'] !== undefined) o.heartbeatMs = num('heartbeat-ms')!;
  if (values['rate-tiers'] !== undefined) o.rateTiers = values['rate-tiers'].split(',').map(Number);
  if (values['slow-threshold-bytes'] !== undefined) o.slowThresholdBytes = num('slow-threshold-bytes')!;
  if (values['hard-cap-bytes'] !== undefined) o.hardCapBytes = num('hard-cap-bytes')!;
  if (values['slow-timeout-ms'] !== undefined) o.slowTimeoutMs = num('slow-timeout-ms')!;
  if (values.history !== undefined) o.limits = { historySize: num('history')! };
  const server = await startServer(o);
  const base = `${server.host}:${server.port}`;
  console.log(`tickfan listening on ws://${base}/ws  (HTTP: http://${base}/healthz, /topics, /snapshot/<topic>, POST /publish/<topic>)`);
  if (!['127.0.0.1', 'localhost', '::1'].includes(server.host)) {
    console.warn('tickfan: warning: no authentication is configured and the server listens beyond loopback: anyone who can reach it may publish and subscribe');
  }
  let sim: MarketSim | undefined;
  if (values.demo) {
    sim = new MarketSim((topic, changes) => server.publish(topic, changes), {
      rate: intFlag('demo-rate', values['demo-rate']) ?? 2000,
      symbols: intFlag('demo-symbols', values['demo-symbols']) ?? 300,
    });
    sim.start();
    console.log(`demo feed: ${sim.topics.length} topics (px.*, fx.*, book.BTC-USD) at ${intFlag('demo-rate', values['demo-rate']) ?? 2000} updates/s — try: npx tickfan sub 'px.AAPL'`);
  }
  let stopping = false;
  const stop = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`tickfan: ${sig}: closing (clients are told 1001 going away)`);
    sim?.stop();
    await server.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
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
    },
  });
  const topic = positionals[0];
  if (!topic) fail('sub needs a topic or pattern, e.g. tickfan sub "px.*"');
  const client = connect(values.url);
  const max = intFlag('count', values.count);
  const maxRate = values['max-rate'] !== undefined ? Number(values['max-rate']) : 0;
  const s = client.subscribe(topic, { maxRate, ...(values.fields ? { fields: values.fields.split(',') } : {}) });
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
    options: { url: { type: 'string', default: process.env.TICKFAN_URL ?? 'ws://127.0.0.1:8080/ws' } },
  });
  const [topic, ...pairs] = positionals;
  if (!topic || pairs.length === 0) fail('pub needs a topic and field=value pairs, e.g. tickfan pub px.TEST bid=1.5');
  const fields: Record<string, FieldValue | null> = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0) fail(`"${p}" is not field=value`);
    fields[p.slice(0, eq)] = parseValue(p.slice(eq + 1));
  }
  const client = connect(values.url, { reconnect: false });
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
