// The cluster layout: one node (createNode, one thread) attached to NATS in
// its role — an origin sequencing its shard, an edge serving replicas of what
// its clients want, or both. startServer (src/start.ts) picks it when
// options.nats is set.

import { randomBytes } from 'node:crypto';
import { TopicStore } from '../engine/index.js';
import { ErrorCode, TickfanError, toChanges } from '../protocol/index.js';
import type { Authenticator } from '../server/auth.js';
import { createNode } from '../server/node.js';
import type { ServerOptions } from '../server/options.js';
import type { TickfanServer } from '../server/server.js';
import { toTopicBatch } from '../server/batch-input.js';
import { ServiceRouter } from '../server/services/index.js';
import { ClusterIngest } from './cluster-ingest.js';
import { ClusterStats } from './cluster-stats.js';
import { EdgeInterest } from './edge-interest.js';
import { Layout } from './layout.js';
import { ShardLease } from './lease.js';
import { NatsLink } from './nats-link.js';
import { Origin } from './origin.js';
import { Replicas } from './replicas.js';
import { ClusterServices } from './service-bridge.js';
import { parseShard, shardName, shardOf } from './shard.js';
import { Subjects } from './subjects.js';

/** A cluster node as its embedder (and the tests) see it. */
export interface ClusterServer extends TickfanServer {
  readonly cluster: {
    readonly role: ServerOptions['role'];
    /** Unique per process (a restarted origin has a new one). */
    readonly id: string;
    /** This origin's shard (`i/n`); null on an edge. */
    readonly shard: string | null;
    readonly stats: ClusterStats;
    /** True when this node sequences `topic`. */
    owns(topic: string): boolean;
    /** Diagnostics: stops reading from NATS for `ms` (the server then cuts this node as a slow consumer). */
    stallNats(ms: number): void;
    /** Diagnostics (an origin): the next `n` updates it sequences never reach NATS, as if lost on the way. */
    loseUpdates(n: number): void;
  };
}

export async function startCluster(opts: ServerOptions, auth: Authenticator): Promise<ClusterServer> {
  const { log, role } = opts;
  const servers = [opts.nats].flat();
  const shard = role === 'edge' ? null : parseShard(opts.shard);
  // A 'both' node alone in its shard set (1/1) sequences everything: it has nothing to replicate.
  const edge = role === 'edge' || (role === 'both' && shard!.of > 1);
  if (opts.workers > 0) log('warn', `options.workers (${opts.workers}) is ignored in a cluster: each cluster node runs one thread (run one edge process per core on the same port instead)`);
  const id = `${opts.name}-${role}${shard ? `-${shard.index}of${shard.of}` : ''}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const subjects = new Subjects(opts.natsPrefix);
  const link = await NatsLink.open(servers, id, log);
  let lease: ShardLease | null = null;
  try {
    if (shard) lease = await ShardLease.take(link, subjects.leaseBucket, shard, id, log, opts.leaseWaitMs);
    // Origins number their topics i, i + n, i + 2n, … so ids from different origins never meet on one connection.
    const store = new TopicStore(opts.limits, undefined, shard ? { first: shard.index, step: shard.of } : undefined);
    const cstats = new ClusterStats(role, shard ? shardName(shard) : null, id, link);
    const layout = new Layout(link, subjects, log, shard);
    let origin: Origin | null = null;
    const node = createNode({
      opts,
      auth,
      store,
      ingest: ({ fanout, stats }) => {
        if (shard && lease) origin = new Origin(id, shard, link, subjects, lease, store, fanout, stats, cstats, log, opts.clusterHeartbeatMs);
        return new ClusterIngest(origin, store, link, subjects, layout, cstats, opts.publishTimeoutMs);
      },
      // Request-reply: local when a responder here offers the service, else forwarded to a node that has one.
      services: ({ stats, clock }) => new ClusterServices(new ServiceRouter(clock, opts.requestTimeoutMs, stats), link, subjects, cstats, stats, opts.requestTimeoutMs),
      ops: {
        health: () => ({ status: link.state === 'connected' ? 'ok' : 'degraded', cluster: cstats.toJSON() }),
        metrics: (registry) => cstats.register(registry),
      },
    });
    const { fanout, stats } = node;
    let replicas: Replicas | null = null;
    if (edge) {
      const r = (replicas = new Replicas(store, fanout, stats, cstats, link, subjects, layout, shard, log));
      r.interest = new EdgeInterest(link, subjects, store.limits.maxTopicLength, (m) => r.onMessage(m));
      r.start();
      fanout.watch({ interest: (source, wanted) => (wanted ? r.wanted(source) : r.unwanted(source)), unheld: (conn, points) => r.unheld(conn, points) });
      link.on('down', () => r.down());
      link.on('up', () => r.up());
      layout.on('arrived', (s) => r.arrived(s));
      layout.on('gone', (s) => r.gone(s));
    }
    // A stale flag changed here: an origin tells its edges; an edge tells the topic's origin (its own publisher left).
    fanout.watch({
      stale: (topic, stale) => {
        const o = origin as Origin | null;
        if (o?.owns(topic.name)) o.statusChanged(topic, stale);
        else replicas?.localStale(topic, stale);
      },
    });
    (origin as Origin | null)?.start();
    await layout.start();
    let port: number;
    try {
      port = await node.listen();
    } catch (err) {
      replicas?.close();
      layout.stop();
      (origin as Origin | null)?.stop();
      throw err;
    }
    log('info', `listening on ${opts.host}:${port} as cluster ${role}${shard ? ` of shard ${shardName(shard)}` : ''} on NATS ${servers.join(', ')} (subjects ${opts.natsPrefix}.*)`, {
      host: opts.host,
      port,
      role,
      shard: shard ? shardName(shard) : null,
      id,
    });
    const owns = (topic: string) => shard !== null && shardOf(topic, shard.of) === shard.index;
    let closed = false;
    /** This node's origin, when it sequences `topic`. */
    const originFor = (topic: string): Origin => {
      const o = origin as Origin | null;
      if (!o || !owns(topic)) {
        throw new TickfanError(ErrorCode.BAD_REQUEST, `${topic} is not sequenced here (${shard ? `shard ${shardName(shard)}` : 'an edge'}): publish it on its origin, or over WebSocket / HTTP on any node (forwarded)`);
      }
      return o;
    };
    return {
      port,
      host: opts.host,
      stats,
      store,
      workers: 0,
      publish: (topic, fields) => originFor(topic).sequence(topic, toChanges(fields)),
      // Sequenced here (this node's shard only); the net row change goes to the edges with the update.
      publishBatch: (topic, batch) => originFor(topic).sequenceBatch(topic, toTopicBatch(batch)),
      setStale(topic, stale) {
        const t = store.get(topic);
        if (!t) throw new TickfanError(ErrorCode.UNKNOWN_TOPIC, `no topic ${topic}`);
        fanout.setStale(t, stale);
      },
      stallWorker: () => Promise.reject(new TickfanError(ErrorCode.BAD_REQUEST, 'a cluster node runs without workers')),
      cluster: { role, id, shard: shard ? shardName(shard) : null, stats: cstats, owns, stallNats: (ms) => link.stall(ms), loseUpdates: (n) => (origin as Origin | null)?.loseUpdates(n) },
      async close() {
        if (closed) return;
        closed = true;
        log('info', `closing cluster ${role}: ${stats.connections} connections are told 1001 going away`);
        (origin as Origin | null)?.stop();
        await lease?.release();
        replicas?.close();
        layout.stop();
        await node.close();
        await link.close();
      },
    };
  } catch (err) {
    await lease?.release();
    await link.close();
    throw err;
  }
}
