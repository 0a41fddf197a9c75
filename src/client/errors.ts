// Errors the client SDK raises: server-sent protocol errors keep their numeric
// code; client-side conditions have TICKFAN_ERR_* codes of their own.

import { CloseCode, TickfanError, type ErrorCode } from '../protocol/index.js';

/** The codes of errors the SDK raises itself (protocol errors from the server are TickfanErrors with numeric codes). */
export const ClientErrorCode = {
  /** The client was closed: pending publishes and requests reject with it. */
  CLOSED: 'TICKFAN_ERR_CLIENT_CLOSED',
  /** Not sent, or no answer: the connection closed before the server acknowledged, reconnect is off, or too much was queued while disconnected. */
  DISCONNECTED: 'TICKFAN_ERR_DISCONNECTED',
  /** No WebSocket (or, for SSE, no EventSource or streaming fetch) to use: pass one in the options. */
  NO_WEBSOCKET: 'TICKFAN_ERR_NO_WEBSOCKET',
  /** An option of `connect()` is invalid (thrown at once). */
  BAD_OPTION: 'TICKFAN_ERR_BAD_OPTION',
  /** Close 4001 (or HTTP 401 for an SSE stream): the server refused the token (or none was given). The client stopped. */
  TOKEN_REFUSED: 'TICKFAN_ERR_TOKEN_REFUSED',
  /** Close 4010: the connection token expired. The client stopped. */
  TOKEN_EXPIRED: 'TICKFAN_ERR_TOKEN_EXPIRED',
  /** The token function failed (threw, rejected, gave no string, or took over 10 s): reported each time; the client stops after 3 in a row at connect. */
  TOKEN_UNAVAILABLE: 'TICKFAN_ERR_TOKEN_UNAVAILABLE',
  /** Close 1008: refused by the server's policy. The client stopped. */
  REFUSED: 'TICKFAN_ERR_REFUSED',
  /** Close 1002 or 4002: client and server do not understand each other. The client stopped. */
  PROTOCOL: 'TICKFAN_ERR_PROTOCOL',
  /** `sub.reached()` waited longer than its timeout. */
  TIMEOUT: 'TICKFAN_ERR_TIMEOUT',
  /** `sub.reached()`: the topic began a newer epoch (a server restart) before the position was held; it never will be. */
  POSITION_LOST: 'TICKFAN_ERR_POSITION_LOST',
} as const;
/** One of the values of {@link ClientErrorCode}. */
export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

/** An error the SDK raises itself, with a stable `code` (and `closeCode` when a close ended the client). */
export class ClientError extends Error {
  /** The WebSocket close code that ended the client, for the errors a terminal close raises. */
  readonly closeCode: number | undefined;
  constructor(
    readonly code: ClientErrorCode,
    message: string,
    options?: { cause?: unknown; closeCode?: number },
  ) {
    super(message, options);
    this.name = 'ClientError';
    this.closeCode = options?.closeCode;
  }
}

/** Turns a server Error message into a TickfanError. */
export function serverError(code: number, message: string): TickfanError {
  return new TickfanError(code as ErrorCode, message);
}

/**
 * Close codes after which reconnecting cannot help: the same client would be
 * closed the same way again, at once and for ever (a reconnect storm of its
 * own making). The client stops instead and says what to do. Every other code
 * — 1000, 1001 going away, 1006 dropped, 1009 a message too big (it is not
 * sent again), 1011–1013, 4008 slow consumer, heartbeat loss — reconnects with
 * the backoff.
 */
export function terminalCloseError(code: number, reason: string, hadToken: boolean): ClientError | null {
  const said = reason ? ` "${reason}"` : '';
  const opts = { closeCode: code };
  switch (code) {
    case CloseCode.UNAUTHORIZED:
      return hadToken
        ? new ClientError(ClientErrorCode.TOKEN_REFUSED, `the server refused the token (${code}${said}): get a new token and call connect() again with it`, opts)
        : new ClientError(ClientErrorCode.TOKEN_REFUSED, `the server requires a token and none was given (${code}${said}): pass options.token to connect()`, opts);
    case CloseCode.TOKEN_EXPIRED:
      return new ClientError(ClientErrorCode.TOKEN_EXPIRED, `the connection token expired (${code}${said}): get a new token and call connect() again with it`, opts);
    case CloseCode.POLICY:
      return new ClientError(ClientErrorCode.REFUSED, `the server refused this client by policy (${code}${said}): retrying would be refused the same way; fix what the server objects to, then call connect() again`, opts);
    case CloseCode.PROTOCOL_ERROR:
      return new ClientError(ClientErrorCode.PROTOCOL, `the server closed for a protocol error (${code}${said}): this client and server share no protocol they both accept; use a matching SDK or server version (or options.protocol), then call connect() again`, opts);
    case CloseCode.TOO_MANY_BAD_FRAMES:
      return new ClientError(ClientErrorCode.PROTOCOL, `the server could not read this client's frames (${code}${said}): the SDK and server versions likely do not match; use a matching SDK, then call connect() again`, opts);
    default:
      return null;
  }
}
