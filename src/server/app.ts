// One uWebSockets.js app: the WebSocket protocol at /ws and HTTP on the same
// port (publish, snapshot, topics, health, metrics, SSE, the demo page). Used
// as is by a single-thread server and by every fan-out worker.

import { readFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TopicPattern, validateTopic, isPattern, type TopicStore } from '../engine/index.js';
import {
  CloseCode,
  ErrorCode,
  PROTOCOL_VERSION,
  TickfanError,
  changesFromJson,
  decodeMessage,
  fieldsToJson,
  isClientMessage,
  splitMessages,
  type Changes,
  type ClientMessage,
} from '../protocol/index.js';
import { mayPublish, type Authenticator, type Grants } from './auth.js';
import { Conn, type Fanout } from './fanout.js';
import { errorBody, readBody, sendError, sendJson } from './http.js';
import type { Ingest, PublishResult } from './ingest.js';
import type { Metrics } from './metrics.js';
import type { ServerOptions } from './options.js';
import { WsSink } from './sink.js';
import { registerSse } from './sse.js';
import type { ServerStats } from './stats.js';
import type { UWS } from './uws.js';

export interface NodeContext {
  opts: ServerOptions;
  uws: typeof UWS;
  store: TopicStore;
  fanout: Fanout;
  stats: ServerStats;
  ingest: Ingest;
  auth: Authenticator;
  metrics: Metrics;
}

let nextConnId = 1;

function text(buf: ArrayBuffer): string {
  return Buffer.from(buf).toString();
}

/** True for 127.0.0.0/8 and ::1, in any of the forms uWebSockets.js prints. */
export function isLoopback(addr: string): boolean {
  const a = addr.toLowerCase();
  return a.startsWith('127.') || a === '::1' || /^(0{1,4}:){7}0{0,3}1$/.test(a) || /^(::ffff:|(0{4}:){5}ffff:)127\./.test(a) || /^(0{4}:){5}ffff:7f/.test(a);
}

function bearer(header: string): string {
  const m = /^Bearer\s+(.+)$/i.exec(header.trim());
  return m ? m[1]!.trim() : '';
}

/** Everything the upgrade and HTTP handlers need to copy before any await. */
interface Admission {
  remote: string;
  origin: string;
  token: string;
}

const STATIC_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function loadStatic(rel: string): Buffer | null {
  const p = join(STATIC_ROOT, rel);
  return existsSync(p) ? readFileSync(p) : null;
}

export function buildApp(ctx: NodeContext): UWS.TemplatedApp {
  const { opts, uws, store, fanout, stats, ingest, auth, metrics } = ctx;
  const enc = fanout.encoder;
  const app = uws.App();
  // The fast path: one native publish per channel per turn reaches every subscriber in C++.
  fanout.setBroadcaster((topic, frame) => void app.publish(topic, frame, true, false));
  const perIp = new Map<string, number>();

  // ------------------------------------------------------------ admission

  /** With no authentication configured the server is open, and then answers loopback only. */
  function openToRemote(remote: string): boolean {
    return !auth.enabled && !opts.allowRemoteWithoutAuth && !isLoopback(remote);
  }

  /** Who may talk to this server at all (WebSocket, SSE): loopback-only when open, the origin allow-list. */
  function accessRefusal(a: Pick<Admission, 'remote' | 'origin'>): Refusal | null {
    if (openToRemote(a.remote)) {
      return {
        status: '403 Forbidden',
        code: ErrorCode.UNAUTHORIZED,
        message: 'no authentication is configured, so this server accepts loopback connections only (configure auth, or allowRemoteWithoutAuth)',
      };
    }
    if (opts.allowedOrigins.length && a.origin && !opts.allowedOrigins.includes(a.origin)) {
      return { status: '403 Forbidden', code: ErrorCode.PERMISSION_DENIED, message: `origin ${a.origin} is not allowed` };
    }
    return null;
  }

  /** Why a new connection from `a` is refused (access, then connection caps), or null. */
  function refusal(a: Admission): Refusal | null {
    const no = accessRefusal(a);
    if (no) return no;
    if (stats.connections >= opts.maxConnections) {
      return { status: '503 Service Unavailable', code: ErrorCode.TOO_MANY_CONNECTIONS, message: `the server holds its maximum of ${opts.maxConnections} connections` };
    }
    if ((perIp.get(a.remote) ?? 0) >= opts.maxConnectionsPerIp) {
      return { status: '429 Too Many Requests', code: ErrorCode.TOO_MANY_CONNECTIONS, message: `${opts.maxConnectionsPerIp} connections from ${a.remote} already` };
    }
    return null;
  }

  function admission(res: UWS.HttpResponse, req: UWS.HttpRequest): Admission {
    const query = new URLSearchParams(req.getQuery() ?? '');
    return {
      remote: text(res.getRemoteAddressAsText()),
      origin: req.getHeader('origin'),
      token: query.get('token') || bearer(req.getHeader('authorization')),
    };
  }

  /** Verifies a token (or applies the anonymous grants); rejects with UNAUTHORIZED. */
  async function grantsFor(token: string): Promise<Grants | null> {
    if (token) return auth.verify(token);
    return auth.anonymous;
  }

  function connOpened(conn: Conn): void {
    perIp.set(conn.remote, (perIp.get(conn.remote) ?? 0) + 1);
  }

  function connClosed(conn: Conn): void {
    const n = (perIp.get(conn.remote) ?? 1) - 1;
    if (n <= 0) perIp.delete(conn.remote);
    else perIp.set(conn.remote, n);
  }

  /** Ends a session when its token expires (4010), and not a moment later. */
  function armExpiry(conn: Conn): void {
    if (conn.expiryTimer) clearTimeout(conn.expiryTimer);
    conn.expiryTimer = null;
    const at = conn.grants?.expiresAt;
    if (at == null) return;
    const ms = Math.min(at - Date.now(), 2 ** 31 - 1);
    const expire = () => {
      fanout.reply(conn, enc.error(ErrorCode.UNAUTHORIZED, 0, '', 'the connection token has expired'));
      fanout.end(conn, CloseCode.TOKEN_EXPIRED, 'token expired');
    };
    if (ms <= 0) expire();
    else conn.expiryTimer = setTimeout(expire, ms);
  }

  // ------------------------------------------------------------ WebSocket

  function replyError(conn: Conn, err: unknown, id = 0, topic = ''): void {
    if (err instanceof TickfanError) {
      stats.error(err.errorCode);
      fanout.reply(conn, enc.error(err.errorCode, id, topic, err.message));
    } else {
      stats.error(ErrorCode.INTERNAL);
      opts.log('error', `connection ${conn.id}: ${(err as Error)?.stack ?? String(err)}`);
      fanout.reply(conn, enc.error(ErrorCode.INTERNAL, id, topic, 'internal error'));
    }
  }

  /** Token bucket: `maxPublishesPerSecond`, with a one-second burst. */
  function takePublishToken(conn: Conn): boolean {
    const now = performance.now();
    const rate = opts.maxPublishesPerSecond;
    // A new connection starts with a full bucket (performance.now() counts from process start, not from 0 tokens).
    if (conn.publishRefillAt === 0) conn.publishTokens = rate;
    else conn.publishTokens = Math.min(rate, conn.publishTokens + ((now - conn.publishRefillAt) / 1000) * rate);
    conn.publishRefillAt = now;
    if (conn.publishTokens < 1) return false;
    conn.publishTokens--;
    return true;
  }

  function publishFrom(conn: Conn, id: number, topic: string, changes: Changes): void {
    const grants = conn.grants;
    if (!grants) throw new TickfanError(ErrorCode.UNAUTHORIZED, 'send a token before publishing');
    if (!mayPublish(grants, topic)) throw new TickfanError(ErrorCode.PERMISSION_DENIED, `not allowed to publish to ${topic}`);
    if (!takePublishToken(conn)) throw new TickfanError(ErrorCode.RATE_LIMITED, `more than ${opts.maxPublishesPerSecond} publishes per second on this connection`);
    const acked = (r: PublishResult) => {
      if (id) fanout.reply(conn, enc.ack(id, topic, r.epoch, r.version, 0));
    };
    const done = (r: PublishResult) => {
      fanout.publishedBy(conn, topic, r.epoch, r.version);
      acked(r);
    };
    const r = ingest.publish(topic, changes);
    if (r instanceof Promise) r.then(done, (err: unknown) => replyError(conn, err, id, topic));
    else done(r);
  }

  function handle(conn: Conn, m: ClientMessage): void {
    switch (m.type) {
      case 'hello':
        if (m.protocol !== PROTOCOL_VERSION) {
          replyError(conn, new TickfanError(ErrorCode.PROTOCOL_VERSION, `this server speaks protocol ${PROTOCOL_VERSION}; the client sent ${m.protocol}`));
          fanout.end(conn, CloseCode.PROTOCOL_ERROR, 'unsupported protocol version');
        }
        return;
      case 'subscribe':
        try {
          const count = fanout.subscribe(conn, m.id, m.topics, m.maxRate, m.fields, m.resume);
          fanout.reply(conn, enc.ack(m.id, '', 0, 0, count));
        } catch (err) {
          const topic = (err as { topic?: unknown }).topic;
          replyError(conn, err, m.id, typeof topic === 'string' ? topic : (m.topics.find((t) => isPattern(t)) ?? m.topics[0] ?? ''));
        }
        return;
      case 'unsubscribe':
      case 'pause':
      case 'resume':
        try {
          if (m.type === 'unsubscribe') fanout.unsubscribe(conn, m.id);
          else fanout.setPaused(conn, m.id, m.type === 'pause');
          fanout.reply(conn, enc.ack(m.id, '', 0, 0, 0));
        } catch (err) {
          replyError(conn, err, m.id);
        }
        return;
      case 'publish':
        try {
          publishFrom(conn, m.id, m.topic, m.changes);
        } catch (err) {
          replyError(conn, err, m.id, m.topic);
        }
        return;
      case 'catchUp':
        try {
          fanout.catchUpRequest(conn, m.topic, m.epoch, m.version);
        } catch (err) {
          replyError(conn, err, 0, m.topic);
        }
        return;
      case 'ping':
        fanout.reply(conn, enc.pong(m.nonce));
        return;
      case 'pong':
        return;
    }
  }

  /** A token arrived in Hello: verify it, then handle what waited for it. */
  function helloToken(conn: Conn, token: string, rest: ClientMessage[]): void {
    conn.authWaiting = rest;
    auth.verify(token).then(
      (grants) => {
        if (conn.closed) return;
        conn.grants = grants;
        armExpiry(conn);
        const waiting = conn.authWaiting ?? [];
        conn.authWaiting = null;
        for (const m of waiting) handle(conn, m);
      },
      (err: unknown) => {
        if (conn.closed) return;
        conn.authWaiting = null;
        replyError(conn, err);
        fanout.end(conn, CloseCode.UNAUTHORIZED, 'unauthorized');
      },
    );
  }

  function badFrame(conn: Conn): void {
    if (++conn.badFrames >= opts.maxBadFrames) fanout.end(conn, CloseCode.TOO_MANY_BAD_FRAMES, 'too many malformed frames');
  }

  app.ws<Conn>('/ws', {
    // uWebSockets.js cuts the TCP connection, without a close frame, past its
    // limit: give it headroom so that a message just over ours gets a 1009
    // (checked in \`message\`), while anything past twice ours is never read.
    maxPayloadLength: opts.maxPayloadBytes * 2,
    maxBackpressure: opts.hardCapBytes,
    closeOnBackpressureLimit: 0,
    idleTimeout: opts.idleTimeoutSec,
    sendPingsAutomatically: true,
    compression: uws.DISABLED,
    upgrade: (res, req, context) => {
      // Headers die when this callback returns: copy them first.
      const a = admission(res, req);
      const key = req.getHeader('sec-websocket-key');
      const protocol = req.getHeader('sec-websocket-protocol');
      const extensions = req.getHeader('sec-websocket-extensions');
      if (req.getHeader('sec-websocket-version') !== '13') {
        // RFC 6455 4.4: name the version we speak.
        stats.error(ErrorCode.BAD_REQUEST);
        res
          .writeStatus('426 Upgrade Required')
          .writeHeader('sec-websocket-version', '13')
          .writeHeader('content-type', 'application/json')
          .end(errorBody(ErrorCode.BAD_REQUEST, 'WebSocket version 13 (RFC 6455) is the only one supported'));
        return;
      }
      const no = refusal(a);
      if (no) {
        stats.error(no.code);
        res.writeStatus(no.status).writeHeader('content-type', 'application/json').end(errorBody(no.code, no.message));
        return;
      }
      let aborted = false;
      res.onAborted(() => (aborted = true));
      grantsFor(a.token).then(
        (grants) => {
          if (aborted) return;
          const conn = new Conn(nextConnId++, a.remote);
          conn.grants = grants;
          res.cork(() => res.upgrade(conn, key, protocol, extensions, context));
        },
        (err: unknown) => {
          if (aborted) return;
          stats.error(ErrorCode.UNAUTHORIZED);
          res.cork(() => {
            res.writeStatus('401 Unauthorized').writeHeader('content-type', 'application/json').end(errorBody(ErrorCode.UNAUTHORIZED, (err as Error).message));
          });
        },
      );
    },
    open: (ws) => {
      const conn = ws.getUserData();
      connOpened(conn);
      fanout.open(conn, new WsSink(ws));
      armExpiry(conn);
      if (!conn.grants) {
        // Authentication is required and no token came with the upgrade: Hello must bring one.
        conn.expiryTimer = setTimeout(() => {
          if (conn.grants || conn.authWaiting) return;
          replyError(conn, new TickfanError(ErrorCode.UNAUTHORIZED, `no token within ${opts.authTimeoutMs} ms: send Hello with a token, or connect with ?token=`));
          fanout.end(conn, CloseCode.UNAUTHORIZED, 'unauthorized');
        }, opts.authTimeoutMs);
      }
    },
    message: (ws, message, isBinary) => {
      const conn = ws.getUserData();
      if (message.byteLength > opts.maxPayloadBytes) {
        replyError(conn, new TickfanError(ErrorCode.VALUE_TOO_LARGE, `a message of ${message.byteLength} bytes is larger than the ${opts.maxPayloadBytes} accepted`));
        fanout.end(conn, CloseCode.TOO_BIG, 'message too big');
        return;
      }
      if (!isBinary) {
        replyError(conn, new TickfanError(ErrorCode.BAD_FRAME, 'tickfan speaks binary frames (FlatBuffers); text frames are not accepted'));
        return badFrame(conn);
      }
      // The ArrayBuffer dies when this callback returns: decode synchronously (decoding copies).
      const msgs: ClientMessage[] = [];
      let bad: unknown = null;
      try {
        splitMessages(new Uint8Array(message), 0, (raw) => {
          const m = decodeMessage(raw);
          if (!isClientMessage(m)) throw new TickfanError(ErrorCode.UNKNOWN_MESSAGE, `"${m.type}" is a server message; clients may not send it`);
          msgs.push(m);
        });
      } catch (err) {
        bad = err;
      }
      // Messages before a bad one in the same frame still count.
      for (let i = 0; i < msgs.length; i++) {
        const m = msgs[i]!;
        if (conn.authWaiting) {
          conn.authWaiting.push(m);
        } else if (m.type === 'hello' && m.token) {
          handle(conn, m);
          helloToken(conn, m.token, msgs.slice(i + 1));
          break;
        } else handle(conn, m);
      }
      if (bad) {
        replyError(conn, bad);
        return badFrame(conn);
      }
      conn.badFrames = 0;
    },
    drain: (ws) => fanout.drain(ws.getUserData()),
    close: (ws) => {
      const conn = ws.getUserData();
      fanout.closed(conn);
      connClosed(conn);
    },
  });

  // ------------------------------------------------------------ HTTP

  function topicParam(req: UWS.HttpRequest): string {
    try {
      return decodeURIComponent(req.getParameter(0) ?? '');
    } catch {
      throw new TickfanError(ErrorCode.BAD_TOPIC, 'the topic in the URL is not valid percent-encoding');
    }
  }

  /** Open servers answer HTTP on loopback only (like the WebSocket). */
  function httpRefusal(remote: string): TickfanError | null {
    if (openToRemote(remote)) {
      return new TickfanError(ErrorCode.UNAUTHORIZED, 'no authentication is configured, so this server answers loopback only');
    }
    return null;
  }

  app.post('/publish/:topic', (res, req) => {
    const state = { done: false };
    let slow: NodeJS.Timeout | undefined;
    res.onAborted(() => {
      state.done = true;
      clearTimeout(slow);
    });
    const a = admission(res, req);
    let topic: string;
    try {
      const no = httpRefusal(a.remote);
      if (no) throw no;
      topic = topicParam(req);
      // A declared length past the limit is refused before a byte of it is read.
      const declared = Number(req.getHeader('content-length') || 0);
      if (declared > opts.maxBodyBytes) {
        stats.error(ErrorCode.VALUE_TOO_LARGE);
        state.done = true;
        res
          .writeStatus('413 Payload Too Large')
          .writeHeader('content-type', 'application/json')
          .end(errorBody(ErrorCode.VALUE_TOO_LARGE, `request body is larger than ${opts.maxBodyBytes} bytes`), true); // and close: the body is never read
        return;
      }
    } catch (err) {
      if (err instanceof TickfanError) stats.error(err.errorCode);
      return sendError(res, err, state);
    }
    // A body that trickles in (slow-loris) is cut off after bodyTimeoutMs.
    slow = setTimeout(() => {
      if (state.done) return;
      state.done = true;
      stats.error(ErrorCode.BAD_REQUEST);
      res.cork(() => {
        res
          .writeStatus('408 Request Timeout')
          .writeHeader('content-type', 'application/json')
          .end(errorBody(ErrorCode.BAD_REQUEST, `the request body did not arrive within ${opts.bodyTimeoutMs} ms`), true);
      });
    }, opts.bodyTimeoutMs);
    // The body is read (bounded) while nothing else waits; then the token is checked.
    readBody(res, opts.maxBodyBytes, state, (body) => {
      clearTimeout(slow);
      void (async () => {
        try {
          const grants = await grantsFor(a.token);
          if (!grants) throw new TickfanError(ErrorCode.UNAUTHORIZED, 'publishing needs a token: Authorization: Bearer <jwt>');
          if (!mayPublish(grants, topic)) throw new TickfanError(ErrorCode.PERMISSION_DENIED, `not allowed to publish to ${topic}`);
          let json: unknown;
          try {
            json = JSON.parse(body.toString('utf8'));
          } catch (err) {
            throw new TickfanError(ErrorCode.BAD_REQUEST, `the body is not valid JSON: ${(err as Error).message}`);
          }
          const r = await ingest.publish(topic, changesFromJson(json));
          sendJson(res, '200 OK', JSON.stringify(r), state);
        } catch (err) {
          if (err instanceof TickfanError) stats.error(err.errorCode);
          sendError(res, err, state);
        }
      })();
    });
  });

  app.get('/snapshot/:topic', (res, req) => {
    const state = { done: false };
    res.onAborted(() => (state.done = true));
    const a = admission(res, req);
    let name: string;
    try {
      const no = httpRefusal(a.remote);
      if (no) throw no;
      name = topicParam(req);
      validateTopic(name, store.limits.maxTopicLength);
    } catch (err) {
      return sendError(res, err, state);
    }
    void (async () => {
      try {
        const grants = await grantsFor(a.token);
        if (!grants) throw new TickfanError(ErrorCode.UNAUTHORIZED, 'reading snapshots needs a token: Authorization: Bearer <jwt>');
        if (!grants.subscribe.some((g) => g.matches(name))) throw new TickfanError(ErrorCode.PERMISSION_DENIED, `not allowed to read ${name}`);
        const t = store.get(name);
        if (!t) throw new TickfanError(ErrorCode.UNKNOWN_TOPIC, `no topic ${name}: it was never published`);
        const body = { topic: t.name, epoch: t.epoch, version: t.version, ts: t.ts, stale: t.stale, fields: fieldsToJson(t.state) };
        sendJson(res, '200 OK', JSON.stringify(body), state);
      } catch (err) {
        sendError(res, err, state);
      }
    })();
  });

  app.get('/topics', (res, req) => {
    const state = { done: false };
    res.onAborted(() => (state.done = true));
    const a = admission(res, req);
    const raw = req.getQuery('pattern') || '>';
    void (async () => {
      try {
        const no = httpRefusal(a.remote);
        if (no) throw no;
        const pattern = TopicPattern.parse(raw, store.limits.maxTopicLength);
        const grants = await grantsFor(a.token);
        if (!grants) throw new TickfanError(ErrorCode.UNAUTHORIZED, 'listing topics needs a token: Authorization: Bearer <jwt>');
        const topics = [...store.matching(pattern)]
          .filter((t) => grants.subscribe.some((g) => g.matches(t.name)))
          .map((t) => ({ topic: t.name, epoch: t.epoch, version: t.version, fields: t.state.size, stale: t.stale }));
        sendJson(res, '200 OK', JSON.stringify({ topics }), state);
      } catch (err) {
        sendError(res, err, state);
      }
    })();
  });

  app.get('/healthz', (res) => {
    const state = { done: false };
    res.onAborted(() => (state.done = true));
    sendJson(res, '200 OK', JSON.stringify({ status: 'ok', server: opts.name, uptimeSec: Math.round(process.uptime()), topics: store.size, ...stats.toJSON() }), state);
  });

  app.get('/metrics', (res) => {
    const state = { done: false };
    res.onAborted(() => (state.done = true));
    metrics.render().then(
      (body) => {
        if (state.done) return;
        state.done = true;
        res.cork(() => res.writeStatus('200 OK').writeHeader('content-type', metrics.contentType).end(body));
      },
      (err: unknown) => sendError(res, err, state),
    );
  });

  registerSse(app, ctx, { admission, refusal, accessRefusal, grantsFor, connOpened, connClosed, armExpiry, handle });

  // Browser SDK at a stable path; the demo page at / when asked for.
  const files: [string, string, string][] = [['/tickfan.js', 'dist/browser/tickfan.js', 'text/javascript; charset=utf-8']];
  files.push(['/tickfan.js.map', 'dist/browser/tickfan.js.map', 'application/json']);
  if (opts.demoPage) files.push(['/', 'web/index.html', 'text/html; charset=utf-8'], ['/demo.js', 'web/demo.js', 'text/javascript; charset=utf-8']);
  for (const [route, file, type] of files) {
    const body = loadStatic(file);
    if (!body) continue;
    app.get(route, (res) => {
      res.writeStatus('200 OK').writeHeader('content-type', type).writeHeader('cache-control', 'no-cache').end(body);
    });
  }

  app.any('/*', (res, req) => {
    const state = { done: false };
    res.onAborted(() => (state.done = true));
    sendJson(
      res,
      '404 Not Found',
      JSON.stringify({
        error: { code: 0, name: 'NOT_FOUND', message: `no route for ${req.getMethod().toUpperCase()} ${req.getUrl()}; see GET /healthz, /topics, /snapshot/<topic>, /sse, /metrics, POST /publish/<topic>, WebSocket /ws` },
      }),
      state,
    );
  });

  return app;
}

/** A refused request: HTTP status, protocol error code, and why. */
export interface Refusal {
  status: string;
  code: number;
  message: string;
}

export type AppHooks = {
  admission: (res: UWS.HttpResponse, req: UWS.HttpRequest) => Admission;
  refusal: (a: Admission) => Refusal | null;
  /** Loopback-only-when-open and the origin allow-list, without the connection caps (for SSE commands). */
  accessRefusal: (a: Pick<Admission, 'remote' | 'origin'>) => Refusal | null;
  grantsFor: (token: string) => Promise<Grants | null>;
  connOpened: (conn: Conn) => void;
  connClosed: (conn: Conn) => void;
  armExpiry: (conn: Conn) => void;
  /** Handles one client message on a connection (SSE commands share the WebSocket's handler). */
  handle: (conn: Conn, m: ClientMessage) => void;
};
export type { Admission };
