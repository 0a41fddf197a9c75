// Keyed topics' table views written as text, where a JSON object cannot go:
// STOMP's `tickfan-tables` header and the `?tables=` of `GET /sse`. A list
// of `table[:depth[:field+field…]]`, comma-separated (depth 0: every row; no
// fields: all of them), e.g. `bids:10,asks:10` or `bids:10:qty+orders`; and
// the `checksums` flag beside it. Bad text is a BAD_REQUEST naming the entry.

import { ErrorCode, TickfanError, type TableViewRequest } from '../protocol/index.js';
import { viewReq } from './fanout/view-entry.js';

/** Where the text came from, for messages: `tickfan-tables`, `?tables=`. */
export interface ViewTextSource {
  readonly tables: string;
  readonly checksums: string;
  readonly depth?: string;
}

/** `table`, `table:depth` or `table:depth:fields` (the fields may hold anything but `+` and `,`). */
const ENTRY = /^([^:]+)(?::(\d{1,7})(?::(.*))?)?$/;

/**
 * `value` as table views; undefined when empty. `defaultDepth` is the depth of
 * an entry naming no depth (`bids`); without it every entry must name one.
 * The result is checked as a Subscribe's views are (each table once, depth
 * in range), so a bad list is refused where it is read, not at subscribe.
 */
export function parseViewList(value: string | undefined, src: ViewTextSource, defaultDepth?: number): TableViewRequest[] | undefined {
  if (!value || !value.trim()) return undefined;
  const form = defaultDepth === undefined ? 'table:depth or table:depth:field+field' : 'table, table:depth or table:depth:field+field';
  const out = value.split(',').map((raw) => {
    const item = raw.trim();
    const m = ENTRY.exec(item);
    const depth = m?.[2] !== undefined ? Number(m[2]) : defaultDepth;
    if (!m || depth === undefined) {
      throw new TickfanError(ErrorCode.BAD_REQUEST, `${src.tables}: ${JSON.stringify(item.slice(0, 80))} is not ${form} (e.g. bids:10,asks:10)`);
    }
    return { table: m[1]!.trim(), depth, fields: (m[3] ?? '').split('+').map((f) => f.trim()).filter(Boolean) };
  });
  try {
    viewReq(out, false);
  } catch (err) {
    throw new TickfanError((err as TickfanError).errorCode ?? ErrorCode.BAD_REQUEST, `${src.tables}: ${(err as Error).message}`);
  }
  return out;
}

/** The checksums flag: `true` makes every keyed message carry the view's checksum; absent, empty or `false`: none. */
export function parseChecksumsFlag(value: string | undefined, src: ViewTextSource): boolean {
  if (value === undefined || value === '' || value === 'false') return false;
  if (value === 'true') return true;
  throw new TickfanError(ErrorCode.BAD_REQUEST, `${src.checksums} must be true or false, not ${JSON.stringify(value.slice(0, 20))}`);
}

/** A default depth as text (`?depth=`): a whole number of rows, 0 for every row. */
export function parseDepth(value: string | undefined, src: ViewTextSource): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!/^[0-9]{1,7}$/.test(value) || !Number.isSafeInteger(n)) {
    throw new TickfanError(ErrorCode.BAD_REQUEST, `${src.depth ?? 'depth'} must be a whole number of rows (0: every row), not ${JSON.stringify(value.slice(0, 20))}`);
  }
  return n;
}
