// startServer(): one self-contained tickfan node — topic engine, WebSocket
// protocol endpoint at /ws, and HTTP (publish, snapshot, topics, health) on
// the same port, all on uWebSockets.js.

import { TopicPattern, TopicStore, isPattern, validateTopic, type Accepted } from '../engine/index.js';
import {
  CloseCode,
  ErrorCode,
  PROTOCOL_VERSION,
  TickfanError,
  decodeMessage,
  isClientMessage,
  splitMessages,
  type Changes,
  type ClientMessage,
  type FieldValue,
} from '../protocol/index.js';
import { Conn, Fanout } from './fanout.js';
import { changesFromJson, readBody, sendError, sendJson, stateToJson } from './http.js';
import { resolveOptions, type ServerOptions } from './options.js';
import { ServerStats } from './stats.js';
import { loadUws, type UWS } from './uws.js';

export interface PublishResult {
  topic: string;
  epoch: number;
  version: number;
}

/** A running tickfan server. */
export interface TickfanServer {
  /** The port actually bound (useful with `port: 0`). */
  readonly port: number;
  readonly host: string;
  readonly stats: ServerStats;
  readonly store: TopicStore;
  /** Publishes in-process, exactly like a client would; resolves nothing, returns the new version. */
  publish(topic: string, fields: Record<string, FieldValue | null> | Changes): PublishResult;
  /** Flags a topic stale (or fresh again) to its subscribers. */
  setStale(topic: string, stale: boolean): void;
  /** Stops listening, tells every client "going away" (1001) and releases timers. */
  close(): Promise<void>;
}

let nextConnId = 1;

/**
 * Starts a tickfan server.
 * @example
 * const server = await startServer({ port: 0 });
 * server.publish('px.AAPL', { bid: 101.25, ask: 101.27 });
 * await server.close();
 */
export async function startServer(given: Partial<ServerOptions> = {}): Promise<TickfanServer> {
  const opts = resolveOptions(given);
  const uws = loadUws();
  const stats = new ServerStats();
  const store = new TopicStore(opts.limits);
  const fanout = new Fanout(store, opts, stats);
  const enc = fanout.encoder;
  const app = uws.App();

  function toChanges(fields: Record<string, FieldValue | null> | Changes): Changes {
    if (fields instanceof Map) return new Map(fields);
    if (typeof fields !== 'object' || fields === null) throw new TickfanError(ErrorCode.BAD_REQUEST, 'fields must be an object or a Map');
    return new Map(Object.entries(fields));
  }

  function accept(topic: string, changes: Changes): Accepted {
    const a = store.publish(topic, changes, Date.now());
    stats.publishes++;
    fanout.accepted(a);
    return a;
  }

  function replyError(conn: Conn, err: unknown, id = 0, topic = ''): void {
    stats.errors++;
    if (err instanceof TickfanError) {
      fanout.reply(conn, enc.error(err.errorCode, id, topic, err.message));
    } else {
      opts.log('error', `connection ${conn.id}: ${(err as Error)?.stack ?? String(err)}`);
      fanout.reply(conn, enc.error(ErrorCode.INTERNAL, id, topic, 'internal error'));
    }
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
          replyError(conn, err, m.id, m.topics.find((t) => isPattern(t)) ?? m.topics[0] ?? '');
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
          const a = accept(m.topic, m.changes);
          if (m.id) fanout.reply(conn, enc.ack(m.id, m.topic, a.topic.epoch, a.version, 0));
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

  app.ws<Conn>('/ws', {
    maxPayloadLength: opts.maxPayloadBytes,
    maxBackpressure: opts.hardCapBytes,
    closeOnBackpressureLimit: 0,
    idleTimeout: opts.idleTimeoutSec,
    sendPingsAutomatically: true,
    compression: uws.DISABLED,
    upgrade: (res, req, context) => {
      const remote = Buffer.from(res.getRemoteAddressAsText()).toString();
      res.upgrade(
        new Conn(nextConnId++, remote),
        req.getHeader('sec-websocket-key'),
        req.getHeader('sec-websocket-protocol'),
        req.getHeader('sec-websocket-extensions'),
        context,
      );
    },
    open: (ws) => fanout.open(ws.getUserData(), ws),
    message: (ws, message, isBinary) => {
      const conn = ws.getUserData();
      if (!isBinary) {
        replyError(conn, new TickfanError(ErrorCode.BAD_FRAME, 'tickfan speaks binary frames (FlatBuffers); text frames are not accepted'));
        return badFrame(conn);
      }
      // The ArrayBuffer dies when this callback returns: everything below decodes synchronously and copies.
      const bytes = new Uint8Array(message);
      const msgs: ClientMessage[] = [];
      try {
        splitMessages(bytes, 0, (raw) => {
          const m = decodeMessage(raw);
          if (!isClientMessage(m)) throw new TickfanError(ErrorCode.UNKNOWN_MESSAGE, `"${m.type}" is a server message; clients may not send it`);
          msgs.push(m);
        });
      } catch (err) {
        replyError(conn, err);
        // Messages before the bad one in the frame still count.
        for (const m of msgs) handle(conn, m);
        return badFrame(conn);
      }
      conn.badFrames = 0;
      for (const m of msgs) handle(conn, m);
    },
    drain: (ws) => fanout.drain(ws.getUserData()),
    close: (ws) => fanout.closed(ws.getUserData()),
  });

  function badFrame(conn: Conn): void {
    if (++conn.badFrames >= opts.maxBadFrames) fanout.end(conn, CloseCode.TOO_MANY_BAD_FRAMES, 'too many malformed frames');
  }

  // -------------------------------------------------------------- HTTP

  function topicParam(req: UWS.HttpRequest): string {
    try {
      return decodeURIComponent(req.getParameter(0));
    } catch {
      throw new TickfanError(ErrorCode.BAD_TOPIC, 'the topic in the URL is not valid percent-encoding');
    }
  }

  app.post('/publish/:topic', (res, req) => {
    const state = { done: false };
    res.onAborted(() => (state.done = true));
    let topic: string;
    try {
      topic = topicParam(req);
    } catch (err) {
      return sendError(res, err, state);
    }
    readBody(res, opts.maxBodyBytes, state, (body) => {
      try {
        let json: unknown;
        try {
          json = JSON.parse(body.toString('utf8'));
        } catch (err) {
          throw new TickfanError(ErrorCode.BAD_REQUEST, `the body is not valid JSON: ${(err as Error).message}`);
        }
        const a = accept(topic, changesFromJson(json));
        sendJson(res, '200 OK', JSON.stringify({ topic, epoch: a.topic.epoch, version: a.version }), state);
      } catch (err) {
        stats.errors++;
        sendError(res, err, state);
      }
    });
  });

  app.get('/snapshot/:topic', (res, req) => {
    const state = { done: false };
    res.onAborted(() => (state.done = true));
    try {
      const name = topicParam(req);
      validateTopic(name, store.limits.maxTopicLength);
      const t = store.get(name);
      if (!t) throw new TickfanError(ErrorCode.UNKNOWN_TOPIC, `no topic ${name}: it was never published`);
      const body = { topic: t.name, epoch: t.epoch, version: t.version, ts: t.ts, stale: t.stale, fields: stateToJson(t.state) };
      sendJson(res, '200 OK', JSON.stringify(body), state);
    } catch (err) {
      sendError(res, err, state);
    }
  });

  app.get('/topics', (res, req) => {
    const state = { done: false };
    res.onAborted(() => (state.done = true));
    try {
      const pattern = TopicPattern.parse(req.getQuery('pattern') || '>', store.limits.maxTopicLength);
      const topics = [...store.matching(pattern)].map((t) => ({ topic: t.name, epoch: t.epoch, version: t.version, fields: t.state.size, stale: t.stale }));
      sendJson(res, '200 OK', JSON.stringify({ topics }), state);
    } catch (err) {
      sendError(res, err, state);
    }
  });

  app.get('/healthz', (res) => {
    const state = { done: false };
    res.onAborted(() => (state.done = true));
    sendJson(res, '200 OK', JSON.stringify({ status: 'ok', uptimeSec: Math.round(process.uptime()), topics: store.size, ...stats.toJSON() }), state);
  });

  app.any('/*', (res, req) => {
    const state = { done: false };
    res.onAborted(() => (state.done = true));
    sendJson(res, '404 Not Found', JSON.stringify({ error: { code: 0, name: 'NOT_FOUND', message: `no route for ${req.getMethod().toUpperCase()} ${req.getUrl()}; see GET /healthz, /topics, /snapshot/<topic>, POST /publish/<topic>, WebSocket /ws` } }), state);
  });

  const listenSocket = await new Promise<UWS.us_listen_socket>((resolve, reject) => {
    app.listen(opts.host, opts.port, (s) => {
      if (s) resolve(s);
      else reject(new TickfanError(ErrorCode.INTERNAL, `cannot listen on ${opts.host}:${opts.port} (in use, or not an address of this machine)`));
    });
  });
  const port = uws.us_socket_local_port(listenSocket as unknown as UWS.us_socket);
  let closed = false;

  return {
    port,
    host: opts.host,
    stats,
    store,
    publish(topic, fields) {
      const a = accept(topic, toChanges(fields));
      return { topic, epoch: a.topic.epoch, version: a.version };
    },
    setStale(topic, stale) {
      const t = store.get(topic);
      if (!t) throw new TickfanError(ErrorCode.UNKNOWN_TOPIC, `no topic ${topic}`);
      fanout.setStale(t, stale);
    },
    async close() {
      if (closed) return;
      closed = true;
      uws.us_listen_socket_close(listenSocket);
      fanout.shutdown();
      // Let the close frames leave before the caller moves on.
      await new Promise((r) => setTimeout(r, 20));
    },
  };
}
