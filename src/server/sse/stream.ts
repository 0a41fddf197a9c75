// One SSE stream's life: a Session for the connection (admitted, counted and
// expired exactly as a WebSocket's), its sink in fan-out, the subscriptions a
// resumed session restores, and on its end the session detached for a resume.

import type { TableViewRequest } from '../../protocol/index.js';
import type { Grants } from '../auth.js';
import type { NodeParts } from '../node-parts.js';
import { Session } from '../session.js';
import type { UWS } from '../uws.js';
import type { SseAnswers } from './answers.js';
import type { Resumed, SseSession, SseSessions } from './sessions.js';
import { SseKeepAlive, SseSink } from './sink.js';

/** Reconnect delay suggested to plain EventSource clients. */
const RETRY_MS = 1_000;
/** SSE connection ids start here, so that logs tell them from WebSockets. */
const SSE_CONN_ID_BASE = 1_000_000_000;

/** A GET /sse that passed admission and whose token was verified. */
export interface StreamRequest {
  remote: string;
  origin: string;
  grants: Grants;
  /** The session named by Last-Event-ID (`<session>.<seq>`), if any. */
  last: { sid: string; seq: number } | null;
  /** That session, handed over by another worker (null when none did). */
  handedOver: Resumed | null;
  /** `?topics=`, `?maxRate=`, `?fields=`, `?tables=`, `?checksums=`: the first subscription of a new session. */
  topics: string[];
  maxRate: number;
  fields: string[];
  tables?: TableViewRequest[];
  checksums?: boolean;
}

export class SseStreams {
  private nextConnId = SSE_CONN_ID_BASE;
  private readonly keepAlive = new SseKeepAlive();

  constructor(
    private readonly node: NodeParts,
    private readonly sessions: SseSessions,
    private readonly answers: SseAnswers,
  ) {}

  /** Starts the event stream on `res`: a session resumed (here, or handed over by another worker) or a new one. */
  open(res: UWS.HttpResponse, r: StreamRequest): SseSink {
    const { opts, fanout, admission, dispatch } = this.node;
    // A Last-Event-ID of a session we still know resumes it; anything else starts afresh.
    const local = r.last ? this.sessions.get(r.last.sid) : undefined;
    const resumed: Resumed | null = local && r.last ? { sid: local.id, from: r.last.seq, ...this.sessions.release(local, r.last.seq) } : r.handedOver;
    const session = this.sessions.create(resumed);
    const stream = new Session(++this.nextConnId, r.remote, r.grants);
    const conn = stream.conn;
    conn.seq = session.seq;
    conn.json = true; // keyed topics come as keyed JSON events
    const sink: SseSink = new SseSink(
      res,
      session,
      opts.hardCapBytes,
      { type: 'session', session: session.id, resumed: !!resumed, subs: resumed ? resumed.subs.map((d) => ({ id: d.id, paused: d.paused })) : [] },
      {
        drained: () => fanout.drain(conn),
        ended: () => this.ended(session, stream, sink),
        failed: (err) => opts.log('error', `SSE connection ${conn.id}: a message could not be turned into JSON: ${(err as Error)?.stack ?? String(err)}`),
      },
    );
    session.stream = stream;
    session.sink = sink;
    this.keepAlive.add(sink);
    res.cork(() => {
      res.writeStatus('200 OK');
      this.answers.cors(res, r.origin);
      res
        .writeHeader('content-type', 'text/event-stream; charset=utf-8')
        .writeHeader('cache-control', 'no-cache, no-store, no-transform')
        .writeHeader('x-accel-buffering', 'no')
        .write(`retry: ${RETRY_MS}\n\n`);
    });
    fanout.open(conn, sink);
    admission.opened(r.remote);
    this.node.sessions.started(stream);
    if (resumed) {
      // Every subscription of the session, each from the point the client held after its last event.
      const resume = (resumed.points ?? []).filter((p) => p.version >= 0);
      for (const d of resumed.subs) {
        dispatch.handle(stream, { type: 'subscribe', id: d.id, topics: d.topics, maxRate: d.maxRate, fields: d.fields, resume, timestamps: false, tables: d.tables, checksums: d.checksums });
        if (d.paused && conn.subs.has(d.id)) dispatch.handle(stream, { type: 'pause', id: d.id });
      }
    } else if (r.topics.length) {
      dispatch.handle(stream, { type: 'subscribe', id: 1, topics: r.topics, maxRate: r.maxRate, fields: r.fields, resume: [], timestamps: false, tables: r.tables, checksums: r.checksums });
    }
    return sink;
  }

  /** The stream is over: its session waits for a resume, the connection is forgotten everywhere. */
  private ended(session: SseSession, stream: Session, sink: SseSink): void {
    this.keepAlive.delete(sink);
    // Before fan-out forgets the connection: the session keeps its subscriptions.
    this.sessions.detach(session, stream);
    this.node.fanout.closed(stream.conn);
    this.node.sessions.ended(stream);
    this.node.admission.closed(stream.conn.remote);
  }
}
