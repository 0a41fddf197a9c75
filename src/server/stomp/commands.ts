// The STOMP client commands after CONNECT, each turned into dispatch
// messages: SUBSCRIBE and UNSUBSCRIBE (keyed topics: tickfan-tables,
// tickfan-checksums), SEND (a publish to a topic — a keyed batch in the HTTP
// publish's JSON form — or a request to a service), ACK and NACK (accepted; nothing persists to acknowledge).

import { ErrorCode, TickfanError, changesFromJson, type Payload } from '../../protocol/index.js';
import type { StompContext } from './context.js';
import { TOKEN_DESTINATION, isReplyDestination, parseChecksums, parseDestination, parseFields, parseMaxRate, parseResume, parseTables } from './destinations.js';
import { keyedPublish } from '../sse/keyed-commands.js';
import { refreshToken } from './token.js';
import type { StompFrame } from './frame.js';
import { ACK_MODES, type AckMode, type StompSub } from './subscriptions.js';

const bad = (message: string) => new TickfanError(ErrorCode.BAD_REQUEST, message);

/** SUBSCRIBE to /topic/<topic or pattern> (through fan-out) or to a reply destination (this connection's answers). */
export function subscribe(ctx: StompContext, f: StompFrame): void {
  const h = f.headers;
  const receipt = h.get('receipt') ?? null;
  const dest = parseDestination(h.get('destination'), 'SUBSCRIBE');
  // STOMP 1.0 made the id optional: the destination then names the subscription.
  const id = h.get('id') ?? (ctx.version === '1.0' ? h.get('destination')! : undefined);
  if (id === undefined) throw bad('SUBSCRIBE needs an id header: any name you choose; MESSAGE frames carry it and UNSUBSCRIBE takes it');
  if (ctx.subs.get(id)) throw bad(`subscription id ${JSON.stringify(id)} is already in use on this connection`);
  const ack = (h.get('ack') ?? 'auto') as AckMode;
  if (!ACK_MODES.includes(ack)) throw bad(`ack must be auto, client or client-individual, not ${JSON.stringify(ack)}`);
  if (dest.kind === 'token') throw new TickfanError(ErrorCode.BAD_TOPIC, `${TOKEN_DESTINATION} takes a SEND with a new token in its passcode header; there is nothing to subscribe to`);
  if (dest.kind === 'service') {
    throw new TickfanError(ErrorCode.BAD_TOPIC, `${dest.name}: requests are SENT to /service/<name>; subscribe to your reply-to destination (/temp-queue/<name>) for the answers`);
  }
  if (dest.kind === 'reply') {
    ctx.subs.add({ id, num: 0, destination: dest.name, kind: 'reply', ack, fields: null, patterns: [], waiting: null });
    if (receipt !== null) ctx.receiptInOrder(receipt);
    return;
  }
  const maxRate = parseMaxRate(h.get('tickfan-max-rate'));
  const fields = parseFields(h.get('tickfan-fields'));
  const resume = parseResume(h.get('tickfan-resume'));
  const tables = parseTables(h.get('tickfan-tables'));
  const checksums = parseChecksums(h.get('tickfan-checksums'));
  const { dispatch, fanout } = ctx.node;
  const conn = ctx.session.conn;
  // Parsed here too (fan-out caches it): frames may leave while dispatch works, and must find their subscription.
  const patterns = fanout.parsePatterns([dest.name]);
  // A topic the connection already receives through another subscription
  // shares that stream, which is past its snapshot: this subscription waits
  // for a snapshot of its own (everyone on the topic gets it; a snapshot may come at any time).
  let waiting: Set<string> | null = null;
  for (const name of conn.topics.keys()) if (patterns.some((p) => p.matches(name))) (waiting ??= new Set()).add(name);
  const num = ctx.nextId();
  const sub: StompSub = { id, num, destination: dest.name, kind: 'topic', ack, fields: fields.length ? new Set(fields) : null, patterns, waiting };
  ctx.subs.add(sub);
  ctx.pending.add(num, { type: 'receipt', receipt });
  dispatch.handle(ctx.session, { type: 'subscribe', id: num, topics: [dest.name], maxRate, fields, resume, timestamps: false, tables, checksums });
  if (!conn.subs.has(num)) {
    // Refused: its ERROR is queued, and the close follows it.
    ctx.subs.remove(id);
    return;
  }
  if (waiting) for (const name of waiting) dispatch.handle(ctx.session, { type: 'catchUp', topic: name, epoch: 0, version: -1 });
}

export function unsubscribe(ctx: StompContext, f: StompFrame): void {
  const h = f.headers;
  const receipt = h.get('receipt') ?? null;
  const id = h.get('id') ?? (ctx.version === '1.0' ? h.get('destination') : undefined);
  if (id === undefined) throw bad('UNSUBSCRIBE needs the id header of the subscription');
  const sub = ctx.subs.remove(id);
  if (!sub) throw new TickfanError(ErrorCode.UNKNOWN_SUBSCRIPTION, `no subscription ${JSON.stringify(id)} on this connection`);
  if (sub.kind === 'reply') {
    if (receipt !== null) ctx.receiptInOrder(receipt);
    return;
  }
  ctx.pending.add(sub.num, { type: 'receipt', receipt });
  ctx.node.dispatch.handle(ctx.session, { type: 'unsubscribe', id: sub.num });
}

/** True for an absent content-type or a JSON one. */
function isJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return true;
  const t = contentType.split(';')[0]!.trim().toLowerCase();
  return t === 'application/json' || t.endsWith('+json');
}

function jsonBody(f: StompFrame, what: string): unknown {
  const text = Buffer.from(f.body.buffer, f.body.byteOffset, f.body.byteLength).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw bad(`${what}: the body is not JSON (${(err as Error).message}); send a JSON object of fields, e.g. {"bid": 101.25, "ask": null}`);
  }
}

/** SEND to /topic/<topic> publishes its JSON object of fields; to /service/<name> makes a request. */
export function send(ctx: StompContext, f: StompFrame): void {
  const h = f.headers;
  if (h.has('transaction')) throw bad('tickfan does not support STOMP transactions (nothing is stored to commit): SEND without a transaction header');
  const receipt = h.get('receipt') ?? null;
  const dest = parseDestination(h.get('destination'), 'SEND');
  if (dest.kind === 'reply') throw new TickfanError(ErrorCode.BAD_TOPIC, `${dest.name} is a reply destination: the server delivers answers there; SEND to /topic/<topic> or /service/<name>`);
  if (dest.kind === 'token') return refreshToken(ctx, f);
  const contentType = h.get('content-type');
  if (dest.kind === 'topic') {
    if (!isJson(contentType)) throw bad(`a publish carries a JSON object of fields: send content-type:application/json (or none), not ${contentType}`);
    const body = jsonBody(f, `publish to ${dest.name}`);
    // A keyed batch ({"fields":{…},"tables":{…}}, as POST /publish takes it) or a flat object of fields.
    const keyed = keyedPublish(ctx.node.store, 0, dest.name, body, ctx.node.ingest.publishJson !== undefined);
    const changes = keyed ? keyed.changes : changesFromJson(body);
    // id 0: no ack wanted (an error still comes back, without a receipt-id).
    const id = receipt !== null ? ctx.nextId() : 0;
    if (id) ctx.pending.add(id, { type: 'receipt', receipt });
    ctx.node.dispatch.handle(ctx.session, keyed ? { ...keyed, id } : { type: 'publish', id, topic: dest.name, changes });
    return;
  }
  const replyTo = h.get('reply-to') ?? null;
  if (replyTo !== null && !isReplyDestination(replyTo)) {
    throw bad(`reply-to must be /temp-queue/<name> or /queue/<name>, not ${JSON.stringify(replyTo.slice(0, 100))}: answers go to this connection only`);
  }
  const timeout = h.get('tickfan-timeout-ms');
  if (timeout !== undefined && !/^\d{1,9}$/.test(timeout)) throw bad(`tickfan-timeout-ms must be a number of milliseconds, not ${JSON.stringify(timeout.slice(0, 20))}`);
  const payload: Payload = isJson(contentType)
    ? { fields: f.body.byteLength ? changesFromJson(jsonBody(f, `request to ${dest.name}`)) : new Map(), data: null }
    : { fields: null, data: f.body };
  const id = ctx.nextId();
  ctx.pending.add(id, { type: 'request', receipt, replyTo, correlationId: h.get('correlation-id') ?? null });
  ctx.node.dispatch.handle(ctx.session, { type: 'request', id, service: dest.name, payload, timeoutMs: timeout ? Number(timeout) : 0 });
}

/** ACK and NACK: accepted, with their receipt; tickfan stores nothing, so there is nothing to redeliver. */
export function acknowledge(ctx: StompContext, f: StompFrame): void {
  const receipt = f.headers.get('receipt');
  if (receipt !== undefined) ctx.receiptInOrder(receipt);
}
