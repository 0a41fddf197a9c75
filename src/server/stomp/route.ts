// The STOMP-over-WebSocket route (/stomp): the upgrade (WebSocket version,
// STOMP subprotocol, admission, ?token=), then each socket's life in fan-out,
// sessions and admission exactly as a native connection's.

import { ErrorCode } from '../../protocol/index.js';
import { callerOf } from '../admission.js';
import { errorBody, refusedWebSocketVersion } from '../http-io.js';
import type { NodeParts } from '../node-parts.js';
import { Session } from '../session.js';
import { StompConnection } from './connection.js';
import type { StompHeartbeats } from './heartbeat.js';
import { StompSink } from './sink.js';
import { compressionOf } from '../ws-route.js';

export const STOMP_PATH = '/stomp';
/** Subprotocols, preferred first. */
export const STOMP_SUBPROTOCOLS = ['v12.stomp', 'v11.stomp', 'v10.stomp'] as const;
/** STOMP connection ids start here, so that logs tell them from WebSockets (1…) and SSE streams (10^9…). */
const STOMP_CONN_ID_BASE = 2_000_000_000;

/** The socket's user data: uWebSockets.js copies its fields, so the connection object is held, not spread. */
interface StompSocketData {
  stomp: StompConnection;
}

/** The subprotocol to answer with: '' when none was offered, null when none offered is ours. */
export function chooseSubprotocol(header: string): string | null {
  const offered = header.split(',').map((p) => p.trim().toLowerCase()).filter(Boolean);
  if (offered.length === 0) return '';
  return STOMP_SUBPROTOCOLS.find((p) => offered.includes(p)) ?? null;
}


export function registerStompRoute(node: NodeParts, heartbeats: StompHeartbeats): void {
  const { app, uws, opts, stats, fanout, admission, sessions } = node;
  const compress = opts.compression !== 'off';
  let nextConnId = STOMP_CONN_ID_BASE;

  app.ws<StompSocketData>(STOMP_PATH, {
    // As on /ws: a message just over the limit gets an ERROR (checked in `received`), one past twice it is never read.
    maxPayloadLength: opts.maxPayloadBytes * 2,
    maxBackpressure: opts.hardCapBytes,
    // closeOnBackpressureLimit left at its default (off: the slow lane decides; its type differs between uWS.js builds).
    idleTimeout: opts.idleTimeoutSec,
    sendPingsAutomatically: true,
    compression: compressionOf(uws, opts.compression), // permessage-deflate as on /ws
    upgrade: (res, req, context) => {
      // Headers die when this callback returns: copy them first.
      const a = callerOf(res, req);
      const key = req.getHeader('sec-websocket-key');
      const extensions = req.getHeader('sec-websocket-extensions');
      const protocol = chooseSubprotocol(req.getHeader('sec-websocket-protocol'));
      const refuse = (status: string, code: number, message: string) => {
        stats.error(code);
        res.writeStatus(status).writeHeader('content-type', 'application/json').end(errorBody(code, message));
      };
      if (refusedWebSocketVersion(res, req, (code) => stats.error(code))) return;
      if (protocol === null) return refuse('400 Bad Request', ErrorCode.PROTOCOL_VERSION, `offer one of the subprotocols ${STOMP_SUBPROTOCOLS.join(', ')} (or none)`);
      const no = admission.connection(a);
      if (no) return refuse(no.status, no.code, no.message);
      let aborted = false;
      res.onAborted(() => (aborted = true));
      sessions.grantsFor(a.token).then(
        (grants) => {
          if (aborted) return;
          const stomp = new StompConnection(node, new Session(++nextConnId, a.remote, grants), heartbeats);
          const data: StompSocketData = { stomp };
          res.cork(() => res.upgrade(data, key, protocol, extensions, context));
        },
        (err: unknown) => {
          if (aborted) return;
          res.cork(() => refuse('401 Unauthorized', ErrorCode.UNAUTHORIZED, (err as Error).message));
        },
      );
    },
    open: (ws) => {
      const { stomp } = ws.getUserData();
      const conn = stomp.session.conn;
      const sink = new StompSink(ws, compress, {
        subs: stomp.subs,
        pending: stomp.pending,
        failed: (err) => opts.log('error', `STOMP connection ${conn.id}: a message could not be turned into a frame: ${(err as Error)?.stack ?? String(err)}`),
      });
      admission.opened(conn.remote);
      fanout.open(conn, sink);
      stomp.attach(sink);
    },
    message: (ws, message) => ws.getUserData().stomp.received(message),
    drain: (ws) => fanout.drain(ws.getUserData().stomp.session.conn),
    close: (ws) => {
      const { stomp } = ws.getUserData();
      stomp.closed();
      fanout.closed(stomp.session.conn);
      sessions.ended(stomp.session);
      admission.closed(stomp.session.conn.remote);
    },
  });
}
