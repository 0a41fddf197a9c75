// The shapes of tickfan's settings (ServerOptions, AuthOptions, the demo feed)
// and OptionError. Types only, plus the error: what each setting means, its
// default, range, environment variable and flag are in option-table.ts.

import type { JSONWebKeySet } from 'jose';
import type { EngineLimits } from '../engine/index.js';

/** A bad option: `code` is stable, the message names the option; `option` is its path (`limits.maxTopics`). */
export class OptionError extends Error {
  readonly code = 'TICKFAN_ERR_BAD_OPTION';
  readonly option: string | undefined;
  constructor(message: string, option?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OptionError';
    this.option = option;
  }
}

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
/** How V8's young generation may grow (young-generation.ts). */
export const YOUNG_GENERATION_MODES = ['small', 'node'] as const;
export type YoungGeneration = (typeof YOUNG_GENERATION_MODES)[number];
export type LogLevel = (typeof LOG_LEVELS)[number];

/** permessage-deflate towards clients that offer it (option-table.ts says when it pays). */
export const COMPRESSION_MODES = ['off', 'shared', 'dedicated'] as const;
export type Compression = (typeof COMPRESSION_MODES)[number];

/** What a node does in a NATS cluster: sequences its shard (origin), serves clients from replicas (edge), or both. */
export const CLUSTER_ROLES = ['origin', 'edge', 'both'] as const;
export type ClusterRole = (typeof CLUSTER_ROLES)[number];

/** Operational log: a message a person can act on, plus optional structured fields. */
export type LogFn = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

/** Connection tokens (see auth.ts); each key is described in option-table.ts. */
export interface AuthOptions {
  secret?: string;
  publicKey?: string;
  jwks?: JSONWebKeySet | string;
  issuer?: string;
  audience?: string;
  anonymous?: boolean;
  anonymousGrants?: { subscribe?: string[]; publish?: string[]; serve?: string[]; request?: string[] };
}

/**
 * Options of `startServer()`. Each one's meaning, default and accepted values
 * are in option-table.ts (and the README's configuration table made from it).
 */
export interface ServerOptions {
  port: number;
  host: string;
  listenBacklog: number;
  rateTiers: number[];
  slowThresholdBytes: number;
  hardCapBytes: number;
  slowTimeoutMs: number;
  eagerFlushes: number;
  eagerBelowLoad: number;
  groupMinConnections: number;
  heartbeatMs: number;
  idleTimeoutSec: number;
  maxPayloadBytes: number;
  compression: Compression;
  maxBodyBytes: number;
  bodyTimeoutMs: number;
  authTimeoutMs: number;
  topicTtlMs: number;
  maxSubscriptionsPerConnection: number;
  maxBadFrames: number;
  limits: Partial<EngineLimits>;
  maxConnections: number;
  maxConnectionsPerIp: number;
  maxPublishesPerSecond: number;
  /** Longest a request waits for its answer (ms); the default when a request names none. */
  requestTimeoutMs: number;
  allowedOrigins: string[];
  auth: AuthOptions;
  allowRemoteWithoutAuth: boolean;
  workers: number;
  ringBytes: number;
  /** NATS servers of the cluster (none: one self-contained node). A string is one URL or a comma-separated list. */
  nats: string | string[];
  role: ClusterRole;
  /** This origin's shard of the topics, `i/n` (1-based). */
  shard: string;
  natsPrefix: string;
  /** An origin's version heartbeats to its edges, ms apart (see Running a cluster: Faults). */
  clusterHeartbeatMs: number;
  /** Longest a publish forwarded to its origin waits for the origin's answer (ms). */
  publishTimeoutMs: number;
  /** Longest a starting origin waits for a shard lease that its crashed predecessor still holds (ms). */
  leaseWaitMs: number;
  demoPage: boolean;
  /** 'small': V8's young generation keeps its starting size (the whole process; young-generation.ts). 'node': Node's default. */
  youngGeneration: YoungGeneration;
  name: string;
  logLevel: LogLevel;
  log: LogFn;
}

/** The built-in market simulator of `tickfan serve` (not a server option). */
export interface DemoConfig {
  enabled?: boolean;
  rate?: number;
  symbols?: number;
}
