// Server options with their defaults, validated when given so a bad setting
// fails at start with a message that names it.

import { pino, type Logger } from 'pino';
import { DEFAULT_ENGINE_LIMITS, type EngineLimits } from '../engine/index.js';
import type { AuthOptions } from './auth.js';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Operational log: a message a person can act on, plus optional structured fields. */
export type LogFn = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

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
  /**
   * WebSocket idle timeout in seconds: a connection that sends nothing (not
   * even the pong to the server's automatic ping) for this long is dropped.
   * 0 (off) or 8–960; uWebSockets.js aborts the process below 8. Default 60.
   */
  idleTimeoutSec: number;
  /**
   * Largest WebSocket message a client may send. A larger one closes the
   * connection with 1009; past twice this size the connection is cut at once,
   * without reading the rest. Default 1 MiB.
   */
  maxPayloadBytes: number;
  /** Largest HTTP request body (413 past it, never buffered further). Default 1 MiB. */
  maxBodyBytes: number;
  /** Time an HTTP request body may take to arrive before the request is answered 408 and closed. Default 10 s. */
  bodyTimeoutMs: number;
  /** Time a connection without a token has to send one in Hello before it is closed with 4001. Default 10 s. */
  authTimeoutMs: number;
  /**
   * A topic not updated within this many ms is flagged stale to its
   * subscribers (and in HTTP snapshots) until its next update. 0: off. Default 0.
   */
  topicTtlMs: number;
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
  /** Level of the default logger (`log`): debug, info, warn, error or silent. Default info (warn with TICKFAN_QUIET=1). */
  logLevel: LogLevel;
  /** Log function for operational messages. Default: pino, JSON lines on stderr, at `logLevel`. */
  log: LogFn;
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
  bodyTimeoutMs: 10_000,
  authTimeoutMs: 10_000,
  topicTtlMs: 0,
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
  logLevel: 'info',
};

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

function int(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new OptionError(`options.${name} must be an integer between ${min} and ${max} (got ${JSON.stringify(v)})`, name);
  }
  return v;
}

const loggers = new Map<LogLevel, LogFn>();

/**
 * The default `log`: a pino logger writing JSON lines to stderr (fd 2,
 * synchronously, so nothing is lost on exit and it works in worker threads).
 * One per level, shared by every server in the process.
 */
export function pinoLog(level: LogLevel): LogFn {
  let fn = loggers.get(level);
  if (!fn) {
    const logger: Logger = pino({ name: 'tickfan', level }, pino.destination({ fd: 2, sync: true }));
    fn = (lvl, msg, fields) => (fields ? logger[lvl](fields, msg) : logger[lvl](msg));
    loggers.set(level, fn);
  }
  return fn;
}

const KNOWN_AUTH = new Set(['secret', 'publicKey', 'jwks', 'issuer', 'audience', 'anonymous', 'anonymousGrants']);

function checkAuth(a: unknown): void {
  if (typeof a !== 'object' || a === null || Array.isArray(a)) throw new OptionError('options.auth must be an object (secret, publicKey or jwks; anonymous)', 'auth');
  for (const [k, v] of Object.entries(a)) {
    if (!KNOWN_AUTH.has(k)) throw new OptionError(`options.auth.${k} is not a tickfan option (known: ${[...KNOWN_AUTH].join(', ')})`, `auth.${k}`);
    if (v === undefined) continue;
    if ((k === 'secret' || k === 'publicKey' || k === 'issuer' || k === 'audience') && (typeof v !== 'string' || !v)) {
      throw new OptionError(`options.auth.${k} must be a non-empty string`, `auth.${k}`);
    }
    if (k === 'jwks' && (typeof v !== 'string' || !v) && (typeof v !== 'object' || v === null || !Array.isArray((v as { keys?: unknown }).keys))) {
      throw new OptionError('options.auth.jwks must be a JWKS object {"keys": [...]} or "@/path/to/jwks.json"', 'auth.jwks');
    }
    if (k === 'anonymous' && typeof v !== 'boolean') throw new OptionError(`options.auth.anonymous must be true or false (got ${JSON.stringify(v)})`, 'auth.anonymous');
    if (k === 'anonymousGrants') {
      const g = v as Record<string, unknown>;
      const ok = typeof g === 'object' && g !== null && Object.entries(g).every(([gk, gv]) => (gk === 'subscribe' || gk === 'publish') && Array.isArray(gv) && gv.every((p) => typeof p === 'string'));
      if (!ok) throw new OptionError('options.auth.anonymousGrants must be {"subscribe": [patterns], "publish": [patterns]}', 'auth.anonymousGrants');
    }
  }
}

/** Fills defaults and checks every option; throws OptionError naming the first bad one. */
export function resolveOptions(options: Partial<ServerOptions> = {}): ServerOptions {
  const known = new Set([...Object.keys(DEFAULT_OPTIONS), 'log']);
  for (const k of Object.keys(options)) if (!known.has(k)) throw new OptionError(`options.${k} is not a tickfan option`, k);
  // An option given as undefined takes its default.
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as Partial<ServerOptions>;
  if (given.limits !== undefined) {
    if (typeof given.limits !== 'object' || given.limits === null || Array.isArray(given.limits)) throw new OptionError('options.limits must be an object', 'limits');
    for (const k of Object.keys(given.limits)) {
      if (!(k in DEFAULT_ENGINE_LIMITS)) throw new OptionError(`options.limits.${k} is not a tickfan option (known: ${Object.keys(DEFAULT_ENGINE_LIMITS).join(', ')})`, `limits.${k}`);
    }
  }
  if (given.logLevel !== undefined && !LOG_LEVELS.includes(given.logLevel)) {
    throw new OptionError(`options.logLevel must be one of ${LOG_LEVELS.join(', ')} (got ${JSON.stringify(given.logLevel)})`, 'logLevel');
  }
  const logLevel: LogLevel = given.logLevel ?? (process.env.TICKFAN_QUIET === '1' ? 'warn' : DEFAULT_OPTIONS.logLevel);
  const o: ServerOptions = { ...DEFAULT_OPTIONS, logLevel, log: given.log ?? pinoLog(logLevel), ...given, limits: { ...DEFAULT_ENGINE_LIMITS, ...given.limits } };
  int('port', o.port, 0, 65535);
  if (typeof o.host !== 'string' || !o.host) throw new OptionError('options.host must be a non-empty string such as "127.0.0.1" or "0.0.0.0"', 'host');
  if (!Array.isArray(o.rateTiers) || o.rateTiers.length === 0 || o.rateTiers.some((r) => typeof r !== 'number' || !(r > 0) || r > 1000)) {
    throw new OptionError(`options.rateTiers must be a non-empty array of rates above 0 and up to 1000 updates per second (got ${JSON.stringify(o.rateTiers)})`, 'rateTiers');
  }
  o.rateTiers = [...new Set(o.rateTiers)].sort((a, b) => b - a);
  int('slowThresholdBytes', o.slowThresholdBytes, 1024, 2 ** 31);
  int('hardCapBytes', o.hardCapBytes, o.slowThresholdBytes, 2 ** 31);
  int('slowTimeoutMs', o.slowTimeoutMs, 10, 3_600_000);
  int('heartbeatMs', o.heartbeatMs, 10, 3_600_000);
  int('idleTimeoutSec', o.idleTimeoutSec, 0, 960);
  if (o.idleTimeoutSec > 0 && o.idleTimeoutSec < 8) {
    throw new OptionError(`options.idleTimeoutSec must be 0 (off) or between 8 and 960 (got ${o.idleTimeoutSec})`, 'idleTimeoutSec');
  }
  int('maxPayloadBytes', o.maxPayloadBytes, 1024, 64 * 1024 * 1024);
  int('maxBodyBytes', o.maxBodyBytes, 16, 64 * 1024 * 1024);
  int('bodyTimeoutMs', o.bodyTimeoutMs, 100, 3_600_000);
  int('authTimeoutMs', o.authTimeoutMs, 100, 3_600_000);
  int('topicTtlMs', o.topicTtlMs, 0, 2 ** 31 - 1);
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
  if (!Array.isArray(o.allowedOrigins) || o.allowedOrigins.some((x) => typeof x !== 'string' || (x !== 'null' && !/^[a-z][a-z0-9+.-]*:\/\/[^/\s]+$/i.test(x)))) {
    throw new OptionError(`options.allowedOrigins must be an array of origins such as "https://desk.example.com" (scheme://host[:port], no path; got ${JSON.stringify(o.allowedOrigins)})`, 'allowedOrigins');
  }
  checkAuth(o.auth);
  for (const k of ['allowRemoteWithoutAuth', 'demoPage'] as const) {
    if (typeof o[k] !== 'boolean') throw new OptionError(`options.${k} must be true or false (got ${JSON.stringify(o[k])})`, k);
  }
  if (typeof o.name !== 'string' || !o.name) throw new OptionError('options.name must be a non-empty string', 'name');
  int('workers', o.workers, 0, 256);
  int('ringBytes', o.ringBytes, 64 * 1024, 2 ** 30);
  if ((o.ringBytes & (o.ringBytes - 1)) !== 0) throw new OptionError(`options.ringBytes must be a power of two (got ${o.ringBytes})`, 'ringBytes');
  if (typeof o.log !== 'function') throw new OptionError('options.log must be a function (level, message) => void', 'log');
  return o;
}
