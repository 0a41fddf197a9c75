// What STOMP headers name: destinations (/topic/… to read and publish,
// /service/… to make requests, /queue/… and /temp-queue/… for replies) and
// the tickfan-* subscription headers (max rate, field subset, resume points,
// keyed topics' table views and checksums).

import { ErrorCode, TickfanError, type ResumePoint, type TableViewRequest } from '../../protocol/index.js';
import { parseChecksumsFlag, parseViewList } from '../view-text.js';

export const TOPIC_PREFIX = '/topic/';
export const SERVICE_PREFIX = '/service/';
/** SEND here with a new token (passcode header) to refresh the connection's token: STOMP has no frame for it. */
export const TOKEN_DESTINATION = '/tickfan/token';
/** Where replies to requests may be sent: this connection only, never stored. */
export const REPLY_PREFIXES = ['/temp-queue/', '/queue/'] as const;

export type Destination =
  | { kind: 'topic'; name: string }
  | { kind: 'service'; name: string }
  /** A reply destination, named whole (e.g. /temp-queue/orders). */
  | { kind: 'reply'; name: string }
  /** The token refresh destination (SEND only). */
  | { kind: 'token'; name: string };

const WHERE = `use /topic/<topic> (subscribe to a topic or pattern, or publish), /service/<name> (SEND a request), /temp-queue/<name> and /queue/<name> (replies) or ${TOKEN_DESTINATION} (SEND a new token)`;

/** The destination a header names; throws BAD_REQUEST (missing) or BAD_TOPIC (unknown prefix). */
export function parseDestination(value: string | undefined, command: string): Destination {
  if (!value) throw new TickfanError(ErrorCode.BAD_REQUEST, `${command} needs a destination header: ${WHERE}`);
  if (value.startsWith(TOPIC_PREFIX)) return { kind: 'topic', name: value.slice(TOPIC_PREFIX.length) };
  if (value.startsWith(SERVICE_PREFIX)) return { kind: 'service', name: value.slice(SERVICE_PREFIX.length) };
  if (isReplyDestination(value)) return { kind: 'reply', name: value };
  if (value === TOKEN_DESTINATION) return { kind: 'token', name: value };
  throw new TickfanError(ErrorCode.BAD_TOPIC, `unknown destination ${JSON.stringify(value.slice(0, 200))}: ${WHERE}`);
}

export function isReplyDestination(value: string): boolean {
  return REPLY_PREFIXES.some((p) => value.startsWith(p) && value.length > p.length);
}

/** `tickfan-max-rate`: updates per second (0 or absent: every update). */
export function parseMaxRate(value: string | undefined): number {
  if (value === undefined || value === '') return 0;
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value.trim()) || !Number.isFinite(n)) {
    throw new TickfanError(ErrorCode.BAD_REQUEST, `tickfan-max-rate must be a number of updates per second (0: every update), not ${JSON.stringify(value.slice(0, 40))}`);
  }
  return n;
}

/** `tickfan-fields`: a comma-separated field subset (absent: every field). */
export function parseFields(value: string | undefined): string[] {
  if (!value) return [];
  return value.split(',').map((f) => f.trim()).filter(Boolean);
}

/**
 * `tickfan-resume`: `topic@epoch:version`, comma-separated — what the client
 * holds of each topic, from the tickfan-epoch and tickfan-version headers of
 * the last MESSAGE it applied. Topic names may hold `@` and `:`, so each point
 * splits at its last `@`.
 */
export function parseResume(value: string | undefined): ResumePoint[] {
  if (!value) return [];
  const out: ResumePoint[] = [];
  for (const raw of value.split(',')) {
    const item = raw.trim();
    if (!item) continue;
    const at = item.lastIndexOf('@');
    const m = at > 0 ? /^(\d{1,16}):(\d{1,16})$/.exec(item.slice(at + 1)) : null;
    const epoch = m ? Number(m[1]) : NaN;
    const version = m ? Number(m[2]) : NaN;
    if (!m || !Number.isSafeInteger(epoch) || !Number.isSafeInteger(version)) {
      throw new TickfanError(ErrorCode.BAD_REQUEST, `tickfan-resume: ${JSON.stringify(item.slice(0, 80))} is not topic@epoch:version (from the tickfan-epoch and tickfan-version of the last MESSAGE you applied)`);
    }
    out.push({ topic: item.slice(0, at), epoch, version });
  }
  return out;
}

const HEADERS = { tables: 'tickfan-tables', checksums: 'tickfan-checksums' } as const;

/**
 * `tickfan-tables`: keyed topics' table views, comma-separated
 * `table:depth[:field+field…]` (depth 0: every row; no fields: all), e.g.
 * `bids:10,asks:10` or `bids:10:qty+orders`. A table not listed is whole.
 */
export function parseTables(value: string | undefined): TableViewRequest[] | undefined {
  return parseViewList(value, HEADERS);
}

/** `tickfan-checksums`: `true` makes every keyed message carry the view's checksum. */
export function parseChecksums(value: string | undefined): boolean {
  return parseChecksumsFlag(value, HEADERS);
}
