// Helpers of the cluster tests: origin and edge nodes in this process (each on
// its own port, all on one real nats-server), SDK clients behind a "load
// balancer" that can send the next connection to another edge, and exactness
// checked against the origin's GET /snapshot.

import WebSocket from 'ws';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { startServer, type ServerOptions } from '../../src/index.js';
import type { ClusterServer } from '../../src/cluster/index.js';
import { connect, type ClientOptions, type TickfanClient, type WebSocketCtor } from '../../src/client/index.js';
import { fieldsToJson } from '../../src/protocol/index.js';
import { http, waitFor } from './helpers.js';
import { NatsServer } from './nats-server.js';

let prefixes = 0;

/** A NATS subject prefix of its own per test: tests on one nats-server never see each other. */
export function freshPrefix(): string {
  return `t${process.pid}x${++prefixes}`;
}

/** Owns the nodes and clients of one test; close() in afterEach. */
/**
 * The cluster tests' fixture: one nats-server for the test file (started
 * before its tests, stopped after them) and, per test, the harnesses made
 * with `harness()`, closed after it (each test file used to repeat these hooks).
 */
export function clusterFixture(): { readonly nats: NatsServer; harness(natsUrl?: string): ClusterHarness } {
  let nats: NatsServer | undefined;
  const open: ClusterHarness[] = [];
  beforeAll(async () => {
    nats = await NatsServer.start();
  });
  afterAll(async () => {
    await nats?.stop();
  });
  afterEach(async () => {
    for (const h of open.splice(0)) await h.close();
  });
  const fx = {
    get nats(): NatsServer {
      if (!nats) throw new Error('the nats-server starts in beforeAll: use it inside a test');
      return nats;
    },
    /** A harness on this file's nats-server (or on `natsUrl`: a proxy in front of it, say), closed after the test. */
    harness(natsUrl?: string): ClusterHarness {
      const h = new ClusterHarness(natsUrl ?? fx.nats.url);
      open.push(h);
      return h;
    },
  };
  return fx;
}

export class ClusterHarness {
  readonly nodes: ClusterServer[] = [];
  readonly clients: TickfanClient[] = [];

  constructor(
    private readonly natsUrl: string,
    readonly prefix = freshPrefix(),
  ) {}

  async node(opts: Partial<ServerOptions>): Promise<ClusterServer> {
    const s = (await startServer({ port: 0, host: '127.0.0.1', log: () => {}, nats: this.natsUrl, natsPrefix: this.prefix, ...opts })) as ClusterServer;
    this.nodes.push(s);
    return s;
  }

  origin(opts: Partial<ServerOptions> = {}): Promise<ClusterServer> {
    return this.node({ role: 'origin', ...opts });
  }

  /** An edge that already knows the cluster's layout. */
  async edge(opts: Partial<ServerOptions> = {}): Promise<ClusterServer> {
    const e = await this.node({ role: 'edge', ...opts });
    await waitFor(() => (e.cluster.stats.toJSON().nats as { state: string }).state === 'connected', 5_000, 'the edge connected to NATS');
    return e;
  }

  /**
   * An SDK client whose every (re)connection goes where `route()` says at
   * that moment — a load balancer without stickiness. A route of null sends it
   * nowhere (a port nothing listens on) so it keeps retrying.
   */
  client(route: () => ClusterServer | null, opts: ClientOptions = {}): TickfanClient & { cut(): void } {
    const sockets: WebSocket[] = [];
    class Routed extends WebSocket {
      constructor() {
        const to = route();
        super(`ws://127.0.0.1:${to ? to.port : 1}/ws`);
        sockets.push(this);
      }
    }
    const c = connect('ws://127.0.0.1:1/ws', { WebSocket: Routed as unknown as WebSocketCtor, backoff: { initialMs: 10, maxMs: 50 }, ...opts });
    this.clients.push(c);
    return Object.assign(c, { cut: () => sockets[sockets.length - 1]?.terminate() });
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.close();
    for (const n of [...this.nodes].reverse()) await n.close().catch(() => undefined);
    this.clients.length = this.nodes.length = 0;
  }
}

export interface OriginSnapshot {
  epoch: number;
  version: number;
  fields: Record<string, unknown>;
}

/** GET /snapshot/<topic> on a node (the origin: the truth). */
export async function snapshotOn(node: ClusterServer, topic: string): Promise<OriginSnapshot> {
  const r = await http(node.port, 'GET', `/snapshot/${encodeURIComponent(topic)}`);
  if (r.status !== 200) throw new Error(`GET /snapshot/${topic} on ${node.port}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body as OriginSnapshot;
}

/** What a client holds of a topic, in the same JSON form as GET /snapshot; null when it holds nothing. */
export function heldBy(client: TickfanClient, topic: string): OriginSnapshot | null {
  const s = client.stateOf(topic);
  if (!s) return null;
  return { epoch: s.epoch, version: s.version, fields: JSON.parse(JSON.stringify(fieldsToJson(Object.entries(s.state)))) as Record<string, unknown> };
}

/** Epoch, version and fields in one string, fields sorted by name. */
export function canonical(s: OriginSnapshot): string {
  return JSON.stringify([s.epoch, s.version, Object.entries(s.fields).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))]);
}

/** Waits until `client` holds exactly the origin's current image of each topic. */
export async function exactly(client: TickfanClient, origin: ClusterServer, topics: readonly string[], timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const topic of topics) {
    await waitFor(() => {
      const t = origin.store.get(topic);
      const s = client.stateOf(topic);
      return !!t && !!s && s.epoch === t.epoch && s.version === t.version;
    }, Math.max(1, deadline - Date.now()), `the client to hold ${topic} at the origin's version`);
    const want = await snapshotOn(origin, topic);
    const held = heldBy(client, topic);
    if (!held || canonical(held) !== canonical(want)) {
      throw new Error(`${topic}: the client holds ${JSON.stringify(held)}, the origin ${JSON.stringify(want)}`);
    }
  }
}
