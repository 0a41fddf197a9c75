// Counters the server keeps for /healthz, tests and benchmarks.

export class ServerStats {
  connections = 0;
  subscriptions = 0;
  publishes = 0;
  /** Shared messages handed to a connection (one per subscriber per update or flush). */
  deliveries = 0;
  /** Messages encoded for fan-out (grows with updates × tiers, not subscribers). */
  encodes = 0;
  frames = 0;
  bytesOut = 0;
  /** Updates merged into a throttled tier's pending delta. */
  conflated = 0;
  catchUpDeltas = 0;
  catchUpSnapshots = 0;
  snapshotEncodes = 0;
  slowLaneEntries = 0;
  slowDisconnects = 0;
  errors = 0;

  toJSON(): Record<string, number> {
    return Object.fromEntries(Object.entries(this)) as Record<string, number>;
  }
}
