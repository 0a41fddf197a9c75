// What a client can be told at connect(), and the check that refuses a bad
// URL or transport at once, with a message saying what was expected.

import type { BackoffOptions } from './backoff.js';
import { ClientError, ClientErrorCode } from './errors.js';
import type { EventSourceCtor, FetchLike } from './event-stream.js';
import type { TokenSource } from './tokens.js';
import type { TransportKind, WebSocketCtor } from './transport.js';

/** Options of `connect(url, options)`; each is checked when given. */
export interface ClientOptions {
  /**
   * Connection token (sent in Hello over WebSocket, as `?token=` over SSE), or
   * a function returning one (or a promise of one). A function is called at
   * connect and again before each token's `exp`: the new token is sent on the
   * open connection, which carries on untouched (see docs/security.md#token-refresh).
   */
  token?: TokenSource;
  /**
   * `'ws'`, `'sse'`, or `'auto'` (default): WebSocket, and SSE when no
   * WebSocket can open (no constructor, or the first attempt fails or takes
   * longer than `fallbackTimeoutMs`). Once a transport connected, `'auto'` keeps it.
   */
  transport?: TransportKind | 'auto';
  /** WebSocket constructor: the browser's by default; in Node 20 the `ws` package is loaded. */
  WebSocket?: WebSocketCtor;
  /** EventSource constructor for SSE: the browser's by default; elsewhere a fetch()-based reader. */
  EventSource?: EventSourceCtor;
  /** fetch() for SSE commands (POST /sse/<session>). Default: the global one. */
  fetch?: FetchLike;
  /** SSE endpoint. Default: derived from `url` (`ws://host/ws` → `http://host/sse`). */
  sseUrl?: string;
  /** In `'auto'` mode, how long the first WebSocket may take to open before SSE is tried. Default 3000 ms. */
  fallbackTimeoutMs?: number;
  /** Reconnect backoff (capped, full jitter). */
  backoff?: Partial<BackoffOptions>;
  /** Reconnect after a drop. Default true. */
  reconnect?: boolean;
  /** Extra silence allowed past the server heartbeat before the connection is deemed dead. Default 5 s. */
  heartbeatGraceMs?: number;
  /** Re-ask for a catch-up that has not arrived after this long. Default 5 s. */
  catchUpTimeoutMs?: number;
  /** Client name sent in Hello. */
  name?: string;
  /**
   * Wire protocol over WebSocket: 2 (default; compact snapshots and deltas)
   * or 1 (the first protocol, for comparison and for servers that predate 2).
   */
  protocol?: 1 | 2;
}

/** Throws a BAD_OPTION ClientError for a URL or transport the client cannot use. */
export function checkOptions(url: string, options: ClientOptions): void {
  if (typeof url !== 'string' || !/^(wss?|https?):\/\//.test(url)) {
    throw new ClientError(ClientErrorCode.BAD_OPTION, `url must start with ws://, wss://, http:// or https:// (got ${JSON.stringify(url)})`);
  }
  if (options.protocol !== undefined && options.protocol !== 1 && options.protocol !== 2) {
    throw new ClientError(ClientErrorCode.BAD_OPTION, `options.protocol must be 1 or 2 (got ${JSON.stringify(options.protocol)})`);
  }
  const tok = options.token;
  if (tok !== undefined && typeof tok !== 'string' && typeof tok !== 'function') {
    throw new ClientError(ClientErrorCode.BAD_OPTION, `options.token must be a string or a function returning one (got ${typeof tok})`);
  }
  const t = options.transport;
  if (t !== undefined && t !== 'ws' && t !== 'sse' && t !== 'auto') {
    throw new ClientError(ClientErrorCode.BAD_OPTION, `options.transport must be 'ws', 'sse' or 'auto' (got ${JSON.stringify(t)})`);
  }
}
