// startServer(): one tickfan node. With `workers: 0` everything runs in this
// thread; with `workers: N` this thread is the sequencer and N worker threads
// each serve clients on the same port (see src/workers/).

import { TopicStore } from '../engine/index.js';
import { ErrorCode, TickfanError, type Changes, type FieldValue } from '../protocol/index.js';
import { buildApp } from './app.js';
import { Authenticator } from './auth.js';
import { Fanout } from './fanout.js';
import { LocalIngest, type PublishResult } from './ingest.js';
import { createMetrics } from './metrics.js';
import { resolveOptions, type ServerOptions } from './options.js';
import { ServerStats } from './stats.js';
import { loadUws, type UWS } from './uws.js';

export type { PublishResult };

/** A running tickfan server. */
export interface TickfanServer {
  /** The port actually bound (useful with `port: 0`). */
  readonly port: number;
  readonly host: string;
  /** Counters of this thread (with workers: the sequencer's publishes; see /healthz per worker). */
  readonly stats: ServerStats;
  /** The authoritative topic store (the sequencer's, with workers). */
  readonly store: TopicStore;
  /** Fan-out worker threads running (0 when single-threaded). */
  readonly workers: number;
  /** Publishes in-process, like a client would; returns the version assigned. Throws TickfanError when refused. */
  publish(topic: string, fields: Record<string, FieldValue | null> | Changes): PublishResult;
  /** Flags a topic stale (or fresh again) to its subscribers. */
  setStale(topic: string, stale: boolean): void;
  /** Diagnostics for tests and operators: blocks worker `index`'s event loop for `ms` (it then overruns and resyncs). */
  stallWorker(index: number, ms: number): Promise<void>;
  /** Stops listening, tells every client "going away" (1001), stops workers and timers. */
  close(): Promise<void>;
}

export function toChanges(fields: Record<string, FieldValue | null> | Changes): Changes {
  if (fields instanceof Map) return new Map(fields);
  if (typeof fields !== 'object' || fields === null) throw new TickfanError(ErrorCode.BAD_REQUEST, 'fields must be an object or a Map');
  return new Map(Object.entries(fields));
}

/** Listens on host:port; resolves with the listen socket and the bound port. */
export function listen(uws: typeof UWS, app: UWS.TemplatedApp, host: string, port: number): Promise<{ socket: UWS.us_listen_socket; port: number }> {
  return new Promise((resolve, reject) => {
    app.listen(host, port, (s) => {
      if (s) resolve({ socket: s, port: uws.us_socket_local_port(s as unknown as UWS.us_socket) });
      else reject(new TickfanError(ErrorCode.INTERNAL, `cannot listen on ${host}:${port} (in use, or not an address of this machine)`));
    });
  });
}

/**
 * Starts a tickfan server.
 * @example
 * const server = await startServer({ port: 0 });
 * server.publish('px.AAPL', { bid: 101.25, ask: 101.27 });
 * await server.close();
 */
export async function startServer(given: Partial<ServerOptions> = {}): Promise<TickfanServer> {
  const opts = resolveOptions(given);
  const uws = loadUws();
  const auth = await Authenticator.create(opts.auth);
  if (!auth.enabled) {
    opts.log(
      'warn',
      opts.allowRemoteWithoutAuth
        ? 'no authentication is configured and allowRemoteWithoutAuth is on: anyone who can reach this server may subscribe and publish'
        : 'no authentication is configured: the server answers loopback connections only (configure auth.secret, auth.publicKey or auth.jwks to serve beyond it)',
      { host: opts.host },
    );
  }
  if (opts.workers > 0) {
    const { startWorkerPool } = await import('../workers/pool.js');
    return startWorkerPool(opts, auth);
  }
  const stats = new ServerStats();
  const store = new TopicStore(opts.limits);
  const fanout = new Fanout(store, opts, stats);
  const ingest = new LocalIngest(store, fanout, stats);
  const metrics = createMetrics(stats, () => store.size);
  const app = buildApp({ opts, uws, store, fanout, stats, ingest, auth, metrics });
  const { socket, port } = await listen(uws, app, opts.host, opts.port);
  opts.log('info', `listening on ${opts.host}:${port}`, { host: opts.host, port, auth: auth.enabled, anonymous: auth.enabled && auth.anonymous !== null, topicTtlMs: opts.topicTtlMs });
  let closed = false;

  return {
    port,
    host: opts.host,
    stats,
    store,
    workers: 0,
    publish: (topic, fields) => ingest.publish(topic, toChanges(fields)),
    setStale(topic, stale) {
      const t = store.get(topic);
      if (!t) throw new TickfanError(ErrorCode.UNKNOWN_TOPIC, `no topic ${topic}`);
      fanout.setStale(t, stale);
    },
    stallWorker: () => Promise.reject(new TickfanError(ErrorCode.BAD_REQUEST, 'this server runs without workers')),
    async close() {
      if (closed) return;
      closed = true;
      opts.log('info', `closing: ${stats.connections} connections are told 1001 going away`);
      uws.us_listen_socket_close(socket);
      fanout.shutdown();
      metrics.stop();
      // Let the close frames leave, then close what is left (HTTP keep-alive included).
      await new Promise((r) => setTimeout(r, 50));
      (app as unknown as { close(): void }).close();
    },
  };
}
