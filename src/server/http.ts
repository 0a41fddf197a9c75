// HTTP on the WebSocket port: JSON publish and snapshot, topic listing, health.
// Bodies are read with a hard size limit; every handler registers onAborted.

import { ErrorCode, TickfanError, errorCodeName, type Changes, type FieldValue } from '../protocol/index.js';
import type { UWS } from './uws.js';

const STATUS_BY_CODE: Partial<Record<number, string>> = {
  [ErrorCode.UNKNOWN_TOPIC]: '404 Not Found',
  [ErrorCode.TOO_MANY_TOPICS]: '507 Insufficient Storage',
  [ErrorCode.PERMISSION_DENIED]: '403 Forbidden',
  [ErrorCode.UNAUTHORIZED]: '401 Unauthorized',
  [ErrorCode.RATE_LIMITED]: '429 Too Many Requests',
  [ErrorCode.VALUE_TOO_LARGE]: '413 Payload Too Large',
  [ErrorCode.INTERNAL]: '500 Internal Server Error',
};

/** JSON body of an HTTP error: the same codes as the WebSocket protocol. */
export function errorBody(code: number, message: string): string {
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
    sendJson(res, STATUS_BY_CODE[err.errorCode] ?? '400 Bad Request', errorBody(err.errorCode, err.message), aborted);
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

/** Converts a parsed JSON object into a change set (null deletes; {"$bytes": base64} is bytes). */
export function changesFromJson(body: unknown): Changes {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new TickfanError(ErrorCode.BAD_REQUEST, 'the body must be a JSON object of fields, e.g. {"bid": 101.25, "ask": null}');
  }
  const out: Changes = new Map();
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
    if (v === null || typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') out.set(k, v);
    else if (typeof v === 'object' && !Array.isArray(v) && typeof (v as { $bytes?: unknown }).$bytes === 'string') {
      out.set(k, new Uint8Array(Buffer.from((v as { $bytes: string }).$bytes, 'base64')));
    } else {
      throw new TickfanError(ErrorCode.BAD_FIELD, `field ${k}: values must be numbers, strings, booleans, null (delete) or {"$bytes": "<base64>"}`);
    }
  }
  return out;
}

/** JSON form of a field value: bytes as {"$bytes": base64}, big integers as strings. */
export function valueToJson(v: FieldValue): unknown {
  if (v instanceof Uint8Array) return { $bytes: Buffer.from(v).toString('base64') };
  if (typeof v === 'bigint') return v.toString();
  return v;
}

export function stateToJson(state: Iterable<[string, FieldValue]>): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null);
  for (const [k, v] of state) out[k] = valueToJson(v);
  return out;
}
