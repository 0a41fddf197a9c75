// Connection tokens in the SDK: a string, or a function the SDK calls for a
// fresh one — at connect, before `exp` on the open connection (a refresh: a
// Hello carrying the token, answered by a Welcome or an Error 21), and again
// after the server refused or expired one, never more than TOKEN_ATTEMPTS
// times in a row: a token that will never pass ends the client with a ClientError.
// Each token the server takes (at connect, and each accepted refresh) is told
// to the client's `token` listeners with its `exp`, so a page can show the
// lifetime left as it is refreshed.

import { ClientError, ClientErrorCode } from './errors.js';

/** Returns a connection token (a JWT); may be async. Called at connect and before each token's `exp`. */
export type TokenFunction = () => string | Promise<string>;
/** `options.token`: a fixed token, or a function the SDK calls for fresh ones. */
export type TokenSource = string | TokenFunction;

/** Failures in a row (the function failing, the server refusing or expiring its tokens) before the client stops. */
export const TOKEN_ATTEMPTS = 3;
/** A token function that has not answered within this long has failed. */
export const TOKEN_CALL_TIMEOUT_MS = 10_000;
/** A refresh the server has not answered within this long is tried again (while the old token lives). */
export const REFRESH_ANSWER_TIMEOUT_MS = 10_000;
/** A refresh starts this long before `exp` at most: a third of the time left for shorter tokens. */
export const REFRESH_MARGIN_MS = 30_000;
/** Up to this much earlier again, at random (at most a tenth of the time left), so that many clients spread out. */
export const REFRESH_JITTER_MS = 5_000;
/** Retries of a failed refresh wait half the time left, at least this long; none starts with less than twice this left. */
const RETRY_MIN_MS = 1_000;
/** A cached token with less life than this is not used for a new connection: the function is asked. */
const MIN_LIFE_TO_REUSE_MS = 2_000;

/** The client's `token` event: the server took a token, at connect or as a refresh on the open connection. */
export interface TokenEvent {
  /** The token's `exp` claim as in the JWT (seconds since 1970); null for a token without one (or not a JWT). */
  exp: number | null;
  /** The same in ms since 1970 (`exp * 1000`), for `expiresAt - Date.now()`; null without `exp`. */
  expiresAt: number | null;
  /** The token's `sub` claim (who the server takes the connection for); null without one. */
  sub: string | null;
  /** False for the token a connection opened with (each reconnect too), true for a refresh the server accepted on the open connection. */
  refreshed: boolean;
}

/** A JWT's payload, read but not verified (the server verifies); null for what is not one. */
function tokenClaims(token: string): { exp?: unknown; sub?: unknown } | null {
  const part = token.split('.')[1];
  if (!part) return null;
  try {
    const bin = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
    const claims: unknown = JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))));
    return claims !== null && typeof claims === 'object' ? (claims as { exp?: unknown; sub?: unknown }) : null;
  } catch {
    return null;
  }
}

/** The `exp` of a JWT in ms since 1970, read but not verified (the server verifies); null without one. */
export function tokenExpiry(token: string): number | null {
  const exp = tokenClaims(token)?.exp;
  return typeof exp === 'number' ? exp * 1000 : null;
}

/** What the `token` event says of a token. */
export function tokenEvent(token: string, refreshed: boolean): TokenEvent {
  const claims = tokenClaims(token);
  const exp = typeof claims?.exp === 'number' ? claims.exp : null;
  return { exp, expiresAt: exp === null ? null : exp * 1000, sub: typeof claims?.sub === 'string' ? claims.sub : null, refreshed };
}

/** A URL without its `token` query parameter, and that token ('' when there was none). */
export function liftToken(url: string): { url: string; token: string } {
  const u = new URL(url);
  if (!u.searchParams.has('token')) return { url, token: '' };
  const token = u.searchParams.get('token') ?? '';
  u.searchParams.delete('token');
  return { url: u.toString(), token };
}

/** What the keeper needs of the connection. */
export interface TokenHooks {
  /** Sends a Hello carrying `token` on the open connection; false when there is none. */
  refresh(token: string): boolean;
  /** Reports a failure that does not end anything yet (the function failed; it is tried again). */
  error(err: Error): void;
  /** The server took a token: the one a connection opened with, or an accepted refresh. */
  taken?(event: TokenEvent): void;
}

/** A token for a new connection, or why there is none (`stop`: give up; otherwise try again after the backoff). */
export type ConnectToken = { ok: true; token: string } | { ok: false; error: ClientError; stop: ClientError | null };

/** Holds the connection's token, refreshes it before `exp`, and counts the failures that end the client. */
export class TokenKeeper {
  private token: string;
  private readonly fn: TokenFunction | null;
  /** Failures in a row: the function failing at connect, the server refusing (4001, 401) or expiring (4010) a token. */
  private failures = 0;
  /** The cached token was refused or expired: the next connect asks the function. */
  private stale = false;
  /** A refresh sent and not yet answered. */
  private pending: string | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** Bumped when the connection goes: a refresh begun on it is dropped. */
  private generation = 0;
  private closed = false;

  constructor(
    source: TokenSource | undefined,
    private readonly hooks: TokenHooks,
  ) {
    this.fn = typeof source === 'function' ? source : null;
    this.token = typeof source === 'string' ? source : '';
  }

  /** The token the connection uses now ('' for none). */
  get current(): string {
    return this.token;
  }

  /** True when a token was given (a string, or a function). */
  get given(): boolean {
    return this.fn !== null || this.token !== '';
  }

  /** True when tokens come from a function (and so can be refreshed). */
  get refreshable(): boolean {
    return this.fn !== null;
  }

  /** True while a refresh waits for the server's answer. */
  get refreshing(): boolean {
    return this.pending !== null;
  }

  /**
   * The token for a new connection: the cached one while it has life left
   * (at once, so that a fixed token adds no turn to connecting), else a fresh
   * one from the function.
   */
  forConnect(): ConnectToken | Promise<ConnectToken> {
    if (!this.fn) return { ok: true, token: this.token };
    const exp = tokenExpiry(this.token);
    if (this.token && !this.stale && (exp === null || exp - Date.now() > MIN_LIFE_TO_REUSE_MS)) return { ok: true, token: this.token };
    return this.fresh();
  }

  private async fresh(): Promise<ConnectToken> {
    try {
      this.token = await this.call();
      this.stale = false;
      return { ok: true, token: this.token };
    } catch (err) {
      const why = (err as Error)?.message ?? String(err);
      const error = new ClientError(ClientErrorCode.TOKEN_UNAVAILABLE, `the token function failed: ${why}`, { cause: err });
      const stop =
        ++this.failures >= TOKEN_ATTEMPTS
          ? new ClientError(ClientErrorCode.TOKEN_UNAVAILABLE, `the token function failed ${this.failures} times in a row (last: ${why}): the client stopped; call connect() again once it can give a token`, { cause: err })
          : null;
      return { ok: false, error, stop };
    }
  }

  /** The server took the connection's token (the Pong after Hello, an SSE stream's session): failures start over, a refresh is planned. */
  accepted(): void {
    this.failures = 0;
    if (this.token) this.hooks.taken?.(tokenEvent(this.token, false));
    this.schedule();
  }

  /** The server answered a refresh with a Welcome: the new token is the connection's now. */
  refreshAccepted(): void {
    if (this.pending === null) return;
    this.token = this.pending;
    this.pending = null;
    this.stale = false;
    this.failures = 0;
    this.hooks.taken?.(tokenEvent(this.token, true));
    this.schedule();
  }

  /** The server refused a refresh (Error 21, id 0): the old token holds until its exp; try again before then. */
  refreshRefused(): void {
    if (this.pending === null) return;
    this.pending = null;
    this.retry();
  }

  /**
   * The server closed the connection for its token (`stop`: the ClientError
   * of 4001 or 4010). A fixed token cannot do better: `stop` is returned. With
   * a function, null (connect again with a fresh token) until TOKEN_ATTEMPTS
   * closes in a row, then the error to stop with.
   */
  closedForToken(stop: ClientError): ClientError | null {
    this.disconnected();
    if (!this.fn) return stop;
    this.stale = true;
    if (++this.failures < TOKEN_ATTEMPTS) return null;
    return new ClientError(stop.code, `${stop.message} (${this.failures} times in a row with tokens from the token function: the client stopped)`, { cause: stop, closeCode: stop.closeCode });
  }

  /** The connection is gone: no refresh until the next one is accepted. */
  disconnected(): void {
    this.generation++;
    this.pending = null;
    this.clearTimer();
  }

  close(): void {
    this.closed = true;
    this.disconnected();
  }

  /** Plans the refresh: before `exp` by a margin (a third of the time left, at most 30 s) and a jitter. */
  private schedule(): void {
    this.clearTimer();
    if (!this.fn || this.closed) return;
    const exp = tokenExpiry(this.token);
    if (exp === null) return;
    const left = exp - Date.now();
    const margin = Math.min(REFRESH_MARGIN_MS, left / 3);
    const jitter = Math.random() * Math.min(REFRESH_JITTER_MS, left / 10);
    this.later(Math.max(0, left - margin - jitter), () => void this.refreshNow());
  }

  private async refreshNow(): Promise<void> {
    const gen = this.generation;
    let token: string;
    try {
      token = await this.call();
    } catch (err) {
      if (gen !== this.generation || this.closed) return;
      this.hooks.error(new ClientError(ClientErrorCode.TOKEN_UNAVAILABLE, `token refresh: the token function failed: ${(err as Error)?.message ?? String(err)}; it is tried again while the current token lives`, { cause: err }));
      return this.retry();
    }
    if (gen !== this.generation || this.closed) return;
    // Not connected: the next connection takes a token of its own.
    if (!this.hooks.refresh(token)) return;
    this.pending = token;
    this.later(REFRESH_ANSWER_TIMEOUT_MS, () => {
      this.pending = null;
      this.retry();
    });
  }

  /** Half the old token's time left (at least a second), while it has two seconds or more; then the server's 4010 ends it. */
  private retry(): void {
    this.clearTimer();
    const exp = tokenExpiry(this.token);
    if (exp === null || this.closed) return;
    const left = exp - Date.now();
    if (left < 2 * RETRY_MIN_MS) return;
    this.later(Math.max(RETRY_MIN_MS, left / 2), () => void this.refreshNow());
  }

  /** One call of the function, with a time limit; anything but a non-empty string is a failure. */
  private async call(): Promise<string> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no token within ${TOKEN_CALL_TIMEOUT_MS} ms`)), TOKEN_CALL_TIMEOUT_MS);
    });
    try {
      const t: unknown = await Promise.race([Promise.resolve().then(() => this.fn!()), late]);
      if (typeof t !== 'string' || t === '') throw new Error(`it returned ${t === '' ? 'an empty string' : typeof t}, not a token`);
      return t;
    } finally {
      clearTimeout(timer);
    }
  }

  private later(ms: number, fn: () => void): void {
    this.clearTimer();
    this.timer = setTimeout(() => {
      this.timer = null;
      fn();
    }, ms);
    (this.timer as { unref?: () => void }).unref?.();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
