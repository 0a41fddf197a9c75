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
  /** Topics flagged stale right now (publisher gone, or quiet past topicTtlMs). */
  staleTopics = 0;
  /** Channel sets that connections share on one uWS topic right now (fanout/fast-groups.ts, groupMinConnections). */
  sharedSets = 0;
  errors = 0;
  /** Request-reply (counted where requests are routed: this thread, or the main thread with workers). */
  requests = 0;
  replies = 0;
  /** Answers that came after their request ended (timeout, requester gone): dropped. */
  lateReplies = 0;
  requestTimeouts = 0;
  noResponder = 0;
  /** Worker only: times it fell more than a ring behind (or hit a gap) and resynchronised. */
  overruns = 0;
  resyncs = 0;
  /** Errors answered to clients, by protocol error code. */
  readonly errorsByCode = new Map<number, number>();

  error(code: number): void {
    this.errors++;
    this.errorsByCode.set(code, (this.errorsByCode.get(code) ?? 0) + 1);
  }

  toJSON(): Record<string, number> {
    return Object.fromEntries(Object.entries(this).filter(([, v]) => typeof v === 'number')) as Record<string, number>;
  }
}
