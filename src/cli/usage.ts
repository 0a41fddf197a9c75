// What the command line says and how it fails: usage lines, help texts, and
// the small helpers every command shares (argument parsing with usage errors,
// connection flags, a quiet end when stdout closes).

import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { TickfanClient } from '../client/index.js';
import { serveOptionsHelp } from '../server/index.js';

export const DEFAULT_URL = 'ws://127.0.0.1:8080/ws';

/** One usage line per command: `tickfan --help` lists them all, `tickfan <command> --help` its own. */
export const USAGE = {
  serve: 'tickfan serve [--config tickfan.yaml] [--port 8080] [--host 127.0.0.1] [--demo] [options]',
  sub: `tickfan sub <topic-or-pattern> [--url ${DEFAULT_URL}] [--max-rate N] [--fields a,b | --depth N [--tables bids,asks]] [--count N] [--json] [--token JWT]`,
  pub: `tickfan pub <topic> [field=value ...] [--table T (--upsert K f=v ... | --replace K f=v ... | --delete K | --delete-range A..B | --clear) ...] [--json BODY|@file|-] [--url ${DEFAULT_URL}] [--token JWT]`,
  req: `tickfan req <service> [field=value ...] [--url ${DEFAULT_URL}] [--token JWT] [--timeout MS] [--json]`,
  'serve-echo': `tickfan serve-echo <service-or-pattern> [--url ${DEFAULT_URL}] [--token JWT] [--name NAME]`,
  'demo-orders': `tickfan demo-orders [--url ${DEFAULT_URL}] [--token JWT] [--tick-ms 200] [--fill-chance 0.25] [--seed N]`,
  token: 'tickfan token --sub NAME (--secret SECRET|@file | --private-key @key.pem) [--subscribe P,...] [--publish P,...] [--serve P,...] [--request P,...] [--ttl 1h] [--issuer ISS] [--audience AUD]',
} as const;
export type Command = keyof typeof USAGE;

export const CONNECTION_FLAGS = `  --url URL          the server (default: $TICKFAN_URL, else ${DEFAULT_URL})
  --token JWT        connection token (default: $TICKFAN_TOKEN); mint one with tickfan token`;

export const VALUES = `Values: a number, true or false, null, or else a string (bid=101.25 side=buy ok=true note="two words").`;

export const COMMAND_HELP: Record<Exclude<Command, 'serve'>, string> = {
  sub: `Subscribes and prints one line per update: topic, version, snapshot or delta, changed fields
(∅: deleted). Runs until Ctrl-C, --count updates, or its reader goes away (| head).

${CONNECTION_FLAGS}
  --max-rate N       at most N updates per second per topic (conflated; 0: every update)
  --fields a,b       only these fields
  --count N          exit after N updates
  --json             one JSON object per update
  --depth N          keyed topics (order books): a depth view of the top N rows of each table
                     (0: every row), printed as a ladder: asks above (best nearest the middle),
                     bids below, prices as key × the summary field tick when there is one. On a
                     terminal it is redrawn in place; into a pipe every version is printed as a
                     block (header line, rows, blank line); with --json one object per version
                     {topic, epoch, version, snapshot, fields, tables: {bids: [[key, fields], ...]}}
  --tables a,b       the tables of the view (default bids,asks; other tables print as lists)

Example:
  tickfan sub book.BTC-USD --depth 10 --max-rate 4`,
  pub: `Publishes fields to a topic once and prints the version the server gave it. null deletes a field.
${VALUES}

Keyed topics (order books, blotters): row ops make the publish one batch, one version, sent as
POST /publish/<topic> (docs/protocol.md, "Keyed publish and snapshot over HTTP"). Arguments are
read in order: field=value before the first --table are summary fields, then
  --table T                 the table the ops after it go to
  --upsert KEY f=v ...      merge these fields into row KEY (null removes one)
  --replace KEY f=v ...     row KEY becomes exactly these fields
  --delete KEY              delete row KEY
  --delete-range FROM..TO   delete rows with FROM <= key <= TO (an end may be left out: 100..)
  --clear                   delete every row of T
  --if-new | --if-exists    guard the op just before (refused: nothing is applied, exit 1)
  --declare int:desc        declare T (key int or string, order asc or desc); a new bids or asks
                            is declared int:desc / int:asc when the server says it is undeclared
  --json BODY|@file|-       the whole batch in the HTTP JSON form, as is (- reads stdin)
A refused batch exits 1 with the error's name, e.g. TICKFAN_ERR_ROW_GUARD: table bids row 7: ...

Examples:
  tickfan pub book.X last=65000.5 --table bids --upsert 6500050 qty=3 orders=2 --delete 6500000
  tickfan pub book.X --table asks --delete-range ..6500100 --table bids --clear
  tickfan pub book.X --json '{"tables":{"bids":{"upsert":{"6500050":{"qty":3}}}}}'

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
  'demo-orders': `The demo order service (docs/desks.md), against any server: answers orders.submit and
orders.cancel at once, works limit orders against the demo books (book.BTC-USD, book.ETH-USD,
book.SOL-USD, book.AAPL) with partial fills at random times, and publishes each order's latest
state as a row of its desk's blotter: topic blotter.<desk>, table orders, keyed by order id.
The desk is the requester's token subject (an open server: the desk field). Refused orders are
answered {status: rejected, reason, message}: BAD_SIDE, UNKNOWN_SYMBOL, BAD_QTY, BAD_PRICE,
BAD_DESK, WRONG_DESK, UNKNOWN_ORDER, ORDER_DONE, BAD_ORDER. tickfan serve --demo runs it already.
Prints a line of counts when they change (at most every 10 s); runs until Ctrl-C or SIGTERM.

${CONNECTION_FLAGS}
                     (the token needs serve orders.*, publish blotter.>, subscribe book.>)
  --tick-ms MS       how often working orders are looked at (default 200)
  --fill-chance P    chance a marketable order fills at a look, 0-1 (default 0.25)
  --seed N           seed of the fills' randomness

Example:
  tickfan demo-orders --url ws://127.0.0.1:8080/ws &
  tickfan req orders.submit desk=desk-1 side=buy symbol=BTC-USD price=65000.5 qty=0.25
  tickfan sub blotter.desk-1 --depth 0 --tables orders`,
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

export const HELP = `tickfan — market-data fan-out server

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
  tickfan sub book.BTC-USD --depth 10  # an order-book ladder (demo books: book.*)
  tickfan pub book.X --table bids --upsert 6500050 qty=3 --delete 6500000
  tickfan demo-orders --url ws://127.0.0.1:8080/ws   # the demo order service against any server
  tickfan serve-echo 'orders.*'        # a responder; then, in another terminal:
  tickfan req orders.submit side=buy qty=100
  tickfan token --secret @/run/secrets/tickfan --sub desk-42 --subscribe 'px.*,fx.>' --ttl 8h
`;

export function commandHelp(cmd: Exclude<Command, 'serve'>): string {
  return `Usage:\n  ${USAGE[cmd]}\n\n${COMMAND_HELP[cmd]}\n`;
}

export function fail(msg: string, code = 2): never {
  console.error(`tickfan: ${msg}`);
  process.exit(code);
}

export function intFlag(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) fail(`--${name} must be an integer (got "${v}")`);
  return n;
}

/** parseArgs, with a usage error (exit status 2, the command's usage) instead of a stack trace. */
export function parse<T extends ParseArgsConfig>(cmd: Exclude<Command, 'serve'>, config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (err) {
    usage(cmd, (err as Error).message);
  }
}

/** A usage error of one command: exit status 2 with its usage line. */
export function usage(cmd: Exclude<Command, 'serve'>, msg: string): never {
  fail(`${cmd}: ${msg}\n\nUsage:\n  ${USAGE[cmd]}\n  (tickfan ${cmd} --help for more)`);
}

export const connectionOptions = {
  url: { type: 'string', default: process.env.TICKFAN_URL ?? DEFAULT_URL },
  token: { type: 'string', default: process.env.TICKFAN_TOKEN },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/**
 * A reader that goes away (`tickfan sub 'px.*' | head -3`) ends the command
 * quietly, as it does any Unix filter: no EPIPE stack trace, exit status 0.
 */
export function endQuietlyWhenStdoutCloses(client: TickfanClient): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') fail(`stdout: ${err.message}`, 1);
    client.close();
    process.exit(0);
  });
}

/** `TICKFAN_ERR_NO_RESPONDER: no responder …`: what the command ends with for a protocol error. */
export function described(err: unknown): string {
  const e = err as { code?: unknown; message?: string };
  return `${typeof e.code === 'string' ? `${e.code}: ` : ''}${e.message ?? String(err)}`;
}
