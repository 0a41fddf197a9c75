// Sessions: who is on the other end of a connection and what it may do. A
// Session pairs fan-out's Conn with the transport-level state fan-out does
// not need: verified grants, token expiry, the Hello-token handshake, the
// publish rate limit and bad-frame counting, and token refresh on an open
// connection. WebSocket, SSE and STOMP share it.

import { CloseCode, ErrorCode, TickfanError, type ClientMessage } from '../protocol/index.js';
import type { Authenticator, Grants } from './auth.js';
import { Conn, type Fanout } from './fanout/index.js';
import type { LogFn } from './options.js';
import type { ServiceGate } from './services/index.js';
import type { ServerStats } from './stats.js';
import { endUngranted, type Responder } from './token-refresh.js';

/** A session's rarely used state, allocated on first use (most connections never need it). */
interface SessionRare {
  authWaiting: ClientMessage[] | null;
  expiryTimer: NodeJS.Timeout | null;
  responder: Responder | null;
  /** Malformed frames in a row. */
  badFrames: number;
  /** Publish rate limit: tokens left and when they were last refilled (0: never, a full bucket). */
  publishTokens: number;
  publishRefillAt: number;
}

/** The session's side record, made on first use; works on both forms of a session (see Session). */
function rareOf(s: Session): SessionRare {
  return (s.rare ??= { authWaiting: null, expiryTimer: null, responder: null, badFrames: 0, publishTokens: 0, publishRefillAt: 0 });
}

/**
 * One connection's session. Over WebSocket, uWebSockets.js copies this
 * object's *own* properties onto its socket object at upgrade, and
 * `ws.getUserData()` returns that socket: the prototype's accessors
 * (authWaiting, expiryTimer, responder) are not there, and assigning them
 * makes plain properties. Everything reads them by truthiness, which both
 * forms satisfy; a new accessor or method here would not exist for
 * WebSocket sessions. Its own properties are three (conn, rare, grants):
 * each one more costs every WebSocket a slot on its socket object (V8 adds
 * out-of-object properties three at a time), so counters used by few
 * connections (bad frames, the publish rate) live in `rare`, reached
 * through Sessions' methods.
 */
export class Session {
  readonly conn: Conn;
  /** Rarely used state (bad frames, publish rate, the Hello-token wait, expiry timer, responder): null until one is set. */
  rare: SessionRare | null = null;

  constructor(
    id: number,
    remote: string,
    /** What this connection may do; null until a token is verified. */
    public grants: Grants | null,
    /** Its fan-out record (a WebSocket's is also its sink: ws-conn.ts). */
    conn?: Conn,
  ) {
    this.conn = conn ?? new Conn(id, remote);
  }

  /** Messages that arrived while a Hello token was being verified. */
  get authWaiting(): ClientMessage[] | null {
    return this.rare ? this.rare.authWaiting : null;
  }
  set authWaiting(v: ClientMessage[] | null) {
    if (v || this.rare) rareOf(this).authWaiting = v;
  }

  /** Ends the session when its token expires (or when no token came in time). */
  get expiryTimer(): NodeJS.Timeout | null {
    return this.rare ? this.rare.expiryTimer : null;
  }
  set expiryTimer(v: NodeJS.Timeout | null) {
    if (v || this.rare) rareOf(this).expiryTimer = v;
  }

  /** How the service router reaches this session as a responder (made on its first Serve). */
  get responder(): Responder | null {
    return this.rare ? this.rare.responder : null;
  }
  set responder(v: Responder | null) {
    if (v || this.rare) rareOf(this).responder = v;
  }
}

export interface SessionOptions {
  /** Server name, heartbeat, frame limit and rate tiers: the Welcome that answers a token refresh. */
  name: string;
  heartbeatMs: number;
  maxPayloadBytes: number;
  rateTiers: readonly number[];
  authTimeoutMs: number;
  maxPublishesPerSecond: number;
  maxBadFrames: number;
  log: LogFn;
}

export class Sessions {
  constructor(
    private readonly auth: Authenticator,
    private readonly fanout: Fanout,
    private readonly services: ServiceGate,
    private readonly opts: SessionOptions,
    private readonly stats: ServerStats,
  ) {}

  /** Verifies a token (or applies the anonymous grants); rejects with UNAUTHORIZED. */
  async grantsFor(token: string): Promise<Grants | null> {
    if (token) return this.auth.verify(token);
    return this.auth.anonymous;
  }

  /** A connection is open: its token's expiry is armed, or, without a token, the wait for Hello's. */
  started(s: Session): void {
    this.armExpiry(s);
    if (s.grants) return;
    // Authentication is required and no token came with the upgrade: Hello must bring one.
    s.expiryTimer = setTimeout(() => {
      if (s.grants || s.authWaiting) return;
      this.fail(s, new TickfanError(ErrorCode.UNAUTHORIZED, `no token within ${this.opts.authTimeoutMs} ms: send Hello with a token, or connect with ?token=`));
      this.fanout.end(s.conn, CloseCode.UNAUTHORIZED, 'unauthorized');
    }, this.opts.authTimeoutMs);
  }

  /** The connection is gone: no timer of its session may fire; what it was answering fails fast; its requests are forgotten. */
  ended(s: Session): void {
    if (s.expiryTimer) {
      clearTimeout(s.expiryTimer);
      s.expiryTimer = null;
    }
    if (s.responder) this.services.responderGone(s.responder);
    this.services.requesterGone(s);
  }

  /** Ends a session when its token expires (4010), and not a moment later. */
  private armExpiry(s: Session): void {
    // Assigned only when there is a timer: uWebSockets.js copies the session
    // onto its WebSocket object, where a null written here would be one more
    // property per connection (the accessors do not survive the copy).
    if (s.expiryTimer) {
      clearTimeout(s.expiryTimer);
      s.expiryTimer = null;
    }
    const at = s.grants?.expiresAt;
    if (at == null) return;
    const ms = Math.min(at - Date.now(), 2 ** 31 - 1);
    const expire = () => {
      this.fanout.reply(s.conn, this.fanout.encoder.error(ErrorCode.UNAUTHORIZED, 0, '', 'the connection token has expired'));
      this.fanout.end(s.conn, CloseCode.TOKEN_EXPIRED, 'token expired');
    };
    if (ms <= 0) expire();
    else s.expiryTimer = setTimeout(expire, ms);
  }

  /**
   * True when the connection's grants came from a token (at the upgrade, in
   * Hello, in the SSE URL or STOMP's CONNECT): a token Hello is then a
   * refresh. Anonymous grants are the authenticator's own object; without a
   * key, verify() returns a copy of them for every token.
   */
  holdsToken(s: Session): boolean {
    return s.grants !== null && s.grants !== this.auth.anonymous;
  }

  /**
   * A token arrived in Hello: verify it, then handle what waited for it
   * (`rest`, and what arrives meanwhile) with `resume`. On a connection that
   * holds a token this is a refresh, answered by a Welcome (accepted) or an
   * Error 21 with id 0 (refused: the connection keeps its old token, and
   * still ends at that one's exp); otherwise a refused token closes with 4001.
   */
  helloToken(s: Session, token: string, rest: ClientMessage[], resume: (s: Session, msgs: ClientMessage[]) => void): void {
    s.authWaiting = rest;
    const release = () => {
      const waiting = s.authWaiting ?? [];
      s.authWaiting = null;
      if (waiting.length) resume(s, waiting);
    };
    if (this.holdsToken(s)) {
      this.refresh(s, token, (err) => {
        const o = this.opts;
        if (err) this.fail(s, err);
        else this.fanout.reply(s.conn, this.fanout.encoder.welcome(o.name, o.heartbeatMs, o.maxPayloadBytes, o.rateTiers, s.conn.protocol));
        release();
      });
      return;
    }
    this.auth.verify(token).then(
      (grants) => {
        if (s.conn.closed) return;
        s.grants = grants;
        this.armExpiry(s);
        release();
      },
      (err: unknown) => {
        if (s.conn.closed) return;
        s.authWaiting = null;
        this.fail(s, err);
        this.fanout.end(s.conn, CloseCode.UNAUTHORIZED, 'unauthorized');
      },
    );
  }

  /**
   * A new token for an open connection (a Hello on WebSocket and SSE, a SEND
   * to /tickfan/token on STOMP). Verified, it replaces the grants and the
   * expiry, and what the new grants no longer cover ends with
   * PERMISSION_DENIED (token-refresh.ts); nothing else changes. Refused (bad
   * signature, expired, another subject), nothing changes: the old token
   * still ends the session at its exp. `done` is not called once the
   * connection is closed.
   */
  refresh(s: Session, token: string, done: (err: TickfanError | null) => void): void {
    this.auth.verify(token).then(
      (grants) => {
        if (s.conn.closed) return;
        const old = s.grants;
        if (old && this.holdsToken(s) && grants.subject !== old.subject) {
          return done(new TickfanError(ErrorCode.UNAUTHORIZED, `the new token is for "${grants.subject}", this connection's for "${old.subject}": a refresh keeps the subject; connect again to change it`));
        }
        s.grants = grants;
        this.armExpiry(s);
        endUngranted(s, grants, this.fanout, this.services, this.stats);
        done(null);
      },
      (err: unknown) => {
        if (s.conn.closed) return;
        done(err instanceof TickfanError ? err : new TickfanError(ErrorCode.UNAUTHORIZED, `the token is not valid (${String(err)})`, { cause: err }));
      },
    );
  }

  /** Answers an error on the connection: a TickfanError as is, anything else as INTERNAL (and logged). */
  fail(s: Session, err: unknown, id = 0, topic = ''): void {
    const enc = this.fanout.encoder;
    if (err instanceof TickfanError) {
      this.stats.error(err.errorCode);
      this.fanout.reply(s.conn, enc.error(err.errorCode, id, topic, err.message));
    } else {
      this.stats.error(ErrorCode.INTERNAL);
      this.opts.log('error', `connection ${s.conn.id}: ${(err as Error)?.stack ?? String(err)}`);
      this.fanout.reply(s.conn, enc.error(ErrorCode.INTERNAL, id, topic, 'internal error'));
    }
  }

  /** Counts an error answered some other way than an Error message (a Response, say). */
  count(err: TickfanError): void {
    this.stats.error(err.errorCode);
  }

  /** Token bucket: `maxPublishesPerSecond`, with a one-second burst. */
  takePublishToken(s: Session): boolean {
    const now = performance.now();
    const rate = this.opts.maxPublishesPerSecond;
    const r = rareOf(s);
    // A new connection starts with a full bucket (performance.now() counts from process start, not from 0 tokens).
    if (r.publishRefillAt === 0) r.publishTokens = rate;
    else r.publishTokens = Math.min(rate, r.publishTokens + ((now - r.publishRefillAt) / 1000) * rate);
    r.publishRefillAt = now;
    if (r.publishTokens < 1) return false;
    r.publishTokens--;
    return true;
  }

  /** A malformed frame: past `maxBadFrames` in a row the connection is closed. */
  badFrame(s: Session): void {
    if (++rareOf(s).badFrames >= this.opts.maxBadFrames) this.fanout.end(s.conn, CloseCode.TOO_MANY_BAD_FRAMES, 'too many malformed frames');
  }

  goodFrame(s: Session): void {
    if (s.rare) s.rare.badFrames = 0;
  }
}
