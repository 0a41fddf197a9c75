// Every tickfan setting described once: type, default, accepted values, meaning,
// environment variable and flag. Validation (resolveOptions), the config file /
// environment / flag layers, `tickfan serve --help` and the README table come from here.

import { DEFAULT_ENGINE_LIMITS, type EngineLimits } from '../engine/index.js';
import { CLUSTER_ROLES, COMPRESSION_MODES, LOG_LEVELS, OptionError, YOUNG_GENERATION_MODES, type AuthOptions, type DemoConfig, type ServerOptions } from './option-types.js';

interface Common {
  /** What it is for, as a person reads it (README and --help; backticks allowed). */
  doc: string;
  /** The value taken when the setting is not given; none: the setting is optional. */
  default?: unknown;
  /** The default as README and --help show it, where the value alone would mislead. */
  shown?: string;
  /** What it accepts, where the type alone does not say (README). */
  accepts?: string;
  /** Environment variable of `tickfan serve`. */
  env?: string;
  /** Flag of `tickfan serve`, without the dashes. */
  flag?: string;
  /** Placeholder of the flag's value in --help (otherwise from the type). */
  arg?: string;
  /** A check beyond the type's; throws an OptionError naming `path`. */
  check?: (value: unknown, path: string) => void;
  /** Turns a valid value into the one the server uses. */
  normalize?: (value: unknown) => unknown;
}

/** One setting. `type` decides the built-in check and how environment / flag text is read. */
export type OptionSpec =
  /** An integer from `min` (or the value of the option named by a string `min`) to `max`. */
  | (Common & { type: 'int'; min: number | string; max: number })
  | (Common & { type: 'bool' })
  /** A non-empty string; `example` ends the message (`such as …`). */
  | (Common & { type: 'string'; example?: string })
  | (Common & { type: 'enum'; values: readonly string[] })
  /** Checked by `check` alone. As text: numbers / a list, comma-separated; otherwise as is. */
  | (Common & { type: 'numbers' | 'list' | 'jwks' | 'grants' | 'function'; check: (value: unknown, path: string) => void })
  /** An object of settings; `expect` completes "options.X must be …" when it is not one. */
  | (Common & { type: 'group'; expect: string; fields: Record<string, OptionSpec> });

const MS_HOUR = 3_600_000;
const MIB = 1024 * 1024;

function origins(v: unknown, path: string): void {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || (x !== 'null' && !/^[a-z][a-z0-9+.-]*:\/\/[^/\s]+$/i.test(x)))) {
    throw new OptionError(`options.${path} must be an array of origins such as "https://desk.example.com" (scheme://host[:port], no path; got ${JSON.stringify(v)})`, path);
  }
}

/** NATS server URLs: a string (comma-separated) or an array of them. */
function natsServers(v: unknown, path: string): void {
  const list = typeof v === 'string' ? v.split(',').map((x) => x.trim()) : v;
  if (!Array.isArray(list) || list.some((x) => typeof x !== 'string' || !/^(nats|tls|wss?):\/\/[^/\s]+$/i.test(x))) {
    throw new OptionError(`options.${path} must be NATS server URLs such as "nats://127.0.0.1:4222" (several: comma-separated or an array; got ${JSON.stringify(v)})`, path);
  }
}

function shardSpec(v: unknown, path: string): void {
  const m = typeof v === 'string' ? /^(\d{1,4})\/(\d{1,4})$/.exec(v) : null;
  if (!m || Number(m[1]) < 1 || Number(m[1]) > Number(m[2])) {
    throw new OptionError(`options.${path} must be "i/n": shard i of n, 1 ≤ i ≤ n ≤ 9999, such as "1/3" (got ${JSON.stringify(v)})`, path);
  }
}

function subjectPrefix(v: unknown, path: string): void {
  if (typeof v !== 'string' || !/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(v) || v.length > 64) {
    throw new OptionError(`options.${path} must be NATS subject tokens (letters, digits, _ and -, separated by dots; at most 64 characters) such as "tickfan" (got ${JSON.stringify(v)})`, path);
  }
}

const LIMITS: { [K in keyof EngineLimits]-?: OptionSpec } = {
  historySize: { type: 'int', min: 0, max: 1_000_000, default: DEFAULT_ENGINE_LIMITS.historySize, env: 'TICKFAN_HISTORY', flag: 'history', doc: 'deltas kept per topic for merged catch-ups' },
  maxTopics: { type: 'int', min: 1, max: 100_000_000, default: DEFAULT_ENGINE_LIMITS.maxTopics, env: 'TICKFAN_MAX_TOPICS', flag: 'max-topics', doc: 'topics in total' },
  maxFieldsPerTopic: { type: 'int', min: 1, max: 1_000_000, default: DEFAULT_ENGINE_LIMITS.maxFieldsPerTopic, env: 'TICKFAN_MAX_FIELDS_PER_TOPIC', flag: 'max-fields-per-topic', doc: 'fields per topic' },
  maxFieldNameLength: { type: 'int', min: 1, max: 65_536, default: DEFAULT_ENGINE_LIMITS.maxFieldNameLength, doc: 'length of a field name' },
  maxValueBytes: { type: 'int', min: 1, max: 64 * MIB, default: DEFAULT_ENGINE_LIMITS.maxValueBytes, env: 'TICKFAN_MAX_VALUE_BYTES', flag: 'max-value-bytes', doc: 'size of one field value (strings count 3 bytes per character)' },
  maxTopicLength: { type: 'int', min: 1, max: 65_536, default: DEFAULT_ENGINE_LIMITS.maxTopicLength, env: 'TICKFAN_MAX_TOPIC_LENGTH', flag: 'max-topic-length', doc: 'length of a topic name' },
};

const AUTH: { [K in keyof AuthOptions]-?: OptionSpec } = {
  secret: { type: 'string', shown: 'none', env: 'TICKFAN_AUTH_SECRET', flag: 'auth-secret', arg: 'SECRET|@file', accepts: 'at least 32 characters, or `@/path/to/file`', doc: 'HS256 shared secret for connection tokens' },
  publicKey: { type: 'string', shown: 'none', env: 'TICKFAN_AUTH_PUBLIC_KEY', flag: 'auth-public-key', arg: '@key.pem', accepts: 'PEM, or `@/path/key.pem`', doc: 'SPKI public key for RS256 / ES256 tokens' },
  jwks: {
    type: 'jwks',
    shown: 'none',
    env: 'TICKFAN_AUTH_JWKS',
    flag: 'auth-jwks',
    arg: '@jwks.json',
    accepts: '`{"keys": [...]}`, or `@/path/jwks.json`',
    doc: 'key set for RS256 / ES256 tokens',
    check: (v, path) => {
      if ((typeof v !== 'string' || !v) && (typeof v !== 'object' || v === null || !Array.isArray((v as { keys?: unknown }).keys))) {
        throw new OptionError(`options.${path} must be a JWKS object {"keys": [...]} or "@/path/to/jwks.json"`, path);
      }
    },
  },
  issuer: { type: 'string', shown: 'none', env: 'TICKFAN_AUTH_ISSUER', flag: 'auth-issuer', arg: 'ISS', doc: 'required `iss` claim of tokens' },
  audience: { type: 'string', shown: 'none', env: 'TICKFAN_AUTH_AUDIENCE', flag: 'auth-audience', arg: 'AUD', doc: 'required `aud` claim of tokens' },
  anonymous: { type: 'bool', shown: 'false', env: 'TICKFAN_AUTH_ANONYMOUS', flag: 'anonymous', doc: 'connections without a token may subscribe (read-only unless `anonymousGrants` say more)' },
  anonymousGrants: {
    type: 'grants',
    shown: 'subscribe to everything, nothing else',
    accepts: '`{"subscribe": [patterns], "publish": [patterns], "serve": [patterns], "request": [patterns]}`',
    doc: 'what connections without a token may do',
    check: (v, path) => {
      const keys = ['subscribe', 'publish', 'serve', 'request'];
      const ok = typeof v === 'object' && v !== null && Object.entries(v).every(([k, p]) => keys.includes(k) && Array.isArray(p) && p.every((x) => typeof x === 'string'));
      if (!ok) throw new OptionError(`options.${path} must be {"subscribe": [patterns], "publish": [patterns], "serve": [patterns], "request": [patterns]}`, path);
    },
  },
};

/** The options of `startServer()`, in the order they are checked. */
export const SERVER_OPTION_TABLE: { [K in keyof ServerOptions]-?: OptionSpec } = {
  port: { type: 'int', min: 0, max: 65535, default: 8080, env: 'TICKFAN_PORT', flag: 'port', doc: 'TCP port (0: any free port)' },
  host: { type: 'string', example: '"127.0.0.1" or "0.0.0.0"', accepts: 'an address, e.g. `0.0.0.0`', default: '127.0.0.1', env: 'TICKFAN_HOST', flag: 'host', arg: 'ADDRESS', doc: 'interface to listen on' },
  listenBacklog: {
    type: 'int',
    min: 512,
    max: 16_384,
    default: 4096,
    env: 'TICKFAN_LISTEN_BACKLOG',
    flag: 'listen-backlog',
    arg: 'N',
    doc: "connections the kernel may hold connected but not yet accepted. uWebSockets.js listens with a fixed backlog of 512, so tickfan opens ⌈N / 512⌉ listen sockets on its port (SO_REUSEPORT: the kernel spreads new connections over their queues by address hash). A connection that finds its queue full is dropped and its client retries a second later: with 512, a 10,000-client reconnect storm dropped 2,000–8,000 attempts and took 1.9–3.5 s; with 4,096, none and 1.5–1.9 s. Each queue is also capped at the kernel's `net.core.somaxconn`",
  },
  rateTiers: {
    type: 'numbers',
    default: [50, 10, 4, 1],
    env: 'TICKFAN_RATE_TIERS',
    flag: 'rate-tiers',
    accepts: 'rates above 0, up to 1000',
    doc: 'throttled rate tiers (updates per second per topic)',
    check: (v, path) => {
      if (!Array.isArray(v) || v.length === 0 || v.some((r) => typeof r !== 'number' || !(r > 0) || r > 1000)) {
        throw new OptionError(`options.${path} must be a non-empty array of rates above 0 and up to 1000 updates per second (got ${JSON.stringify(v)})`, path);
      }
    },
    normalize: (v) => [...new Set(v as number[])].sort((a, b) => b - a),
  },
  slowThresholdBytes: { type: 'int', min: 1024, max: 2 ** 31, default: 256 * 1024, env: 'TICKFAN_SLOW_THRESHOLD_BYTES', flag: 'slow-threshold-bytes', doc: 'buffered bytes that put a socket in the slow lane' },
  hardCapBytes: { type: 'int', min: 'slowThresholdBytes', max: 2 ** 31, default: 8 * MIB, env: 'TICKFAN_HARD_CAP_BYTES', flag: 'hard-cap-bytes', doc: 'buffered bytes that close a slow socket (4008)' },
  slowTimeoutMs: { type: 'int', min: 10, max: MS_HOUR, default: 15_000, env: 'TICKFAN_SLOW_TIMEOUT_MS', flag: 'slow-timeout-ms', doc: 'time in the slow lane before 4008' },
  eagerFlushes: { type: 'int', min: 0, max: 1_000_000, default: 0, env: 'TICKFAN_EAGER_FLUSHES', flag: 'eager-flushes', doc: 'publishes per callback (a timer tick, one publisher message) sent at once, before the callback returns (the rest go out together when it returns, one frame per channel, still in the same event-loop turn); for low-rate feeds where a few µs matter more than frames per update' },
  eagerBelowLoad: { type: 'int', min: 0, max: 100, default: 50, env: 'TICKFAN_EAGER_BELOW_LOAD', flag: 'eager-below-load', doc: "adaptive batching: the event loop's load (percent of the last 100 ms busy) from which a callback's publishes are batched, one frame per channel when the callback returns; below it (10 points under, once batching) every publish is sent at once, as a plain WebSocket server does, since batching saves nothing an idle server needs but adds the callback's work to latency. 0: always batch (then eagerFlushes alone decides)" },
  groupMinConnections: { type: 'int', min: 0, max: 1_000_000, default: 0, env: 'TICKFAN_GROUP_MIN_CONNECTIONS', flag: 'group-min-connections', doc: "shared topic sets: from this many connections following exactly the same two or more topics (same rate and fields), the set shares one uWebSockets.js topic: one native publish per set per turn, with all of its topics' news in one frame, instead of one per topic, and one native subscription per connection instead of one per topic (a channel is in at most 4 such sets). For audiences on the same watchlist (about 0.6 KiB less RSS per connection with 10 topics); a reconnect storm of 10,000 clients on 10 shared sets is 5–15% slower with it. 0: off; 8 is a good value when on" },
  heartbeatMs: { type: 'int', min: 10, max: MS_HOUR, default: 5_000, env: 'TICKFAN_HEARTBEAT_MS', flag: 'heartbeat-ms', doc: "interval of the heartbeat carrying quiet topics' versions" },
  idleTimeoutSec: {
    type: 'int',
    min: 0,
    max: 960,
    default: 60,
    env: 'TICKFAN_IDLE_TIMEOUT_SEC',
    flag: 'idle-timeout-sec',
    accepts: '0 (off) or 8–960',
    doc: 'WebSocket idle timeout in seconds: a peer that sends nothing, not even the pong to the automatic ping, is dropped',
    // uWebSockets.js aborts the process below 8.
    check: (v, path) => {
      if ((v as number) > 0 && (v as number) < 8) throw new OptionError(`options.${path} must be 0 (off) or between 8 and 960 (got ${v as number})`, path);
    },
  },
  maxPayloadBytes: { type: 'int', min: 1024, max: 64 * MIB, default: MIB, env: 'TICKFAN_MAX_PAYLOAD_BYTES', flag: 'max-payload-bytes', doc: 'largest WebSocket message a client may send (1009; past twice this the connection is cut unread)' },
  compression: {
    type: 'enum',
    values: COMPRESSION_MODES,
    default: 'off',
    env: 'TICKFAN_COMPRESSION',
    flag: 'compression',
    arg: 'off|shared|dedicated',
    doc: "permessage-deflate for WebSocket clients that offer it (browsers, `ws`): `shared` deflates each message alone with one compressor (no memory per socket; protocol-2 deltas ≈ 10% smaller), `dedicated` keeps a small window per socket (deltas ≈ 45% smaller; ≈ 70 KiB more per connection). uWebSockets.js compresses every subscriber's copy: +5–10 µs of server CPU per delivered update, a third to a half less fan-out throughput. For bandwidth-bound clients, not for throughput (bench/results/wire.md)",
  },
  maxBodyBytes: { type: 'int', min: 16, max: 64 * MIB, default: MIB, env: 'TICKFAN_MAX_BODY_BYTES', flag: 'max-body-bytes', doc: 'largest HTTP request body (413 past it, never buffered further)' },
  bodyTimeoutMs: { type: 'int', min: 100, max: MS_HOUR, default: 10_000, doc: 'time an HTTP request body may take to arrive (then 408 and closed)' },
  authTimeoutMs: { type: 'int', min: 100, max: MS_HOUR, default: 10_000, doc: 'time a connection without a token has to send one in Hello (then 4001)' },
  topicTtlMs: { type: 'int', min: 0, max: 2 ** 31 - 1, default: 0, shown: '0 (off)', env: 'TICKFAN_TOPIC_TTL_MS', flag: 'topic-ttl-ms', doc: 'quiet this long → the topic is flagged stale until its next update' },
  maxSubscriptionsPerConnection: { type: 'int', min: 1, max: 10_000_000, default: 10_000, env: 'TICKFAN_MAX_SUBSCRIPTIONS', flag: 'max-subscriptions', doc: 'subscriptions one connection may hold' },
  maxBadFrames: { type: 'int', min: 1, max: 1_000_000, default: 100, doc: 'malformed frames in a row before a connection is closed (4002)' },
  limits: { type: 'group', expect: 'an object', fields: LIMITS, doc: 'topic engine limits' },
  maxConnections: { type: 'int', min: 1, max: 10_000_000, default: 100_000, env: 'TICKFAN_MAX_CONNECTIONS', flag: 'max-connections', doc: 'connections in total (WebSocket + SSE)' },
  maxConnectionsPerIp: { type: 'int', min: 1, max: 10_000_000, default: 1_000, env: 'TICKFAN_MAX_CONNECTIONS_PER_IP', flag: 'max-connections-per-ip', doc: 'connections from one IP address' },
  maxPublishesPerSecond: { type: 'int', min: 1, max: 100_000_000, default: 10_000, env: 'TICKFAN_MAX_PUBLISHES_PER_SECOND', flag: 'max-publishes-per-second', doc: 'publishes per second one connection may make (token bucket, 1 s burst)' },
  requestTimeoutMs: { type: 'int', min: 1, max: 600_000, default: 10_000, env: 'TICKFAN_REQUEST_TIMEOUT_MS', flag: 'request-timeout-ms', doc: 'longest a request waits for its answer (and the default when a request names none); then REQUEST_TIMEOUT' },
  allowedOrigins: {
    type: 'list',
    default: [],
    shown: 'any',
    env: 'TICKFAN_ALLOWED_ORIGINS',
    flag: 'allowed-origins',
    arg: 'ORIGIN,…',
    accepts: 'comma-separated `scheme://host[:port]`',
    doc: 'origins allowed to open WebSocket / SSE connections (requests without Origin always pass)',
    check: origins,
  },
  auth: { type: 'group', expect: 'an object (secret, publicKey or jwks; anonymous)', fields: AUTH, doc: 'connection tokens' },
  allowRemoteWithoutAuth: { type: 'bool', default: false, env: 'TICKFAN_ALLOW_REMOTE_WITHOUT_AUTH', flag: 'allow-remote-without-auth', doc: 'serve beyond loopback with no authentication (anyone may publish)' },
  demoPage: { type: 'bool', default: false, shown: 'false (true with the demo feed)', doc: 'serve the demo page at / (and the browser SDK at /tickfan.js)' },
  name: { type: 'string', default: 'tickfan', doc: 'server name sent in Welcome' },
  workers: {
    type: 'int',
    min: 0,
    max: 256,
    default: 0,
    shown: 'cores for `tickfan serve`, 0 for `startServer`',
    env: 'TICKFAN_WORKERS',
    flag: 'workers',
    doc: 'fan-out worker threads (see Multi-core); connection caps are shared out among them',
  },
  ringBytes: {
    type: 'int',
    min: 64 * 1024,
    max: 2 ** 30,
    default: 16 * MIB,
    accepts: 'a power of two, 65536–1073741824',
    doc: 'bytes of the shared ring carrying sequenced updates to workers',
    check: (v, path) => {
      const n = v as number;
      if ((n & (n - 1)) !== 0) throw new OptionError(`options.${path} must be a power of two (got ${n})`, path);
    },
  },
  nats: {
    type: 'list',
    default: [],
    shown: 'none (one self-contained node)',
    env: 'TICKFAN_NATS',
    flag: 'nats',
    arg: 'URL,…',
    accepts: 'comma-separated `nats://host:port` (`tls://`, `ws://`, `wss://`; credentials as `nats://user:pass@host`)',
    doc: 'NATS servers of a cluster: this node then takes the `role` below (see Running a cluster)',
    check: natsServers,
    normalize: (v) => (typeof v === 'string' ? v.split(',').map((x) => x.trim()) : v),
  },
  role: {
    type: 'enum',
    values: CLUSTER_ROLES,
    default: 'both',
    env: 'TICKFAN_ROLE',
    flag: 'role',
    arg: 'origin|edge|both',
    doc: 'with `nats`: `origin` sequences the topics of its `shard` and publishes them on NATS, `edge` serves clients from replicas of what they subscribe to, `both` does both (with shard 1/1: one node that edges can serve)',
  },
  shard: {
    type: 'string',
    default: '1/1',
    accepts: '`i/n`, 1 ≤ i ≤ n',
    env: 'TICKFAN_SHARD',
    flag: 'shard',
    arg: 'I/N',
    doc: 'the topics an origin sequences: those whose FNV-1a hash of the name modulo n is i - 1; every origin of a cluster gives the same n, and one origin holds each shard at a time (a lease in NATS)',
    check: shardSpec,
  },
  natsPrefix: {
    type: 'string',
    default: 'tickfan',
    env: 'TICKFAN_NATS_PREFIX',
    flag: 'nats-prefix',
    arg: 'PREFIX',
    doc: 'first tokens of every NATS subject the cluster uses (and of its lease bucket): clusters sharing a NATS server use different ones',
    check: subjectPrefix,
  },
  clusterHeartbeatMs: {
    type: 'int',
    min: 50,
    max: 60_000,
    default: 1_000,
    env: 'TICKFAN_CLUSTER_HEARTBEAT_MS',
    flag: 'cluster-heartbeat-ms',
    doc: "with `nats`: an origin sends its edges the versions of the topics published in the last two intervals, and of a tenth of all its topics, every this many ms; an edge behind them heals (a replica that fell behind notices within 2 intervals after the topic's last publish, 10 whatever the cause)",
  },
  publishTimeoutMs: {
    type: 'int',
    min: 1,
    max: 600_000,
    default: 5_000,
    env: 'TICKFAN_PUBLISH_TIMEOUT_MS',
    flag: 'publish-timeout-ms',
    doc: 'with `nats`: longest a publish forwarded to its origin waits for its answer; then REQUEST_TIMEOUT (it may or may not have been applied). A publish whose origin is known to be gone, or made while NATS is lost, fails at once with NO_RESPONDER',
  },
  leaseWaitMs: {
    type: 'int',
    min: 0,
    max: 600_000,
    default: 15_000,
    env: 'TICKFAN_LEASE_WAIT_MS',
    flag: 'lease-wait-ms',
    doc: "with `nats`: a starting origin whose shard's lease is still held by an origin that no longer renews it (it crashed) waits this long for the lease to expire; one held by a live origin refuses at once (TICKFAN_ERR_SHARD_TAKEN)",
  },
  youngGeneration: {
    type: 'enum',
    values: YOUNG_GENERATION_MODES,
    default: 'small',
    env: 'TICKFAN_YOUNG_GENERATION',
    flag: 'young-generation',
    arg: 'MODE',
    doc: "`small`: V8's young generation keeps its starting size for the whole process (tickfan sets V8's `--semi-space-growth-factor=1` at start), so a connect storm does not leave ≈ 23 MiB of young-generation RSS behind (measured: 2.4–2.5 → 1.3 KiB of RSS per idle connection on average at 19,700) and scavenges stay short; skipped when node was started with its own `--max-semi-space-size` or `--semi-space-growth-factor`. `node`: Node's default (grows to 16 MiB semi-spaces and keeps them)",
  },
  logLevel: { type: 'enum', values: LOG_LEVELS, default: 'info', shown: 'info (warn with TICKFAN_QUIET=1)', env: 'TICKFAN_LOG_LEVEL', flag: 'log-level', arg: 'LEVEL', doc: 'level of the default logger' },
  log: {
    type: 'function',
    shown: 'pino: JSON lines on stderr',
    accepts: '`(level, message, fields?) => void` (`startServer` only)',
    doc: 'function for operational messages',
    check: (v, path) => {
      if (typeof v !== 'function') throw new OptionError(`options.${path} must be a function (level, message) => void`, path);
    },
  },
};

export type GroupSpec = Extract<OptionSpec, { type: 'group' }>;

/** The market simulator of `tickfan serve` (a config-file key, not a server option). */
export const DEMO_OPTION: GroupSpec = {
  type: 'group',
  expect: 'true, false or {"rate": N, "symbols": N}',
  doc: 'built-in market simulator (`tickfan serve` only)',
  fields: {
    enabled: { type: 'bool', default: false, shown: 'off', env: 'TICKFAN_DEMO', flag: 'demo', doc: 'run the built-in market simulator (`px.*`, `fx.*`, keyed order books `book.BTC-USD`, `book.ETH-USD`, `book.SOL-USD`, `book.AAPL`) and the demo order service (`orders.submit`, `orders.cancel`, blotters `blotter.<desk>`); in a file `demo: true` or `demo: {rate: 500}`' },
    rate: { type: 'int', min: 1, max: 1_000_000, default: 2000, env: 'TICKFAN_DEMO_RATE', flag: 'demo-rate', doc: 'demo updates per second' },
    symbols: { type: 'int', min: 1, max: 100_000, default: 300, env: 'TICKFAN_DEMO_SYMBOLS', flag: 'demo-symbols', doc: 'demo symbols' },
  } satisfies { [K in keyof DemoConfig]-?: OptionSpec },
};

/** A setting that holds a value (not a group), with its path (`limits.maxTopics`). */
export type OptionEntry = Exclude<OptionSpec, { type: 'group' }> & { path: string };

function flatten(table: Record<string, OptionSpec>, prefix = ''): OptionEntry[] {
  return Object.entries(table).flatMap(([k, s]) => (s.type === 'group' ? flatten(s.fields, `${prefix}${k}.`) : [{ ...s, path: `${prefix}${k}` }]));
}

/** Every setting, server options first, then the demo feed; in table order. */
export const OPTION_ENTRIES: readonly OptionEntry[] = [...flatten(SERVER_OPTION_TABLE), ...flatten({ demo: DEMO_OPTION })];

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function valueAt(o: Record<string, unknown>, path: string): unknown {
  return path.split('.').reduce<unknown>((v, k) => (isPlainObject(v) ? v[k] : undefined), o);
}

/** The defaults of a setting: its value, or for a group the fields that have one. */
export function defaultOf(spec: OptionSpec): unknown {
  if (spec.type !== 'group') return spec.default;
  return Object.fromEntries(Object.entries(spec.fields).filter(([, f]) => f.default !== undefined).map(([k, f]) => [k, f.default]));
}

/**
 * Checks a group's shape and keys (`keysOnly`), or those and every field it
 * holds. A field without a default may be left undefined.
 */
export function checkGroup(spec: GroupSpec, path: string, value: unknown, all: Record<string, unknown>, keysOnly = false): void {
  if (!isPlainObject(value)) throw new OptionError(`options.${path} must be ${spec.expect}`, path);
  for (const [k, v] of Object.entries(value)) {
    if (!Object.hasOwn(spec.fields, k)) {
      throw new OptionError(`options.${path}.${k} is not a tickfan option (known: ${Object.keys(spec.fields).join(', ')})`, `${path}.${k}`);
    }
    const field = spec.fields[k]!;
    if (keysOnly || (v === undefined && field.default === undefined)) continue;
    checkOption(field, `${path}.${k}`, v, all);
  }
}

/** Checks one value against its spec; `all` holds the options a bound may name. Throws an OptionError naming `path`. */
export function checkOption(spec: OptionSpec, path: string, v: unknown, all: Record<string, unknown>): void {
  switch (spec.type) {
    case 'int': {
      const min = typeof spec.min === 'string' ? (valueAt(all, spec.min) as number) : spec.min;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > spec.max) {
        throw new OptionError(`options.${path} must be an integer between ${min} and ${spec.max} (got ${JSON.stringify(v)})`, path);
      }
      break;
    }
    case 'bool':
      if (typeof v !== 'boolean') throw new OptionError(`options.${path} must be true or false (got ${JSON.stringify(v)})`, path);
      break;
    case 'string':
      if (typeof v !== 'string' || !v) throw new OptionError(`options.${path} must be a non-empty string${spec.example ? ` such as ${spec.example}` : ''}`, path);
      break;
    case 'enum':
      if (!spec.values.includes(v as string)) throw new OptionError(`options.${path} must be one of ${spec.values.join(', ')} (got ${JSON.stringify(v)})`, path);
      break;
    case 'group':
      checkGroup(spec, path, v, all);
      break;
    default:
      break; // the rest are checked by `check` alone
  }
  spec.check?.(v, path);
}
