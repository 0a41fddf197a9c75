// One tickfan node, assembled in one place: topic store, fan-out, sessions,
// dispatch, metrics and the uWebSockets.js app with every route. The thread
// layout only picks the ingest (local sequencer, a worker's ring, later NATS).

import { TopicStore } from '../engine/index.js';
import { Admission } from './admission.js';
import type { Authenticator } from './auth.js';
import { Dispatch } from './dispatch.js';
import { Fanout, realClock, type Clock } from './fanout/index.js';
import { registerHttp, registerOps, registerStaticAndFallback } from './http.js';
import type { Ingest } from './ingest.js';
import { createMetrics, type Registry } from './metrics.js';
import type { NodeParts } from './node-parts.js';
import type { ServerOptions } from './options.js';
import { ServiceRouter, type ServiceGate } from './services/index.js';
import { Sessions } from './session.js';
import { registerSse } from './sse/index.js';
import { registerStomp } from './stomp/index.js';
import { ServerStats } from './stats.js';
import { listen, listenSocketsFor, loadUws } from './uws.js';
import { registerWebSocket } from './ws-route.js';

export interface NodeInit {
  opts: ServerOptions;
  auth: Authenticator;
  /** Where this node's publishes go, given its store, fan-out and counters. */
  ingest: (core: { store: TopicStore; fanout: Fanout; stats: ServerStats }) => Ingest;
  /** Where its requests go (default: a router in this thread). */
  services?: (core: { stats: ServerStats; clock: Clock }) => ServiceGate;
  clock?: Clock;
  /** The topic store (default: a new one; cluster origins number their topics apart). */
  store?: TopicStore;
  /** More for GET /healthz and /metrics (a cluster node's role, NATS state, replica lag). */
  ops?: NodeOps;
}

export interface NodeOps {
  health?: () => Record<string, unknown>;
  metrics?: (registry: Registry) => void;
}

export interface TickfanNode extends NodeParts {
  /** Listens on opts.host:opts.port; resolves with the bound port. */
  listen(): Promise<number>;
  /** Stops listening, tells every client "going away" (1001), lets the close frames leave, closes what is left. */
  close(): Promise<void>;
}

export function createNode(init: NodeInit): TickfanNode {
  const { opts, auth } = init;
  const uws = loadUws();
  const stats = new ServerStats();
  const store = init.store ?? new TopicStore(opts.limits);
  const clock = init.clock ?? realClock;
  const fanout = new Fanout(store, opts, stats, clock);
  const ingest = init.ingest({ store, fanout, stats });
  const services = init.services ? init.services({ stats, clock }) : new ServiceRouter(clock, opts.requestTimeoutMs, stats);
  const metrics = createMetrics(stats, () => store.size, init.ops?.metrics);
  const admission = new Admission(opts, auth.enabled, stats);
  const sessions = new Sessions(auth, fanout, services, opts, stats);
  const dispatch = new Dispatch(fanout, ingest, sessions, services, store, opts.maxPublishesPerSecond);
  const app = uws.App();
  const parts: NodeParts = { opts, uws, app, store, fanout, stats, ingest, auth, metrics, admission, sessions, dispatch, services, health: init.ops?.health };
  registerWebSocket(parts);
  registerHttp(parts);
  registerOps(parts);
  registerSse(parts);
  registerStomp(parts);
  registerStaticAndFallback(parts);

  let sockets: Parameters<typeof uws.us_listen_socket_close>[0][] = [];
  let closed = false;
  return {
    ...parts,
    async listen() {
      const l = await listen(uws, app, opts.host, opts.port, listenSocketsFor(opts.listenBacklog)).catch((err: unknown) => {
        // Leave no uWebSockets.js handle behind: a thread ending with one aborts the process.
        fanout.shutdown();
        metrics.stop();
        (app as unknown as { close(): void }).close();
        throw err;
      });
      sockets = l.sockets;
      return l.port;
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const s of sockets) uws.us_listen_socket_close(s);
      sockets = [];
      fanout.shutdown();
      services.close();
      ingest.close?.();
      metrics.stop();
      // Let the close frames leave, then close what is left (HTTP keep-alive included).
      await new Promise((r) => setTimeout(r, 50));
      (app as unknown as { close(): void }).close();
    },
  };
}
