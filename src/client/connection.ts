// One logical connection to a server across transports and reconnects: the
// connection state machine (one setState), transport choice with the 'auto'
// WebSocket → SSE fallback, capped full-jitter backoff (reset only once the
// server has answered: WebSocket Welcome, SSE session), the close codes that
// end the client instead of reconnecting, frame numbering, the liveness
// watchdog, the bounded queue of messages waiting for a connection, and the
// connection's token (tokens.ts: refreshed in place, refusals bounded).

import { CloseCode, ErrorCode, MAX_PROTOCOL, Protocol2Reader, type ClientMessage } from '../protocol/index.js';
import { Backoff, DEFAULT_BACKOFF } from './backoff.js';
import { defaultWebSocket } from './endpoints.js';
import { ClientError, ClientErrorCode, terminalCloseError } from './errors.js';
import type { ClientOptions } from './options.js';
import { SseTransport, defaultEventSource } from './sse-transport.js';
import type { ClientStats } from './stats.js';
import { TokenKeeper, liftToken, type TokenEvent } from './tokens.js';
import { WsTransport, type Incoming, type SessionInfo, type Transport, type TransportHandlers, type TransportKind, type WebSocketCtor } from './transport.js';

/** The states of a client's connection; `closed` is final. */
export const ConnectionState = {
  CONNECTING: 'connecting',
  CONNECTED: 'connected',
  DISCONNECTED: 'disconnected',
  CLOSED: 'closed',
} as const;
export type ConnectionState = (typeof ConnectionState)[keyof typeof ConnectionState];

export interface StateChange {
  from: ConnectionState;
  to: ConnectionState;
}

/** What the connection tells its owner, the client. */
export interface ConnectionHooks {
  /** Every state change, once, as setState makes it. */
  state(change: StateChange): void;
  /** A transport opened: what to send before anything queued (resubscriptions). */
  opened(info: SessionInfo | null): ClientMessage[];
  /** A server message, in order (Welcome and Ping are handled here). */
  message(m: Incoming): void;
  /** A frame went missing: every topic's picture is suspect. */
  sequenceGap(): void;
  /** The transport closed (`Connection.willReconnect` says whether another one follows; `Connection.failure` why not, after a terminal close). */
  closed(code: number, reason: string): void;
  /** Once a second or so while the connection is alive. */
  tick(now: number): void;
  error(err: Error): void;
  /** The server took the connection's token (at connect, or a refresh). */
  token?(event: TokenEvent): void;
}

/** Messages kept at most while disconnected. */
export const MAX_QUEUED = 10_000;
/** The Ping sent after a Hello carrying a token: its Pong says the token passed (a refused one closes first). */
const TOKEN_PROBE = 0x746f6b656en;

const S = ConnectionState;

export class Connection {
  private current: ConnectionState = S.CONNECTING;
  private t: Transport | null = null;
  /** The transport that connected ('auto' keeps it), and the one tried last. */
  private mode: TransportKind | null = null;
  private tried: TransportKind | null = null;
  /** Last SSE event id seen: a new stream resumes the server session from it. */
  private sseResumeFrom = '';
  private readonly backoff: Backoff;
  private readonly queued: ClientMessage[] = [];
  /** Protocol 2's topic ids and field names (bound per connection, names kept per topic epoch). */
  readonly topics = new Protocol2Reader();
  private expectedSeq = 1;
  private lastFrameAt = 0;
  private heartbeatMs = 5000;
  /** The protocol asked for in Hello: the option (default 2), or 1 once a server said it speaks no more. */
  private protocol: number;
  /** The protocol the Hello on the current WebSocket asked for (0 before it went out). */
  private helloProtocol = 0;
  private everConnected = false;
  /** Why the server's close ended the client (a terminal close code), or null. */
  private stopped: ClientError | null = null;
  private fallbackTimer: ReturnType<typeof setTimeout> | null = null;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private watchdog: ReturnType<typeof setInterval> | null = null;
  /** The connection's token: given, or from the function, refreshed before exp. */
  private readonly tokens: TokenKeeper;
  private readonly endpoints: { ws: string; sse: string };

  constructor(
    endpoints: { ws: string; sse: string },
    private readonly options: ClientOptions,
    private readonly stats: ClientStats,
    private readonly hooks: ConnectionHooks,
  ) {
    this.backoff = new Backoff({ ...DEFAULT_BACKOFF, ...options.backoff });
    this.protocol = options.protocol ?? MAX_PROTOCOL;
    // A ?token= in the URL goes in Hello instead (options.token wins): a refused
    // token is then told by the server (Error 21, close 4001), not an upgrade
    // failure a browser cannot tell from a network one; and it can be refreshed.
    const ws = liftToken(endpoints.ws);
    const sse = liftToken(endpoints.sse);
    this.endpoints = { ws: ws.url, sse: sse.url };
    this.tokens = new TokenKeeper(options.token ?? (ws.token || sse.token || undefined), {
      refresh: (token) => this.sendIfConnected({ type: 'hello', protocol: 0, client: this.options.name ?? 'tickfan-js', token }),
      error: (err) => this.hooks.error(err),
      taken: (e) => this.hooks.token?.(e),
    });
  }

  get state(): ConnectionState {
    return this.current;
  }

  /** The transport in use (or being tried): 'ws' or 'sse'; null before the first attempt. */
  get kind(): TransportKind | null {
    return this.t?.kind ?? this.mode ?? this.tried;
  }

  /** The SSE session of the open stream ('' over WebSocket or while none is open). */
  get session(): string {
    return this.t instanceof SseTransport ? this.t.session : '';
  }

  /** True unless the client closed, was told not to reconnect, or the server closed with a terminal code. */
  get willReconnect(): boolean {
    return this.current !== S.CLOSED && this.options.reconnect !== false && this.stopped === null;
  }

  /** The ClientError of the terminal close that ended this connection (4001, 4010, 1008, 1002, 4002), or null. */
  get failure(): ClientError | null {
    return this.stopped;
  }

  start(): void {
    void this.open();
  }

  /** Sends now if connected; false otherwise (onOpen brings the server up to date). */
  sendIfConnected(m: ClientMessage): boolean {
    const t = this.t;
    if (!t || !t.ready || this.current !== S.CONNECTED) return false;
    t.send([m]);
    return true;
  }

  /** Sends now, or queues (bounded) until the connection is open. */
  send(m: ClientMessage): 'sent' | 'queued' | 'dropped' {
    if (this.sendIfConnected(m)) return 'sent';
    if (this.queued.length >= MAX_QUEUED) {
      this.hooks.error(new ClientError(ClientErrorCode.DISCONNECTED, `more than ${MAX_QUEUED} messages queued while disconnected; dropping`));
      return 'dropped';
    }
    this.queued.push(m);
    return 'queued';
  }

  close(): void {
    if (this.current === S.CLOSED) return;
    this.tokens.close();
    this.setState(S.CLOSED);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.watchdog) clearInterval(this.watchdog);
    if (this.fallbackTimer) clearTimeout(this.fallbackTimer);
    const t = this.t;
    this.t = null;
    t?.close(CloseCode.NORMAL, 'client closed');
  }

  /** The one place the state changes. */
  private setState(to: ConnectionState): void {
    const from = this.current;
    if (from === to) return;
    this.current = to;
    this.hooks.state({ from, to });
  }

  private async open(): Promise<void> {
    const want = this.options.transport ?? 'auto';
    // 'auto' tries WebSocket first; until one transport has connected it alternates.
    let kind: TransportKind = want !== 'auto' ? want : (this.mode ?? (this.tried === 'ws' ? 'sse' : 'ws'));
    let WsCtor: WebSocketCtor | null = null;
    if (kind === 'ws') {
      try {
        WsCtor = this.options.WebSocket ?? (await defaultWebSocket());
      } catch (err) {
        if (want === 'ws') {
          this.hooks.error(new ClientError(ClientErrorCode.NO_WEBSOCKET, 'no WebSocket implementation: pass options.WebSocket or install the `ws` package', { cause: err }));
          return;
        }
        kind = this.mode = 'sse'; // no WebSocket here at all: SSE for good
      }
    }
    const Es = kind === 'sse' ? (this.options.EventSource ?? defaultEventSource()) : null;
    if (kind === 'sse' && !Es) {
      this.hooks.error(new ClientError(ClientErrorCode.NO_WEBSOCKET, 'no EventSource (nor fetch with streams) for SSE: pass options.EventSource', {}));
      return;
    }
    if (this.current === S.CLOSED) return;
    this.setState(S.CONNECTING);
    let token = this.tokens.forConnect();
    if (token instanceof Promise) {
      token = await token;
      if ((this.current as ConnectionState) === S.CLOSED) return;
    }
    if (!token.ok) {
      if (token.stop) return this.stop(token.stop);
      this.hooks.error(token.error);
      this.scheduleReconnect(this.backoff.next());
      return;
    }
    this.tried = kind;
    const h: TransportHandlers = {
      open: (info) => this.onOpen(t, info),
      frame: (seq, messages) => this.onFrame(t, seq, messages),
      error: (err) => {
        if (t === this.t) this.hooks.error(err);
      },
      close: (code, reason) => this.onClose(t, code, reason),
    };
    let t: Transport;
    try {
      t =
        kind === 'ws'
          ? new WsTransport(this.endpoints.ws, WsCtor!, h, this.topics)
          : new SseTransport(
              this.endpoints.sse,
              { token: token.token, resumeFrom: this.sseResumeFrom, EventSource: Es!, fetch: this.options.fetch ?? ((u, i) => globalThis.fetch(u, i)) },
              h,
            );
    } catch (err) {
      // e.g. a WebSocket constructor that throws (blocked by policy): try again (the other transport, in 'auto').
      this.hooks.error(err as Error);
      this.scheduleReconnect(want === 'auto' && !this.mode ? 0 : this.backoff.next());
      return;
    }
    this.t = t;
    if (want === 'auto' && !this.mode && kind === 'ws') {
      // A proxy that blocks WebSocket may just never answer: don't wait for it.
      const ms = this.options.fallbackTimeoutMs ?? 3000;
      this.fallbackTimer = setTimeout(() => {
        this.fallbackTimer = null;
        if (this.t !== t || this.current === S.CONNECTED) return;
        t.close(CloseCode.GOING_AWAY, 'too slow to open');
        this.onClose(t, 1006, `the WebSocket did not open within ${ms} ms`);
      }, ms);
    }
  }

  private onOpen(t: Transport, info: SessionInfo | null): void {
    if (t !== this.t) return;
    if (this.fallbackTimer) clearTimeout(this.fallbackTimer);
    this.fallbackTimer = null;
    this.mode = t.kind;
    // A resumed SSE session continues its event numbering: take the first frame's number as it comes.
    this.expectedSeq = t.kind === 'ws' ? 1 : -1;
    this.lastFrameAt = Date.now();
    // Open is not yet accepted: a server that takes the socket and closes it
    // at once must see the backoff grow. A WebSocket resets it at the Welcome
    // answering Hello (onFrame); an SSE stream's session event comes after the
    // server checked the token and its limits, so it is the answer.
    if (t.kind === 'sse') {
      this.backoff.reset();
      // The stream opened: the server took its token (a refused one is an HTTP 401).
      this.tokens.accepted();
    }
    if (this.everConnected) this.stats.reconnects++;
    this.everConnected = true;
    const out: ClientMessage[] = [];
    if (t.kind === 'ws') {
      this.helloProtocol = this.protocol;
      out.push({ type: 'hello', protocol: this.protocol, client: this.options.name ?? 'tickfan-js', token: this.tokens.current });
      // What follows a token Hello waits for the token's verdict: this Pong means it passed.
      if (this.tokens.given) out.push({ type: 'ping', nonce: TOKEN_PROBE });
    }
    out.push(...this.hooks.opened(info), ...this.queued.splice(0));
    if (out.length) t.send(out);
    this.setState(S.CONNECTED);
    this.startWatchdog();
  }

  private onClose(t: Transport, code: number, reason: string): void {
    if (t !== this.t) return;
    this.t = null;
    if (t instanceof SseTransport) this.sseResumeFrom = t.lastEventId;
    if (this.fallbackTimer) clearTimeout(this.fallbackTimer);
    this.fallbackTimer = null;
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
    // A close (1002) after a Welcome that lowered the protocol is the old-server
    // fallback: never terminal, the next Hello asks for what the server speaks.
    const downgrading = t.kind === 'ws' && this.protocol < this.helloProtocol;
    this.helloProtocol = 0;
    let stop = this.current === S.CLOSED || downgrading ? null : terminalCloseError(code, reason, this.tokens.given);
    // Refused (4001, or an SSE stream's 401) or expired (4010): a token function is asked again, a few times in a row at most.
    if (stop && (code === CloseCode.UNAUTHORIZED || code === CloseCode.TOKEN_EXPIRED)) stop = this.tokens.closedForToken(stop);
    else this.tokens.disconnected();
    if (stop) this.stopped = stop;
    this.hooks.closed(code, reason);
    // Queued messages go out on the next connection, unless there will be none.
    if (!this.willReconnect) this.queued.length = 0;
    if (this.current === S.CLOSED) return;
    if (stop) {
      // Retrying cannot help: stop, and say what would.
      this.setState(S.CLOSED);
      this.hooks.error(stop);
      return;
    }
    this.setState(S.DISCONNECTED);
    if (this.options.reconnect === false) return;
    // A first WebSocket that failed in 'auto' mode: try SSE at once.
    const fallingBack = (this.options.transport ?? 'auto') === 'auto' && !this.mode && t.kind === 'ws';
    this.scheduleReconnect(fallingBack ? 0 : this.backoff.next());
  }

  /** Ends the client without a transport to close (the token function failed for good). */
  private stop(err: ClientError): void {
    this.stopped = err;
    this.queued.length = 0;
    this.hooks.closed(0, err.message);
    this.setState(S.CLOSED);
    this.hooks.error(err);
  }

  private scheduleReconnect(delay: number): void {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.open();
    }, delay);
  }

  private startWatchdog(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    const grace = this.options.heartbeatGraceMs ?? 5000;
    this.watchdog = setInterval(() => {
      const now = Date.now();
      if (now - this.lastFrameAt > this.heartbeatMs + grace) {
        // Silent past heartbeat + grace: the connection is half-open. Drop it and resume.
        const t = this.t;
        if (t) {
          t.close(CloseCode.GOING_AWAY, 'heartbeat missed');
          this.onClose(t, 4000, 'heartbeat missed');
        }
        return;
      }
      this.hooks.tick(now);
    }, Math.min(1000, grace));
    (this.watchdog as { unref?: () => void }).unref?.();
  }

  private onFrame(t: Transport, seq: number, messages: readonly Incoming[]): void {
    if (t !== this.t) return;
    this.lastFrameAt = Date.now();
    this.stats.frames++;
    if (seq === 0) {
      // Published to many connections at once: its number is implied (counted);
      // the next frame sent to this connection alone proves the count.
      if (this.expectedSeq >= 0) this.expectedSeq++;
    } else {
      if (this.expectedSeq >= 0 && seq !== this.expectedSeq) {
        this.stats.sequenceGaps++;
        this.hooks.sequenceGap();
      }
      this.expectedSeq = seq + 1;
    }
    try {
      for (const m of messages) {
        if (m.type === 'welcome') {
          this.heartbeatMs = m.heartbeatMs;
          // The Welcome answering Hello (protocol 2 sends one for Hello; protocol 1's
          // first is the answer): the server took this client, so the backoff starts over.
          if (t.kind === 'ws' && m.protocol === this.helloProtocol) this.backoff.reset();
          // A server from before protocol 2 refuses Hello(2) and closes: the next connection asks for what it speaks.
          if (m.maxProtocol < this.protocol) this.protocol = m.maxProtocol;
          // A Welcome after a refresh Hello is its answer: the new token is taken.
          if (this.tokens.refreshing) this.tokens.refreshAccepted();
        }
        else if (m.type === 'ping') this.send({ type: 'pong', nonce: m.nonce });
        else if (m.type === 'pong' && m.nonce === TOKEN_PROBE) this.tokens.accepted();
        else {
          // Error 21 with no id answers a refresh: refused; the old token holds until its exp.
          if (m.type === 'error' && m.code === ErrorCode.UNAUTHORIZED && m.id === 0) this.tokens.refreshRefused();
          this.hooks.message(m);
        }
      }
    } catch (err) {
      this.hooks.error(err as Error);
    }
  }
}
