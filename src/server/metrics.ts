// Prometheus metrics (prom-client) for GET /metrics, read from the server's
// counters at scrape time so the hot path only bumps plain numbers.

import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { errorCodeName } from '../protocol/index.js';
import type { ServerStats } from './stats.js';

export type { Registry };

export interface Metrics {
  readonly contentType: string;
  render(): Promise<string>;
  stop(): void;
}

type NumericKey = { [K in keyof ServerStats]: ServerStats[K] extends number ? K : never }[keyof ServerStats];

/** A counter whose value is copied from `stats[key]` at every scrape. */
function mirrorCounter(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** `extend` adds metrics of its own (a cluster node's). */
export function createMetrics(stats: ServerStats, topics: () => number, extend?: (registry: Registry) => void): Metrics {
  const registry = new Registry();
  // Node's own: tickfan_process_resident_memory_bytes, tickfan_nodejs_heap_size_used_bytes, tickfan_nodejs_active_handles, …
  collectDefaultMetrics({ register: registry, prefix: 'tickfan_' });
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();

  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  gauge('tickfan_connections', 'Open WebSocket and SSE connections', () => stats.connections);
  gauge('tickfan_subscriptions', 'Active subscriptions', () => stats.subscriptions);
  gauge('tickfan_topics', 'Topics held', topics);
  gauge('tickfan_stale_topics', 'Topics flagged stale (publisher gone, or quiet past topicTtlMs)', () => stats.staleTopics);
  gauge('tickfan_shared_sets', 'Sets of topics that many connections follow together, published as one uWebSockets.js topic (groupMinConnections)', () => stats.sharedSets);
  gauge('tickfan_event_loop_lag_seconds', 'Event-loop delay p99 over the last scrape interval', () => {
    const v = lag.percentile(99) / 1e9;
    lag.reset();
    return v;
  });

  const counters: [NumericKey, string, string][] = [
    ['publishes', 'tickfan_publishes_total', 'Accepted publishes'],
    ['deliveries', 'tickfan_deliveries_total', 'Update messages handed to connections'],
    ['frames', 'tickfan_frames_total', 'WebSocket frames sent'],
    ['bytesOut', 'tickfan_bytes_out_total', 'Bytes sent to clients'],
    ['encodes', 'tickfan_encodes_total', 'Update messages encoded for fan-out (once per update per tier)'],
    ['conflated', 'tickfan_conflated_updates_total', 'Updates merged into throttled deltas'],
    ['snapshotEncodes', 'tickfan_snapshot_encodes_total', 'Snapshots encoded (cache misses)'],
    ['slowLaneEntries', 'tickfan_slow_lane_entries_total', 'Times a socket entered the slow lane'],
    ['slowDisconnects', 'tickfan_slow_consumer_disconnects_total', 'Sockets closed as slow consumers (4008)'],
  ];
  for (const [key, name, help] of counters) mirrorCounter(registry, name, help, () => stats[key]);
  extend?.(registry);

  new Counter({
    name: 'tickfan_catchups_total',
    help: 'Catch-ups sent, by kind',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ kind: 'delta' }, stats.catchUpDeltas);
      this.inc({ kind: 'snapshot' }, stats.catchUpSnapshots);
    },
  });
  new Counter({
    name: 'tickfan_errors_total',
    help: 'Errors answered to clients, by code',
    labelNames: ['code'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [code, n] of stats.errorsByCode) this.inc({ code: errorCodeName(code) }, n);
    },
  });

  return {
    contentType: registry.contentType,
    render: () => registry.metrics(),
    stop: () => lag.disable(),
  };
}
