// The JSON answer of GET /snapshot/<topic>: the summary fields and, for a
// keyed topic, its tables with their rows in sort order, optionally cut to
// the top `depth` rows, to some tables and to some row fields. Built in one
// synchronous pass, so it is exact at the one version it names.

import type { Topic } from '../engine/index.js';
import { ErrorCode, TickfanError, fieldsToJson } from '../protocol/index.js';

/** The query as copied from the request (uWS' request dies after its callback). */
export interface SnapshotQuery {
  readonly depth: string | undefined;
  readonly tables: string | undefined;
  readonly fields: string | undefined;
}

const MAX_DEPTH = 1_000_000;

function names(raw: string | undefined): string[] | undefined {
  if (raw === undefined || raw === '') return undefined;
  return raw.split(',').filter((s) => s !== '');
}

/** `{"topic","epoch","version","ts","stale","fields",["tables"]}`; throws BAD_REQUEST on a bad query. */
export function snapshotJson(t: Topic, q: SnapshotQuery): string {
  let depth = Infinity;
  if (q.depth !== undefined && q.depth !== '') {
    const n = Number(q.depth);
    if (!/^[0-9]+$/.test(q.depth) || !Number.isSafeInteger(n) || n < 1 || n > MAX_DEPTH) {
      throw new TickfanError(ErrorCode.BAD_REQUEST, `?depth must be a whole number of rows from 1 to ${MAX_DEPTH}`);
    }
    depth = n;
  }
  const pickTables = names(q.tables);
  const pickFields = names(q.fields);
  const body: Record<string, unknown> = { topic: t.name, epoch: t.epoch, version: t.version, ts: t.ts, stale: t.stale, fields: fieldsToJson(t.state) };
  const held = t.tables;
  if (held === undefined) {
    if (pickTables !== undefined) throw new TickfanError(ErrorCode.BAD_REQUEST, `${t.name} holds no tables`);
    return JSON.stringify(body);
  }
  for (const name of pickTables ?? []) if (held.table(name) === undefined) throw new TickfanError(ErrorCode.BAD_REQUEST, `${t.name} has no table ${name}`);
  const tables: Record<string, unknown> = Object.create(null);
  for (const table of held.tables()) {
    if (pickTables !== undefined && !pickTables.includes(table.name)) continue;
    const rows: [unknown, unknown][] = [];
    for (const row of depth === Infinity ? table.rows() : table.top(depth)) {
      const f = pickFields === undefined ? row.fields : pickFields.filter((k) => row.fields.has(k)).map((k) => [k, row.fields.get(k)!] as const);
      rows.push([row.key, fieldsToJson(f)]);
    }
    const { key, order, maxRows } = table.spec;
    tables[table.name] = { key, order, ...(maxRows === undefined ? {} : { maxRows }), size: table.size, rows };
  }
  body.tables = tables;
  return JSON.stringify(body);
}
