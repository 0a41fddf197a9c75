// One STOMP conversation: CONNECT (version, heart-beats, token) answered by
// CONNECTED, then each frame to its command handler, DISCONNECT, and every
// way it ends badly: an ERROR frame a person can act on, then the close.

import { CloseCode, ErrorCode, TickfanError } from '../../protocol/index.js';
import type { NodeParts } from '../node-parts.js';
import type { Session } from '../session.js';
import { acknowledge, send, subscribe, unsubscribe } from './commands.js';
import type { StompContext } from './context.js';
import { STOMP_VERSIONS, type HeaderList, type StompFrame, type StompVersion } from './frame.js';
import { negotiateHeartbeat, type Beating, type HeartbeatTerms, type StompHeartbeats } from './heartbeat.js';
import { connectedFrame } from './outgoing.js';
import { StompParser, StompSyntaxError } from './parser.js';
import { PendingTable } from './pending.js';
import type { StompSink } from './sink.js';
import { StompSubscriptions } from './subscriptions.js';
import { bearer } from './token.js';

/** Header lines one frame may have. */
export const MAX_HEADERS = 128;
/** Bytes of a frame's command and headers (a long tickfan-resume list fits). */
export const MAX_HEADER_BYTES = 64 * 1024;
/** Frames a client may send while its CONNECT token is being verified. */
const MAX_HELD_FRAMES = 1_000;

export type StompNode = Pick<NodeParts, 'dispatch' | 'fanout' | 'ingest' | 'opts' | 'sessions' | 'store'>;

type Phase = 'new' | 'connecting' | 'connected' | 'closing';

/** The highest version both speak: `accept-version` lists the client's (absent: 1.0 only). */
function pickVersion(accept: string | undefined): StompVersion | null {
  const theirs = new Set((accept ?? '1.0').split(',').map((v) => v.trim()));
  return STOMP_VERSIONS.find((v) => theirs.has(v)) ?? null;
}

export class StompConnection implements StompContext, Beating {
  readonly subs = new StompSubscriptions();
  readonly pending = new PendingTable();
  version: StompVersion = '1.0';
  terms: HeartbeatTerms = { header: '0,0', outMs: 0, inMs: 0 };
  lastReadAt = Date.now();
  private phase: Phase = 'new';
  private readonly parser: StompParser;
  private sink: StompSink | null = null;
  /** Frames that came while the CONNECT token was being verified. */
  private held: StompFrame[] = [];
  private connectTimer: NodeJS.Timeout | null = null;
  private ids = 0;

  constructor(
    readonly node: StompNode,
    readonly session: Session,
    private readonly heartbeats: StompHeartbeats,
  ) {
    this.parser = new StompParser(
      { maxFrameBytes: node.opts.maxPayloadBytes, maxHeaders: MAX_HEADERS, maxHeaderBytes: MAX_HEADER_BYTES },
      { frame: (f) => this.frame(f), heartbeat: () => {} },
    );
    session.conn.json = true; // keyed topics come as JSON bodies (shared-message.ts)
  }

  get lastWriteAt(): number {
    return this.sink?.lastWriteAt ?? 0;
  }

  /** The socket is open: CONNECT must come (and its token pass) within authTimeoutMs. */
  attach(sink: StompSink): void {
    this.sink = sink;
    const ms = this.node.opts.authTimeoutMs;
    this.connectTimer = setTimeout(() => {
      if (this.phase === 'new' || this.phase === 'connecting') this.end(CloseCode.POLICY, `no CONNECT frame (or no verified token) within ${ms} ms`);
    }, ms);
  }

  /** One WebSocket message: any part of any number of frames. */
  received(data: ArrayBuffer): void {
    this.lastReadAt = Date.now();
    if (this.phase === 'closing') return;
    const max = this.node.opts.maxPayloadBytes;
    if (data.byteLength > max) {
      return this.fatal(new TickfanError(ErrorCode.VALUE_TOO_LARGE, `a WebSocket message of ${data.byteLength} bytes is larger than the ${max} accepted`), CloseCode.TOO_BIG, 'message too big');
    }
    try {
      this.parser.feed(new Uint8Array(data));
    } catch (err) {
      if (err instanceof StompSyntaxError) return this.fatal(new TickfanError(ErrorCode.BAD_FRAME, err.message), CloseCode.PROTOCOL_ERROR, 'bad frame');
      // A fault of ours: this connection ends, nobody else notices.
      this.fatal(err, CloseCode.POLICY, 'internal error');
    }
  }

  /** The socket closed: no timer of this conversation may fire again. */
  closed(): void {
    this.phase = 'closing';
    this.parser.stop();
    this.sink?.closed();
    this.heartbeats.delete(this);
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = null;
  }

  private frame(f: StompFrame): void {
    switch (this.phase) {
      case 'new':
        if (f.command === 'CONNECT' || f.command === 'STOMP') return this.connect(f);
        return this.fatal(new TickfanError(ErrorCode.BAD_REQUEST, `the first frame must be CONNECT (or STOMP), not ${f.command}`), CloseCode.PROTOCOL_ERROR, 'not connected');
      case 'connecting':
        this.held.push(f);
        if (this.held.length > MAX_HELD_FRAMES) this.fatal(new TickfanError(ErrorCode.BAD_REQUEST, `more than ${MAX_HELD_FRAMES} frames before CONNECTED`), CloseCode.POLICY, 'too many frames');
        return;
      case 'connected':
        return this.handle(f);
      case 'closing':
        return;
    }
  }

  private handle(f: StompFrame): void {
    try {
      switch (f.command) {
        case 'SUBSCRIBE':
          return subscribe(this, f);
        case 'UNSUBSCRIBE':
          return unsubscribe(this, f);
        case 'SEND':
          return send(this, f);
        case 'ACK':
        case 'NACK':
          return acknowledge(this, f);
        case 'DISCONNECT':
          return this.disconnect(f.headers.get('receipt') ?? null);
        case 'CONNECT':
        case 'STOMP':
          throw new TickfanError(ErrorCode.BAD_REQUEST, 'already connected: CONNECT comes once per connection');
        case 'BEGIN':
        case 'COMMIT':
        case 'ABORT':
          throw new TickfanError(ErrorCode.BAD_REQUEST, `${f.command}: tickfan does not support STOMP transactions (nothing is stored to commit)`);
        default:
          throw new TickfanError(ErrorCode.UNKNOWN_MESSAGE, `${f.command} is not a STOMP client command (CONNECT, SUBSCRIBE, UNSUBSCRIBE, SEND, ACK, NACK, DISCONNECT)`);
      }
    } catch (err) {
      this.refuse(err, f.headers.get('receipt') ?? null);
    }
  }

  private connect(f: StompFrame): void {
    this.phase = 'connecting';
    const accept = f.headers.get('accept-version');
    const version = pickVersion(accept);
    if (!version) {
      const err = new TickfanError(ErrorCode.PROTOCOL_VERSION, `this server speaks STOMP 1.2, 1.1 and 1.0; the client accepts ${accept}`);
      return this.fatal(err, CloseCode.PROTOCOL_ERROR, 'unsupported STOMP version');
    }
    try {
      this.terms = negotiateHeartbeat(f.headers.get('heart-beat'), this.node.opts.heartbeatMs, version);
    } catch (err) {
      return this.fatal(err, CloseCode.PROTOCOL_ERROR, 'bad heart-beat header');
    }
    this.version = this.parser.version = version;
    if (this.sink) this.sink.version = version;
    // The token: passcode (what STOMP clients fill in), or an Authorization header; else ?token= or anonymous grants.
    const token = f.headers.get('passcode') || bearer(f.headers.get('Authorization') ?? f.headers.get('authorization'));
    if (!token) return this.connected();
    this.node.sessions.grantsFor(token).then(
      (grants) => {
        if (this.phase !== 'connecting') return;
        this.session.grants = grants;
        this.connected();
      },
      (err: unknown) => {
        if (this.phase !== 'connecting') return;
        this.fatal(err instanceof TickfanError ? err : new TickfanError(ErrorCode.UNAUTHORIZED, String(err)), CloseCode.UNAUTHORIZED, 'unauthorized');
      },
    );
  }

  private connected(): void {
    if (!this.session.grants) {
      const err = new TickfanError(ErrorCode.UNAUTHORIZED, "this server needs a token: put it in CONNECT's passcode header (or Authorization: Bearer <token>), or connect to /stomp?token=<token>");
      return this.fatal(err, CloseCode.UNAUTHORIZED, 'unauthorized');
    }
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    const { conn } = this.session;
    this.sink?.writeFrame(connectedFrame(this.version, this.terms.header, `tickfan-${conn.id}`, this.node.opts.name));
    this.phase = 'connected';
    this.node.sessions.started(this.session);
    this.heartbeats.add(this);
    const held = this.held;
    this.held = [];
    for (const f of held) {
      if (this.phase !== 'connected') break;
      this.handle(f);
    }
  }

  /** DISCONNECT: with a receipt, RECEIPT (after everything queued) then close; without, close now. */
  private disconnect(receipt: string | null): void {
    this.phase = 'closing';
    this.parser.stop();
    if (receipt === null) return this.node.fanout.end(this.session.conn, CloseCode.NORMAL, 'disconnected');
    const id = this.nextId();
    this.pending.add(id, { type: 'disconnect', receipt });
    this.node.dispatch.handle(this.session, { type: 'ping', nonce: BigInt(id) });
  }

  // ---------------------------------------------------------------- StompContext

  nextId(): number {
    do this.ids = this.ids >= 0xffff_ffff ? 1 : this.ids + 1;
    while (this.subs.hasNum(this.ids) || this.pending.has(this.ids));
    return this.ids;
  }

  refuse(err: unknown, receipt: string | null): void {
    if (this.phase === 'closing') return;
    const id = receipt !== null ? this.nextId() : 0;
    if (id) this.pending.add(id, { type: 'receipt', receipt });
    const code = err instanceof TickfanError ? err.errorCode : ErrorCode.INTERNAL;
    const close = code === ErrorCode.BAD_FRAME || code === ErrorCode.UNKNOWN_MESSAGE ? CloseCode.PROTOCOL_ERROR : CloseCode.POLICY;
    this.fatal(err, close, 'refused', id);
  }

  receiptInOrder(receipt: string, headers?: HeaderList): void {
    const id = this.nextId();
    this.pending.add(id, headers ? { type: 'receipt', receipt, headers } : { type: 'receipt', receipt });
    this.node.dispatch.handle(this.session, { type: 'ping', nonce: BigInt(id) });
  }

  // ---------------------------------------------------------------- Beating

  beat(): void {
    this.sink?.beat();
  }

  silent(ms: number): void {
    this.end(CloseCode.POLICY, `heart-beat timeout: nothing from the client for ${ms} ms`);
  }

  // ---------------------------------------------------------------- endings

  /** An ERROR frame for `err` (answering frame `id`'s receipt), then the close. */
  private fatal(err: unknown, code: number, reason: string, id = 0): void {
    if (this.phase === 'closing') return;
    this.phase = 'closing';
    this.parser.stop();
    this.node.sessions.fail(this.session, err, id);
    this.node.fanout.end(this.session.conn, code, reason);
  }

  /** A close no error message explains: the sink's ERROR frame says `reason`. */
  private end(code: number, reason: string): void {
    if (this.phase === 'closing') return;
    this.phase = 'closing';
    this.parser.stop();
    this.node.fanout.end(this.session.conn, code, reason);
  }
}
