// The client commands: `sub` (a console subscriber), `pub` (one publish),
// `req` (one request) and `serve-echo` (a responder to try request-reply with),
// with the field=value parsing they share.

import { hostname } from 'node:os';
import { connect, ConnectionState, ErrorCode, TickfanError, ClientErrorCode, type FieldValue, type RequestPayload } from '../client/index.js';
import { TopicPattern, isPattern, valueToJson } from '../protocol/index.js';
import { commandHelp, fail, intFlag, parse, usage, connectionOptions, endQuietlyWhenStdoutCloses, described } from './usage.js';
import { ROW_FLAGS, pubRows, subLadder } from './book-commands.js';

function show(v: FieldValue | null): string {
  if (v === null) return '∅';
  if (v instanceof Uint8Array) return `<${v.length} bytes>`;
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

export async function sub(argv: string[]): Promise<void> {
  const { values, positionals } = parse('sub', {
    args: argv,
    allowPositionals: true,
    options: {
      ...connectionOptions,
      'max-rate': { type: 'string' },
      fields: { type: 'string' },
      count: { type: 'string' },
      json: { type: 'boolean', default: false },
      depth: { type: 'string' },
      tables: { type: 'string' },
    },
  });
  if (values.help) return void console.log(commandHelp('sub'));
  const topic = positionals[0];
  if (!topic) usage('sub', 'needs a topic or pattern, e.g. tickfan sub "px.*"');
  const max = intFlag('count', values.count);
  const maxRate = values['max-rate'] !== undefined ? Number(values['max-rate']) : 0;
  if (values.depth !== undefined || values.tables !== undefined) {
    const depth = intFlag('depth', values.depth) ?? 0;
    if (depth < 0) usage('sub', `--depth must be 0 (every row) or more (got ${depth})`);
    if (values.fields) usage('sub', '--fields goes with flat topics; a depth view shows every row field');
    const tables = (values.tables ?? 'bids,asks').split(',').filter(Boolean);
    subLadder({ url: values.url, token: values.token, topic, depth, tables, maxRate, count: max, json: values.json, tty: process.stdout.isTTY === true });
    return;
  }
  const client = connect(values.url, values.token ? { token: values.token } : {});
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

export function parseValue(raw: string): FieldValue | null {
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

export async function pub(argv: string[]): Promise<void> {
  // Row ops (or a whole batch with --json) make it a keyed batch, sent over HTTP.
  if (!argv.includes('--help') && !argv.includes('-h') && argv.some((a) => ROW_FLAGS.includes(a.split('=')[0]!))) return pubRows(argv, parseValue);
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

export async function req(argv: string[]): Promise<void> {
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

export async function serveEcho(argv: string[]): Promise<void> {
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
