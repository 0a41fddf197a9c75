// Errors the client SDK raises: server-sent protocol errors keep their numeric
// code; client-side conditions have TICKFAN_ERR_* codes of their own.

import { TickfanError, type ErrorCode } from '../protocol/index.js';

export const ClientErrorCode = {
  CLOSED: 'TICKFAN_ERR_CLIENT_CLOSED',
  DISCONNECTED: 'TICKFAN_ERR_DISCONNECTED',
  NO_WEBSOCKET: 'TICKFAN_ERR_NO_WEBSOCKET',
  BAD_OPTION: 'TICKFAN_ERR_BAD_OPTION',
} as const;
export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

export class ClientError extends Error {
  constructor(
    readonly code: ClientErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ClientError';
  }
}

/** Turns a server Error message into a TickfanError. */
export function serverError(code: number, message: string): TickfanError {
  return new TickfanError(code as ErrorCode, message);
}
