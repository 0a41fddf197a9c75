// tickfan client SDK: one connection (WebSocket, or SSE where WebSocket is
// blocked), many subscriptions, every topic held at an exact (epoch, version).
// This is the public face; the work is done by the connection (transports,
// reconnect, liveness), gap healing (replicas, catch-ups) and the router.

import { ErrorCode, TickfanError, TopicState, isPattern, type Changes, type ClientMessage, type FieldValue, type KeyedBatchMsg, type SubscribeMsg } from '../protocol/index.js';
import { Connection, ConnectionState, MAX_QUEUED, type StateChange } from './connection.js';
import { Emitter } from './emitter.js';
import { endpoints } from './endpoints.js';
import { ClientError, ClientErrorCode, serverError } from './errors.js';
import { GapHealer } from './gap-healing.js';
import { deliverKeyed } from './keyed-delivery.js';
import { keyedPublishOf, type BatchPublish } from './keyed-publish.js';
import { tableRequests } from './table-options.js';
import type { KeyedReplica } from './keyed-replica.js';
import { checkOptions, type ClientOptions } from './options.js';
import { PendingPublishes, changesOf, objectOf, type PublishAck } from './publishes.js';
import type { TopicReplica } from './replica.js';
import { Router } from './router.js';
import { Services, type RequestOptions, type RequestPayload, type ServiceHandle, type ServiceHandler } from './services.js';
import { newStats, type ClientStats } from './stats.js';
import { Subscription, type SubscribeOptions, type SubscriptionHost } from './subscription.js';
import type { TokenEvent } from './tokens.js';
import type { Incoming, SessionInfo, TransportKind } from './transport.js';

/** The events of a TickfanClient: `state`, `error`, `disconnect`. */
export interface ClientEvents {
  /** The connection state changed (`{ from, to }`: 'connecting', 'connected', 'disconnected', 'closed'). */
  state: StateChange;
  /** Includes the ClientError of a terminal close (4001, 4010, 1008, 1002, 4002), after which the state is 'closed'. */
  error: Error;
  /** The connection closed; `code` is the WebSocket close code (4008: slow consumer; 4001, 4010, 1008, 1002, 4002 end the client). */
  disconnect: { code: number; reason: string };
  /** The server took the connection's token, at connect or as a refresh: its `exp` (s) and `expiresAt` (ms), `sub`, `refreshed`. Not emitted without a token. */
  token: TokenEvent;
}

/**
 * Connects to a tickfan server.
 * @example
 * const client = connect('ws://127.0.0.1:8080/ws');
 * const sub = client.subscribe('px.AAPL', { maxRate: 4 });
 * sub.on('update', (u) => console.log(u.topic, u.version, u.state));
 */
export function connect(url: string, options: ClientOptions = {}): TickfanClient {
  return new TickfanClient(url, options);
}

/**
 * A connection to a tickfan server, from `connect()`: subscriptions that hold
 * exact state and heal every gap with one catch-up, publishes acknowledged
 * with their version, request-reply, and reconnects with backoff and resume.
 */
export class TickfanClient extends Emitter<ClientEvents> implements SubscriptionHost {
  /** Counters: gaps and how they healed, snapshots, deltas, frames, reconnects. */
  readonly stats: ClientStats = newStats();
  private readonly router = new Router();
  private readonly publishes = new PendingPublishes();
  private readonly services: Services;
  private readonly healer: GapHealer;
  private readonly conn: Connection;
  /** Subscriptions with pending `reached()` calls: told when their topics advance. */
  private readonly watching = new Set<Subscription>();
  private nextId = 1;

  constructor(
    readonly url: string,
    private readonly options: ClientOptions = {},
  ) {
    super();
    checkOptions(url, options);
    const send = (m: ClientMessage): void => void this.conn.send(m);
    this.healer = new GapHealer(this.stats, { send, fullRate: (t) => this.router.fullRate(t) }, options.catchUpTimeoutMs ?? 5000);
    this.conn = new Connection(endpoints(url, options.sseUrl), options, this.stats, {
      state: (change) => this.onState(change),
      opened: (info) => this.onOpen(info),
      message: (m) => this.onMessage(m),
      sequenceGap: () => this.healer.sequenceGap(),
      closed: (code, reason) => this.onClose(code, reason),
      tick: (now) => this.healer.tick(now),
      error: (err) => this.emit('error', err),
      token: (e) => this.emit('token', e),
    });
    this.services = new Services({
      nextId: () => this.nextId++,
      send: (m) => this.conn.send(m),
      sendIfConnected: (m) => this.conn.sendIfConnected(m),
      error: (err) => this.emit('error', err),
    });
    this.conn.start();
  }

  /** 'connecting' | 'connected' | 'disconnected' | 'closed'. */
  get state(): ConnectionState {
    return this.conn.state;
  }

  /** The transport in use (or being tried): 'ws' or 'sse'; null before the first attempt. */
  get transport(): TransportKind | null {
    return this.conn.kind;
  }

  // ------------------------------------------------------------ public API

  /** Subscribes to a topic or a pattern (`px.*`, `px.>`, `>`). */
  subscribe(topicOrPattern: string, options: SubscribeOptions = {}): Subscription {
    if (this.state === ConnectionState.CLOSED) throw this.closedError();
    const sub = new Subscription(this, this.nextId++, topicOrPattern, isPattern(topicOrPattern), options);
    this.router.add(sub);
    // While disconnected, onOpen subscribes it with everything else.
    this.conn.sendIfConnected(this.subscribeMessage(sub));
    return sub;
  }

  /**
   * Publishes fields (null deletes); resolves with the version the server
   * assigned. A value that is not a field value rejects with a TickfanError
   * `TICKFAN_ERR_BAD_FIELD` naming the field, and nothing is sent.
   */
  publish(topic: string, fields: Record<string, FieldValue | null>): Promise<PublishAck> {
    const no = this.unusable();
    if (no) return Promise.reject(no);
    let changes: Changes;
    try {
      changes = changesOf(fields);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.sendPublish(topic, changes);
  }

  /**
   * Publishes one keyed batch (summary fields and row ops over the topic's
   * tables, one version for all of it) over WebSocket; resolves with the
   * version the server assigned. A refused batch changes nothing and rejects
   * with a TickfanError naming the table and row (ROW_GUARD, BAD_KEY,
   * BAD_REQUEST for an undeclared table…).
   * @example
   * const ack = await client.publishBatch('blotter.desk-42', { tables: {
   *   declare: [{ name: 'orders', key: 'string', order: { key: 'asc' } }],
   *   ops: [{ op: 'replace', table: 'orders', key: 'O-1', fields: { state: 'working', qty: 100 } }] } });
   */
  publishBatch(topic: string, batch: BatchPublish): Promise<PublishAck> {
    const no = this.unusable();
    if (no) return Promise.reject(no);
    let msg: ReturnType<typeof keyedPublishOf>;
    try {
      msg = keyedPublishOf(batch);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.transport === 'sse') return Promise.reject(new TickfanError(ErrorCode.NOT_SUPPORTED, 'keyed publishes go over WebSocket (this client fell back to SSE): use POST /publish with the keyed JSON form'));
    return this.sendPublish(topic, msg.changes, msg.keyed);
  }

  /** Why nothing can be sent now (closed, or disconnected with reconnect off); null when it can. */
  private unusable(): Error | null {
    if (this.state === ConnectionState.CLOSED) return this.closedError();
    if (this.state === ConnectionState.DISCONNECTED && this.options.reconnect === false) {
      return new ClientError(ClientErrorCode.DISCONNECTED, 'the connection is closed and reconnect is off');
    }
    return null;
  }

  private sendPublish(topic: string, changes: Changes, keyed?: KeyedBatchMsg): Promise<PublishAck> {
    const id = this.nextId++;
    return this.publishes.track(
      id,
      () => this.conn.send(keyed ? { type: 'publish', id, topic, changes, keyed } : { type: 'publish', id, topic, changes }),
      () => new ClientError(ClientErrorCode.DISCONNECTED, `more than ${MAX_QUEUED} messages queued while disconnected; not sent`),
    );
  }

  /**
   * Answers requests to `service` (a name, or a pattern such as `orders.*`)
   * with `handler`: what it returns (or resolves to) is the reply; what it
   * throws reaches the requester as RESPONDER_FAILED with its message. When
   * several clients serve a service, each request goes to one of them.
   * @example
   * const svc = client.serve('orders.submit', async (order, meta) => ({ status: 'accepted', id: 42 }));
   * svc.close();
   */
  serve(service: string, handler: ServiceHandler): ServiceHandle {
    if (this.state === ConnectionState.CLOSED) throw this.closedError();
    return this.services.serve(service, handler);
  }

  /**
   * Sends one request to one responder of `service`; resolves with its reply,
   * or rejects with a TickfanError: NO_RESPONDER, REQUEST_TIMEOUT,
   * RESPONDER_GONE, RESPONDER_FAILED, PERMISSION_DENIED, BAD_FIELD…
   * @example
   * const reply = await client.request('orders.submit', { side: 'buy', qty: 100 }, { timeout: 2000 });
   */
  request(service: string, payload: RequestPayload, options: RequestOptions = {}): Promise<RequestPayload> {
    if (this.state === ConnectionState.CLOSED) return Promise.reject(this.closedError());
    if (this.state === ConnectionState.DISCONNECTED && this.options.reconnect === false) {
      return Promise.reject(new ClientError(ClientErrorCode.DISCONNECTED, 'the connection is closed and reconnect is off'));
    }
    return this.services.request(service, payload, options);
  }

  /** Held state of any topic this client receives. */
  stateOf(topic: string): { epoch: number; version: number; state: Record<string, FieldValue> } | undefined {
    const r = this.healer.held(topic);
    return r ? { epoch: r.epoch, version: r.version, state: r.view(null) } : undefined;
  }

  /** Closes the connection for good: no reconnect; pending publishes and requests reject with CLOSED. */
  close(): void {
    if (this.state === ConnectionState.CLOSED) return;
    this.conn.close();
    const err = new ClientError(ClientErrorCode.CLOSED, 'the client was closed');
    this.publishes.failAll(err);
    this.services.disconnected(err, false);
    for (const sub of [...this.watching]) sub.endWaits(err);
  }

  /** CLOSED, saying why when the server ended the client (the terminal close's ClientError is its cause). */
  private closedError(): ClientError {
    const why = this.conn.failure;
    return why ? new ClientError(ClientErrorCode.CLOSED, `the client is closed: ${why.message}`, { cause: why, closeCode: why.closeCode }) : new ClientError(ClientErrorCode.CLOSED, 'the client is closed');
  }

  // ------------------------------------------------------------ SubscriptionHost

  /** @internal */
  replica(topic: string): TopicReplica | undefined {
    return this.healer.held(topic);
  }

  /** @internal */
  keyed(topic: string): KeyedReplica | undefined {
    return this.healer.keyed(topic);
  }

  /** @internal */
  watch(sub: Subscription, on: boolean): void {
    if (on) this.watching.add(sub);
    else this.watching.delete(sub);
  }

  /** A topic's held version moved: wake the `reached()` calls waiting on it. */
  private advanced(topic: string): void {
    if (this.watching.size === 0) return;
    for (const sub of [...this.watching]) sub.advanced(topic);
  }

  /** @internal */
  sendPause(sub: Subscription, paused: boolean): void {
    if (!paused) this.healer.resuming(sub.topics);
    // While disconnected, onOpen re-sends the pause state with the subscription.
    this.conn.sendIfConnected({ type: paused ? 'pause' : 'resume', id: sub.id });
  }

  /** @internal Use `sub.unsubscribe()`. */
  unsubscribe(sub: Subscription): void {
    this.forget(sub);
    this.conn.sendIfConnected({ type: 'unsubscribe', id: sub.id });
  }

  private forget(sub: Subscription): void {
    this.router.remove(sub);
    this.healer.forget(sub.topics, (t) => this.router.covered(t));
  }

  /** A subscribe carrying the exact point held of each topic it covers. */
  private subscribeMessage(sub: Subscription): SubscribeMsg {
    const resume = this.healer.resumePoints(sub.isPattern ? sub.topics : [sub.pattern]);
    // maxRate is a float32 on the wire: SSE sends the value a WebSocket would.
    const maxRate = Math.fround(sub.options.maxRate ?? 0);
    const m: SubscribeMsg = { type: 'subscribe', id: sub.id, topics: [sub.pattern], maxRate, fields: [...(sub.options.fields ?? [])], resume, timestamps: sub.options.timestamps === true };
    const tables = tableRequests(sub.options.tables);
    if (tables) m.tables = tables;
    if (sub.options.checksums) m.checksums = true;
    return m;
  }

  // ------------------------------------------------------------ connection events

  private onState(change: StateChange): void {
    // Everything queued went out with the resubscriptions, just before.
    if (change.to === ConnectionState.CONNECTED) this.publishes.markSent();
    this.emit('state', change);
  }

  /** A transport opened: bring the server up to date with every subscription. */
  private onOpen(info: SessionInfo | null): ClientMessage[] {
    const out: ClientMessage[] = [];
    // The server restored these (SSE resume): their catch-ups follow in this event.
    const restored = info?.resumed ? new Map(info.subs.map((s) => [s.id, s.paused])) : null;
    // Resubscribe everything else, each with the exact points it holds.
    for (const sub of this.router.all()) {
      const paused = restored?.get(sub.id);
      if (paused === undefined) {
        out.push(this.subscribeMessage(sub));
        if (sub.paused) out.push({ type: 'pause', id: sub.id });
        continue;
      }
      restored!.delete(sub.id);
      this.healer.restored(sub.isPattern ? sub.topics : [sub.pattern]);
      if (paused !== sub.paused) out.push({ type: sub.paused ? 'pause' : 'resume', id: sub.id });
    }
    // Unsubscribed while the stream was down.
    if (restored) for (const id of restored.keys()) out.push({ type: 'unsubscribe', id });
    out.push(...this.services.opened());
    return out;
  }

  private onClose(code: number, reason: string): void {
    this.emit('disconnect', { code, reason });
    // A publish sent on this connection may or may not have been applied: its
    // caller must decide. One still queued was not sent: it goes out on the
    // next connection, unless there will be none.
    // After a terminal close they fail with its error: nothing will be retried.
    const err = this.conn.failure ?? new ClientError(ClientErrorCode.DISCONNECTED, `connection closed (${code}${reason ? ` ${reason}` : ''}) before the server acknowledged`);
    this.publishes.failAll(err, this.conn.willReconnect);
    this.services.disconnected(err, this.conn.willReconnect);
  }

  private onMessage(m: Incoming): void {
    switch (m.type) {
      case 'unresolved':
        // A protocol-2 delta naming a field id not learnt yet: heal the topic like any gap.
        if (m.topic !== null && this.router.covered(m.topic)) this.healer.lost(m.topic);
        else if (m.topic === null) this.emit('error', new TickfanError(ErrorCode.BAD_FRAME, `server sent an unusable protocol-2 message: ${m.reason}`));
        return;
      case 'snapshot': {
        // Still in flight after an unsubscribe: nobody holds this topic any more.
        if (!this.router.covered(m.topic)) return;
        const r = this.healer.applySnapshot(m);
        const head = { topic: m.topic, epoch: m.epoch, version: m.version, snapshot: true, updates: 0, ts: m.ts };
        this.router.deliver(r, head, Object.fromEntries(m.fields));
        if (this.healer.freshEpoch(r)) this.router.status(m.topic, 'ok');
        this.advanced(m.topic);
        return;
      }
      case 'delta': {
        if (!this.router.covered(m.topic)) return;
        const r = this.healer.applyDelta(m);
        if (r) this.router.deliver(r, { topic: m.topic, epoch: m.epoch, version: m.version, snapshot: false, updates: m.updates, ts: m.ts }, objectOf(m.changes));
        if (r) this.advanced(m.topic);
        return;
      }
      case 'keyedSnapshot':
      case 'keyedDelta': {
        if (!this.router.covered(m.topic)) return;
        const { r, res } = m.type === 'keyedSnapshot' ? this.healer.applyKeyedSnapshot(m) : this.healer.applyKeyedDelta(m);
        if (res.kind !== 'applied') return;
        deliverKeyed(this.router, r, m, res); // commits: the held version advances after the callbacks
        if (m.type === 'keyedSnapshot' && this.healer.freshEpoch(r)) this.router.status(m.topic, 'ok');
        this.advanced(m.topic);
        return;
      }
      case 'topicStatus': {
        // GONE: the server does not hold the topic any more (its history ended); what is held is kept, flagged stale.
        const stale = m.state !== TopicState.OK;
        this.healer.stale(m.topic, stale, m.epoch);
        this.router.status(m.topic, stale ? 'stale' : 'ok');
        return;
      }
      case 'heartbeat':
        this.healer.heartbeat(m);
        return;
      case 'serviceRequest':
        this.services.serviceRequest(m);
        return;
      case 'response':
        this.services.response(m);
        return;
      case 'ack': {
        const sub = this.router.get(m.id);
        if (!sub) {
          if (!this.services.acked(m.id)) this.publishes.ack(m);
          return;
        }
        // Catch-ups for this subscription came before its ack; a topic that got none was already current.
        this.healer.acked(sub.topics);
        // A pattern is ready once its current topics' images arrived (they
        // precede the ack); a single topic once its first image is held, and
        // a keyed one once the held view covers what it asked for (else at
        // its first delivery: the widened view's image is on its way).
        if (sub.isPattern || (this.healer.held(sub.pattern) && sub.viewHeld())) sub.markReady();
        return;
      }
      case 'error': {
        const err = serverError(m.code, m.message);
        if (this.publishes.fail(m.id, err) || this.services.failed(m.id, err)) return;
        const sub = this.router.get(m.id);
        if (sub) {
          this.forget(sub);
          sub.fail(err);
        } else this.emit('error', err);
        return;
      }
      default:
        return;
    }
  }
}


export { TickfanError };
