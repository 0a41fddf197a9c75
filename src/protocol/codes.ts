// Every protocol error code and WebSocket close code tickfan uses, in one place.
// docs/protocol.md lists them; test/unit/codes.test.ts keeps the two in step.

/** Codes carried by the protocol's Error message (and by HTTP error bodies). */
export const ErrorCode = {
  BAD_FRAME: 1,
  UNKNOWN_MESSAGE: 2,
  BAD_REQUEST: 3,
  PROTOCOL_VERSION: 4,
  NOT_SUPPORTED: 5,
  BAD_TOPIC: 10,
  BAD_PATTERN: 11,
  UNKNOWN_TOPIC: 12,
  UNKNOWN_SUBSCRIPTION: 13,
  BAD_FIELD: 14,
  TOO_MANY_SUBSCRIPTIONS: 15,
  TOO_MANY_TOPICS: 16,
  TOO_MANY_FIELDS: 17,
  VALUE_TOO_LARGE: 18,
  TOO_MANY_CONNECTIONS: 19,
  PERMISSION_DENIED: 20,
  UNAUTHORIZED: 21,
  BAD_KEY: 22,
  ROW_GUARD: 23,
  TOO_MANY_ROWS: 24,
  RATE_LIMITED: 30,
  NO_RESPONDER: 40,
  REQUEST_TIMEOUT: 41,
  RESPONDER_GONE: 42,
  RESPONDER_FAILED: 43,
  INTERNAL: 50,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** What each error code means, for people (docs/protocol.md, logs, HTTP bodies). */
export const ERROR_CODE_TEXT: Record<ErrorCode, string> = {
  [ErrorCode.BAD_FRAME]: 'the frame is not a valid tickfan message (bad size prefix, offsets or vector lengths)',
  [ErrorCode.UNKNOWN_MESSAGE]: 'the message type is unknown or is not one a client may send',
  [ErrorCode.BAD_REQUEST]: 'a message field is missing or out of range',
  [ErrorCode.PROTOCOL_VERSION]: 'the client speaks a protocol version this server does not',
  [ErrorCode.NOT_SUPPORTED]: 'this connection or layout cannot do that (e.g. a keyed publish from an SDK that fell back to SSE); nothing was applied',
  [ErrorCode.BAD_TOPIC]: 'the topic name is empty, too long, or has characters outside [A-Za-z0-9_-:@] between dots',
  [ErrorCode.BAD_PATTERN]: 'the subscription pattern is malformed (`*` is one whole level, `>` only the last)',
  [ErrorCode.UNKNOWN_TOPIC]: 'no topic has that name (it was never published)',
  [ErrorCode.UNKNOWN_SUBSCRIPTION]: 'no subscription has that id on this connection',
  [ErrorCode.BAD_FIELD]: 'a field name is empty or too long, or a value has an unsupported type',
  [ErrorCode.TOO_MANY_SUBSCRIPTIONS]: 'the connection holds the most subscriptions allowed',
  [ErrorCode.TOO_MANY_TOPICS]: 'the server holds the most topics allowed',
  [ErrorCode.TOO_MANY_FIELDS]: 'the topic would hold more fields than allowed',
  [ErrorCode.VALUE_TOO_LARGE]: 'a field value, a WebSocket message or an HTTP body is larger than allowed',
  [ErrorCode.TOO_MANY_CONNECTIONS]: 'the server, or this IP address, holds the most connections allowed',
  [ErrorCode.PERMISSION_DENIED]: 'the connection may not do this on this topic',
  [ErrorCode.UNAUTHORIZED]: 'a valid token is needed',
  [ErrorCode.BAD_KEY]: 'a row key does not fit its table (int tables: a safe integer; string tables: 1–256 characters); the batch was refused',
  [ErrorCode.ROW_GUARD]: 'a row guard failed (ifNew: the row exists; ifExists: it does not); the batch was refused',
  [ErrorCode.TOO_MANY_ROWS]: 'the batch would leave a table with more rows than allowed; the batch was refused',
  [ErrorCode.RATE_LIMITED]: 'too many publishes per second from this connection',
  [ErrorCode.NO_RESPONDER]: 'no responder serves this service now (nothing is queued: try again later)',
  [ErrorCode.REQUEST_TIMEOUT]: 'the responder did not answer within the request timeout (a late answer is dropped)',
  [ErrorCode.RESPONDER_GONE]: 'the responder disconnected before answering',
  [ErrorCode.RESPONDER_FAILED]: "the responder's handler failed; its message is passed on",
  [ErrorCode.INTERNAL]: 'the server failed to handle the request; it has been logged',
};

/** WebSocket close codes the server sends. */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  POLICY: 1008,
  TOO_BIG: 1009,
  SLOW_CONSUMER: 4008,
  TOO_MANY_BAD_FRAMES: 4002,
  UNAUTHORIZED: 4001,
  TOKEN_EXPIRED: 4010,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** What each WebSocket close code means, for people (docs/protocol.md, logs). */
export const CLOSE_CODE_TEXT: Record<CloseCode, string> = {
  [CloseCode.NORMAL]: 'normal close',
  [CloseCode.GOING_AWAY]: 'the server is shutting down; reconnect (elsewhere) and resume',
  [CloseCode.PROTOCOL_ERROR]: 'WebSocket protocol violation',
  [CloseCode.POLICY]: 'refused by policy',
  [CloseCode.TOO_BIG]: 'a frame was larger than the server accepts',
  [CloseCode.SLOW_CONSUMER]: 'the client read too slowly: it stayed behind past the hard cap (bytes or time)',
  [CloseCode.TOO_MANY_BAD_FRAMES]: 'the client sent too many malformed frames in a row',
  [CloseCode.UNAUTHORIZED]: 'no valid token was given in time, or the token was refused',
  [CloseCode.TOKEN_EXPIRED]: 'the connection token expired: reconnect with a fresh one',
};

const NAME_BY_CODE = new Map<number, string>(Object.entries(ErrorCode).map(([k, v]) => [v, k]));

/** `TICKFAN_ERR_BAD_TOPIC` for 10, and so on. */
export function errorCodeName(code: number): string {
  return `TICKFAN_ERR_${NAME_BY_CODE.get(code) ?? 'UNKNOWN'}`;
}

/** An error with a stable numeric protocol code and a `TICKFAN_ERR_*` name. */
export class TickfanError extends Error {
  readonly code: string;
  readonly errorCode: ErrorCode;
  constructor(errorCode: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TickfanError';
    this.errorCode = errorCode;
    this.code = errorCodeName(errorCode);
  }
}
