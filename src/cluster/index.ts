// tickfan on NATS: origins sequence their shard of the topics, edges serve
// replicas of what their clients want; startServer picks this layout when
// options.nats is set.
export { startCluster, type ClusterServer } from './start-cluster.js';
export { ShardTakenError, type LeaseHolder } from './lease.js';
export { shardOf, fnv1a32 } from './shard.js';
export type { ClusterStats, HealKind } from './cluster-stats.js';
