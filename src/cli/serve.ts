// `tickfan serve`: the server from a config file, the environment and flags,
// with an optional demo market feed; SIGTERM / SIGINT close it cleanly.

import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { MarketSim, startDeskTokens } from '../demo/index.js';
import { explain, flagSpec, loadConfig, pinoLog, resolveOptions, type TickfanServer } from '../server/index.js';
import { startServer } from '../start.js';
import { HELP, fail } from './usage.js';
import { startOrdersBeside } from './demo-orders.js';

export async function serve(argv: string[]): Promise<void> {
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
  // A cluster node runs one thread (one edge process per core instead), so there the default is 0
  // and only a `workers` the user gave is worth a warning.
  const inCluster = [cfg.options.nats ?? []].flat().length > 0;
  const workers = cfg.options.workers ?? (inCluster ? 0 : availableParallelism());
  // Graceful stop: stop accepting, tell every client 1001 "going away" (they
  // resume elsewhere), then exit; a stop that hangs is cut short. Installed
  // before the server starts, so a signal that comes early is handled too.
  let server: TickfanServer | undefined;
  let sim: MarketSim | undefined;
  let stopOrders: (() => void) | undefined;
  let stopTokens: (() => Promise<void>) | undefined;
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
    stopOrders?.();
    await stopTokens?.();
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
    // In a cluster, each origin feeds the demo topics of its own shard (an edge sequences none: it feeds nothing).
    const cluster = (running as { cluster?: { owns(topic: string): boolean; role: string } }).cluster;
    if (cluster && cluster.role === 'edge') log('warn', '--demo on an edge feeds nothing: run it on the origins (each feeds its own shard)');
    const owned = (topic: string) => !cluster || cluster.owns(topic);
    // The books are keyed topics: every layout takes their batches (replicated to workers and edges).
    sim = new MarketSim(
      (topic, changes) => void (owned(topic) && running.publish(topic, changes)),
      cfg.demo,
      (topic, batch) => void (owned(topic) && running.publishBatch(topic, batch)),
    );
    sim.start();
    const books = sim.bookTopics;
    console.log(
      `demo feed: ${sim.topics.length} topics (px.*, fx.*${books.length ? `, keyed books ${books.join(' ')}` : ''}) at ${cfg.demo.rate} updates/s — try: npx tickfan sub 'px.AAPL'${books.length ? `, npx tickfan sub ${books[0]} --depth 10` : ''}`,
    );
    if (books.length > 0) {
      try {
        stopOrders = await startOrdersBeside(running, cfg.options, log);
        console.log(`demo order service: orders.submit, orders.cancel; blotters blotter.<desk> — try: npx tickfan req orders.submit desk=desk-1 side=buy symbol=BTC-USD price=65000 qty=0.1, npx tickfan sub blotter.desk-1 --depth 0 --tables orders`);
      } catch (err) {
        log('warn', `demo: the order service did not start: ${(err as Error).message}`);
      }
      // With auth.secret, a demo-only issuer of 60 s desk tokens, so that the desk page shows its token refreshed in session.
      const tokens = await startDeskTokens(cfg.options.auth, `http://${base}/`).catch((err: Error) => void log('warn', `demo: the desk token issuer did not start: ${err.message}`));
      if (tokens) {
        stopTokens = () => tokens.issuer.close();
        console.log(`demo desk tokens (demo only: anyone on this machine can mint one): 60 s tokens at ${tokens.issuer.url}?desk=<desk> — the desk page with them: ${tokens.pageUrl}`);
      }
    }
  }
}

