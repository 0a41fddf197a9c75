// Where an SSE stream's frames go: one event per frame on a uWebSockets.js
// response (`id: <session>.<seq>` + `data: [ ...messages as JSON ]`), with
// backpressure bounded like a WebSocket's, and comment-line keep-alives.

import { CloseCode } from '../../protocol/index.js';
import { SendStatus, type Sink } from '../sink.js';
import type { UWS } from '../uws.js';
import { jsonOf, type JsonMessage } from './event-json.js';
import type { SseJournal } from './journal.js';

/** An idle stream gets a comment line this often (uWebSockets.js drops HTTP responses idle for 10 s). */
export const KEEPALIVE_MS = 2_500;

/** What a sink writes into: the session's id (event ids), its journal, and its last event number. */
export interface SseEventLog {
  readonly id: string;
  readonly journal: SseJournal;
  /** Sequence number of the last event sent (streams of one session continue it). */
  seq: number;
}

export interface SseSinkEvents {
  /** What uWS held went out: the connection may leave the slow lane. */
  drained(): void;
  /** The stream is over (ended, replaced, or the client went away); called once. */
  ended(): void;
  failed(err: unknown): void;
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
    private readonly log: SseEventLog,
    private readonly hardCap: number,
    intro: Record<string, unknown>,
    private readonly events: SseSinkEvents,
  ) {
    this.intro = JSON.stringify(intro);
    res.onWritable(() => this.writable());
  }

  send(seq: number, messages: readonly Uint8Array[]): SendStatus {
    if (this.ended) return SendStatus.SENT;
    const parts: string[] = [];
    if (this.intro !== null) parts.push(this.intro);
    this.intro = null;
    const journal = this.log.journal;
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
    this.log.seq = seq;
    return this.write(`id: ${this.log.id}.${seq}\ndata: [${parts.join(',')}]\n\n`);
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

/** Keeps idle streams alive; its timer runs only while a stream is attached, so a closed server leaves none behind. */
export class SseKeepAlive {
  private readonly sinks = new Set<SseSink>();
  private timer: NodeJS.Timeout | null = null;

  add(sink: SseSink): void {
    this.sinks.add(sink);
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (this.sinks.size === 0) {
        clearInterval(this.timer!);
        this.timer = null;
        return;
      }
      const now = Date.now();
      for (const s of this.sinks) s.keepAlive(now);
    }, KEEPALIVE_MS);
    this.timer.unref();
  }

  delete(sink: SseSink): void {
    this.sinks.delete(sink);
  }
}
