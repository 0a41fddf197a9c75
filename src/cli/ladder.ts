// The text form of a keyed view for `tickfan sub --depth N`: an order-book
// ladder (asks above, best ask nearest the middle; bids below, best first) or,
// for other tables, one block per table. Pure: rows in, lines out.

import type { FieldValue } from '../protocol/index.js';

/** A row as the SDK's `sub.table(name).rows()` gives it. */
export interface LadderRow {
  readonly key: number | string;
  readonly fields: Readonly<Record<string, FieldValue>>;
}

export interface LadderInput {
  topic: string;
  version: number;
  /** The summary fields (the topic's flat state). */
  summary: Readonly<Record<string, FieldValue>>;
  /** Rows per table, in the table's sort order (best first). */
  tables: ReadonlyMap<string, readonly LadderRow[]>;
  /** Rows to show per table. */
  depth: number;
}

function cell(v: FieldValue | undefined): string {
  if (v === undefined) return '';
  if (v instanceof Uint8Array) return `<${v.length} bytes>`;
  return typeof v === 'string' ? v : String(v);
}

/** Decimals of a tick size (0.5 → 1, 0.01 → 2, 1 → 0). */
function tickDecimals(tick: number): number {
  return Math.max(0, Math.ceil(-Math.log10(tick) - 1e-9));
}

/**
 * The price of a key: key × `tick` when the summary carries a positive
 * numeric `tick` field (the demo books do), else the key itself.
 */
export function priceOf(key: number | string, tick: unknown): string {
  if (typeof key !== 'number' || typeof tick !== 'number' || !(tick > 0)) return String(key);
  return (key * tick).toFixed(tickDecimals(tick));
}

/** Row field names in first-seen order over some rows. */
function fieldNames(rows: readonly LadderRow[]): string[] {
  const seen = new Set<string>();
  for (const r of rows) for (const f of Object.keys(r.fields)) seen.add(f);
  return [...seen];
}

function pad(cells: string[], widths: number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
}

/** A header line: topic, version and the summary fields (not `tick` or `ts`, which say nothing to a reader). */
export function headerLine(topic: string, version: number, summary: Readonly<Record<string, FieldValue>>): string {
  const s = Object.entries(summary)
    .filter(([k]) => k !== 'tick' && k !== 'ts')
    .map(([k, v]) => `${k}=${cell(v)}`)
    .join(' ');
  return `${topic} v${version}${s ? ` ${s}` : ''}`;
}

/**
 * The view as lines. With tables `bids` and `asks`: a ladder, columns
 * side, price, then the row fields; `spread` between the sides. Other tables
 * (or one side only): a block per table, rows in their order.
 */
export function renderLadder(v: LadderInput): string[] {
  const tick = v.summary.tick;
  const out = [headerLine(v.topic, v.version, v.summary)];
  const bids = v.tables.get('bids');
  const asks = v.tables.get('asks');
  if (bids && asks && v.tables.size === 2) {
    const b = bids.slice(0, v.depth || bids.length);
    const a = asks.slice(0, v.depth || asks.length).slice().reverse();
    const names = fieldNames([...a, ...b]);
    const rows: string[][] = [
      ['', 'price', ...names],
      ...a.map((r) => ['ask', priceOf(r.key, tick), ...names.map((n) => cell(r.fields[n]))]),
      ['---', '', ...names.map(() => '')],
      ...b.map((r) => ['bid', priceOf(r.key, tick), ...names.map((n) => cell(r.fields[n]))]),
    ];
    const best = [asks[0]?.key, bids[0]?.key];
    if (typeof best[0] === 'number' && typeof best[1] === 'number') {
      const spread = typeof tick === 'number' && tick > 0 ? ((best[0] - best[1]) * tick).toFixed(tickDecimals(tick)) : String(best[0] - best[1]);
      rows[a.length + 1] = ['---', `spread ${spread}`, ...names.map(() => '')];
    }
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
    for (const r of rows) out.push(pad(r, widths));
    return out;
  }
  for (const [name, all] of v.tables) {
    const rows = all.slice(0, v.depth || all.length);
    const names = fieldNames(rows);
    const lines = [['key', ...names], ...rows.map((r) => [String(r.key), ...names.map((n) => cell(r.fields[n]))])];
    const widths = lines[0]!.map((_, i) => Math.max(...lines.map((r) => (r[i] ?? '').length)));
    out.push(`[${name}] ${all.length} rows`);
    for (const l of lines) out.push(`  ${pad(l, widths)}`);
  }
  return out;
}
