// Dispatch: one client message (from a WebSocket frame or an SSE command) to
// fan-out or ingest, with its permission checks, and its answer (ack or
// typed error) back on the same connection.

import { TopicPattern, isPattern, validateTopic, type TopicStore } from '../engine/index.js';
import { CloseCode, ErrorCode, MAX_PROTOCOL, PROTOCOL_VERSION, TickfanError, type Changes, type ClientMessage, type KeyedBatchMsg, type Payload, type PublishMsg, type ReplyMsg, type RequestMsg, type SubscribeMsg } from '../protocol/index.js';
import { mayPublish, mayRequest, mayServe, maySubscribe } from './auth.js';
import { viewReq, type Fanout } from './fanout/index.js';
import { keyedNotSupported, type Ingest, type PublishResult } from './ingest.js';
import { EMPTY_PAYLOAD, checkPayload, type ServiceGate } from './services/index.js';
import type { Session, Sessions } from './session.js';
import type { Responder } from './token-refresh.js';

export class Dispatch {
  constructor(
    private readonly fanout: Fanout,
    private readonly ingest: Ingest,
    private readonly sessions: Sessions,
    private readonly services: ServiceGate,
    private readonly store: TopicStore,
    private readonly maxPublishesPerSecond: number,
  ) {}

  /**
   * The messages of one frame (or SSE POST), in order. A Hello with a token
   * holds back what follows it until the token is verified (a refresh too, so
   * that its answer comes before theirs); messages before a bad one count.
   */
  readonly frame = (s: Session, msgs: readonly ClientMessage[]): void => {
    for (let i = 0; i < msgs.length; i++) {
      const m = msgs[i]!;
      if (s.authWaiting) {
        s.authWaiting.push(m);
      } else if (m.type === 'hello' && m.token) {
        this.handle(s, m);
        this.sessions.helloToken(s, m.token, msgs.slice(i + 1), this.frame);
        return;
      } else this.handle(s, m);
    }
  };

  /** Handles one client message on a session. */
  readonly handle = (s: Session, m: ClientMessage): void => {
    const { fanout, sessions } = this;
    const enc = fanout.encoder;
    const conn = s.conn;
    switch (m.type) {
      case 'hello':
        // No protocol field (0 on the wire: FlatBuffers leaves a default out) asks
        // for no change: a Hello sent only to carry a token keeps the connection
        // in the protocol it speaks (protocol 1 on a new connection).
        if (m.protocol === 0) return;
        if (m.protocol < PROTOCOL_VERSION || m.protocol > MAX_PROTOCOL) {
          sessions.fail(s, new TickfanError(ErrorCode.PROTOCOL_VERSION, `this server speaks protocols ${PROTOCOL_VERSION}–${MAX_PROTOCOL}; the client sent ${m.protocol}`));
          fanout.end(conn, CloseCode.PROTOCOL_ERROR, 'unsupported protocol version');
          return;
        }
        try {
          fanout.setProtocol(conn, m.protocol);
        } catch (err) {
          sessions.fail(s, err);
        }
        return;
      case 'subscribe':
        try {
          const count = this.subscribe(s, m);
          fanout.reply(conn, enc.ack(m.id, '', 0, 0, count));
        } catch (err) {
          const topic = (err as { topic?: unknown }).topic;
          sessions.fail(s, err, m.id, typeof topic === 'string' ? topic : (m.topics.find((t) => isPattern(t)) ?? m.topics[0] ?? ''));
        }
        return;
      case 'unsubscribe':
      case 'pause':
      case 'resume':
        try {
          if (m.type === 'unsubscribe') fanout.unsubscribe(conn, m.id);
          else fanout.setPaused(conn, m.id, m.type === 'pause');
          fanout.reply(conn, enc.ack(m.id, '', 0, 0, 0));
        } catch (err) {
          sessions.fail(s, err, m.id);
        }
        return;
      case 'publish':
        try {
          this.publish(s, m.id, m.topic, m.changes, m.keyed, m.keyedJson);
        } catch (err) {
          sessions.fail(s, err, m.id, m.topic);
        }
        return;
      case 'catchUp':
        try {
          fanout.catchUpRequest(conn, m.topic, m.epoch, m.version);
        } catch (err) {
          sessions.fail(s, err, 0, m.topic);
        }
        return;
      case 'ping':
        fanout.reply(conn, enc.pong(m.nonce));
        return;
      case 'pong':
        return;
      case 'serve':
      case 'unserve': {
        const ack = () => fanout.reply(conn, enc.ack(m.id, '', 0, 0, 0));
        const refused = (err: unknown) => sessions.fail(s, err, m.id, m.type === 'serve' ? m.service : '');
        try {
          // The ack means "requests may come": with workers, only once the main thread's router has the offer.
          const offered = m.type === 'serve' ? this.serve(s, m.id, m.service) : this.unserve(s, m.id);
          if (offered instanceof Promise) offered.then(ack, refused);
          else ack();
        } catch (err) {
          refused(err);
        }
        return;
      }
      case 'request':
        this.request(s, m);
        return;
      case 'reply':
        this.reply(s, m);
        return;
    }
  };

  // ---------------------------------------------------------------- request-reply

  /** The session as a responder: requests routed to it arrive as ServiceRequest messages. */
  private responder(s: Session): Responder {
    return (s.responder ??= {
      offers: new Map(),
      deliver: (d) => {
        const p = d.payload;
        this.fanout.reply(s.conn, this.fanout.encoder.serviceRequest(d.correlation, d.serveId, d.service, d.requester, p, d.timeoutMs));
      },
    });
  }

  private serve(s: Session, id: number, service: string): void | Promise<void> {
    const grants = s.grants;
    if (!grants) throw new TickfanError(ErrorCode.UNAUTHORIZED, 'send a token before serving');
    if (!isPattern(service)) validateTopic(service, this.store.limits.maxTopicLength);
    const pattern = TopicPattern.parse(service, this.store.limits.maxTopicLength);
    if (!mayServe(grants, pattern)) throw new TickfanError(ErrorCode.PERMISSION_DENIED, `not allowed to serve ${service}: it is not inside this connection's serve grants`);
    const link = this.responder(s);
    // Kept so that a token refresh can withdraw what its grants no longer cover.
    const offered = this.services.serve(link, id, pattern, grants.subject);
    link.offers.set(id, pattern);
    if (offered instanceof Promise) offered.catch(() => link.offers.delete(id));
    return offered;
  }

  private unserve(s: Session, id: number): void {
    const link = this.responder(s);
    link.offers.delete(id);
    this.services.unserve(link, id);
  }

  private request(s: Session, m: RequestMsg): void {
    const { fanout } = this;
    const answer = (code: number, message: string, payload: Payload = EMPTY_PAYLOAD, responder = '') => {
      if (!s.conn.closed) fanout.reply(s.conn, fanout.encoder.response(m.id, code, message, payload, responder));
    };
    try {
      const grants = s.grants;
      if (!grants) throw new TickfanError(ErrorCode.UNAUTHORIZED, 'send a token before making requests');
      validateTopic(m.service, this.store.limits.maxTopicLength);
      if (!mayRequest(grants, m.service)) throw new TickfanError(ErrorCode.PERMISSION_DENIED, `not allowed to request ${m.service}: it is not inside this connection's request grants`);
      checkPayload(this.store, m.service, m.payload);
      this.services.request(s, grants.subject, m.service, m.payload, m.timeoutMs, (o) => {
        if (o.ok) answer(0, '', o.payload, o.responder);
        else answer(o.error.errorCode, o.error.message);
      });
    } catch (err) {
      if (err instanceof TickfanError) {
        this.sessions.count(err);
        answer(err.errorCode, err.message);
      } else this.sessions.fail(s, err, m.id, m.service);
    }
  }

  private reply(s: Session, m: ReplyMsg): void {
    const link = this.responder(s);
    if (m.failed) return this.services.reply(link, m.correlation, { ok: false, message: m.error });
    try {
      checkPayload(this.store, 'reply', m.payload);
    } catch (err) {
      // The responder hears why; its requester gets RESPONDER_FAILED with the same reason, not a wait for the timeout.
      this.sessions.fail(s, err);
      return this.services.reply(link, m.correlation, { ok: false, message: `the reply was refused: ${(err as Error).message}` });
    }
    this.services.reply(link, m.correlation, { ok: true, payload: m.payload });
  }

  private subscribe(s: Session, m: SubscribeMsg): number {
    const patterns = this.fanout.parsePatterns(m.topics);
    const grants = s.grants;
    if (!grants) throw new TickfanError(ErrorCode.UNAUTHORIZED, 'send a token (Hello, ?token= or Authorization: Bearer) before subscribing');
    const denied = patterns.find((p) => !maySubscribe(grants, p));
    if (denied) {
      // Says nothing about the topic (whether it exists, its state): only that it is not granted.
      const err = new TickfanError(ErrorCode.PERMISSION_DENIED, `not allowed to subscribe to ${denied.source}: it is not inside this connection's subscribe grants`);
      throw Object.assign(err, { topic: denied.source });
    }
    return this.fanout.subscribe(s.conn, m.id, patterns, m.maxRate, m.fields, m.resume, m.timestamps, viewReq(m.tables, m.checksums));
  }

  private publish(s: Session, id: number, topic: string, changes: Changes, keyed?: KeyedBatchMsg, keyedJson?: PublishMsg['keyedJson']): void {
    const { fanout } = this;
    const grants = s.grants;
    if (!grants) throw new TickfanError(ErrorCode.UNAUTHORIZED, 'send a token before publishing');
    if (!mayPublish(grants, topic)) throw new TickfanError(ErrorCode.PERMISSION_DENIED, `not allowed to publish to ${topic}`);
    if (!this.sessions.takePublishToken(s)) throw new TickfanError(ErrorCode.RATE_LIMITED, `more than ${this.maxPublishesPerSecond} publishes per second on this connection`);
    const done = (r: PublishResult) => {
      fanout.publishedBy(s.conn, topic, r.epoch, r.version);
      if (id) fanout.reply(s.conn, fanout.encoder.ack(id, topic, r.epoch, r.version, 0));
    };
    // A keyed batch (row ops with the summary, one version): only where the ingest can apply one.
    let r: PublishResult | Promise<PublishResult>;
    if (keyedJson) {
      // A JSON command's batch naming tables this node does not hold (sse/keyed-commands.ts): read by the topic's origin.
      if (!this.ingest.publishJson) throw keyedNotSupported(topic);
      r = this.ingest.publishJson(topic, keyedJson);
    } else if (keyed) {
      if (!this.ingest.publishBatch) throw keyedNotSupported(topic);
      r = this.ingest.publishBatch(topic, { fields: changes, tables: keyed });
    } else r = this.ingest.publish(topic, changes);
    if (r instanceof Promise) r.then(done, (err: unknown) => this.sessions.fail(s, err, id, topic));
    else done(r);
  }
}
