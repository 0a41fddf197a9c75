// The SSE endpoints: GET /sse opens a stream (admission, token, then a new or
// resumed session), POST /sse/<session> takes commands, DELETE ends a session,
// and OPTIONS answers the CORS preflight of cross-origin commands.

import { ErrorCode, TickfanError, type TableViewRequest } from '../../protocol/index.js';
import { callerOf } from '../admission.js';
import type { Grants } from '../auth.js';
import { readBodyWithin } from '../http-io.js';
import type { NodeParts } from '../node-parts.js';
import { parseChecksumsFlag, parseDepth, parseViewList } from '../view-text.js';
import type { SseAnswers } from './answers.js';
import type { SseCommands } from './commands.js';
import type { SsePeers } from './peers.js';
import { parseLastEventId, type Resumed, type SseSessions } from './sessions.js';
import type { SseSink } from './sink.js';
import type { SseStreams } from './stream.js';

/** Topics or patterns accepted in `?topics=`. */
const MAX_URL_TOPICS = 1_000;

const URL_VIEWS = { tables: '?tables=', checksums: '?checksums=', depth: '?depth=' } as const;

/** The URL subscription's table views: `?tables=bids:10,asks:10` (or `?tables=bids,asks&depth=10`) and `?checksums=true`. */
export function urlViews(q: URLSearchParams, topics: readonly string[]): { tables: TableViewRequest[] | undefined; checksums: boolean } {
  const depth = parseDepth(q.get('depth') ?? undefined, URL_VIEWS);
  const raw = q.get('tables') ?? undefined;
  const tables = parseViewList(raw, URL_VIEWS, depth ?? 0);
  const checksums = parseChecksumsFlag(q.get('checksums') ?? undefined, URL_VIEWS);
  if (depth !== undefined && !tables) throw new TickfanError(ErrorCode.BAD_REQUEST, '?depth= applies to the tables named in ?tables= (e.g. ?tables=bids,asks&depth=10 or ?tables=bids:10,asks:10)');
  if ((tables || checksums) && topics.length === 0) throw new TickfanError(ErrorCode.BAD_REQUEST, '?tables= and ?checksums= apply to the subscription of ?topics=: name its topics');
  return { tables, checksums };
}

export interface SseRouteParts {
  sessions: SseSessions;
  streams: SseStreams;
  commands: SseCommands;
  peers: SsePeers | null;
  answers: SseAnswers;
}

export function registerSseRoutes(node: NodeParts, sse: SseRouteParts): void {
  const { app, opts, admission } = node;
  const { answers, commands, peers, streams } = sse;

  app.get('/sse', (res, req) => {
    // Headers and the query die when this callback returns: copy them first.
    const a = callerOf(res, req);
    const q = new URLSearchParams(req.getQuery() ?? '');
    const lastEventId = req.getHeader('last-event-id') || q.get('lastEventId') || '';
    const topics = (q.get('topics') ?? '').split(',').map((t) => t.trim()).filter(Boolean);
    const fields = (q.get('fields') ?? '').split(',').map((t) => t.trim()).filter(Boolean);
    const maxRate = Number(q.get('maxRate') ?? 0);
    let views: ReturnType<typeof urlViews> | TickfanError;
    try {
      views = urlViews(q, topics);
    } catch (err) {
      views = err instanceof TickfanError ? err : new TickfanError(ErrorCode.BAD_REQUEST, String(err));
    }
    let aborted = false;
    let sink: SseSink | null = null;
    res.onAborted(() => {
      aborted = true;
      sink?.aborted();
    });
    const refuse = (status: string, code: number, message: string) => answers.send(res, answers.failure(status, code, message), a.origin, { done: false });

    const no = admission.connection(a);
    if (no) return refuse(no.status, no.code, no.message);
    if (topics.length > MAX_URL_TOPICS) return refuse('400 Bad Request', ErrorCode.BAD_REQUEST, `at most ${MAX_URL_TOPICS} topics in ?topics=`);
    if (!Number.isFinite(maxRate) || maxRate < 0) return refuse('400 Bad Request', ErrorCode.BAD_REQUEST, 'maxRate must be 0 (every update) or a positive rate');
    if (views instanceof TickfanError) return refuse('400 Bad Request', views.errorCode, views.message);
    const { tables, checksums } = views;

    const last = lastEventId ? parseLastEventId(lastEventId) : null;
    const start = (grants: Grants, handedOver: Resumed | null) => {
      if (aborted) return;
      sink = streams.open(res, { remote: a.remote, origin: a.origin, grants, last, handedOver, topics, maxRate, fields, tables, checksums });
    };
    node.sessions.grantsFor(a.token).then(
      (grants) => {
        if (aborted) return;
        if (!grants) return refuse('401 Unauthorized', ErrorCode.UNAUTHORIZED, 'this server needs a token: connect with /sse?token=<jwt>');
        if (!last || sse.sessions.has(last.sid) || !peers) return start(grants, null);
        // Another worker may hold the session: ask for it.
        peers.claim(last.sid, last.seq, (h) => start(grants, h ? { sid: last.sid, from: last.seq, ...h } : null));
      },
      (err: unknown) => {
        if (aborted) return;
        refuse('401 Unauthorized', ErrorCode.UNAUTHORIZED, (err as Error).message);
      },
    );
  });

  app.post('/sse/:session', (res, req) => {
    const state = { done: false };
    res.onAborted(() => (state.done = true));
    const a = callerOf(res, req);
    const sid = req.getParameter(0) ?? '';
    const no = admission.access(a);
    if (no) return answers.send(res, answers.failure(no.status, no.code, no.message), a.origin, state);
    // A body that trickles in (slow-loris) is cut off after bodyTimeoutMs, and its connection closed, as on POST /publish.
    const late = () =>
      answers.send(res, answers.failure('408 Request Timeout', ErrorCode.BAD_REQUEST, `the request body did not arrive within ${opts.bodyTimeoutMs} ms`), a.origin, state, true);
    readBodyWithin(res, opts.maxBodyBytes, opts.bodyTimeoutMs, state, (body) => {
      commands.route(sid, 'POST', body.toString('utf8'), (ans) => answers.send(res, ans, a.origin, state));
    }, late);
  });

  // Ends a session now (rather than after its TTL): EventSource.close() cannot say so.
  app.del('/sse/:session', (res, req) => {
    const state = { done: false };
    res.onAborted(() => (state.done = true));
    const a = callerOf(res, req);
    const no = admission.access(a);
    if (no) return answers.send(res, answers.failure(no.status, no.code, no.message), a.origin, state);
    commands.route(req.getParameter(0) ?? '', 'DELETE', '', (ans) => answers.send(res, ans, a.origin, state));
  });

  // CORS preflight for cross-origin commands (JSON bodies are not "simple" requests).
  app.options('/sse/:session', (res, req) => {
    const origin = req.getHeader('origin');
    res.writeStatus('204 No Content');
    answers.cors(res, origin);
    res
      .writeHeader('access-control-allow-methods', 'POST, DELETE')
      .writeHeader('access-control-allow-headers', 'content-type')
      .writeHeader('access-control-max-age', '600')
      .endWithoutBody();
  });
}
