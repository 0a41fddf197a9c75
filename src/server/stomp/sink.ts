// Where a STOMP connection's frames go: fan-out's messages become MESSAGE
// frames (one per subscription the topic's stream is for), RECEIPTs, replies
// and ERRORs, written as WebSocket messages (text; binary for a binary body).

import { CLOSE_CODE_TEXT, CloseCode, ErrorCode, type CloseCode as CloseCodeT } from '../../protocol/index.js';
import { SendStatus, type Sink } from '../sink.js';
import type { UWS } from '../uws.js';
import type { StompVersion } from './frame.js';
import { closingFrame, errorFrame, receiptFrame, replyFrame, updateFrame } from './outgoing.js';
import type { PendingTable } from './pending.js';
import { translate, type Translated, type TopicUpdate } from './shared-message.js';
import type { StompSubscriptions } from './subscriptions.js';

export interface StompSinkParts {
  subs: StompSubscriptions;
  pending: PendingTable;
  /** A message fan-out sent could not be decoded (never expected): logged, and skipped. */
  failed(err: unknown): void;
}

export class StompSink implements Sink {
  /** Header escaping: none until CONNECT negotiated a version. */
  version: StompVersion = '1.0';
  lastWriteAt = Date.now();
  private ended = false;
  /** The socket closed: it may not be touched again. */
  private gone = false;
  /** An ERROR went out: nothing follows it but the close. */
  private errored = false;
  private messageIds = 0;

  constructor(
    private readonly ws: UWS.WebSocket<unknown>,
    private readonly compress: boolean,
    private readonly parts: StompSinkParts,
  ) {}

  send(_seq: number, messages: readonly Uint8Array[]): SendStatus {
    if (this.ended || this.gone) return SendStatus.SENT;
    let status: SendStatus = SendStatus.SENT;
    let close: CloseCodeT | null = null;
    this.ws.cork(() => {
      for (const buf of messages) {
        if (this.errored || close !== null) break;
        let t: Translated;
        try {
          t = translate(buf);
        } catch (err) {
          this.parts.failed(err);
          continue;
        }
        const r = this.message(t);
        if (r === 'disconnect') close = CloseCode.NORMAL;
        else if (r > status) status = r;
      }
    });
    this.lastWriteAt = Date.now();
    if (close !== null) this.end(close, 'disconnected');
    return status;
  }

  /** One translated message: its frames written; 'disconnect' when a DISCONNECT's receipt went out. */
  private message(t: Translated): SendStatus | 'disconnect' {
    const { pending, subs } = this.parts;
    switch (t.kind) {
      case 'snapshot':
      case 'delta':
      case 'status':
        return this.update(t);
      case 'ack': {
        const p = pending.take(t.id);
        return p?.receipt ? this.write(receiptFrame(p.receipt, this.version, p.type === 'receipt' ? p.headers : undefined)) : SendStatus.SENT;
      }
      case 'pong': {
        const p = pending.take(t.nonce);
        if (!p?.receipt) return SendStatus.SENT;
        const r = this.write(receiptFrame(p.receipt, this.version, p.type === 'receipt' ? p.headers : undefined));
        return p.type === 'disconnect' ? 'disconnect' : r;
      }
      case 'error': {
        const p = pending.take(t.id);
        const r = this.write(errorFrame(t.code, t.message, p?.receipt ?? null, this.version));
        // STOMP: the server closes the connection right after an ERROR frame. Unless
        // whoever sent the error ends the connection with a code of its own in this
        // turn (a token expiry's 4010), the refusal closes with 1008.
        this.errored = true;
        const code = t.code === ErrorCode.UNAUTHORIZED ? CloseCode.UNAUTHORIZED : CloseCode.POLICY;
        queueMicrotask(() => this.end(code, 'refused'));
        return r;
      }
      case 'response': {
        const m = t.msg;
        const p = pending.take(m.id);
        if (p?.type !== 'request') return SendStatus.SENT;
        let r: SendStatus = SendStatus.SENT;
        if (p.replyTo !== null) {
          const sub = subs.replySub(p.replyTo);
          const to = { destination: p.replyTo, subscription: sub?.id ?? p.replyTo, ack: !!sub && sub.ack !== 'auto', correlationId: p.correlationId };
          r = this.write(replyFrame(to, ++this.messageIds, m.code, m.message, m.payload, m.responder, this.version));
        }
        if (p.receipt !== null) {
          const extra: [string, string][] = [['tickfan-code', String(m.code)]];
          if (m.code !== 0) extra.push(['message', m.message.replace(/[\r\n]+/g, ' ')]);
          r = Math.max(r, this.write(receiptFrame(p.receipt, this.version, extra))) as SendStatus;
        }
        return r;
      }
      case 'other':
        return SendStatus.SENT;
    }
  }

  /** A topic's update to each subscription it is for (one that awaits its own snapshot skips deltas until then). */
  private update(u: TopicUpdate): SendStatus {
    let status: SendStatus = SendStatus.SENT;
    const { subs } = this.parts;
    for (const sub of subs.receivers(u.topic)) {
      if (!subs.takes(sub, u.kind, u.topic)) continue;
      const r = this.write(updateFrame(u, sub, ++this.messageIds, this.version));
      if (r > status) status = r;
    }
    return status;
  }

  private write(frame: string | Buffer): SendStatus {
    return this.ws.send(frame, typeof frame !== 'string', this.compress) as SendStatus;
  }

  /** Writes a frame of the connection's own (CONNECTED) at once. */
  writeFrame(frame: string): void {
    if (this.ended || this.gone) return;
    this.ws.cork(() => this.write(frame));
    this.lastWriteAt = Date.now();
  }

  /** A heart-beat: one EOL. */
  beat(): void {
    if (this.ended || this.gone) return;
    this.ws.cork(() => this.ws.send('\n', false, false));
    this.lastWriteAt = Date.now();
  }

  buffered(): number {
    return this.gone ? 0 : this.ws.getBufferedAmount();
  }

  /**
   * Closes the WebSocket. A close no ERROR frame explained yet gets one (a
   * STOMP client sees no close codes), except a DISCONNECT's and a slow
   * consumer's (nothing more would get through).
   */
  end(code: number, reason: string): void {
    if (this.ended || this.gone) return;
    this.ended = true;
    if (!this.errored && code !== CloseCode.NORMAL && code !== CloseCode.SLOW_CONSUMER) {
      this.errored = true;
      this.ws.cork(() => this.write(closingFrame(code, reason, CLOSE_CODE_TEXT[code as CloseCodeT], this.version)));
    }
    this.ws.end(code, reason);
  }

  /** The socket closed (uWS close handler): nothing may be written any more. */
  closed(): void {
    this.gone = true;
  }
}
