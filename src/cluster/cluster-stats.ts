// What a cluster node reports on /healthz and /metrics: its role and shard,
// the NATS connection's state and traffic, replica lag, and gap heals by kind.

import { Counter, Gauge, type Registry } from 'prom-client';
import type { ClusterRole } from '../server/option-types.js';
import type { NatsLink } from './nats-link.js';

/** Why an edge took an image of a topic instead of the next update. */
export const HEAL_KINDS = ['gap', 'epoch', 'reconnect', 'interest', 'origin', 'beat'] as const;
export type HealKind = (typeof HEAL_KINDS)[number];

export class ClusterStats {
  /** Images applied (replica reset to the origin's exact state), by why they were asked for. */
  readonly heals: Record<HealKind, number> = { gap: 0, epoch: 0, reconnect: 0, interest: 0, origin: 0, beat: 0 };
  imageRequests = 0;
  /** Image requests answered (applied, whatever the origin held); with imageFailures, the rest are in flight. */
  imageAnswers = 0;
  imageFailures = 0;
  /** Versions an edge's replicas jumped forward by images (what the heals made up for). */
  healedVersions = 0;
  updatesIn = 0;
  duplicates = 0;
  /** Updates that arrived while their topic waited for an image: kept and replayed on it (heal-buffer.ts). */
  heldWhileHealing = 0;
  /** Of those, updates the image already included (dropped) or that did not chain onto it (the topic asked again). */
  droppedWhileHealing = 0;
  /** Version heartbeats received from origins (an edge), or sent (an origin). */
  beats = 0;
  /** Topics a version heartbeat showed behind here (then healed by image: heals.beat). */
  behindAtBeat = 0;
  /** Origin time of the last update applied → when it was applied, ms. */
  lagMs = 0;
  lastUpdateAt = 0;
  forwardedOut = 0;
  forwardFailures = 0;
  forwardedIn = 0;
  imagesServed = 0;
  /** Requests forwarded to another node (no local responder), taken from other nodes, and forwarded ones that ended in an error. */
  requestsOut = 0;
  requestsIn = 0;
  requestFailures = 0;
  updatesOut = 0;
  updateBytesOut = 0;
  sendFailures = 0;
  /** Topics waiting for an image now. */
  healing = 0;

  constructor(
    readonly role: ClusterRole,
    readonly shard: string | null,
    readonly id: string,
    private readonly link: NatsLink,
  ) {}

  sent(bytes: number): void {
    this.updatesOut++;
    this.updateBytesOut += bytes;
  }

  applied(originTs: number): void {
    this.updatesIn++;
    this.lastUpdateAt = Date.now();
    this.lagMs = Math.max(0, this.lastUpdateAt - originTs);
  }

  /** The `cluster` object of GET /healthz. */
  toJSON(): Record<string, unknown> {
    const { link, ...own } = this;
    void link;
    return {
      ...own,
      nats: { state: this.link.state, server: this.link.nc.getServer(), disconnects: this.link.disconnects, reconnects: this.link.reconnects, ...this.link.traffic() },
      lastUpdateAgeMs: this.lastUpdateAt ? Date.now() - this.lastUpdateAt : null,
    };
  }

  /** tickfan_cluster_* metrics. */
  register(registry: Registry): void {
    const gauge = (name: string, help: string, read: () => number, labels?: Record<string, string>) =>
      new Gauge({
        name,
        help,
        labelNames: labels ? Object.keys(labels) : [],
        registers: [registry],
        collect() {
          if (labels) this.set(labels, read());
          else this.set(read());
        },
      });
    const counter = (name: string, help: string, read: () => number) =>
      new Counter({
        name,
        help,
        registers: [registry],
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    gauge('tickfan_cluster_info', 'This node in its cluster (value 1)', () => 1, { role: this.role, shard: this.shard ?? '', id: this.id });
    gauge('tickfan_cluster_nats_connected', 'NATS connection up (1) or reconnecting (0)', () => (this.link.state === 'connected' ? 1 : 0));
    gauge('tickfan_cluster_replica_lag_seconds', 'Origin publish to edge apply, last update', () => this.lagMs / 1000);
    gauge('tickfan_cluster_healing_topics', 'Replica topics waiting for an image', () => this.healing);
    counter('tickfan_cluster_nats_reconnects_total', 'NATS reconnections', () => this.link.reconnects);
    counter('tickfan_cluster_nats_bytes_in_total', 'Bytes received from NATS', () => this.link.traffic().inBytes);
    counter('tickfan_cluster_nats_bytes_out_total', 'Bytes sent to NATS', () => this.link.traffic().outBytes);
    counter('tickfan_cluster_updates_in_total', 'Sequenced updates applied to replicas', () => this.updatesIn);
    counter('tickfan_cluster_updates_out_total', 'Sequenced updates this origin sent', () => this.updatesOut);
    counter('tickfan_cluster_forwarded_publishes_total', 'Publishes forwarded to their origin', () => this.forwardedOut);
    counter('tickfan_cluster_requests_out_total', 'Requests forwarded to another node (no responder here)', () => this.requestsOut);
    counter('tickfan_cluster_requests_in_total', 'Requests taken from other nodes for a responder here', () => this.requestsIn);
    const heals = this.heals;
    new Counter({
      name: 'tickfan_cluster_heals_total',
      help: 'Replica topics reset from an origin image, by why',
      labelNames: ['kind'],
      registers: [registry],
      collect() {
        this.reset();
        for (const kind of HEAL_KINDS) this.inc({ kind }, heals[kind]);
      },
    });
  }
}
