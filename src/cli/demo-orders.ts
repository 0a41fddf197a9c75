// The demo order service from the command line: `tickfan demo-orders --url …`
// runs it against any server, and `tickfan serve --demo` runs the same service
// beside its demo market (an SDK client of its own server, so that with fan-out
// workers its requests and publishes go the way every client's do).

import { readFileSync } from 'node:fs';
import { connect, type TickfanClient } from '../client/index.js';
import { OrderService } from '../demo/index.js';
import type { LogFn, ServerOptions, TickfanServer } from '../server/index.js';
import { mintToken } from '../token.js';
import { commandHelp, connectionOptions, described, fail, parse, usage } from './usage.js';

/** What the service's token must grant, and what `tickfan token` would be given for it. */
export const SERVICE_GRANTS = { serve: ['orders.*'], publish: ['blotter.>'], subscribe: ['book.>'] } as const;

interface Running {
  client: TickfanClient;
  service: OrderService;
}

async function run(url: string, token: string | undefined, opts: { tickMs?: number; fillChance?: number; seed?: number }, log: (level: 'info' | 'warn', msg: string) => void): Promise<Running> {
  const client = connect(url, token ? { token } : {});
  client.on('error', (err) => log('warn', `order service: ${err.message}`));
  const service = new OrderService(client, { ...opts, log });
  try {
    await service.start();
  } catch (err) {
    service.stop();
    client.close();
    throw err;
  }
  return { client, service };
}

/** `tickfan demo-orders`: the order service against the server at --url, until Ctrl-C or SIGTERM. */
export async function demoOrders(argv: string[]): Promise<void> {
  const { values } = parse('demo-orders', {
    args: argv,
    options: { ...connectionOptions, 'tick-ms': { type: 'string' }, 'fill-chance': { type: 'string' }, seed: { type: 'string' } },
  });
  if (values.help) return void console.log(commandHelp('demo-orders'));
  const num = (name: string, v: string | undefined, ok: (n: number) => boolean): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!ok(n)) usage('demo-orders', `--${name} ${v} is out of range`);
    return n;
  };
  const tickMs = num('tick-ms', values['tick-ms'], (n) => Number.isInteger(n) && n >= 10);
  const fillChance = num('fill-chance', values['fill-chance'], (n) => n >= 0 && n <= 1);
  const seed = num('seed', values.seed, Number.isInteger);
  let running: Running;
  try {
    running = await run(values.url, values.token, { tickMs, fillChance, seed }, (_l, msg) => console.error(`tickfan: ${msg}`));
  } catch (err) {
    fail(described(err), 1);
  }
  const { client, service } = running;
  console.log(`demo order service on ${values.url}: orders.submit, orders.cancel; each desk's orders in blotter.<desk> (table orders)`);
  let last = '';
  const report = setInterval(() => {
    const s = service.stats;
    const line = `orders ${s.accepted} (refused ${s.rejected}, resent ${s.duplicates}), fills ${s.fills}, cancels ${s.cancelled}, desks ${service.desks().length}`;
    if (line !== last) console.log((last = line));
  }, 10_000);
  const stop = () => {
    clearInterval(report);
    service.stop();
    client.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

/**
 * `tickfan serve --demo`: the order service beside the demo market, connected
 * to this server over loopback. With authentication it needs a token it can
 * mint: only with `auth.secret` (HS256); otherwise it stays off and says so.
 */
export async function startOrdersBeside(server: TickfanServer, options: Partial<ServerOptions>, log: LogFn): Promise<() => void> {
  let token: string | undefined;
  const auth = options.auth;
  if (auth && (auth.publicKey !== undefined || auth.jwks !== undefined)) {
    log('warn', 'demo: the order service is off: it can mint its token only with auth.secret; run tickfan demo-orders --token <a token with serve orders.*, publish blotter.>, subscribe book.>>');
    return () => {};
  }
  if (auth?.secret !== undefined) {
    const secret = auth.secret.startsWith('@') ? readFileSync(auth.secret.slice(1), 'utf8').replace(/\r?\n$/, '') : auth.secret;
    token = await mintToken({ secret, sub: 'demo-orders', ...SERVICE_GRANTS, ttl: '3650d', issuer: auth.issuer, audience: auth.audience });
  }
  const host = server.host === '0.0.0.0' || server.host === '' ? '127.0.0.1' : server.host === '::' ? '[::1]' : server.host.includes(':') ? `[${server.host}]` : server.host;
  const { client, service } = await run(`ws://${host}:${server.port}/ws`, token, {}, (level, msg) => log(level, msg));
  return () => {
    service.stop();
    client.close();
  };
}
