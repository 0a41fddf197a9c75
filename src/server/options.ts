// Server options with their defaults, validated when given so a bad setting
// fails at start with a message that names it.

import { DEFAULT_ENGINE_LIMITS, type EngineLimits } from '../engine/index.js';
import type { AuthOptions } from './auth.js';

export interface ServerOptions {
  /** TCP port; 0 picks a free one (see `server.port`). Default 8080. */
  port: number;
  /** Interface to listen on. Default 127.0.0.1. */
  host: string;
  /** Throttled rate tiers in updates per second per topic. Default [50, 10, 4, 1]. */
  rateTiers: number[];
  /** Buffered bytes above which a socket leaves the fast path. Default 256 KiB. */
  slowThresholdBytes: number;
  /** Buffered bytes past which a slow socket is closed with 4008. Default 8 MiB. */
  hardCapBytes: number;
  /** Time a socket may stay in the slow lane before it is closed with 4008. Default 15 s. */
  slowTimeoutMs: number;
  /** Interval of the heartbeat carrying quiet topics' versions. Default 5 s. */
  heartbeatMs: number;
  /** WebSocket idle timeout in seconds (uWS sends pings itself). Default 60. */
  idleTimeoutSec: number;
  /** Largest WebSocket message a client may send. Default 1 MiB. */
  maxPayloadBytes: number;
  /** Largest HTTP request body. Default 1 MiB. */
  maxBodyBytes: number;
  /** Subscriptions one connection may hold. Default 10 000. */
  maxSubscriptionsPerConnection: number;
  /** Frames of malformed input in a row before a connection is closed. Default 100. */
  maxBadFrames: number;
  /** Topic engine limits (history size, topics, fields, value size, name length). */
  limits: Partial<EngineLimits>;
  /** Connections in total (WebSocket + SSE). Default 100 000. */
  maxConnections: number;
  /** Connections from one IP address. Default 1 000. */
  maxConnectionsPerIp: number;
  /** Publishes per second one connection may make (token bucket, burst = 1 s). Default 10 000. */
  maxPublishesPerSecond: number;
  /** Origins allowed to open WebSocket / SSE connections (empty: any; requests without Origin always pass). */
  allowedOrigins: string[];
  /** Connection tokens. Empty: no authentication (open, loopback only unless `allowRemoteWithoutAuth`). */
  auth: AuthOptions;
  /** With no authentication configured, accept connections from beyond loopback anyway. Default false. */
  allowRemoteWithoutAuth: boolean;
  /** Fan-out worker threads (0: everything in this thread). Default 0 for startServer, the core count for `tickfan serve`. */
  workers: number;
  /** Bytes of the shared ring carrying sequenced updates to workers (power of two). Default 16 MiB. */
  ringBytes: number;
  /** Serve the demo page at / (and the browser SDK at /tickfan.js). Default false. */
  demoPage: boolean;
  /** Server name sent in Welcome. */
  name: string;
  /** Log function for operational messages (default: console.error with a prefix). */
  log: (level: 'info' | 'warn' | 'error', msg: string) => void;
}

export const DEFAULT_OPTIONS: Readonly<Omit<ServerOptions, 'log'>> = {
  port: 8080,
  host: '127.0.0.1',
  rateTiers: [50, 10, 4, 1],
  slowThresholdBytes: 256 * 1024,
  hardCapBytes: 8 * 1024 * 1024,
  slowTimeoutMs: 15_000,
  heartbeatMs: 5_000,
  idleTimeoutSec: 60,
  maxPayloadBytes: 1024 * 1024,
  maxBodyBytes: 1024 * 1024,
  maxSubscriptionsPerConnection: 10_000,
  maxBadFrames: 100,
  limits: DEFAULT_ENGINE_LIMITS,
  maxConnections: 100_000,
  maxConnectionsPerIp: 1_000,
  maxPublishesPerSecond: 10_000,
  allowedOrigins: [],
  auth: {},
  allowRemoteWithoutAuth: false,
  workers: 0,
  ringBytes: 16 * 1024 * 1024,
  demoPage: false,
  name: 'tickfan',
};

/** A bad option: `code` is stable, the message names the option. */
export class OptionError extends Error {
  readonly code = 'TICKFAN_ERR_BAD_OPTION';
  constructor(message: string) {
    super(message);
    this.name = 'OptionError';
  }
}

function int(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new OptionError(`options.${name} must be an integer between ${min} and ${max} (got ${JSON.stringify(v)})`);
  }
  return v;
}

const defaultLog: ServerOptions['log'] = (level, msg) => {
  if (level !== 'info' || process.env.TICKFAN_QUIET !== '1') console.error(`[tickfan] ${level}: ${msg}`);
};

/** Fills defaults and checks every option; throws OptionError naming the first bad one. */
export function resolveOptions(given: Partial<ServerOptions> = {}): ServerOptions {
  const known = new Set([...Object.keys(DEFAULT_OPTIONS), 'log']);
  for (const k of Object.keys(given)) if (!known.has(k)) throw new OptionError(`options.${k} is not a tickfan option`);
  const o: ServerOptions = { ...DEFAULT_OPTIONS, log: defaultLog, ...given, limits: { ...DEFAULT_ENGINE_LIMITS, ...given.limits } };
  int('port', o.port, 0, 65535);
  if (typeof o.host !== 'string' || !o.host) throw new OptionError('options.host must be a non-empty string such as "127.0.0.1" or "0.0.0.0"');
  if (!Array.isArray(o.rateTiers) || o.rateTiers.some((r) => typeof r !== 'number' || !(r > 0) || r > 1000)) {
    throw new OptionError('options.rateTiers must be an array of rates between 0 (exclusive) and 1000 updates per second');
  }
  o.rateTiers = [...new Set(o.rateTiers)].sort((a, b) => b - a);
  int('slowThresholdBytes', o.slowThresholdBytes, 1024, 2 ** 31);
  int('hardCapBytes', o.hardCapBytes, o.slowThresholdBytes, 2 ** 31);
  int('slowTimeoutMs', o.slowTimeoutMs, 10, 3_600_000);
  int('heartbeatMs', o.heartbeatMs, 10, 3_600_000);
  int('idleTimeoutSec', o.idleTimeoutSec, 0, 960);
  int('maxPayloadBytes', o.maxPayloadBytes, 1024, 64 * 1024 * 1024);
  int('maxBodyBytes', o.maxBodyBytes, 16, 64 * 1024 * 1024);
  int('maxSubscriptionsPerConnection', o.maxSubscriptionsPerConnection, 1, 10_000_000);
  int('maxBadFrames', o.maxBadFrames, 1, 1_000_000);
  const l = o.limits as Required<EngineLimits>;
  int('limits.historySize', l.historySize, 0, 1_000_000);
  int('limits.maxTopics', l.maxTopics, 1, 100_000_000);
  int('limits.maxFieldsPerTopic', l.maxFieldsPerTopic, 1, 1_000_000);
  int('limits.maxFieldNameLength', l.maxFieldNameLength, 1, 65_536);
  int('limits.maxValueBytes', l.maxValueBytes, 1, 64 * 1024 * 1024);
  int('limits.maxTopicLength', l.maxTopicLength, 1, 65_536);
  int('maxConnections', o.maxConnections, 1, 10_000_000);
  int('maxConnectionsPerIp', o.maxConnectionsPerIp, 1, 10_000_000);
  int('maxPublishesPerSecond', o.maxPublishesPerSecond, 1, 100_000_000);
  if (!Array.isArray(o.allowedOrigins) || o.allowedOrigins.some((x) => typeof x !== 'string')) {
    throw new OptionError('options.allowedOrigins must be an array of origins such as "https://desk.example.com"');
  }
  if (typeof o.auth !== 'object' || o.auth === null) throw new OptionError('options.auth must be an object (secret, publicKey or jwks; anonymous)');
  int('workers', o.workers, 0, 256);
  int('ringBytes', o.ringBytes, 64 * 1024, 2 ** 30);
  if ((o.ringBytes & (o.ringBytes - 1)) !== 0) throw new OptionError(`options.ringBytes must be a power of two (got ${o.ringBytes})`);
  if (typeof o.log !== 'function') throw new OptionError('options.log must be a function (level, message) => void');
  return o;
}
