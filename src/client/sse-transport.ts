// SSE transport: GET /sse streams one event per server frame,
// `id: <session>.<seq>` and `data: [ ...messages as JSON ]`; commands go up as
// JSON POSTs to /sse/<session>, one at a time and in order. Reconnecting with
// the last event id lets the server resume the session. The JSON form of
// messages both ways is the protocol's (json-messages.ts; keyed topics'
// keyedSnapshot / keyedDelta events and table views: keyed-json.ts), so
// keyed subscriptions (`sub.table()`) work over SSE as over a WebSocket.

import { messageFromJson, messageToCommand, type AnyMessage, type ClientMessage } from '../protocol/index.js';
import { CloseCode } from '../protocol/index.js';
import { viewRequestsToJson } from '../protocol/keyed-json.js';
import { FetchEventSource, HttpStatusError, type EventSourceCtor, type EventSourceLike, type FetchLike } from './event-stream.js';
import type { SessionInfo, Transport, TransportHandlers } from './transport.js';

const num = (v: unknown): number => (typeof v === 'number' ? v : 0);
const text = (v: unknown): string => (typeof v === 'string' ? v : '');

// ---------------------------------------------------------------- transport

/** The EventSource to use: the given one, the runtime's, or a fetch-based reader. */
export function defaultEventSource(): EventSourceCtor | null {
  const g = globalThis as { EventSource?: EventSourceCtor; fetch?: unknown; ReadableStream?: unknown };
  if (g.EventSource) return g.EventSource;
  if (typeof g.fetch === 'function' && g.ReadableStream) return FetchEventSource;
  return null;
}

export class SseTransport implements Transport {
  readonly kind = 'sse';
  /** `<session>.<seq>` of the last event received: what a reconnect resumes from. */
  lastEventId: string;
  private readonly es: EventSourceLike;
  private readonly base: URL;
  private sid = '';
  private done = false;
  private outbox: Record<string, unknown>[] = [];
  private posting = false;
  private readonly fetch: FetchLike;

  constructor(
    url: string,
    opts: { token?: string; resumeFrom?: string; EventSource: EventSourceCtor; fetch: FetchLike },
    private readonly h: TransportHandlers,
  ) {
    this.base = new URL(url);
    this.fetch = opts.fetch;
    const u = new URL(url);
    if (opts.token) u.searchParams.set('token', opts.token);
    if (opts.resumeFrom) u.searchParams.set('lastEventId', opts.resumeFrom);
    this.lastEventId = opts.resumeFrom ?? '';
    const es = (this.es = new opts.EventSource(u.toString()));
    es.onmessage = (ev) => this.onEvent(ev.data, ev.lastEventId);
    es.onerror = (ev) => {
      if (this.sid) this.fail(1006, 'the event stream was interrupted');
      else void this.refused(ev, u.toString(), !!opts.token);
    };
  }

  /**
   * The stream did not open. HTTP 401 is a token the server refused, not a
   * network failure: it closes as 4001, which the connection treats as a
   * refused token (never retried with the same one). FetchEventSource says
   * the status; a browser's EventSource hides it, so with a token one GET
   * through fetch() asks (its stream, should it open, is dropped at once).
   */
  private async refused(ev: unknown, url: string, hadToken: boolean): Promise<void> {
    let status = ev instanceof HttpStatusError ? ev.status : 0;
    let body = ev instanceof HttpStatusError ? ev.body : '';
    if (!status && hadToken && !(this.es instanceof FetchEventSource)) {
      const ctrl = new AbortController();
      try {
        const res = await this.fetch(url, { headers: { accept: 'text/event-stream' }, signal: ctrl.signal, cache: 'no-store' });
        status = res.status;
        if (status === 401) body = await res.text().catch(() => '');
      } catch {
        // unreachable: a network failure after all
      } finally {
        ctrl.abort();
      }
    }
    if (status === 401) {
      let why = '';
      try {
        why = String((JSON.parse(body) as { error?: { message?: unknown } }).error?.message ?? '');
      } catch {
        // not the server's JSON
      }
      return this.fail(CloseCode.UNAUTHORIZED, `HTTP 401: the token was refused${why ? ` (${why})` : ''}`);
    }
    this.fail(1006, status ? `the event stream could not be opened: HTTP ${status}` : 'the event stream could not be opened');
  }

  /** The server's session id for this stream ('' until the stream opened). */
  get session(): string {
    return this.sid;
  }

  get ready(): boolean {
    return !this.done && this.sid !== '';
  }

  send(messages: readonly ClientMessage[]): void {
    if (this.done) return;
    for (const m of messages) {
      const c = messageToCommand(m);
      if (!c) continue;
      // Keyed topics: the subscription's table views and checksums (events then carry keyedSnapshot / keyedDelta).
      if (m.type === 'subscribe') {
        if (m.tables?.length) c.tables = viewRequestsToJson(m.tables);
        if (m.checksums) c.checksums = true;
      }
      this.outbox.push(c);
    }
    // Commands of one turn go in one POST; the next waits for it, so the server sees them in order.
    if (!this.posting) queueMicrotask(this.flush);
  }

  close(code: number, _reason: string): void {
    if (this.done) return;
    this.done = true;
    this.es.onmessage = this.es.onerror = null;
    this.es.close();
    // A client that is done says so, rather than leave its session to expire.
    if (code === 1000 && this.sid) this.fetch(this.commandUrl(), { method: 'DELETE', keepalive: true }).then((r) => r.body?.cancel(), () => {});
  }

  private commandUrl(): string {
    return `${this.base.origin}${this.base.pathname.replace(/\/$/, '')}/${encodeURIComponent(this.sid)}`;
  }

  private readonly flush = (): void => {
    if (this.posting || this.done || !this.sid || this.outbox.length === 0) return;
    const body = JSON.stringify(this.outbox);
    this.outbox = [];
    this.posting = true;
    this.fetch(this.commandUrl(), { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then(
      async (res) => {
        this.posting = false;
        const answer = await res.text().catch(() => '');
        if (this.done) return;
        if (res.ok) return this.flush();
        // 404/409: the session is gone or its stream is; anything else is as bad. Reconnect and resume.
        this.fail(1006, `POST ${this.base.pathname}/…: HTTP ${res.status} ${answer.slice(0, 200)}`);
      },
      (err: unknown) => {
        this.posting = false;
        this.fail(1006, `a command could not be sent: ${(err as Error)?.message ?? String(err)}`);
      },
    );
  };

  private onEvent(data: string, lastEventId: string): void {
    if (this.done) return;
    let list: unknown;
    try {
      list = JSON.parse(data);
    } catch (err) {
      this.h.error(err as Error);
      return;
    }
    if (!Array.isArray(list)) return;
    const messages: AnyMessage[] = [];
    let close: { code: number; reason: string } | null = null;
    for (const o of list as Record<string, unknown>[]) {
      if (o?.type === 'session') {
        // The first event of a stream: who we are, and what the server restored.
        this.sid = text(o.session);
        const info: SessionInfo = { resumed: o.resumed === true, subs: Array.isArray(o.subs) ? o.subs : [] };
        this.h.open(info);
        if (this.done) return;
      } else if (o?.type === 'close') {
        close = { code: num(o.code), reason: text(o.reason) };
      } else if (o && typeof o === 'object') {
        try {
          const m = messageFromJson(o);
          if (m) messages.push(m);
        } catch (err) {
          this.h.error(err as Error);
        }
      }
    }
    if (lastEventId) this.lastEventId = lastEventId;
    if (messages.length) {
      const seq = Number(lastEventId.slice(lastEventId.lastIndexOf('.') + 1));
      this.h.frame(seq, messages);
    }
    if (close && !this.done) this.fail(close.code, close.reason);
  }

  private fail(code: number, reason: string): void {
    if (this.done) return;
    this.done = true;
    this.es.onmessage = this.es.onerror = null;
    this.es.close();
    this.h.close(code, reason);
  }
}
