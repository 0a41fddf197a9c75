// Request-reply in the SDK: `serve` answers requests to a service with a
// handler (offers are renewed on every reconnect), `request` asks one and
// settles with the responder's answer or a typed error. Payloads are field
// objects (checked like publishes) or bytes.

import { ErrorCode, TickfanError, type ClientMessage, type Payload, type ResponseMsg, type ServiceRequestMsg } from '../protocol/index.js';
import { ClientError, ClientErrorCode } from './errors.js';
import type { FieldValue } from '../protocol/index.js';
import { changesOf, objectOf } from './publishes.js';

/** What requests and replies carry: an object of field values (null deletes nothing here: it is a value) or bytes. */
export type RequestPayload = Record<string, FieldValue | null> | Uint8Array;

/** Who asked, and what: given to a service handler with each request. */
export interface RequestMeta {
  correlationId: number;
  service: string;
  /** The requester's identity (its token subject, or "anonymous"). */
  requester: string;
}

/** Answers one request: its result (fields or bytes) is the reply; a throw fails the request with RESPONDER_FAILED. */
export type ServiceHandler = (payload: RequestPayload, meta: RequestMeta) => RequestPayload | Promise<RequestPayload>;

/** Options of `client.request()`. */
export interface RequestOptions {
  /** Milliseconds to wait for the answer (the server caps it at its requestTimeoutMs). Default: the server's. */
  timeout?: number;
}

/** A service this client answers. */
export interface ServiceHandle {
  readonly service: string;
  /** Settles once the server accepted the offer (rejects when it refused it: permissions, bad name). */
  readonly ready: Promise<void>;
  /** Stops answering; requests being answered still get their replies. */
  close(): void;
}

/** What the services part needs from the client. */
export interface ServicesHost {
  nextId(): number;
  /** Sends now or queues for the next connection. */
  send(m: ClientMessage): 'sent' | 'queued' | 'dropped';
  sendIfConnected(m: ClientMessage): boolean;
  error(err: Error): void;
}

interface Offer {
  service: string;
  handler: ServiceHandler;
  readyDone: boolean;
  resolve: () => void;
  reject: (err: Error) => void;
}

interface Pending {
  resolve: (p: RequestPayload) => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout>;
  sent: boolean;
}

/** Grace after a request's timeout before the client gives up on the server's own answer. */
const CLIENT_GRACE_MS = 2_000;
/**
 * A request that names no timeout gets the server's (requestTimeoutMs, which
 * the client does not know): the client's own guard then waits for the
 * longest a server may be configured with. A dropped connection fails the
 * request at once anyway.
 */
const SERVER_MAX_TIMEOUT_MS = 600_000;

/** A payload for the wire; BAD_FIELD / BAD_REQUEST when it is neither bytes nor an object of field values. */
export function toPayload(p: RequestPayload): Payload {
  if (p instanceof Uint8Array) return { fields: null, data: new Uint8Array(p) };
  if (typeof p !== 'object' || p === null || Array.isArray(p)) {
    throw new TickfanError(ErrorCode.BAD_REQUEST, 'a request or reply payload is an object of field values or a Uint8Array');
  }
  return { fields: changesOf(p), data: null };
}

function fromPayload(p: Payload): RequestPayload {
  return p.data !== null ? p.data : objectOf(p.fields);
}

export class Services {
  private readonly offers = new Map<number, Offer>();
  private readonly pending = new Map<number, Pending>();

  constructor(private readonly host: ServicesHost) {}

  serve(service: string, handler: ServiceHandler): ServiceHandle {
    if (typeof handler !== 'function') throw new ClientError(ClientErrorCode.BAD_OPTION, 'serve(service, handler): handler must be a function');
    const id = this.host.nextId();
    let resolve!: () => void;
    let reject!: (err: Error) => void;
    const ready = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
    ready.catch(() => undefined); // a refusal nobody awaits must not crash the process
    const offer: Offer = { service, handler, readyDone: false, resolve, reject };
    this.offers.set(id, offer);
    // While disconnected, opened() offers it with everything else.
    this.host.sendIfConnected({ type: 'serve', id, service });
    return {
      service,
      ready,
      close: () => {
        if (!this.offers.delete(id)) return;
        this.host.sendIfConnected({ type: 'unserve', id });
      },
    };
  }

  request(service: string, payload: RequestPayload, options: RequestOptions = {}): Promise<RequestPayload> {
    let p: Payload;
    try {
      p = toPayload(payload);
    } catch (err) {
      return Promise.reject(err);
    }
    const timeout = options.timeout ?? 0;
    if (!Number.isInteger(timeout) || timeout < 0) return Promise.reject(new ClientError(ClientErrorCode.BAD_OPTION, 'request timeout must be a whole number of milliseconds'));
    const id = this.host.nextId();
    return new Promise<RequestPayload>((resolve, reject) => {
      // The server answers a timeout itself; this only covers a server that cannot (connection gone).
      const timer = setTimeout(() => {
        if (this.pending.delete(id)) reject(new TickfanError(ErrorCode.REQUEST_TIMEOUT, `${service}: no answer within ${timeout || SERVER_MAX_TIMEOUT_MS} ms`));
      }, (timeout || SERVER_MAX_TIMEOUT_MS) + CLIENT_GRACE_MS);
      (timer as { unref?: () => void }).unref?.();
      const entry: Pending = { resolve, reject, timer, sent: false };
      this.pending.set(id, entry);
      const how = this.host.send({ type: 'request', id, service, payload: p, timeoutMs: timeout });
      if (how === 'dropped') {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new ClientError(ClientErrorCode.DISCONNECTED, 'too many messages queued while disconnected; the request was not sent'));
      } else entry.sent = how === 'sent';
    });
  }

  /** Offers to renew on a new connection (the server forgot them with the old one). */
  opened(): ClientMessage[] {
    for (const p of this.pending.values()) p.sent = true;
    return [...this.offers].map(([id, o]) => ({ type: 'serve', id, service: o.service }));
  }

  /** An Ack for one of our offers; false when it is not ours. */
  acked(id: number): boolean {
    const o = this.offers.get(id);
    if (!o) return false;
    if (!o.readyDone) (o.readyDone = true), o.resolve();
    return true;
  }

  /** An Error naming one of our offers or requests; false when it is not ours. */
  failed(id: number, err: Error): boolean {
    const o = this.offers.get(id);
    if (o) {
      this.offers.delete(id);
      if (!o.readyDone) (o.readyDone = true), o.reject(err);
      else this.host.error(err);
      return true;
    }
    const p = this.pending.get(id);
    if (!p) return false;
    this.settle(id, p, () => p.reject(err));
    return true;
  }

  response(m: ResponseMsg): void {
    const p = this.pending.get(m.id);
    if (!p) return; // already given up on (client-side guard): nothing to deliver it to
    this.settle(m.id, p, () => (m.code === 0 ? p.resolve(fromPayload(m.payload)) : p.reject(new TickfanError(m.code as ErrorCode, m.message))));
  }

  private settle(id: number, p: Pending, how: () => void): void {
    clearTimeout(p.timer);
    this.pending.delete(id);
    how();
  }

  /** Runs the handler of the offer a request names, and sends its answer (or its failure). */
  serviceRequest(m: ServiceRequestMsg): void {
    const o = this.offers.get(m.serveId);
    const answer = (payload: Payload, failed: boolean, error: string) =>
      this.host.sendIfConnected({ type: 'reply', correlation: m.correlation, payload, failed, error });
    const fail = (why: string) => answer({ fields: new Map(), data: null }, true, why);
    if (!o) return void fail(`this client no longer serves ${m.service}`);
    let result: RequestPayload | Promise<RequestPayload>;
    try {
      result = o.handler(fromPayload(m.payload), { correlationId: m.correlation, service: m.service, requester: m.requester });
    } catch (err) {
      return void fail((err as Error)?.message ?? String(err));
    }
    Promise.resolve(result).then(
      (r) => {
        let p: Payload;
        try {
          p = toPayload(r);
        } catch (err) {
          return void fail(`the handler's answer is not a payload: ${(err as Error).message}`);
        }
        answer(p, false, '');
      },
      (err: unknown) => fail((err as Error)?.message ?? String(err)),
    );
  }

  /** The connection dropped: requests already sent may or may not have been answered, so they fail. */
  disconnected(err: Error, willReconnect: boolean): void {
    for (const [id, p] of this.pending) {
      if (willReconnect && !p.sent) continue;
      this.settle(id, p, () => p.reject(err));
    }
  }
}
