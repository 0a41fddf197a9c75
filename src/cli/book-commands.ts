// Keyed topics on the command line: `tickfan sub <topic> --depth N` (a depth
// view printed as a ladder: redrawn in place on a terminal, one block per
// version into a pipe) and `tickfan pub <topic> --table T --upsert K f=v
// --delete K …` (row ops, sent as one batch through POST /publish).

import { connect, type TickfanClient, type FieldValue } from '../client/index.js';
import { valueToJson } from '../protocol/index.js';
import { renderLadder, type LadderRow } from './ladder.js';
import { fail, usage, endQuietlyWhenStdoutCloses, DEFAULT_URL } from './usage.js';

export interface LadderSubOptions {
  url: string;
  token: string | undefined;
  topic: string;
  depth: number;
  tables: string[];
  maxRate: number;
  count: number | undefined;
  json: boolean;
  /** Redraw in place (a terminal) instead of one block per version. */
  tty: boolean;
}

const jsonValue = (_k: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? valueToJson(v) : v);

/** `tickfan sub <topic> --depth N`: the view's rows after every version. */
export function subLadder(o: LadderSubOptions): TickfanClient {
  const client = connect(o.url, o.token ? { token: o.token } : {});
  const tables = Object.fromEntries(o.tables.map((t) => [t, { depth: o.depth }]));
  const s = client.subscribe(o.topic, { maxRate: o.maxRate, tables });
  endQuietlyWhenStdoutCloses(client);
  client.on('state', ({ to }) => console.error(`[${to}]`));
  client.on('error', (err) => console.error(`tickfan: ${err.message}`));
  s.on('error', (err) => fail(`${err.code}: ${err.message}`, 1));
  s.on('status', (e) => console.error(`${e.topic} status ${e.status}`));
  let n = 0;
  let drawn: { topic: string; version: number; state: Record<string, FieldValue> } | null = null;
  let timer: NodeJS.Timeout | null = null;
  const view = (topic: string): Map<string, LadderRow[]> => new Map(o.tables.map((t) => [t, s.table(t, topic).rows() as LadderRow[]]));
  // On a terminal the screen is redrawn at most 20 times a second with the latest version;
  // into a pipe every version is printed (a reader may want each one).
  const draw = () => {
    timer = null;
    if (!drawn) return;
    const lines = renderLadder({ ...drawn, summary: drawn.state, tables: view(drawn.topic), depth: o.depth });
    process.stdout.write(`\x1b[H\x1b[2J${lines.join('\n')}\n`);
  };
  s.on('update', (u) => {
    if (o.json) {
      const rows = Object.fromEntries([...view(u.topic)].map(([t, rs]) => [t, rs.map((r) => [r.key, r.fields])]));
      console.log(JSON.stringify({ topic: u.topic, epoch: u.epoch, version: u.version, snapshot: u.snapshot, fields: u.state, tables: rows }, jsonValue));
    } else if (o.tty) {
      drawn = { topic: u.topic, version: u.version, state: u.state };
      timer ??= setTimeout(draw, 50);
    } else {
      const lines = renderLadder({ topic: u.topic, version: u.version, summary: u.state, tables: view(u.topic), depth: o.depth });
      console.log(`${lines.join('\n')}\n`);
    }
    if (o.count !== undefined && ++n >= o.count) {
      if (timer) clearTimeout(timer), draw();
      client.close();
      process.exit(0);
    }
  });
  return client;
}

// ------------------------------------------------------------------ pub with rows

/** Flags that make `tickfan pub` a keyed batch. */
export const ROW_FLAGS = ['--table', '--upsert', '--replace', '--delete', '--delete-range', '--clear', '--declare', '--if-new', '--if-exists', '--json'];

type JsonOp = { op: string; key?: string; fields?: Record<string, unknown>; guard?: string; from?: string; to?: string };

interface RowBatch {
  url: string;
  token: string | undefined;
  topic: string;
  body: { fields?: Record<string, unknown>; tables?: Record<string, { declare?: unknown; ops: JsonOp[] }> };
  /** The body as given with --json (sent as is). */
  raw?: string;
}

/** The conventional declarations tried when a batch names `bids` or `asks` of a topic that has not declared them. */
const BOOK_DECLARE: Record<string, { key: string; order: { key: string } }> = {
  bids: { key: 'int', order: { key: 'desc' } },
  asks: { key: 'int', order: { key: 'asc' } },
};

/** `--declare int:desc` → the JSON form's declaration. */
function declaration(spec: string): { key: string; order: { key: string } } {
  const m = /^(int|string):(asc|desc)$/.exec(spec);
  if (!m) usage('pub', `--declare takes KEYTYPE:ORDER, int or string and asc or desc (e.g. int:desc), not "${spec}"`);
  return { key: m[1]!, order: { key: m[2]! } };
}

/**
 * Reads `tickfan pub` arguments with row ops, in order: `field=value` before
 * the first --table are summary fields; `--table T` picks the table the ops
 * after it go to; `--upsert K f=v …` / `--replace K f=v …` take the pairs that
 * follow; `--delete K`, `--delete-range FROM..TO`, `--clear`; `--if-new` /
 * `--if-exists` guard the op before them; `--declare int:desc` declares T.
 */
export function parseRowBatch(argv: readonly string[], parseValue: (raw: string) => FieldValue | null): RowBatch {
  let url = process.env.TICKFAN_URL ?? DEFAULT_URL;
  let token = process.env.TICKFAN_TOKEN;
  let topic: string | undefined;
  let raw: string | undefined;
  const fields: Record<string, unknown> = {};
  const tables: Record<string, { declare?: unknown; ops: JsonOp[] }> = {};
  let table: string | undefined;
  let last: JsonOp | undefined;
  const value = (flag: string, i: number): string => {
    const v = argv[i + 1];
    if (v === undefined || (v.startsWith('--') && flag !== '--json')) usage('pub', `${flag} needs a value`);
    return v;
  };
  const current = (flag: string) => {
    if (table === undefined) usage('pub', `${flag} needs a --table before it (e.g. --table bids ${flag} …)`);
    return (tables[table] ??= { ops: [] });
  };
  const add = (flag: string, op: JsonOp) => {
    current(flag).ops.push(op);
    last = op;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const arg = () => (inline !== undefined ? inline : value(flag, i++));
    switch (flag) {
      case '--url':
        url = arg();
        break;
      case '--token':
        token = arg();
        break;
      case '--json':
        raw = arg();
        break;
      case '--table':
        table = arg();
        last = undefined;
        break;
      case '--declare':
        current(flag).declare = declaration(arg());
        break;
      case '--upsert':
      case '--replace':
        add(flag, { op: flag.slice(2), key: arg(), fields: {} });
        break;
      case '--delete':
        add(flag, { op: 'delete', key: arg() });
        break;
      case '--delete-range': {
        const r = arg();
        const m = /^(.*)\.\.(.*)$/.exec(r);
        if (!m || (!m[1] && !m[2])) usage('pub', `--delete-range takes FROM..TO (inclusive; either end may be left out), not "${r}"`);
        add(flag, { op: 'deleteRange', ...(m[1] ? { from: m[1] } : {}), ...(m[2] ? { to: m[2] } : {}) });
        break;
      }
      case '--clear':
        add(flag, { op: 'clear' });
        break;
      case '--if-new':
      case '--if-exists':
        if (!last || !['upsert', 'replace', 'delete'].includes(last.op)) usage('pub', `${flag} guards the --upsert, --replace or --delete just before it`);
        last.guard = flag === '--if-new' ? 'ifNew' : 'ifExists';
        break;
      default: {
        if (a.startsWith('-')) usage('pub', `unknown option ${a}`);
        if (topic === undefined) {
          topic = a;
          break;
        }
        const eq = a.indexOf('=');
        if (eq <= 0) usage('pub', `"${a}" is not field=value`);
        const v = valueToJson(parseValue(a.slice(eq + 1)));
        if (last && (last.op === 'upsert' || last.op === 'replace')) last.fields![a.slice(0, eq)] = v;
        else if (table === undefined) fields[a.slice(0, eq)] = v;
        else usage('pub', `"${a}": row fields follow an --upsert or --replace (summary fields go before the first --table)`);
      }
    }
  }
  if (!topic) usage('pub', 'needs a topic, e.g. tickfan pub book.X --table bids --upsert 6500050 qty=3');
  if (raw !== undefined) {
    if (Object.keys(tables).length || Object.keys(fields).length) usage('pub', '--json gives the whole batch: no field=value or row flags beside it');
    return { url, token, topic, body: {}, raw };
  }
  if (Object.keys(tables).length === 0) usage('pub', 'no row ops: give --upsert, --replace, --delete, --delete-range or --clear after --table');
  for (const [t, ops] of Object.entries(tables)) if (ops.ops.length === 0) usage('pub', `--table ${t} has no ops`);
  return { url, token, topic, body: { fields, tables } };
}

/** The HTTP base of a WebSocket URL: ws://host:port/ws → http://host:port. */
export function httpBase(wsUrl: string): string {
  const u = new URL(wsUrl);
  u.protocol = u.protocol === 'wss:' ? 'https:' : u.protocol === 'ws:' ? 'http:' : u.protocol;
  return u.origin;
}

interface PublishAnswer {
  status: number;
  json: { topic?: string; version?: number; epoch?: number; error?: { name?: string; message?: string; reason?: string } };
}

async function post(b: RowBatch, body: string): Promise<PublishAnswer> {
  const url = `${httpBase(b.url)}/publish/${encodeURIComponent(b.topic)}`;
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...(b.token ? { authorization: `Bearer ${b.token}` } : {}) } });
  } catch (err) {
    fail(`cannot reach ${url} (is tickfan serve running there?): ${(err as { cause?: Error }).cause?.message ?? (err as Error).message}`, 1);
  }
  const text = await res.text();
  try {
    return { status: res.status, json: JSON.parse(text) as PublishAnswer['json'] };
  } catch {
    fail(`HTTP ${res.status} from ${url}: ${text.slice(0, 200)}`, 1);
  }
}

/** Sends the batch (one version) and prints `topic vN (epoch E)`; a refusal ends with status 1 and the error's name and message. */
export async function pubRows(argv: readonly string[], parseValue: (raw: string) => FieldValue | null): Promise<void> {
  const b = parseRowBatch(argv, parseValue);
  let body = b.raw;
  if (body !== undefined) {
    if (body === '-') body = await new Response(process.stdin as unknown as ReadableStream).text();
    else if (body.startsWith('@')) body = (await import('node:fs')).readFileSync(body.slice(1), 'utf8');
  }
  let a = await post(b, body ?? JSON.stringify(b.body));
  // A new book: declare bids / asks the conventional way (int keys, best first) and try once more.
  const undeclared = a.json.error?.reason === 'undeclared';
  if (undeclared && body === undefined && b.body.tables) {
    const added: string[] = [];
    for (const [t, spec] of Object.entries(b.body.tables)) {
      if (spec.declare === undefined && BOOK_DECLARE[t]) (spec.declare = BOOK_DECLARE[t]), added.push(`${t} ${BOOK_DECLARE[t]!.key}:${BOOK_DECLARE[t]!.order.key}`);
    }
    if (added.length) {
      console.error(`tickfan: declaring ${added.join(', ')} (new tables; --declare says otherwise)`);
      a = await post(b, JSON.stringify(b.body));
    }
  }
  if (a.json.error || a.status >= 300) {
    const e = a.json.error;
    fail(`${e?.name ?? `HTTP ${a.status}`}: ${e?.message ?? ''}`, 1);
  }
  console.log(`${a.json.topic} v${a.json.version} (epoch ${a.json.epoch})`);
}
