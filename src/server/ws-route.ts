// The WebSocket route (/ws): upgrade (admission, then the token), binary
// frames decoded and handed to dispatch, drain to the slow lane, close to
// fan-out and the session. The connection's fan-out record is its sink (WsConn).

import { CloseCode, ErrorCode, TickfanError, decodeMessage, isClientMessage, splitMessages, type ClientMessage } from '../protocol/index.js';
import { callerOf } from './admission.js';
import { errorBody, refusedWebSocketVersion } from './http-io.js';
import type { NodeParts } from './node-parts.js';
import { Session } from './session.js';
import { DeflateWsConn, WsConn } from './ws-conn.js';

let nextConnId = 1;

/** permessage-deflate per `compression` option; client frames inflate with the shared decompressor. */
export function compressionOf(uws: NodeParts['uws'], mode: NodeParts['opts']['compression']): number {
  if (mode === 'shared') return uws.SHARED_COMPRESSOR | uws.SHARED_DECOMPRESSOR;
  if (mode === 'dedicated') return uws.DEDICATED_COMPRESSOR_4KB | uws.SHARED_DECOMPRESSOR;
  return uws.DISABLED;
}

export function registerWebSocket(node: NodeParts): void {
  const { app, uws, opts, stats, fanout, admission, sessions, dispatch } = node;
  // Asks uWebSockets.js to deflate each frame for the sockets that negotiated it (per socket, per frame).
  const compress = opts.compression !== 'off';
  const ConnClass = compress ? DeflateWsConn : WsConn;
  // The fast path: one native publish per channel per turn reaches every subscriber in C++.
  fanout.setBroadcaster((topic, frame) => void app.publish(topic, frame, true, compress));

  app.ws<Session>('/ws', {
    // uWebSockets.js cuts the TCP connection, without a close frame, past its
    // limit: give it headroom so that a message just over ours gets a 1009
    // (checked in `message`), while anything past twice ours is never read.
    maxPayloadLength: opts.maxPayloadBytes * 2,
    maxBackpressure: opts.hardCapBytes,
    // closeOnBackpressureLimit left at its default (off: the slow lane decides; its type differs between uWS.js builds).
    idleTimeout: opts.idleTimeoutSec,
    sendPingsAutomatically: true,
    compression: compressionOf(uws, opts.compression),
    upgrade: (res, req, context) => {
      // Headers die when this callback returns: copy them first.
      const a = callerOf(res, req);
      const key = req.getHeader('sec-websocket-key');
      const protocol = req.getHeader('sec-websocket-protocol');
      const extensions = req.getHeader('sec-websocket-extensions');
      if (refusedWebSocketVersion(res, req, (code) => stats.error(code))) return;
      const no = admission.connection(a);
      if (no) {
        stats.error(no.code);
        res.writeStatus(no.status).writeHeader('content-type', 'application/json').end(errorBody(no.code, no.message));
        return;
      }
      let aborted = false;
      res.onAborted(() => (aborted = true));
      sessions.grantsFor(a.token).then(
        (grants) => {
          if (aborted) return;
          // uWS copies the session's own properties onto the socket (see Session).
          // Connections from one address share its string (admission holds it).
          const id = nextConnId++;
          const remote = admission.canonical(a.remote);
          const session = new Session(id, remote, grants, new ConnClass(id, remote));
          res.cork(() => res.upgrade(session, key, protocol, extensions, context));
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
      const s = ws.getUserData();
      admission.opened(s.conn.remote);
      const conn = s.conn as WsConn;
      conn.ws = ws;
      fanout.open(conn, conn);
      sessions.started(s);
    },
    message: (ws, message, isBinary) => {
      const s = ws.getUserData();
      if (message.byteLength > opts.maxPayloadBytes) {
        sessions.fail(s, new TickfanError(ErrorCode.VALUE_TOO_LARGE, `a message of ${message.byteLength} bytes is larger than the ${opts.maxPayloadBytes} accepted`));
        fanout.end(s.conn, CloseCode.TOO_BIG, 'message too big');
        return;
      }
      if (!isBinary) {
        sessions.fail(s, new TickfanError(ErrorCode.BAD_FRAME, 'tickfan speaks binary frames (FlatBuffers); text frames are not accepted'));
        return sessions.badFrame(s);
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
      dispatch.frame(s, msgs);
      if (bad) {
        sessions.fail(s, bad);
        return sessions.badFrame(s);
      }
      sessions.goodFrame(s);
    },
    drain: (ws) => fanout.drain(ws.getUserData().conn),
    close: (ws) => {
      const s = ws.getUserData();
      fanout.closed(s.conn);
      (s.conn as WsConn).ws = null;
      sessions.ended(s);
      admission.closed(s.conn.remote);
    },
  });
}
