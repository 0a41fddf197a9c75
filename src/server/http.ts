// HTTP routes on the WebSocket port: JSON publish and snapshot, request-reply,
// topic listing, health, Prometheus metrics, the browser SDK and demo page, and
// a 404 that lists the routes. Every handler registers onAborted.

import { readFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TopicPattern, validateTopic } from '../engine/index.js';
import { ErrorCode, TickfanError, changesFromJson, payloadToJson, type Payload } from '../protocol/index.js';
import { callerOf } from './admission.js';
import { mayPublish, mayRequest } from './auth.js';
import { errorBody, readBodyWithin, sendError, sendJson } from './http-io.js';
import { keyedNotSupported } from './ingest.js';
import { batchFromJson, isKeyedBody, keyTypesIn, namesUnknownTable } from './keyed-json.js';
import { snapshotJson } from './snapshot-json.js';
import type { NodeParts } from './node-parts.js';
import { checkPayload } from './services/index.js';
import type { UWS } from './uws.js';

const STATIC_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function loadStatic(rel: string): Buffer | null {
  const p = join(STATIC_ROOT, rel);
  return existsSync(p) ? readFileSync(p) : null;
}

function topicParam(req: UWS.HttpRequest): string {
  try {
    return decodeURIComponent(req.getParameter(0) ?? '');
  } catch {
    throw new TickfanError(ErrorCode.BAD_TOPIC, 'the topic in the URL is not valid percent-encoding');
  }
}

/** POST /publish/:topic, POST /request/:service, GET /snapshot/:topic, GET /topics. */
export function registerHttp(node: NodeParts): void {
  const { app, opts, store, stats, ingest, admission, sessions, services } = node;

  /** A declared length past the limit is refused (413) before a byte of it is read, and the connection closed. */
  function tooLarge(res: UWS.HttpResponse, req: UWS.HttpRequest, state: { done: boolean }): boolean {
    const declared = Number(req.getHeader('content-length') || 0);
    if (declared <= opts.maxBodyBytes) return false;
    stats.error(ErrorCode.VALUE_TOO_LARGE);
    state.done = true;
    res
      .writeStatus('413 Payload Too Large')
      .writeHeader('content-type', 'application/json')
      .end(errorBody(ErrorCode.VALUE_TOO_LARGE, `request body is larger than ${opts.maxBodyBytes} bytes`), true);
    return true;
  }

  app.post('/publish/:topic', (res, req) => {
    const state = { done: false };
    res.onAborted(() => (state.done = true));
    const a = callerOf(res, req);
    let topic: string;
    try {
      const no = admission.http(a.remote);
      if (no) throw no;
      topic = topicParam(req);
      if (tooLarge(res, req, state)) return;
    } catch (err) {
      if (err instanceof TickfanError) stats.error(err.errorCode);
      return sendError(res, err, state);
    }
    // The body is read (bounded in size and time) while nothing else waits; then the token is checked.
    const late = () => {
      state.done = true;
      stats.error(ErrorCode.BAD_REQUEST);
      res.cork(() => {
        res
          .writeStatus('408 Request Timeout')
          .writeHeader('content-type', 'application/json')
          .end(errorBody(ErrorCode.BAD_REQUEST, `the request body did not arrive within ${opts.bodyTimeoutMs} ms`), true);
      });
    };
    readBodyWithin(res, opts.maxBodyBytes, opts.bodyTimeoutMs, state, (body) => {
      void (async () => {
        try {
          const grants = await sessions.grantsFor(a.token);
          if (!grants) throw new TickfanError(ErrorCode.UNAUTHORIZED, 'publishing needs a token: Authorization: Bearer <jwt>');
          if (!mayPublish(grants, topic)) throw new TickfanError(ErrorCode.PERMISSION_DENIED, `not allowed to publish to ${topic}`);
          let json: unknown;
          try {
            json = JSON.parse(body.toString('utf8'));
          } catch (err) {
            throw new TickfanError(ErrorCode.BAD_REQUEST, `the body is not valid JSON: ${(err as Error).message}`);
          }
          let r;
          if (isKeyedBody(json)) {
            if (json.tables !== undefined && ingest.publishBatch === undefined) throw keyedNotSupported(topic);
            const keyTypeOf = keyTypesIn(store, topic);
            // A cluster edge that does not hold a table the body names lets the origin read the body with its own tables.
            if (ingest.publishJson !== undefined && namesUnknownTable(json, keyTypeOf)) r = await ingest.publishJson(topic, json);
            else {
              const batch = batchFromJson(json, keyTypeOf);
              r = batch.tables === undefined ? await ingest.publish(topic, batch.fields) : await ingest.publishBatch!(topic, batch);
            }
          } else r = await ingest.publish(topic, changesFromJson(json));
          sendJson(res, '200 OK', JSON.stringify(r), state);
        } catch (err) {
          if (err instanceof TickfanError) stats.error(err.errorCode);
          sendError(res, err, state);
        }
      })();
    }, late);
  });

  // Request-reply over HTTP: the body is the request's fields as JSON (or raw
  // bytes with content-type application/octet-stream); the answer is the reply.
  app.post('/request/:service', (res, req) => {
    const state = { done: false };
    const requester = {}; // this request alone: forgotten by the router if the client goes away
    res.onAborted(() => {
      state.done = true;
      services.requesterGone(requester);
    });
    const a = callerOf(res, req);
    const binary = req.getHeader('content-type').startsWith('application/octet-stream');
    const timeoutMs = Number(req.getQuery('timeoutMs') ?? 0);
    let service: string;
    try {
      const no = admission.http(a.remote);
      if (no) throw no;
      service = topicParam(req);
      validateTopic(service, store.limits.maxTopicLength);
      if (!Number.isInteger(timeoutMs) || timeoutMs < 0) throw new TickfanError(ErrorCode.BAD_REQUEST, '?timeoutMs must be a whole number of milliseconds');
    } catch (err) {
      if (err instanceof TickfanError) stats.error(err.errorCode);
      return sendError(res, err, state);
    }
    if (tooLarge(res, req, state)) return;
    const late = () => sendError(res, new TickfanError(ErrorCode.BAD_REQUEST, `the request body did not arrive within ${opts.bodyTimeoutMs} ms`), state);
    readBodyWithin(res, opts.maxBodyBytes, opts.bodyTimeoutMs, state, (body) => {
      void (async () => {
        try {
          const grants = await sessions.grantsFor(a.token);
          if (!grants) throw new TickfanError(ErrorCode.UNAUTHORIZED, 'requests need a token: Authorization: Bearer <jwt>');
          if (!mayRequest(grants, service)) throw new TickfanError(ErrorCode.PERMISSION_DENIED, `not allowed to request ${service}`);
          let payload: Payload;
          if (binary) payload = { fields: null, data: new Uint8Array(body) };
          else {
            let json: unknown;
            try {
              json = body.byteLength ? JSON.parse(body.toString('utf8')) : {};
            } catch (err) {
              throw new TickfanError(ErrorCode.BAD_REQUEST, `the body is not valid JSON: ${(err as Error).message}`);
            }
            payload = { fields: changesFromJson(json), data: null };
          }
          checkPayload(store, service, payload);
          if (state.done) return;
          services.request(requester, grants.subject, service, payload, timeoutMs, (o) => {
            if (!o.ok) {
              stats.error(o.error.errorCode);
              return sendError(res, o.error, state);
            }
            sendJson(res, '200 OK', JSON.stringify({ service, responder: o.responder, ...payloadToJson(o.payload) }), state);
          });
        } catch (err) {
          if (err instanceof TickfanError) stats.error(err.errorCode);
          sendError(res, err, state);
        }
      })();
    }, late);
  });

  app.get('/snapshot/:topic', (res, req) => {
    const state = { done: false };
    res.onAborted(() => (state.done = true));
    const a = callerOf(res, req);
    let name: string;
    // Copied now: the request dies when this callback returns.
    const query = { depth: req.getQuery('depth'), tables: req.getQuery('tables'), fields: req.getQuery('fields') };
    try {
      const no = admission.http(a.remote);
      if (no) throw no;
      name = topicParam(req);
      validateTopic(name, store.limits.maxTopicLength);
    } catch (err) {
      return sendError(res, err, state);
    }
    void (async () => {
      try {
        const grants = await sessions.grantsFor(a.token);
        if (!grants) throw new TickfanError(ErrorCode.UNAUTHORIZED, 'reading snapshots needs a token: Authorization: Bearer <jwt>');
        if (!grants.subscribe.some((g) => g.matches(name))) throw new TickfanError(ErrorCode.PERMISSION_DENIED, `not allowed to read ${name}`);
        const t = store.get(name);
        if (!t) throw new TickfanError(ErrorCode.UNKNOWN_TOPIC, `no topic ${name}: it was never published`);
        // Read in one turn, after the awaits: exact at one version.
        sendJson(res, '200 OK', snapshotJson(t, query), state);
      } catch (err) {
        sendError(res, err, state);
      }
    })();
  });

  app.get('/topics', (res, req) => {
    const state = { done: false };
    res.onAborted(() => (state.done = true));
    const a = callerOf(res, req);
    const raw = req.getQuery('pattern') || '>';
    void (async () => {
      try {
        const no = admission.http(a.remote);
        if (no) throw no;
        const pattern = TopicPattern.parse(raw, store.limits.maxTopicLength);
        const grants = await sessions.grantsFor(a.token);
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
}

/** GET /healthz and GET /metrics. */
export function registerOps(node: NodeParts): void {
  const { app, opts, store, stats, metrics, health } = node;
  app.get('/healthz', (res) => {
    const state = { done: false };
    res.onAborted(() => (state.done = true));
    sendJson(res, '200 OK', JSON.stringify({ status: 'ok', server: opts.name, uptimeSec: Math.round(process.uptime()), topics: store.size, ...stats.toJSON(), ...health?.() }), state);
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
}

/** The browser SDK at a stable path, the demo page at / when enabled, and the 404 for everything else (register last). */
export function registerStaticAndFallback(node: NodeParts): void {
  const { app, opts } = node;
  const files: [string, string, string][] = [['/tickfan.js', 'dist/browser/tickfan.js', 'text/javascript; charset=utf-8']];
  files.push(['/tickfan.js.map', 'dist/browser/tickfan.js.map', 'application/json']);
  if (opts.demoPage) {
    files.push(['/', 'web/index.html', 'text/html; charset=utf-8'], ['/demo.js', 'web/demo.js', 'text/javascript; charset=utf-8'], ['/page-token.js', 'web/page-token.js', 'text/javascript; charset=utf-8']);
  }
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
        error: { code: 0, name: 'NOT_FOUND', message: `no route for ${req.getMethod().toUpperCase()} ${req.getUrl()}; see GET /healthz, /topics, /snapshot/<topic>, /sse, /metrics, POST /publish/<topic>, POST /request/<service>, WebSocket /ws and /stomp` },
      }),
      state,
    );
  });
}
