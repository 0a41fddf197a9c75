// Server-Sent Events for browsers that cannot open a WebSocket. An SSE stream
// is a Session in the same admission, dispatch and fan-out as a WebSocket's;
// only the bytes differ (one JSON event per frame). This folder's public face.

import type { NodeParts } from '../node-parts.js';
import { SseAnswers } from './answers.js';
import { SseCommands } from './commands.js';
import { SsePeers } from './peers.js';
import { registerSseRoutes } from './routes.js';
import { SseSessions } from './sessions.js';
import { SseStreams } from './stream.js';

export { SseJournal, SSE_JOURNAL_ENTRIES } from './journal.js';
export { SseSink } from './sink.js';
export { SSE_SESSION_TTL_MS, SSE_MAX_DETACHED_SESSIONS } from './sessions.js';

/**
 * Adds GET /sse (the event stream), POST and DELETE /sse/<session> (commands,
 * end) and the CORS preflight to the node's app. A reconnect with
 * Last-Event-ID resumes its session, in this worker or taken over from another.
 */
export function registerSse(node: NodeParts): void {
  const answers = new SseAnswers(node.opts.allowedOrigins, node.stats);
  const sessions = new SseSessions();
  const peers = SsePeers.open(node.opts.host, node.opts.port);
  const commands = new SseCommands(node, sessions, peers, answers);
  const streams = new SseStreams(node, sessions, answers);
  peers?.serve({
    command: (sid, method, body) => {
      const s = sessions.get(sid);
      return s ? commands.apply(s, method, body) : null;
    },
    claim: (sid, seq) => {
      const s = sessions.get(sid);
      return s ? sessions.release(s, seq) : null;
    },
  });
  registerSseRoutes(node, { sessions, streams, commands, peers, answers });
}
