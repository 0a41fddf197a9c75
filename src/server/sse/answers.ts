// HTTP answers of the SSE endpoints: JSON bodies (the same error shape as
// every HTTP route) with the CORS headers a browser on an allowed origin needs
// to read them, since the stream and its commands are often cross-origin.

import { errorBody } from '../http-io.js';
import type { ServerStats } from '../stats.js';
import type { UWS } from '../uws.js';

/** An HTTP answer: status line and JSON body (also what a peer worker relays). */
export interface Answer {
  status: string;
  body: string;
}

export class SseAnswers {
  constructor(
    private readonly allowedOrigins: readonly string[],
    private readonly stats: ServerStats,
  ) {}

  /** Lets the origin read the answer, when it is allowed (every origin, with no allow-list). */
  cors(res: UWS.HttpResponse, origin: string): void {
    if (!origin) return;
    if (this.allowedOrigins.length && !this.allowedOrigins.includes(origin)) return;
    res.writeHeader('access-control-allow-origin', origin).writeHeader('vary', 'origin');
  }

  /** An error answer, counted in the error statistics. */
  failure(status: string, code: number, message: string): Answer {
    this.stats.error(code);
    return { status, body: errorBody(code, message) };
  }

  /** Sends `a` unless the request was already answered or aborted; `close` also ends the connection (a body left unread). */
  send(res: UWS.HttpResponse, a: Answer, origin: string, state: { done: boolean }, close = false): void {
    if (state.done) return;
    state.done = true;
    res.cork(() => {
      res.writeStatus(a.status);
      this.cors(res, origin);
      res.writeHeader('content-type', 'application/json').writeHeader('cache-control', 'no-store').end(a.body, close);
    });
  }
}
