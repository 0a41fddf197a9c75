// Server-Sent Events transport for browsers that cannot open a WebSocket
// (GET /sse). An SSE stream is a Conn in the same Fanout as the WebSockets, so
// it shares their sequence counter, slow lane and hard cap, catch-ups and
// heartbeats; only the bytes differ: each frame is one event,
// `id: <session>.<seq>` + `data: [ ...messages as JSON ]`. A reconnect with
// Last-Event-ID resumes the session: a bounded journal says which (epoch,
// version) of each topic that event left the client holding, and those become
// the resume points of its subscriptions (merged delta or snapshot, exactly as
// a WebSocket resume). Control requests (subscribe, catch-up, pause, publish…)
// are JSON commands POSTed to /sse/<session>; their answers arrive on the stream.

import { randomBytes } from 'node:crypto';
import { BroadcastChannel, isMainThread } from 'node:worker_threads';
import {
  CloseCode,
  ErrorCode,
  TickfanError,
  commandToMessage,
  decodeMessage,
  messageToJson,
  type ClientMessage,
  type ResumePoint,
} from '../protocol/index.js';
import type { AppHooks, NodeContext } from './app.js';
import type { Grants } from './auth.js';
import { Conn } from './fanout.js';
import { errorBody, readBody } from './http.js';
import { SendStatus, type Sink } from './sink.js';
import type { UWS } from './uws.js';

/** A stream whose session is not resumed within this long is forgotten. */
export const SSE_SESSION_TTL_MS = 30_000;
/** Sessions without a stream kept at most (the oldest go first). */
export const SSE_MAX_DETACHED_SESSIONS = 1_000;
/** Journal entries (one per topic update sent) kept per session. */
export const SSE_JOURNAL_ENTRIES = 2_048;
/** An idle stream gets a comment line this often (uWebSockets.js drops HTTP responses idle for 10 s). */
const KEEPALIVE_MS = 2_500;
/** Reconnect delay suggested to plain EventSource clients. */
const RETRY_MS = 1_000;
/** Topics or patterns accepted in `?topics=`. */
const MAX_URL_TOPICS = 1_000;
/** A POST body (commands) must arrive within this long. */
const BODY_TIMEOUT_MS = 10_000;
/** SSE connection ids start here, so that logs tell them from WebSockets. */
const SSE_CONN_ID_BASE = 1_000_000_000;

// ---------------------------------------------------------------- JSON form


/** One server message, encoded for SSE once however many streams carry it. */
interface JsonMessage {
  json: string;
  /** For snapshots and deltas: what the client holds after applying it (version -1 otherwise). */
  topic: string;
  epoch: number;
  version: number;
}

// Keyed by the shared FlatBuffers buffer: fan-out hands the same buffer to
// every subscriber of a channel, so each update is turned into JSON once.
const jsonCache = new WeakMap<Uint8Array, JsonMessage>();

function jsonOf(buf: Uint8Array): JsonMessage {
  let e = jsonCache.get(buf);
  if (e) return e;
  // Fan-out's messages are size-prefixed (ready to be framed): skip the u32 prefix.
  const m = decodeMessage(buf.subarray(4));
  const held = m.type === 'snapshot' || m.type === 'delta';
  e = { json: JSON.stringify(messageToJson(m)), topic: held ? m.topic : '', epoch: held ? m.epoch : 0, version: held ? m.version : -1 };
  jsonCache.set(buf, e);
  return e;
}

// ---------------------------------------------------------------- journal

/**
 * What each event of a session carried: entries (seq, topic, epoch, version)
 * in event order, the oldest folded into a base map once there are more than
 * `cap`. `pointsAt(seq)` answers "which (epoch, version) of each topic did the
 * client hold after event seq" while the entries reach back that far.
 */
export class SseJournal {
  private base = new Map<string, ResumePoint>();
  /** `base` holds every entry up to this sequence number. */
  private baseSeq = 0;
  private seqs: number[] = [];
  private topics: string[] = [];
  private epochs: number[] = [];
  private versions: number[] = [];
  private start = 0;

  constructor(private readonly cap: number = SSE_JOURNAL_ENTRIES) {}

  get size(): number {
    return this.seqs.length - this.start;
  }

  record(seq: number, topic: string, epoch: number, version: number): void {
    this.seqs.push(seq);
    this.topics.push(topic);
    this.epochs.push(epoch);
    this.versions.push(version);
    if (this.size > this.cap) {
      const i = this.start++;
      this.base.set(this.topics[i]!, { topic: this.topics[i]!, epoch: this.epochs[i]!, version: this.versions[i]! });
      this.baseSeq = this.seqs[i]!;
      if (this.start >= this.cap) {
        // Amortised compaction: drop the folded prefix in one go.
        for (const a of [this.seqs, this.topics, this.epochs, this.versions] as unknown[][]) a.splice(0, this.start);
        this.start = 0;
      }
    }
  }

  /** Resume points after event `seq`, or null when the journal no longer reaches back that far (or `seq` was never sent). */
  pointsAt(seq: number, lastSeq: number): Map<string, ResumePoint> | null {
    if (seq < this.baseSeq || seq > lastSeq) return null;
    const out = new Map(this.base);
    for (let i = this.start; i < this.seqs.length && this.seqs[i]! <= seq; i++) {
      out.set(this.topics[i]!, { topic: this.topics[i]!, epoch: this.epochs[i]!, version: this.versions[i]! });
    }
    return out;
  }
}

// ---------------------------------------------------------------- sessions

/** A subscription of a session, kept while no stream is attached so that a resume restores it. */
interface SubDef {
  id: number;
  topics: string[];
  maxRate: number;
  fields: string[];
  paused: boolean;
}

class SseSession {
  conn: Conn | null = null;
  sink: SseSink | null = null;
  subs: SubDef[] = [];
  /** Sequence number of the last event sent (streams of one session continue it). */
  seq = 0;
  detachedAt = 0;
  readonly journal = new SseJournal();
  constructor(readonly id: string) {}
}

/**
 * Writes a connection's frames as SSE events on a uWebSockets.js response.
 * uWS buffers what the kernel does not take and exposes no byte count for
 * HTTP responses, so once a write reports backpressure the sink keeps further
 * events in its own queue until `onWritable`: `buffered()` is then that queue
 * plus (at most) the chunk uWS holds, and the queue is capped like a
 * WebSocket's backpressure (past `hardCap`, send() reports DROPPED and fan-out
 * ends the stream as a slow consumer).
 */
export class SseSink implements Sink {
  ended = false;
  lastWriteAt = Date.now();
  private queue: string[] = [];
  private queuedBytes = 0;
  private blocked = false;
  /** Upper bound of the bytes uWS holds after a write that reported backpressure. */
  private inUws = 0;
  /** The session message, sent at the head of the first event. */
  private intro: string | null;

  constructor(
    private readonly res: UWS.HttpResponse,
    private readonly session: SseSession,
    private readonly hardCap: number,
    intro: Record<string, unknown>,
    private readonly events: { drained(): void; ended(): void; failed(err: unknown): void },
  ) {
    this.intro = JSON.stringify(intro);
    res.onWritable(() => this.writable());
  }

  send(seq: number, messages: readonly Uint8Array[]): SendStatus {
    if (this.ended) return SendStatus.SENT;
    const parts: string[] = [];
    if (this.intro !== null) parts.push(this.intro);
    this.intro = null;
    const journal = this.session.journal;
    for (const buf of messages) {
      let m: JsonMessage;
      try {
        m = jsonOf(buf);
      } catch (err) {
        // Never expected (fan-out encoded it). Skipping it is safe: the client
        // sees the version jump as a gap and asks for a catch-up.
        this.events.failed(err);
        continue;
      }
      parts.push(m.json);
      if (m.version >= 0) journal.record(seq, m.topic, m.epoch, m.version);
    }
    this.session.seq = seq;
    return this.write(`id: ${this.session.id}.${seq}\ndata: [${parts.join(',')}]\n\n`);
  }

  buffered(): number {
    return this.blocked ? this.inUws + this.queuedBytes : 0;
  }

  /** A comment line: keeps proxies and uWS' HTTP timeout from closing an idle stream. */
  keepAlive(now: number): void {
    if (this.ended || this.blocked || now - this.lastWriteAt < KEEPALIVE_MS) return;
    this.write(':\n\n');
  }

  private write(chunk: string): SendStatus {
    const bytes = Buffer.byteLength(chunk);
    if (this.blocked) {
      if (this.inUws + this.queuedBytes + bytes > this.hardCap) return SendStatus.DROPPED;
      this.queue.push(chunk);
      this.queuedBytes += bytes;
      return SendStatus.BUFFERED;
    }
    let ok = false;
    this.res.cork(() => (ok = this.res.write(chunk)));
    this.lastWriteAt = Date.now();
    if (ok) return SendStatus.SENT;
    this.blocked = true;
    this.inUws = bytes;
    return SendStatus.BUFFERED;
  }

  /**
   * The socket drained a little. uWS calls this instead of draining its own
   * buffer, and any write drains it first: a comment line (never an empty
   * write, which would end the chunked body) flushes what uWS holds; once that
   * went through, our queue follows as one chunk.
   */
  private writable(): boolean {
    if (this.ended || !this.blocked) return true;
    if (!this.res.write(':\n')) {
      this.inUws += 2;
      return false;
    }
    this.lastWriteAt = Date.now();
    if (this.queue.length) {
      const chunk = this.queue.join('');
      this.queue = [];
      const bytes = this.queuedBytes;
      this.queuedBytes = 0;
      if (!this.res.write(chunk)) {
        this.inUws = bytes;
        return false;
      }
    }
    this.blocked = false;
    this.inUws = 0;
    this.events.drained();
    return true;
  }

  /**
   * Ends the stream. EventSource has no close codes: the last event carries
   * `{"type":"close","code","reason"}` (no id, so Last-Event-ID stays the last
   * frame's). A slow consumer's stream is cut at once: nothing more would get through.
   */
  end(code: number, reason: string): void {
    if (this.ended) return;
    this.ended = true;
    if (code === CloseCode.SLOW_CONSUMER) {
      this.events.ended();
      this.res.close();
      return;
    }
    const tail = this.queue.join('') + `data: ${JSON.stringify([{ type: 'close', code, reason }])}\n\n`;
    this.queue = [];
    this.res.cork(() => {
      this.res.write(tail);
      this.res.end();
    });
    this.events.ended();
  }

  /** Another stream resumed this session: drop this one without a word. */
  replaced(): void {
    if (this.ended) return;
    this.ended = true;
    this.events.ended();
    this.res.close();
  }

  /** The client went away (onAborted): the response may not be touched again. */
  aborted(): void {
    if (this.ended) return;
    this.ended = true;
    this.events.ended();
  }
}

// ---------------------------------------------------------------- routes

function sessionId(): string {
  return randomBytes(12).toString('base64url');
}

function parseLastEventId(id: string): { sid: string; seq: number } | null {
  const m = /^([A-Za-z0-9_-]{16})\.(\d{1,15})$/.exec(id.trim());
  return m ? { sid: m[1]!, seq: Number(m[2]) } : null;
}

/** Between the fan-out workers of one server: a session lives in the worker its stream landed on. */
type Wire =
  | { kind: 'cmd'; id: string; sid: string; method: 'POST' | 'DELETE'; body: string }
  | { kind: 'answer'; id: string; status: string; body: string }
  | { kind: 'claim'; id: string; sid: string; seq: number }
  | { kind: 'claimed'; id: string; seq: number; subs: SubDef[]; points: ResumePoint[] | null };

interface Answer {
  status: string;
  body: string;
}

/** How long a worker waits for the owner of a session it does not hold. */
const PEER_TIMEOUT_MS = 1_000;

export function registerSse(app: UWS.TemplatedApp, ctx: NodeContext, hooks: AppHooks): void {
  const { opts, fanout, stats } = ctx;
  const sessions = new Map<string, SseSession>();
  /** Sessions without a stream, oldest detached first. */
  const detached = new Map<string, SseSession>();
  const attached = new Set<SseSink>();
  let nextConnId = SSE_CONN_ID_BASE;
  let expiryTimer: NodeJS.Timeout | null = null;
  let keepAliveTimer: NodeJS.Timeout | null = null;

  // With fan-out workers (threads sharing one port) the kernel spreads
  // connections over them: a command POST, or a reconnect, may reach a worker
  // other than the one holding the session. They reach each other on a
  // channel named after the port.
  const peers = isMainThread ? null : new BroadcastChannel(`tickfan-sse:${opts.host}:${opts.port}`);
  const waiting = new Map<string, (m: Wire | null) => void>();
  const idPrefix = randomBytes(6).toString('hex');
  let nextWireId = 0;

  function ask(m: Wire & { id: string }, done: (reply: Wire | null) => void): void {
    const timer = setTimeout(() => {
      waiting.delete(m.id);
      done(null);
    }, PEER_TIMEOUT_MS);
    waiting.set(m.id, (reply) => {
      clearTimeout(timer);
      waiting.delete(m.id);
      done(reply);
    });
    peers!.postMessage(m);
  }

  if (peers) {
    (peers as unknown as { unref(): void }).unref();
    peers.onmessage = (ev) => {
      const m = (ev as { data: Wire }).data;
      if (m.kind === 'answer' || m.kind === 'claimed') return waiting.get(m.id)?.(m);
      const session = sessions.get(m.sid);
      if (!session) return; // not ours
      if (m.kind === 'cmd') {
        peers.postMessage({ kind: 'answer', id: m.id, ...command(session, m.method, m.body) } satisfies Wire);
      } else {
        // Another worker took the reconnect: hand the session over.
        const claimed = release(session, m.seq);
        peers.postMessage({ kind: 'claimed', id: m.id, ...claimed } satisfies Wire);
      }
    };
  }

  function forget(s: SseSession): void {
    sessions.delete(s.id);
    detached.delete(s.id);
  }

  function sweepDetached(): void {
    expiryTimer = null;
    const before = Date.now() - SSE_SESSION_TTL_MS;
    for (const s of detached.values()) {
      if (s.detachedAt > before) break;
      forget(s);
    }
    armExpiry();
  }

  // Timers run only while there is something to do: a closed server leaves none behind.
  function armExpiry(): void {
    if (expiryTimer || detached.size === 0) return;
    expiryTimer = setTimeout(sweepDetached, SSE_SESSION_TTL_MS / 4);
    expiryTimer.unref();
  }

  function armKeepAlive(): void {
    if (keepAliveTimer || attached.size === 0) return;
    keepAliveTimer = setInterval(() => {
      if (attached.size === 0) {
        clearInterval(keepAliveTimer!);
        keepAliveTimer = null;
        return;
      }
      const now = Date.now();
      for (const sink of attached) sink.keepAlive(now);
    }, KEEPALIVE_MS);
    keepAliveTimer.unref();
  }

  /** The stream of a session ended: keep its subscriptions for a resume, for a while. */
  function detach(session: SseSession, conn: Conn, sink: SseSink): void {
    attached.delete(sink);
    if (session.conn === conn) {
      session.subs = [...conn.subs.values()].map((cs) => ({
        id: cs.id,
        topics: cs.patterns.map((p) => p.source),
        maxRate: cs.tier,
        fields: cs.fields ? [...cs.fields] : [],
        paused: cs.paused,
      }));
      session.conn = null;
      session.sink = null;
      session.detachedAt = Date.now();
      if (sessions.get(session.id) === session) {
        detached.set(session.id, session);
        while (detached.size > SSE_MAX_DETACHED_SESSIONS) forget(detached.values().next().value!);
        armExpiry();
      }
    }
    fanout.closed(conn);
    hooks.connClosed(conn);
  }

  /** What a resume from event `seq` restores: the subscriptions and their points (null: too old to know). */
  function release(session: SseSession, seq: number): { seq: number; subs: SubDef[]; points: ResumePoint[] | null } {
    // The old stream may not have noticed yet that its client left.
    session.sink?.replaced();
    forget(session);
    const points = session.journal.pointsAt(seq, session.seq);
    return { seq: session.seq, subs: session.subs, points: points ? [...points.values()] : null };
  }

  function corsHeaders(res: UWS.HttpResponse, origin: string): void {
    if (!origin) return;
    if (opts.allowedOrigins.length && !opts.allowedOrigins.includes(origin)) return;
    res.writeHeader('access-control-allow-origin', origin).writeHeader('vary', 'origin');
  }

  function answerJson(res: UWS.HttpResponse, a: Answer, origin: string, state: { done: boolean }): void {
    if (state.done) return;
    state.done = true;
    res.cork(() => {
      res.writeStatus(a.status);
      corsHeaders(res, origin);
      res.writeHeader('content-type', 'application/json').writeHeader('cache-control', 'no-store').end(a.body);
    });
  }

  function failure(status: string, code: number, message: string): Answer {
    stats.error(code);
    return { status, body: errorBody(code, message) };
  }

  function refuse(res: UWS.HttpResponse, status: string, code: number, message: string, origin: string): void {
    answerJson(res, failure(status, code, message), origin, { done: false });
  }

  // -------------------------------------------------------------- GET /sse

  app.get('/sse', (res, req) => {
    // Headers and the query die when this callback returns: copy them first.
    const a = hooks.admission(res, req);
    const q = new URLSearchParams(req.getQuery() ?? '');
    const lastEventId = req.getHeader('last-event-id') || q.get('lastEventId') || '';
    const topics = (q.get('topics') ?? '').split(',').map((t) => t.trim()).filter(Boolean);
    const fields = (q.get('fields') ?? '').split(',').map((t) => t.trim()).filter(Boolean);
    const maxRate = Number(q.get('maxRate') ?? 0);
    let aborted = false;
    let sink: SseSink | null = null;
    res.onAborted(() => {
      aborted = true;
      sink?.aborted();
    });

    const no = hooks.refusal(a);
    if (no) return refuse(res, no.status, no.code, no.message, a.origin);
    if (topics.length > MAX_URL_TOPICS) return refuse(res, '400 Bad Request', ErrorCode.BAD_REQUEST, `at most ${MAX_URL_TOPICS} topics in ?topics=`, a.origin);
    if (!Number.isFinite(maxRate) || maxRate < 0) return refuse(res, '400 Bad Request', ErrorCode.BAD_REQUEST, 'maxRate must be 0 (every update) or a positive rate', a.origin);

    const start = (grants: Grants, claimed: Claimed | null) => {
      if (aborted) return;
      sink = open(res, a.remote, a.origin, grants, lastEventId, claimed, topics, maxRate, fields);
    };
    hooks.grantsFor(a.token).then(
      (grants) => {
        if (aborted) return;
        if (!grants) {
          return refuse(res, '401 Unauthorized', ErrorCode.UNAUTHORIZED, 'this server needs a token: connect with /sse?token=<jwt>', a.origin);
        }
        const last = lastEventId ? parseLastEventId(lastEventId) : null;
        if (!last || sessions.has(last.sid) || !peers) return start(grants, null);
        // Another worker may hold the session: ask for it.
        ask({ kind: 'claim', id: `${idPrefix}.${nextWireId++}`, sid: last.sid, seq: last.seq }, (m) => {
          start(grants, m?.kind === 'claimed' ? { sid: last.sid, from: last.seq, seq: m.seq, subs: m.subs, points: m.points } : null);
        });
      },
      (err: unknown) => {
        if (aborted) return;
        refuse(res, '401 Unauthorized', ErrorCode.UNAUTHORIZED, (err as Error).message, a.origin);
      },
    );
  });

  interface Claimed {
    sid: string;
    /** The event the client resumes after. */
    from: number;
    /** The last event the session sent. */
    seq: number;
    subs: SubDef[];
    points: ResumePoint[] | null;
  }

  function open(
    res: UWS.HttpResponse,
    remote: string,
    origin: string,
    grants: Grants,
    lastEventId: string,
    claimed: Claimed | null,
    topics: string[],
    maxRate: number,
    fields: string[],
  ): SseSink {
    // A Last-Event-ID of a session we still know (here, or handed over by
    // another worker) resumes it; anything else starts afresh.
    const last = lastEventId ? parseLastEventId(lastEventId) : null;
    const local = last ? sessions.get(last.sid) : undefined;
    let resumed: Claimed | null = claimed;
    if (local && last) resumed = { sid: local.id, from: last.seq, ...release(local, last.seq) };
    const session = new SseSession(resumed ? resumed.sid : sessionId());
    sessions.set(session.id, session);
    if (resumed) {
      // Event ids keep growing across the streams of one session; the journal
      // starts again from what the client holds after the event it resumes
      // from (so that resuming from it once more works too).
      session.seq = resumed.seq;
      for (const p of resumed.points ?? []) session.journal.record(resumed.from, p.topic, p.epoch, p.version);
    }
    const conn = new Conn(++nextConnId, remote);
    conn.grants = grants;
    conn.seq = session.seq;
    const sink: SseSink = new SseSink(
      res,
      session,
      opts.hardCapBytes,
      { type: 'session', session: session.id, resumed: !!resumed, subs: resumed ? resumed.subs.map((d) => ({ id: d.id, paused: d.paused })) : [] },
      {
        drained: () => fanout.drain(conn),
        ended: () => detach(session, conn, sink),
        failed: (err) => opts.log('error', `SSE connection ${conn.id}: a message could not be turned into JSON: ${(err as Error)?.stack ?? String(err)}`),
      },
    );
    session.conn = conn;
    session.sink = sink;
    attached.add(sink);
    armKeepAlive();
    res.cork(() => {
      res.writeStatus('200 OK');
      corsHeaders(res, origin);
      res
        .writeHeader('content-type', 'text/event-stream; charset=utf-8')
        .writeHeader('cache-control', 'no-cache, no-store, no-transform')
        .writeHeader('x-accel-buffering', 'no')
        .write(`retry: ${RETRY_MS}\n\n`);
    });
    fanout.open(conn, sink);
    hooks.connOpened(conn);
    hooks.armExpiry(conn);
    if (resumed) {
      // Every subscription of the session, each from the point the client held after its last event.
      const resume = (resumed.points ?? []).filter((p) => p.version >= 0);
      for (const d of resumed.subs) {
        hooks.handle(conn, { type: 'subscribe', id: d.id, topics: d.topics, maxRate: d.maxRate, fields: d.fields, resume });
        if (d.paused && conn.subs.has(d.id)) hooks.handle(conn, { type: 'pause', id: d.id });
      }
    } else if (topics.length) {
      hooks.handle(conn, { type: 'subscribe', id: 1, topics, maxRate, fields, resume: [] });
    }
    return sink;
  }

  // -------------------------------------------------------------- commands

  /** Applies a POST (commands) or DELETE (end) to a session held here. */
  function command(session: SseSession, method: 'POST' | 'DELETE', body: string): Answer {
    if (method === 'DELETE') {
      forget(session);
      if (session.conn) fanout.end(session.conn, CloseCode.NORMAL, 'session closed by the client');
      return { status: '200 OK', body: JSON.stringify({ closed: true }) };
    }
    const conn = session.conn;
    if (!conn) return failure('409 Conflict', ErrorCode.BAD_REQUEST, `SSE session ${session.id} has no open stream: reconnect with Last-Event-ID first`);
    let msgs: ClientMessage[];
    try {
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch (err) {
        throw new TickfanError(ErrorCode.BAD_REQUEST, `the body is not valid JSON: ${(err as Error).message}`);
      }
      msgs = (Array.isArray(json) ? json : [json]).map(commandToMessage);
    } catch (err) {
      const e = err instanceof TickfanError ? err : new TickfanError(ErrorCode.BAD_REQUEST, String(err));
      return failure('400 Bad Request', e.errorCode, e.message);
    }
    // Answers (acks, errors, snapshots) go out on the stream, in order, as over a WebSocket.
    for (const m of msgs) hooks.handle(conn, m);
    return { status: '202 Accepted', body: JSON.stringify({ accepted: msgs.length }) };
  }

  /** Runs a command on the session, wherever it lives. */
  function route(sid: string, method: 'POST' | 'DELETE', body: string, done: (a: Answer) => void): void {
    const session = sessions.get(sid);
    if (session) return done(command(session, method, body));
    const unknown = () =>
      method === 'DELETE'
        ? { status: '200 OK', body: JSON.stringify({ closed: false }) }
        : failure('404 Not Found', ErrorCode.BAD_REQUEST, `no SSE session ${sid}: it expired or never existed; open GET /sse again`);
    if (!peers) return done(unknown());
    ask({ kind: 'cmd', id: `${idPrefix}.${nextWireId++}`, sid, method, body }, (m) => done(m?.kind === 'answer' ? { status: m.status, body: m.body } : unknown()));
  }



  app.post('/sse/:session', (res, req) => {
    const state = { done: false };
    let slow: NodeJS.Timeout | undefined;
    res.onAborted(() => {
      state.done = true;
      clearTimeout(slow);
    });
    const a = hooks.admission(res, req);
    const sid = req.getParameter(0) ?? '';
    const no = hooks.accessRefusal(a);
    if (no) return answerJson(res, failure(no.status, no.code, no.message), a.origin, state);
    slow = setTimeout(() => {
      answerJson(res, failure('408 Request Timeout', ErrorCode.BAD_REQUEST, `the request body did not arrive within ${BODY_TIMEOUT_MS} ms`), a.origin, state);
    }, BODY_TIMEOUT_MS);
    readBody(res, opts.maxBodyBytes, state, (body) => {
      clearTimeout(slow);
      route(sid, 'POST', body.toString('utf8'), (ans) => answerJson(res, ans, a.origin, state));
    });
  });

  // Ends a session now (rather than after its TTL): EventSource.close() cannot say so.
  app.del('/sse/:session', (res, req) => {
    const state = { done: false };
    res.onAborted(() => (state.done = true));
    const a = hooks.admission(res, req);
    const no = hooks.accessRefusal(a);
    if (no) return answerJson(res, failure(no.status, no.code, no.message), a.origin, state);
    route(req.getParameter(0) ?? '', 'DELETE', '', (ans) => answerJson(res, ans, a.origin, state));
  });

  // CORS preflight for cross-origin commands (JSON bodies are not "simple" requests).
  app.options('/sse/:session', (res, req) => {
    const origin = req.getHeader('origin');
    res.writeStatus('204 No Content');
    corsHeaders(res, origin);
    res
      .writeHeader('access-control-allow-methods', 'POST, DELETE')
      .writeHeader('access-control-allow-headers', 'content-type')
      .writeHeader('access-control-max-age', '600')
      .endWithoutBody();
  });
}
