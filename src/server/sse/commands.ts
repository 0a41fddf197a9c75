// SSE commands: the JSON client messages POSTed to /sse/<session> (subscribe,
// catch-up, pause, publish…; keyed ones: keyed-commands.ts) go to the same dispatch as a WebSocket's frames,
// and their answers arrive on the stream; DELETE ends the session.

import { CloseCode, ErrorCode, TickfanError, type ClientMessage } from '../../protocol/index.js';
import type { NodeParts } from '../node-parts.js';
import type { Answer, SseAnswers } from './answers.js';
import { sseCommand } from './keyed-commands.js';
import type { CommandMethod, SsePeers } from './peers.js';
import type { SseSession, SseSessions } from './sessions.js';

export class SseCommands {
  constructor(
    private readonly node: Pick<NodeParts, 'fanout' | 'dispatch' | 'store' | 'ingest'>,
    private readonly sessions: SseSessions,
    private readonly peers: SsePeers | null,
    private readonly answers: SseAnswers,
  ) {}

  /** Runs a command on the session, wherever it lives. */
  route(sid: string, method: CommandMethod, body: string, done: (a: Answer) => void): void {
    const session = this.sessions.get(sid);
    if (session) return done(this.apply(session, method, body));
    const unknown = (): Answer =>
      method === 'DELETE'
        ? { status: '200 OK', body: JSON.stringify({ closed: false }) }
        : this.answers.failure('404 Not Found', ErrorCode.BAD_REQUEST, `no SSE session ${sid}: it expired or never existed; open GET /sse again`);
    if (!this.peers) return done(unknown());
    this.peers.command(sid, method, body, (a) => {
      if (a === 'unknown') return done(unknown());
      // Another worker is too busy to say whether it holds the session: not "unknown", which would end it.
      if (a === 'silent') return done(this.answers.failure('503 Service Unavailable', ErrorCode.INTERNAL, `SSE session ${sid}: a fan-out worker did not answer within 10 s; send the command again`));
      done(a.held);
    });
  }

  /** Applies a POST (commands) or DELETE (end) to a session held here. */
  apply(session: SseSession, method: CommandMethod, body: string): Answer {
    if (method === 'DELETE') {
      this.sessions.forget(session);
      if (session.stream) this.node.fanout.end(session.stream.conn, CloseCode.NORMAL, 'session closed by the client');
      return { status: '200 OK', body: JSON.stringify({ closed: true }) };
    }
    const stream = session.stream;
    if (!stream) return this.answers.failure('409 Conflict', ErrorCode.BAD_REQUEST, `SSE session ${session.id} has no open stream: reconnect with Last-Event-ID first`);
    let msgs: ClientMessage[];
    try {
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch (err) {
        throw new TickfanError(ErrorCode.BAD_REQUEST, `the body is not valid JSON: ${(err as Error).message}`);
      }
      // A cluster node hands a keyed batch it cannot read to the topic's origin (keyedPublish).
      const forward = this.node.ingest.publishJson !== undefined;
      msgs = (Array.isArray(json) ? json : [json]).map((c) => sseCommand(this.node.store, c, forward));
    } catch (err) {
      const e = err instanceof TickfanError ? err : new TickfanError(ErrorCode.BAD_REQUEST, String(err));
      return this.answers.failure('400 Bad Request', e.errorCode, e.message);
    }
    // Answers (acks, errors, snapshots) go out on the stream, in order, as over a
    // WebSocket; a token refresh ({"type":"hello","token"}) holds back what follows it until it is answered.
    this.node.dispatch.frame(stream, msgs);
    return { status: '202 Accepted', body: JSON.stringify({ accepted: msgs.length }) };
  }
}
