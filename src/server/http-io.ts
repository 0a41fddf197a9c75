// HTTP plumbing shared by every route: JSON answers and errors with the
// protocol's codes mapped to statuses, and bodies read with a hard size limit.

import { KeyedBatchError } from '../engine/index.js';
import { ErrorCode, TickfanError, errorCodeName } from '../protocol/index.js';
import type { UWS } from './uws.js';

const STATUS_BY_CODE: Partial<Record<number, string>> = {
  [ErrorCode.UNKNOWN_TOPIC]: '404 Not Found',
  [ErrorCode.TOO_MANY_TOPICS]: '507 Insufficient Storage',
  [ErrorCode.PERMISSION_DENIED]: '403 Forbidden',
  [ErrorCode.UNAUTHORIZED]: '401 Unauthorized',
  [ErrorCode.RATE_LIMITED]: '429 Too Many Requests',
  [ErrorCode.VALUE_TOO_LARGE]: '413 Payload Too Large',
  [ErrorCode.NO_RESPONDER]: '503 Service Unavailable',
  [ErrorCode.REQUEST_TIMEOUT]: '504 Gateway Timeout',
  [ErrorCode.RESPONDER_GONE]: '502 Bad Gateway',
  [ErrorCode.RESPONDER_FAILED]: '502 Bad Gateway',
  [ErrorCode.ROW_GUARD]: '409 Conflict',
  [ErrorCode.NOT_SUPPORTED]: '501 Not Implemented',
  [ErrorCode.INTERNAL]: '500 Internal Server Error',
};

/** JSON body of an HTTP error: the same codes as the WebSocket protocol (a refused keyed batch also names its table and row). */
export function errorBody(code: number, message: string, err?: unknown): string {
  if (err instanceof KeyedBatchError) {
    const at = { reason: err.reason, ...(err.table === undefined ? {} : { table: err.table }), ...(err.key === undefined ? {} : { key: err.key }) };
    return JSON.stringify({ error: { code, name: errorCodeName(code), message, ...at } });
  }
  return JSON.stringify({ error: { code, name: errorCodeName(code), message } });
}

export function sendJson(res: UWS.HttpResponse, status: string, body: string, aborted: { done: boolean }): void {
  if (aborted.done) return;
  aborted.done = true;
  res.cork(() => {
    res.writeStatus(status).writeHeader('content-type', 'application/json').writeHeader('cache-control', 'no-store').end(body);
  });
}

export function sendError(res: UWS.HttpResponse, err: unknown, aborted: { done: boolean }): void {
  if (err instanceof TickfanError) {
    sendJson(res, STATUS_BY_CODE[err.errorCode] ?? '400 Bad Request', errorBody(err.errorCode, err.message, err), aborted);
  } else {
    sendJson(res, '500 Internal Server Error', errorBody(ErrorCode.INTERNAL, 'internal error'), aborted);
  }
}

/**
 * Reads a request body up to `limit` bytes. Answers 413 and closes the
 * connection as soon as the limit is passed, without buffering further.
 */
export function readBody(res: UWS.HttpResponse, limit: number, state: { done: boolean }, done: (body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  res.onData((chunk, isLast) => {
    if (state.done) return;
    size += chunk.byteLength;
    if (size > limit) {
      state.done = true;
      res.cork(() => {
        res
          .writeStatus('413 Payload Too Large')
          .writeHeader('content-type', 'application/json')
          .end(errorBody(ErrorCode.VALUE_TOO_LARGE, `request body is larger than ${limit} bytes`), true);
      });
      return;
    }
    chunks.push(Buffer.from(chunk.slice(0))); // copy: uWS reuses the chunk's memory
    if (isLast) done(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
  });
}


/**
 * readBody with a deadline: a body that has not fully arrived within
 * `timeoutMs` (a slow-loris client) is answered by `late` instead, which
 * should close the connection since the rest of the body is never read.
 */
export function readBodyWithin(
  res: UWS.HttpResponse,
  limit: number,
  timeoutMs: number,
  state: { done: boolean },
  done: (body: Buffer) => void,
  late: () => void,
): void {
  const timer = setTimeout(() => {
    if (!state.done) late();
  }, timeoutMs);
  timer.unref();
  readBody(res, limit, state, (body) => {
    clearTimeout(timer);
    done(body);
  });
}

/**
 * RFC 6455 4.4: an upgrade asking for another WebSocket version than 13 is
 * answered 426 naming the one we speak. True when it was (the route stops).
 */
export function refusedWebSocketVersion(res: UWS.HttpResponse, req: UWS.HttpRequest, countError: (code: number) => void): boolean {
  if (req.getHeader('sec-websocket-version') === '13') return false;
  countError(ErrorCode.BAD_REQUEST);
  res
    .writeStatus('426 Upgrade Required')
    .writeHeader('sec-websocket-version', '13')
    .writeHeader('content-type', 'application/json')
    .end(errorBody(ErrorCode.BAD_REQUEST, 'WebSocket version 13 (RFC 6455) is the only one supported'));
  return true;
}
