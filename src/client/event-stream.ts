// A minimal EventSource over fetch() for runtimes without one (Node 20): it
// parses text/event-stream (data, id, comments) and reports the end of the
// stream as an error. It never reconnects by itself: the SDK does, with backoff.

/** The subset of the browser EventSource API the SDK needs. */
export interface EventSourceLike {
  /** Set by the SDK: one event arrived. */
  onmessage: ((ev: { data: string; lastEventId: string }) => void) | null;
  /** Set by the SDK: the stream failed or ended. */
  onerror: ((ev: unknown) => void) | null;
  /** Ends the stream. */
  close(): void;
}
/** An EventSource constructor: `connect(url, { EventSource })`. */
export type EventSourceCtor = new (url: string) => EventSourceLike;

/** A `fetch()`: `connect(url, { fetch })` for the SSE reader where there is no EventSource. */
export type FetchLike = (url: string, init?: RequestInit) => Promise<Response>;

/** The stream was refused with an HTTP status (what `onerror` gets from FetchEventSource); `body` is the server's answer, cut short. */
export class HttpStatusError extends Error {
  constructor(
    /** The HTTP status (401: the token was refused). */
    readonly status: number,
    /** The start of the response body (the server's JSON error for a 401). */
    readonly body: string,
    message: string,
  ) {
    super(message);
    this.name = 'HttpStatusError';
  }
}

/** An EventSource over `fetch()` for runtimes without one (Node 20); it never reconnects by itself. */
export class FetchEventSource implements EventSourceLike {
  /** Set by the SDK: one event arrived. */
  onmessage: ((ev: { data: string; lastEventId: string }) => void) | null = null;
  /** Set by the SDK: the stream failed or ended. */
  onerror: ((ev: unknown) => void) | null = null;
  private readonly ctrl = new AbortController();
  private closed = false;

  constructor(url: string, fetchFn: FetchLike = (u, i) => globalThis.fetch(u, i)) {
    void this.run(url, fetchFn);
  }

  close(): void {
    this.closed = true;
    this.ctrl.abort();
  }

  /** A listener's exception is reported, as EventSource does, without ending the stream. */
  private dispatch(data: string, lastEventId: string): void {
    try {
      this.onmessage?.({ data, lastEventId });
    } catch (err) {
      queueMicrotask(() => {
        throw err;
      });
    }
  }

  private async run(url: string, fetchFn: FetchLike): Promise<void> {
    try {
      const res = await fetchFn(url, { headers: { accept: 'text/event-stream' }, signal: this.ctrl.signal, cache: 'no-store' });
      if (!res.ok || !res.body) {
        const body = res.status === 401 ? await res.text().catch(() => '') : (void res.body?.cancel(), '');
        throw new HttpStatusError(res.status, body.slice(0, 500), `GET ${url.replace(/([?&]token=)[^&]*/, '$1…')}: HTTP ${res.status}`);
      }
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buf = '';
      let data = '';
      let hasData = false;
      let lastEventId = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done || this.closed) break;
        buf += decoder.decode(value, { stream: true });
        let at = 0;
        for (let nl = buf.indexOf('\n', at); nl >= 0; nl = buf.indexOf('\n', at)) {
          let line = buf.slice(at, nl);
          at = nl + 1;
          if (line.endsWith('\r')) line = line.slice(0, -1);
          if (line === '') {
            // A blank line dispatches the event (if it had data).
            if (hasData && !this.closed) this.dispatch(data, lastEventId);
            data = '';
            hasData = false;
            continue;
          }
          if (line.charCodeAt(0) === 58 /* ':' comment */) continue;
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          let v = colon < 0 ? '' : line.slice(colon + 1);
          if (v.charCodeAt(0) === 32) v = v.slice(1);
          if (field === 'data') {
            data = hasData ? `${data}\n${v}` : v;
            hasData = true;
          } else if (field === 'id' && !v.includes('\0')) {
            lastEventId = v;
          }
        }
        buf = buf.slice(at);
      }
      if (!this.closed) throw new Error('the event stream ended');
    } catch (err) {
      if (!this.closed) {
        this.closed = true;
        this.onerror?.(err);
      }
    }
  }
}
