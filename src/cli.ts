#!/usr/bin/env node
// tickfan command line: `serve` (with an optional demo feed), `sub` (console
// subscriber), `pub` (one publish), `req` (one request), `serve-echo` (a
// responder to try request-reply with), `token` (mint a connection token),
// `bench` (benchmarks).

import { readFileSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { MarketSim } from './demo/index.js';
import { startServer } from './start.js';
import { explain, flagSpec, loadConfig, pinoLog, resolveOptions, serveOptionsHelp, OptionError, NativeUwsMissingError, type TickfanServer } from './server/index.js';
import { connect, ConnectionState, ErrorCode, TickfanError, ClientErrorCode, type FieldValue, type RequestPayload, type TickfanClient } from './client/index.js';
import { TopicPattern, isPattern, valueToJson } from './protocol/index.js';
import { GRANT_CLAIMS, TokenOptionError, mintToken, type MintOptions } from './token.js';

const DEFAULT_URL = 'ws://127.0.0.1:8080/ws';

/** One usage line per command: `tickfan --help` lists them all, `tickfan <command> --help` its own. */
const USAGE = {
  serve: 'tickfan serve [--config tickfan.yaml] [--port 8080] [--host 127.0.0.1] [--demo] [options]',
  sub: `tickfan sub <topic-or-pattern> [--url ${DEFAULT_URL}] [--max-rate N] [--fields a,b] [--count N] [--json] [--token JWT]`,
  pub: `tickfan pub <topic> field=value ... [--url ${DEFAULT_URL}] [--token JWT]`,
  req: `tickfan req <service> [field=value ...] [--url ${DEFAULT_URL}] [--token JWT] [--timeout MS] [--json]`,
  'serve-echo': `tickfan serve-echo <service-or-pattern> [--url ${DEFAULT_URL}] [--token JWT] [--name NAME]`,
  token: 'tickfan token --sub NAME (--secret SECRET|@file | --private-key @key.pem) [--subscribe P,...] [--publish P,...] [--serve P,...] [--request P,...] [--ttl 1h] [--issuer ISS] [--audience AUD]',
} as const;
type Command = keyof typeof USAGE;

const CONNECTION_FLAGS = `  --url URL          the server (default: $TICKFAN_URL, else ${DEFAULT_URL})
  --token JWT        connection token (default: $TICKFAN_TOKEN); mint one with tickfan token`;

const VALUES = `Values: a number, true or false, null, or else a string (bid=101.25 side=buy ok=true note="two words").`;

const COMMAND_HELP: Record<Exclude<Command, 'serve'>, string> = {
  sub: `Subscribes and prints one line per update: topic, version, snapshot or delta, changed fields
(∅: deleted). Runs until Ctrl-C, --count updates, or its reader goes away (| head).

${CONNECTION_FLAGS}
  --max-rate N       at most N updates per second per topic (conflated; 0: every update)
  --fields a,b       only these fields
  --count N          exit after N updates
  --json             one JSON object per update`,
  pub: `Publishes fields to a topic once and prints the version the server gave it. null deletes a field.
${VALUES}

${CONNECTION_FLAGS}`,
  req: `Sends one request to one responder of <service> and prints its reply: field=value ..., or one
JSON object with --json. Exit status 0 on a reply; 1 on an error, printed with its code:
TICKFAN_ERR_NO_RESPONDER, TICKFAN_ERR_REQUEST_TIMEOUT, TICKFAN_ERR_RESPONDER_GONE,
TICKFAN_ERR_RESPONDER_FAILED (with the responder's message), TICKFAN_ERR_PERMISSION_DENIED, ...
${VALUES}

${CONNECTION_FLAGS}
  --timeout MS       wait this long for the answer (the server caps it at its requestTimeoutMs;
                     default: the server's)
  --json             the reply as one JSON object, values as POST /publish takes them
                     ({"$bytes": base64}, {"$bigint": "digits"}); a reply of bytes is {"$bytes": ...}`,
  'serve-echo': `A responder to try request-reply with: answers every request to <service> (a name, or a pattern
such as orders.*) with its payload plus echoedBy (--name) and at (ISO time), and prints one line
per request. With several responders, each request goes to one of them. Runs until Ctrl-C or
SIGTERM (requests it holds then fail with RESPONDER_GONE); after a lost connection it reconnects
and offers the service again.

${CONNECTION_FLAGS}
  --name NAME        echoedBy in replies (default: host:pid)`,
  token: `Prints a signed connection token (JWT) with these grants on stdout, for --token, ?token= or
Authorization: Bearer; what it grants goes to stderr. A grant left out grants nothing.

  --secret SECRET|@file     HS256 with the server's auth.secret (at least 32 characters;
                            default: $TICKFAN_AUTH_SECRET, as the server reads it)
  --private-key PEM|@file   RS256 (RSA, at least 2048 bits) or ES256 (EC P-256) with a PKCS#8
                            private key; the server holds the public key (--auth-public-key)
  --sub NAME                who the token is for: logged by the server, shown to responders
                            as the requester
  --subscribe P,...         topics or patterns it may subscribe to (px.*, fx.>)
  --publish P,...           topics or patterns it may publish to
  --serve P,...             services it may answer (orders.*)
  --request P,...           services it may send requests to (orders.>)
  --ttl DURATION            lifetime: 30s, 15m, 1h, 2d (default 1h); the session ends then (4010)
  --issuer ISS              iss claim (default: $TICKFAN_AUTH_ISSUER), for servers with auth.issuer
  --audience AUD            aud claim (default: $TICKFAN_AUTH_AUDIENCE), for auth.audience
Pattern flags take a comma-separated list and may be repeated.

Example:
  tickfan token --secret @/run/secrets/tickfan --sub desk-42 --subscribe 'px.*,fx.>' \\
    --publish px.DESK42 --serve 'orders.*' --request 'orders.>' --ttl 8h`,
};

const HELP = `tickfan — market-data fan-out server

Usage:
${Object.values(USAGE)
  .map((u) => `  ${u}`)
  .join('\n')}
  tickfan <command> --help
  tickfan --help

${serveOptionsHelp()}

Examples:
  tickfan serve --demo                 # demo market feed on ws://127.0.0.1:8080/ws
  tickfan serve --config tickfan.yaml --auth-secret @/run/secrets/tickfan
  tickfan sub 'px.*' --max-rate 1      # every equity, at most one update per second each
  tickfan pub px.TEST bid=101.25 ask=101.27 note=hello gone=null
  tickfan serve-echo 'orders.*'        # a responder; then, in another terminal:
  tickfan req orders.submit side=buy qty=100
  tickfan token --secret @/run/secrets/tickfan --sub desk-42 --subscribe 'px.*,fx.>' --ttl 8h
`;

function commandHelp(cmd: Exclude<Command, 'serve'>): string {
  return `Usage:\n  ${USAGE[cmd]}\n\n${COMMAND_HELP[cmd]}\n`;
}

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

/** parseArgs, with a usage error (exit status 2, the command's usage) instead of a stack trace. */
function parse<T extends ParseArgsConfig>(cmd: Exclude<Command, 'serve'>, config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (err) {
    usage(cmd, (err as Error).message);
  }
}

/** A usage error of one command: exit status 2 with its usage line. */
function usage(cmd: Exclude<Command, 'serve'>, msg: string): never {
  fail(`${cmd}: ${msg}\n\nUsage:\n  ${USAGE[cmd]}\n  (tickfan ${cmd} --help for more)`);
}

const connectionOptions = {
  url: { type: 'string', default: process.env.TICKFAN_URL ?? DEFAULT_URL },
  token: { type: 'string', default: process.env.TICKFAN_TOKEN },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/**
 * A reader that goes away (`tickfan sub 'px.*' | head -3`) ends the command
 * quietly, as it does any Unix filter: no EPIPE stack trace, exit status 0.
 */
function endQuietlyWhenStdoutCloses(client: TickfanClient): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') fail(`stdout: ${err.message}`, 1);
    client.close();
    process.exit(0);
  });
}

/** `TICKFAN_ERR_NO_RESPONDER: no responder …`: what the command ends with for a protocol error. */
function described(err: unknown): string {
  const e = err as { code?: unknown; message?: string };
  return `${typeof e.code === 'string' ? `${e.code}: ` : ''}${e.message ?? String(err)}`;
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
  const { values, positionals } = parse('sub', {
    args: argv,
    allowPositionals: true,
    options: {
      ...connectionOptions,
      'max-rate': { type: 'string' },
      fields: { type: 'string' },
      count: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (values.help) return void console.log(commandHelp('sub'));
  const topic = positionals[0];
  if (!topic) usage('sub', 'needs a topic or pattern, e.g. tickfan sub "px.*"');
  const client = connect(values.url, values.token ? { token: values.token } : {});
  const max = intFlag('count', values.count);
  const maxRate = values['max-rate'] !== undefined ? Number(values['max-rate']) : 0;
  const s = client.subscribe(topic, { maxRate, ...(values.fields ? { fields: values.fields.split(',') } : {}) });
  endQuietlyWhenStdoutCloses(client);
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

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function parseValue(raw: string): FieldValue | null {
  if (raw === 'null') return null;
  if (raw === 'true' || raw === 'false') return raw === 'true';
  // An integer past 2^53 stays exact as a bigint (int64 on the wire), not a rounded number.
  if (/^-?\d+$/.test(raw) && !Number.isSafeInteger(Number(raw))) {
    const big = BigInt(raw);
    if (big >= INT64_MIN && big <= INT64_MAX) return big;
  }
  if (raw !== '' && !Number.isNaN(Number(raw))) return Number(raw);
  return raw;
}

/** `field=value` arguments as a field object (values as parseValue reads them); shared by pub and req. */
function parseFields(cmd: 'pub' | 'req', pairs: readonly string[]): Record<string, FieldValue | null> {
  const fields: Record<string, FieldValue | null> = Object.create(null) as Record<string, FieldValue | null>;
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0) usage(cmd, `"${p}" is not field=value`);
    fields[p.slice(0, eq)] = parseValue(p.slice(eq + 1));
  }
  return { ...fields };
}

async function pub(argv: string[]): Promise<void> {
  const { values, positionals } = parse('pub', { args: argv, allowPositionals: true, options: connectionOptions });
  if (values.help) return void console.log(commandHelp('pub'));
  const [topic, ...pairs] = positionals;
  if (!topic || pairs.length === 0) usage('pub', 'needs a topic and field=value pairs, e.g. tickfan pub px.TEST bid=1.5');
  const fields = parseFields('pub', pairs);
  const client = connect(values.url, { reconnect: false, ...(values.token ? { token: values.token } : {}) });
  try {
    const ack = await client.publish(topic, fields);
    console.log(`${ack.topic} v${ack.version} (epoch ${ack.epoch})`);
  } finally {
    client.close();
  }
}

/** A reply (or request) payload on one line: `field=value …`, or `<N bytes>`. */
function showPayload(p: RequestPayload): string {
  if (p instanceof Uint8Array) return show(p);
  const body = Object.entries(p).map(([k, v]) => `${k}=${show(v)}`);
  return body.length ? body.join(' ') : '(no fields)';
}

/** A payload as JSON, values in the JSON form of POST /publish. */
function payloadJson(p: RequestPayload): string {
  const o = p instanceof Uint8Array ? valueToJson(p) : Object.fromEntries(Object.entries(p).map(([k, v]) => [k, valueToJson(v)]));
  return JSON.stringify(o);
}

async function req(argv: string[]): Promise<void> {
  const { values, positionals } = parse('req', {
    args: argv,
    allowPositionals: true,
    options: { ...connectionOptions, timeout: { type: 'string' }, json: { type: 'boolean', default: false } },
  });
  if (values.help) return void console.log(commandHelp('req'));
  const [service, ...pairs] = positionals;
  if (!service) usage('req', 'needs a service name, e.g. tickfan req orders.submit side=buy qty=100');
  if (isPattern(service)) usage('req', `"${service}" is a pattern; a request goes to one service name (patterns are for serve-echo)`);
  const fields = parseFields('req', pairs);
  let timeout: number | undefined;
  if (values.timeout !== undefined) {
    timeout = Number(values.timeout);
    if (!Number.isSafeInteger(timeout) || timeout < 1) usage('req', `--timeout must be a whole number of milliseconds, at least 1 (got "${values.timeout}")`);
  }
  const client = connect(values.url, { reconnect: false, ...(values.token ? { token: values.token } : {}) });
  let reached = false;
  client.on('state', ({ to }) => void (to === ConnectionState.CONNECTED && (reached = true)));
  // A refused token comes as an Error of its own before the close: say that, not "disconnected".
  client.on('error', (err) => {
    if (err instanceof TickfanError && err.errorCode === ErrorCode.UNAUTHORIZED) fail(described(err), 1);
    console.error(`tickfan: ${err.message}`);
  });
  try {
    const reply = await client.request(service, fields, timeout !== undefined ? { timeout } : {});
    console.log(values.json ? payloadJson(reply) : showPayload(reply));
  } catch (err) {
    if (!reached && (err as { code?: unknown }).code === ClientErrorCode.DISCONNECTED) {
      fail(`${ClientErrorCode.DISCONNECTED}: cannot reach ${values.url} (is tickfan serve running there?)`, 1);
    }
    throw err;
  } finally {
    client.close();
  }
}

async function serveEcho(argv: string[]): Promise<void> {
  const { values, positionals } = parse('serve-echo', {
    args: argv,
    allowPositionals: true,
    options: { ...connectionOptions, name: { type: 'string' } },
  });
  if (values.help) return void console.log(commandHelp('serve-echo'));
  const [service, ...extra] = positionals;
  if (!service) usage('serve-echo', "needs a service name or pattern, e.g. tickfan serve-echo 'orders.*'");
  if (extra.length) usage('serve-echo', `one service at a time (also got ${extra.map((x) => `"${x}"`).join(' ')})`);
  try {
    TopicPattern.parse(service);
  } catch (err) {
    usage('serve-echo', (err as Error).message);
  }
  const name = values.name ?? `${hostname()}:${process.pid}`;
  const client = connect(values.url, values.token ? { token: values.token } : {});
  // Ctrl-C, SIGTERM: stop answering and leave; requests held now fail fast (RESPONDER_GONE) for their requesters.
  const stop = () => {
    client.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  endQuietlyWhenStdoutCloses(client);
  client.on('state', ({ to }) => console.error(`[${to}]`));
  client.on('error', (err) => {
    // Refusals that another try with the same token and name cannot mend end the command.
    const fatal: number[] = [ErrorCode.UNAUTHORIZED, ErrorCode.PERMISSION_DENIED, ErrorCode.BAD_PATTERN, ErrorCode.BAD_TOPIC];
    if (err instanceof TickfanError && fatal.includes(err.errorCode)) fail(described(err), 1);
    console.error(`tickfan: ${err.message}`);
  });
  const svc = client.serve(service, (payload, meta) => {
    const at = new Date().toISOString();
    console.log(`${at} ${meta.service} #${meta.correlationId} from ${meta.requester}: ${showPayload(payload)}`);
    // Bytes cannot take fields: they are echoed as they came.
    return payload instanceof Uint8Array ? payload : { ...payload, echoedBy: name, at };
  });
  try {
    await svc.ready;
  } catch (err) {
    fail(described(err), 1);
  }
  console.error(`tickfan: serving ${service} as ${name} (Ctrl-C to stop)`);
}

/** A secret or key given as a value or `@/path/file` (as the server's auth options take them). */
function readValue(flag: string, v: string): string {
  if (!v.startsWith('@')) return v;
  try {
    return readFileSync(v.slice(1), 'utf8');
  } catch (err) {
    fail(`token: --${flag}: cannot read ${v.slice(1)}: ${(err as Error).message}`);
  }
}

const TOKEN_FLAG: Record<string, string> = { secret: 'secret', privateKey: 'private-key', sub: 'sub', ttl: 'ttl', issuer: 'issuer', audience: 'audience' };

async function token(argv: string[]): Promise<void> {
  const patternFlag = { type: 'string', multiple: true } as const;
  const { values, positionals } = parse('token', {
    args: argv,
    allowPositionals: true,
    options: {
      secret: { type: 'string' },
      'private-key': { type: 'string' },
      sub: { type: 'string' },
      subscribe: patternFlag,
      publish: patternFlag,
      serve: patternFlag,
      request: patternFlag,
      ttl: { type: 'string' },
      issuer: { type: 'string', default: process.env.TICKFAN_AUTH_ISSUER },
      audience: { type: 'string', default: process.env.TICKFAN_AUTH_AUDIENCE },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return void console.log(commandHelp('token'));
  if (positionals.length) usage('token', `unexpected argument "${positionals[0]}" (every setting is a flag, e.g. --sub ${positionals[0]})`);
  if (values.secret !== undefined && values['private-key'] !== undefined) usage('token', 'give --secret (HS256) or --private-key (RS256 / ES256), not both');
  // The server's own setting, when it is in the environment and no flag says otherwise.
  const secret = values.secret ?? (values['private-key'] === undefined ? process.env.TICKFAN_AUTH_SECRET : undefined);
  if (secret === undefined && values['private-key'] === undefined) {
    usage('token', 'needs --secret SECRET|@file (HS256, the server\'s auth.secret) or --private-key @key.pem (RS256 / ES256)');
  }
  if (values.sub === undefined) usage('token', 'needs --sub NAME: who the token is for (logged by the server, shown to responders as the requester)');
  const grants: Partial<Record<(typeof GRANT_CLAIMS)[number], string[]>> = {};
  for (const c of GRANT_CLAIMS) {
    const given = values[c];
    if (given !== undefined) grants[c] = given.flatMap((v) => v.split(',')).map((p) => p.trim());
  }
  const opts: MintOptions = {
    sub: values.sub,
    ...grants,
    ...(secret !== undefined ? { secret: readValue('secret', secret) } : { privateKey: readValue('private-key', values['private-key']!) }),
    ...(values.ttl !== undefined ? { ttl: values.ttl } : {}),
    ...(values.issuer !== undefined ? { issuer: values.issuer } : {}),
    ...(values.audience !== undefined ? { audience: values.audience } : {}),
  };
  let jwt: string;
  try {
    jwt = await mintToken(opts);
  } catch (err) {
    if (!(err instanceof TokenOptionError)) throw err;
    const flag = TOKEN_FLAG[err.option] ?? err.option;
    fail(`token: --${flag}: ${err.problem}`);
  }
  console.log(jwt);
  const { alg } = decodeProtectedHeader(jwt);
  const { exp } = decodeJwt(jwt);
  const granted = GRANT_CLAIMS.map((c) => `${c} ${grants[c]?.length ? grants[c]!.join(',') : '-'}`).join('; ');
  console.error(`tickfan: ${alg} token for "${values.sub}", expires ${new Date(exp! * 1000).toISOString().replace('.000Z', 'Z')}; ${granted}`);
  if (!GRANT_CLAIMS.some((c) => grants[c]?.length)) console.error('tickfan: note: this token grants nothing (no --subscribe, --publish, --serve or --request)');
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
    case 'req':
      return req(rest);
    case 'serve-echo':
      return serveEcho(rest);
    case 'token':
      return token(rest);
    case 'bench': {
      const { runBenchCli } = await import('./bench-cli.js');
      return runBenchCli(rest);
    }
    case undefined:
    case '-h':
    case '--help':
    case 'help': {
      const topic = rest[0];
      if (topic && topic !== 'serve' && topic in COMMAND_HELP) return void console.log(commandHelp(topic as Exclude<Command, 'serve'>));
      console.log(HELP);
      return;
    }
    default:
      fail(`unknown command "${cmd}"\n\n${HELP}`);
  }
}

main().catch((err: unknown) => {
  if (err instanceof NativeUwsMissingError || err instanceof OptionError) fail(err.message, 1);
  fail(described(err), 1);
});
