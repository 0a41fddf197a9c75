// tickfan client SDK: one connection (WebSocket, or SSE where WebSocket is
// blocked), many subscriptions, every topic held at an exact (epoch, version).
// Gaps are healed with catch-ups; dropped connections reconnect with capped
// full-jitter backoff and resume.

import { CloseCode, Encoder, PROTOCOL_VERSION, TickfanError, TopicState, type AnyMessage, type Changes, type FieldValue, type ResumePoint } from '../protocol/index.js';
import { Backoff, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
import { Emitter } from './emitter.js';
import { ClientError, ClientErrorCode, serverError } from './errors.js';
import type { EventSourceCtor, FetchLike } from './event-stream.js';
import { TopicReplica } from './replica.js';
import { SseTransport, defaultEventSource } from './sse-transport.js';
import { Subscription, type SubscribeOptions, type SubscriptionHost, type Update } from './subscription.js';
import { WsTransport, type SessionInfo, type Transport, type TransportHandlers, type TransportKind, type WebSocketCtor } from './transport.js';

export type { WebSocketCtor, WebSocketLike, TransportKind } from './transport.js';

export interface ClientOptions {
  /** Connection token (sent in Hello over WebSocket, as `?token=` over SSE). */
  token?: string;
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
}

export type ConnectionState = 'connecting' | 'connected' | 'disconnected' | 'closed';

export interface ClientStats {
  /** Gaps detected (delta base ≠ held version, other epoch, heartbeat ahead, frame sequence jump). */
  gaps: number;
  /** Gaps closed: the topic was exact again after its catch-up. */
  gapsHealed: number;
  /**
   * Catch-ups received, by kind: answers to a gap, a resume or a resume after
   * pause, and those the server sends on its own after holding updates back
   * (slow lane, topic recreated): a snapshot of a topic already held, or a
   * delta spanning several versions on a full-rate topic.
   */
  catchUps: number;
  catchUpDeltas: number;
  catchUpSnapshots: number;
  /** Snapshots applied (first images and catch-ups). */
  snapshots: number;
  /** Deltas applied. */
  deltas: number;
  /** Deltas ignored because everything they carried was already held. */
  duplicates: number;
  reconnects: number;
  /** Frames whose sequence number was not the next one. */
  sequenceGaps: number;
  frames: number;
}

export interface ClientEvents {
  state: { from: ConnectionState; to: ConnectionState };
  error: Error;
  /** The connection closed; `code` is the WebSocket close code (4008: slow consumer). */
  disconnect: { code: number; reason: string };
}

export interface PublishAck {
  topic: string;
  epoch: number;
  version: number;
}

interface Pending {
  resolve: (v: PublishAck) => void;
  reject: (err: Error) => void;
  /** Written to a socket; false while it waits in the queue for a connection. */
  sent: boolean;
}

const MAX_QUEUED = 10_000;

let wsModule: Promise<WebSocketCtor> | undefined;
async function defaultWebSocket(): Promise<WebSocketCtor> {
  const g = (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
  if (g) return g;
  // Node 20 has no global WebSocket: use the `ws` package (a tickfan dependency).
  // A browser without one (or where it was removed) gets SSE instead.
  const node = (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node;
  if (!node) throw new Error('this runtime has no WebSocket');
  wsModule ??= import(/* @vite-ignore */ 'ws' as string).then((m: { default: WebSocketCtor }) => m.default);
  return wsModule;
}

/** The WebSocket and SSE endpoints of a server, from either URL. */
export function endpoints(url: string, sseUrl?: string): { ws: string; sse: string } {
  const u = new URL(url);
  const secure = u.protocol === 'wss:' || u.protocol === 'https:';
  const ws = new URL(u);
  ws.protocol = secure ? 'wss:' : 'ws:';
  const sse = new URL(u);
  sse.protocol = secure ? 'https:' : 'http:';
  if (u.protocol.startsWith('http')) ws.pathname = ws.pathname.replace(/\/sse\/?$/, '/ws');
  else sse.pathname = /\/ws\/?$/.test(sse.pathname) ? sse.pathname.replace(/\/ws\/?$/, '/sse') : sse.pathname.replace(/\/?$/, '/sse');
  return { ws: ws.toString(), sse: sseUrl ?? sse.toString() };
}

/**
 * Connects to a tickfan server.
 * @example
 * const client = connect('ws://127.0.0.1:8080/ws');
 * const sub = client.subscribe('px.AAPL', { maxRate: 4 });
 * sub.on('update', (u) => console.log(u.topic, u.version, u.state));
 */
export function connect(url: string, options: ClientOptions = {}): TickfanClient {
  return new TickfanClient(url, options);
}

export class TickfanClient extends Emitter<ClientEvents> implements SubscriptionHost {
  private conn: Transport | null = null;
  /** The transport that connected ('auto' keeps it), and the one tried last. */
  private mode: TransportKind | null = null;
  private tried: TransportKind | null = null;
  private readonly endpoints: { ws: string; sse: string };
  /** Last SSE event id seen: a new stream resumes the server session from it. */
  private sseResumeFrom = '';
  private fallbackTimer: ReturnType<typeof setTimeout> | null = null;
  private _state: ConnectionState = 'connecting';
  private readonly enc = new Encoder(1024);
  private readonly subs = new Map<number, Subscription>();
  /** Subscriptions by exact topic, and pattern subscriptions, for dispatch. */
  private readonly exactSubs = new Map<string, Set<Subscription>>();
  private readonly patternSubs = new Set<Subscription>();
  private readonly replicas = new Map<string, TopicReplica>();
  private readonly pending = new Map<number, Pending>();
  private readonly queued: Uint8Array[] = [];
  private nextId = 1;
  private expectedSeq = 1;
  private readonly backoff: Backoff;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private watchdog: ReturnType<typeof setInterval> | null = null;
  private lastFrameAt = 0;
  private heartbeatMs = 5000;
  private everConnected = false;
  readonly stats: ClientStats = {
    gaps: 0,
    gapsHealed: 0,
    catchUps: 0,
    catchUpDeltas: 0,
    catchUpSnapshots: 0,
    snapshots: 0,
    deltas: 0,
    duplicates: 0,
    reconnects: 0,
    sequenceGaps: 0,
    frames: 0,
  };

  constructor(
    readonly url: string,
    private readonly options: ClientOptions = {},
  ) {
    super();
    if (typeof url !== 'string' || !/^(wss?|https?):\/\//.test(url)) {
      throw new ClientError(ClientErrorCode.BAD_OPTION, `url must start with ws://, wss://, http:// or https:// (got ${JSON.stringify(url)})`);
    }
    const t = options.transport;
    if (t !== undefined && t !== 'ws' && t !== 'sse' && t !== 'auto') {
      throw new ClientError(ClientErrorCode.BAD_OPTION, `options.transport must be 'ws', 'sse' or 'auto' (got ${JSON.stringify(t)})`);
    }
    this.endpoints = endpoints(url, options.sseUrl);
    this.backoff = new Backoff({ ...DEFAULT_BACKOFF, ...options.backoff });
    void this.open();
  }

  get state(): ConnectionState {
    return this._state;
  }

  /** The transport in use (or being tried): 'ws' or 'sse'; null before the first attempt. */
  get transport(): TransportKind | null {
    return this.conn?.kind ?? this.mode ?? this.tried;
  }

  private setState(to: ConnectionState): void {
    const from = this._state;
    if (from === to) return;
    this._state = to;
    this.emit('state', { from, to });
  }

  // ------------------------------------------------------------ public API

  /** Subscribes to a topic or a pattern (`px.*`, `px.>`, `>`). */
  subscribe(topicOrPattern: string, options: SubscribeOptions = {}): Subscription {
    if (this._state === 'closed') throw new ClientError(ClientErrorCode.CLOSED, 'the client is closed');
    const isPattern = topicOrPattern.split('.').some((l) => l === '*' || l === '>');
    const sub = new Subscription(this, this.nextId++, topicOrPattern, isPattern, options);
    this.subs.set(sub.id, sub);
    if (isPattern) this.patternSubs.add(sub);
    else {
      let set = this.exactSubs.get(topicOrPattern);
      if (!set) this.exactSubs.set(topicOrPattern, (set = new Set()));
      set.add(sub);
    }
    // While disconnected, onOpen subscribes it with everything else.
    this.sendIfConnected(this.subscribeMessage(sub));
    return sub;
  }

  /** Publishes fields (null deletes); resolves with the version the server assigned. */
  publish(topic: string, fields: Record<string, FieldValue | null>): Promise<PublishAck> {
    if (this._state === 'closed') return Promise.reject(new ClientError(ClientErrorCode.CLOSED, 'the client is closed'));
    if (this._state === 'disconnected' && this.options.reconnect === false) {
      return Promise.reject(new ClientError(ClientErrorCode.DISCONNECTED, 'the connection is closed and reconnect is off'));
    }
    const id = this.nextId++;
    let msg: Uint8Array;
    try {
      msg = this.enc.publish(id, topic, Object.entries(fields));
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<PublishAck>((resolve, reject) => {
      const p: Pending = { resolve, reject, sent: false };
      this.pending.set(id, p);
      const how = this.send(msg);
      if (how === 'dropped') {
        this.pending.delete(id);
        reject(new ClientError(ClientErrorCode.DISCONNECTED, `more than ${MAX_QUEUED} messages queued while disconnected; not sent`));
      } else p.sent = how === 'sent';
    });
  }

  /** Held state of any topic this client receives. */
  stateOf(topic: string): { epoch: number; version: number; state: Record<string, FieldValue> } | undefined {
    const r = this.replicas.get(topic);
    return r?.held ? { epoch: r.epoch, version: r.version, state: r.view(null) } : undefined;
  }

  close(): void {
    if (this._state === 'closed') return;
    this.setState('closed');
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.watchdog) clearInterval(this.watchdog);
    if (this.fallbackTimer) clearTimeout(this.fallbackTimer);
    this.failPending(new ClientError(ClientErrorCode.CLOSED, 'the client was closed'));
    const conn = this.conn;
    this.conn = null;
    conn?.close(CloseCode.NORMAL, 'client closed');
  }

  // ------------------------------------------------------------ SubscriptionHost

  replica(topic: string): TopicReplica | undefined {
    const r = this.replicas.get(topic);
    return r?.held ? r : undefined;
  }

  sendPause(sub: Subscription, paused: boolean): void {
    if (!paused) for (const t of sub.topics) this.replicaFor(t).expectCatchUp = true;
    // While disconnected, onOpen re-sends the pause state with the subscription.
    this.sendIfConnected(paused ? this.enc.pause(sub.id) : this.enc.resume(sub.id));
  }

  unsubscribe(sub: Subscription): void {
    this.forget(sub);
    this.sendIfConnected(this.enc.unsubscribe(sub.id));
  }

  private forget(sub: Subscription): void {
    this.subs.delete(sub.id);
    this.patternSubs.delete(sub);
    const set = this.exactSubs.get(sub.pattern);
    if (set?.delete(sub) && set.size === 0) this.exactSubs.delete(sub.pattern);
    for (const t of sub.topics) if (!this.subscribersOf(t).next().value) this.replicas.delete(t);
  }

  /** True when the server sends `topic` at full rate (some unpaused subscription has no maxRate). */
  private fullRate(topic: string): boolean {
    for (const sub of this.subscribersOf(topic)) if (sub.active && !sub.paused && !((sub.options.maxRate ?? 0) > 0)) return true;
    return false;
  }

  /** True when some subscription still covers `topic`. */
  private covered(topic: string): boolean {
    return !this.subscribersOf(topic).next().done;
  }

  /** Active subscriptions covering `topic`. */
  private *subscribersOf(topic: string): Generator<Subscription> {
    const exact = this.exactSubs.get(topic);
    if (exact) yield* exact;
    for (const sub of this.patternSubs) if (matchesPattern(sub.pattern, topic)) yield sub;
  }

  // ------------------------------------------------------------ connection

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
          this.emit('error', new ClientError(ClientErrorCode.NO_WEBSOCKET, 'no WebSocket implementation: pass options.WebSocket or install the `ws` package', { cause: err }));
          return;
        }
        kind = this.mode = 'sse'; // no WebSocket here at all: SSE for good
      }
    }
    const Es = kind === 'sse' ? (this.options.EventSource ?? defaultEventSource()) : null;
    if (kind === 'sse' && !Es) {
      this.emit('error', new ClientError(ClientErrorCode.NO_WEBSOCKET, 'no EventSource (nor fetch with streams) for SSE: pass options.EventSource', {}));
      return;
    }
    if (this._state === 'closed') return;
    this.setState('connecting');
    this.tried = kind;
    const h: TransportHandlers = {
      open: (info) => this.onOpen(t, info),
      frame: (seq, messages) => this.onFrame(t, seq, messages),
      error: (err) => {
        if (t === this.conn) this.emit('error', err);
      },
      close: (code, reason) => this.onClose(t, code, reason),
    };
    let t: Transport;
    try {
      t =
        kind === 'ws'
          ? new WsTransport(this.endpoints.ws, WsCtor!, h)
          : new SseTransport(
              this.endpoints.sse,
              { token: this.options.token, resumeFrom: this.sseResumeFrom, EventSource: Es!, fetch: this.options.fetch ?? ((u, i) => globalThis.fetch(u, i)) },
              h,
            );
    } catch (err) {
      // e.g. a WebSocket constructor that throws (blocked by policy): try again (the other transport, in 'auto').
      this.emit('error', err as Error);
      this.scheduleReconnect(want === 'auto' && !this.mode ? 0 : this.backoff.next());
      return;
    }
    this.conn = t;
    if (want === 'auto' && !this.mode && kind === 'ws') {
      // A proxy that blocks WebSocket may just never answer: don't wait for it.
      const ms = this.options.fallbackTimeoutMs ?? 3000;
      this.fallbackTimer = setTimeout(() => {
        this.fallbackTimer = null;
        if (this.conn !== t || this._state === 'connected') return;
        t.close(CloseCode.GOING_AWAY, 'too slow to open');
        this.onClose(t, 1006, `the WebSocket did not open within ${ms} ms`);
      }, ms);
    }
  }

  private onOpen(t: Transport, info: SessionInfo | null): void {
    if (t !== this.conn) return;
    if (this.fallbackTimer) clearTimeout(this.fallbackTimer);
    this.fallbackTimer = null;
    this.mode = t.kind;
    // A resumed SSE session continues its event numbering: take the first frame's number as it comes.
    this.expectedSeq = t.kind === 'ws' ? 1 : -1;
    this.lastFrameAt = Date.now();
    this.backoff.reset();
    if (this.everConnected) this.stats.reconnects++;
    this.everConnected = true;
    const out: Uint8Array[] = [];
    if (t.kind === 'ws') out.push(this.enc.hello(PROTOCOL_VERSION, this.options.name ?? 'tickfan-js', this.options.token ?? ''));
    // The server restored these (SSE resume): their catch-ups follow in this event.
    const restored = info?.resumed ? new Map(info.subs.map((s) => [s.id, s.paused])) : null;
    // Resubscribe everything else, each with the exact points it holds.
    for (const sub of this.subs.values()) {
      const paused = restored?.get(sub.id);
      if (paused === undefined) {
        out.push(this.subscribeMessage(sub));
        if (sub.paused) out.push(this.enc.pause(sub.id));
        continue;
      }
      restored!.delete(sub.id);
      for (const topic of sub.isPattern ? sub.topics : [sub.pattern]) {
        const r = this.replicas.get(topic);
        if (r?.held) r.expectCatchUp = true;
      }
      if (paused !== sub.paused) out.push(sub.paused ? this.enc.pause(sub.id) : this.enc.resume(sub.id));
    }
    // Unsubscribed while the stream was down.
    if (restored) for (const id of restored.keys()) out.push(this.enc.unsubscribe(id));
    out.push(...this.queued.splice(0));
    if (out.length) t.send(out);
    for (const p of this.pending.values()) p.sent = true;
    this.setState('connected');
    this.startWatchdog();
  }

  private onClose(t: Transport, code: number, reason: string): void {
    if (t !== this.conn) return;
    this.conn = null;
    if (t instanceof SseTransport) this.sseResumeFrom = t.lastEventId;
    if (this.fallbackTimer) clearTimeout(this.fallbackTimer);
    this.fallbackTimer = null;
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
    this.emit('disconnect', { code, reason });
    // A publish sent on this connection may or may not have been applied: its
    // caller must decide. One still queued was not sent: it goes out on the
    // next connection, unless there will be none.
    const reconnecting = this._state !== 'closed' && this.options.reconnect !== false;
    this.failPending(new ClientError(ClientErrorCode.DISCONNECTED, `connection closed (${code}${reason ? ` ${reason}` : ''}) before the server acknowledged`), reconnecting);
    if (!reconnecting) this.queued.length = 0;
    if (this._state === 'closed') return;
    this.setState('disconnected');
    if (this.options.reconnect === false) return;
    // A first WebSocket that failed in 'auto' mode: try SSE at once.
    const fallingBack = (this.options.transport ?? 'auto') === 'auto' && !this.mode && t.kind === 'ws';
    this.scheduleReconnect(fallingBack ? 0 : this.backoff.next());
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
    const catchUpTimeout = this.options.catchUpTimeoutMs ?? 5000;
    this.watchdog = setInterval(() => {
      const now = Date.now();
      if (now - this.lastFrameAt > this.heartbeatMs + grace) {
        // Silent past heartbeat + grace: the connection is half-open. Drop it and resume.
        const conn = this.conn;
        if (conn) {
          conn.close(CloseCode.GOING_AWAY, 'heartbeat missed');
          this.onClose(conn, 4000, 'heartbeat missed');
        }
        return;
      }
      for (const r of this.replicas.values()) {
        if (r.healingSince && now - r.healingSince > catchUpTimeout) this.requestCatchUp(r);
      }
    }, Math.min(1000, grace));
    (this.watchdog as { unref?: () => void }).unref?.();
  }

  /** Rejects pending publishes (only those already sent when `onlySent`). */
  private failPending(err: Error, onlySent = false): void {
    for (const [id, p] of this.pending) {
      if (onlySent && !p.sent) continue;
      this.pending.delete(id);
      p.reject(err);
    }
  }

  private sendIfConnected(msg: Uint8Array): boolean {
    const conn = this.conn;
    if (!conn || !conn.ready || this._state !== 'connected') return false;
    conn.send([msg]);
    return true;
  }

  /** Sends now, or queues (bounded) until the connection is open. */
  private send(msg: Uint8Array): 'sent' | 'queued' | 'dropped' {
    if (this.sendIfConnected(msg)) return 'sent';
    if (this.queued.length >= MAX_QUEUED) {
      this.emit('error', new ClientError(ClientErrorCode.DISCONNECTED, `more than ${MAX_QUEUED} messages queued while disconnected; dropping`));
      return 'dropped';
    }
    this.queued.push(msg);
    return 'queued';
  }

  private subscribeMessage(sub: Subscription): Uint8Array {
    const resume: ResumePoint[] = [];
    const topics = sub.isPattern ? sub.topics : [sub.pattern];
    for (const t of topics) {
      const r = this.replicas.get(t);
      if (r?.held) {
        resume.push({ topic: t, epoch: r.epoch, version: r.version });
        r.expectCatchUp = true;
      }
    }
    return this.enc.subscribe(sub.id, [sub.pattern], sub.options.maxRate ?? 0, sub.options.fields ?? [], resume);
  }

  // ------------------------------------------------------------ incoming

  private onFrame(t: Transport, seq: number, messages: readonly AnyMessage[]): void {
    if (t !== this.conn) return;
    this.lastFrameAt = Date.now();
    this.stats.frames++;
    if (seq === 0) {
      // Published to many connections at once: its number is implied (counted);
      // the next frame sent to this connection alone proves the count.
      if (this.expectedSeq >= 0) this.expectedSeq++;
    } else {
      if (this.expectedSeq >= 0 && seq !== this.expectedSeq) {
        // A frame went missing: every topic's picture is suspect. Ask for all.
        this.stats.sequenceGaps++;
        for (const r of this.replicas.values()) if (r.held) this.gap(r);
      }
      this.expectedSeq = seq + 1;
    }
    try {
      for (const m of messages) this.onMessage(m);
    } catch (err) {
      this.emit('error', err as Error);
    }
  }

  private onMessage(m: AnyMessage): void {
    switch (m.type) {
      case 'welcome':
        this.heartbeatMs = m.heartbeatMs;
        return;
      case 'snapshot': {
        // Still in flight after an unsubscribe: nobody holds this topic any more.
        if (!this.covered(m.topic)) return;
        const r = this.replicaFor(m.topic);
        const wasHeld = r.held;
        if (r.healingSince) this.stats.gapsHealed++;
        r.snapshot(m.epoch, m.version, m.fields);
        this.stats.snapshots++;
        if (r.expectCatchUp || wasHeld) {
          r.expectCatchUp = false;
          this.stats.catchUps++;
          this.stats.catchUpSnapshots++;
        }
        const changes: Record<string, FieldValue | null> = Object.fromEntries(m.fields);
        this.dispatch(r, { topic: m.topic, epoch: m.epoch, version: m.version, snapshot: true, updates: 0, ts: m.ts }, changes);
        return;
      }
      case 'delta': {
        if (!this.covered(m.topic)) return;
        const r = this.replicaFor(m.topic);
        const healing = r.healingSince !== 0;
        const result = r.delta(m.epoch, m.base, m.version, m.changes);
        if (result === 'duplicate') {
          this.stats.duplicates++;
          return;
        }
        if (result === 'gap') {
          if (!r.healingSince) this.gap(r);
          return;
        }
        this.stats.deltas++;
        if (healing) this.stats.gapsHealed++;
        // A full-rate topic gets one delta per version; a longer one is a catch-up.
        if (r.expectCatchUp || (m.version - m.base > 1 && this.fullRate(m.topic))) {
          r.expectCatchUp = false;
          this.stats.catchUps++;
          this.stats.catchUpDeltas++;
        }
        this.dispatch(r, { topic: m.topic, epoch: m.epoch, version: m.version, snapshot: false, updates: m.updates, ts: m.ts }, changesObject(m.changes));
        return;
      }
      case 'topicStatus': {
        const r = this.replicas.get(m.topic);
        if (r) r.stale = m.state === TopicState.STALE;
        for (const sub of this.subscribersOf(m.topic)) {
          sub.status({ topic: m.topic, status: m.state === TopicState.STALE ? 'stale' : 'ok' });
        }
        return;
      }
      case 'heartbeat':
        for (const v of m.versions) {
          const r = this.replicas.get(v.topic);
          // The server sent a later version than we hold: the last update(s) were lost.
          if (r?.held && !r.healingSince && (v.epoch !== r.epoch || v.version > r.version)) this.gap(r);
        }
        return;
      case 'ack': {
        const sub = this.subs.get(m.id);
        if (sub) {
          // Catch-ups for this subscription came before its ack; a topic that got
          // none was already current.
          for (const t of sub.topics) {
            const r = this.replicas.get(t);
            if (r && !r.healingSince) r.expectCatchUp = false;
          }
          // A pattern is ready once its current topics' images arrived (they
          // precede the ack); a single topic once its first image is held.
          if (sub.isPattern || this.replica(sub.pattern)) sub.markReady();
          return;
        }
        const p = this.pending.get(m.id);
        if (p) {
          this.pending.delete(m.id);
          p.resolve({ topic: m.topic, epoch: m.epoch, version: m.version });
        }
        return;
      }
      case 'error': {
        const err = serverError(m.code, m.message);
        const p = this.pending.get(m.id);
        if (p) {
          this.pending.delete(m.id);
          p.reject(err);
          return;
        }
        const sub = this.subs.get(m.id);
        if (sub) {
          this.forget(sub);
          sub.fail(err);
          return;
        }
        this.emit('error', err);
        return;
      }
      case 'ping':
        this.send(this.enc.pong(m.nonce));
        return;
      default:
        return;
    }
  }

  private replicaFor(topic: string): TopicReplica {
    let r = this.replicas.get(topic);
    if (!r) this.replicas.set(topic, (r = new TopicReplica(topic)));
    return r;
  }

  private gap(r: TopicReplica): void {
    this.stats.gaps++;
    this.requestCatchUp(r);
  }

  private requestCatchUp(r: TopicReplica): void {
    r.healingSince = Date.now();
    r.expectCatchUp = true;
    // (epoch 0, version 0) holds nothing: the server answers with a snapshot.
    this.send(this.enc.catchUp(r.topic, r.held ? r.epoch : 0, r.held ? r.version : 0));
  }

  private dispatch(r: TopicReplica, head: Omit<Update, 'changes' | 'state'>, changes: Record<string, FieldValue | null>): void {
    for (const sub of this.subscribersOf(r.topic)) {
      if (!sub.active) continue;
      const fields = sub.fieldSet;
      let ch = changes;
      if (fields) {
        ch = Object.create(null);
        let any = false;
        for (const k in changes) if (fields.has(k)) (ch[k] = changes[k]!), (any = true);
        if (!any && !head.snapshot) {
          sub.topics.add(r.topic);
          continue;
        }
      }
      let state: Record<string, FieldValue> | undefined;
      sub.deliver({
        ...head,
        changes: ch,
        get state() {
          return (state ??= r.view(fields));
        },
      });
    }
  }
}

function changesObject(c: Changes): Record<string, FieldValue | null> {
  const out: Record<string, FieldValue | null> = Object.create(null);
  for (const [k, v] of c) out[k] = v;
  return out;
}

function matchesPattern(pattern: string, topic: string): boolean {
  const p = pattern.split('.');
  const t = topic.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return t.length > i;
    if (i >= t.length || (p[i] !== '*' && p[i] !== t[i])) return false;
  }
  return p.length === t.length;
}

export { TickfanError };
