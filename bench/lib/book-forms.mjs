// The book scenario's computed forms: one seeded market-by-price book
// (BookSim, the demo's) and, for the same events, the bytes of each form a
// full-depth subscriber would receive: tickfan protocol 2 (KeyedDelta2 in a
// frame), a Lightstreamer COMMAND-mode TLCP update per row change, a
// Binance-style depth-update JSON message, and today's flat form (one field
// `b.<price>` per level in a Delta2). Pure (no I/O).

import { FrameWriter2, KeyedEncoder, Encoder } from '../../dist/protocol/index.js';
import { Topic } from '../../dist/engine/topic.js';
import { BookSim } from '../../dist/demo/book-sim.js';
import { rng } from '../../dist/demo/market-sim.js';
import { lightstreamerLine, wsHeader } from './wire-forms.mjs';

export const BENCH_BOOK = { topic: 'book.BENCH', tick: 0.5, mid: 65_000, qtyDecimals: 4, qtyScale: 0.8 };
const utf8 = new TextEncoder();
const EPOCH = 1_700_000_000_000_000;

/** A fresh seeded book of `levels` a side: the same sequence the server publishes for the same seed. */
export function benchBook(levels, seed) {
  return new BookSim(BENCH_BOOK, levels, rng(seed));
}

/** The net change of one event's ops per table (as the engine reports it): key → upsert / replace / delete. */
function netChange(ops, shadow) {
  const tables = new Map();
  const before = new Map(); // `${table}:${key}` → existed before the batch
  const touch = (table, key) => {
    const id = `${table}:${key}`;
    if (!before.has(id)) before.set(id, shadow[table].has(key));
    let t = tables.get(table);
    if (!t) tables.set(table, (t = { clear: false, rows: new Map(), final: new Map(), deleted: new Set() }));
    return t;
  };
  for (const o of ops) {
    if (o.op === 'upsert') {
      const t = touch(o.table, o.key);
      t.final.set(o.key, { ...(t.final.get(o.key) ?? {}), ...o.fields });
      shadow[o.table].set(o.key, { ...(shadow[o.table].get(o.key) ?? {}), ...o.fields });
    } else if (o.op === 'delete') {
      const t = touch(o.table, o.key);
      t.final.set(o.key, null);
      t.deleted.add(o.key);
      shadow[o.table].delete(o.key);
    } else if (o.op === 'deleteRange') {
      for (const k of [...shadow[o.table].keys()]) {
        if (k < o.from || k > o.to) continue;
        const t = touch(o.table, k);
        t.final.set(k, null);
        t.deleted.add(k);
        shadow[o.table].delete(k);
      }
    }
  }
  for (const [name, t] of tables) {
    for (const [key, f] of t.final) {
      const existed = before.get(`${name}:${key}`);
      if (f === null) {
        if (existed) t.rows.set(key, { op: 'delete' });
      } else if (!existed || t.deleted.has(key)) t.rows.set(key, { op: 'replace', existed, fields: new Map(Object.entries(shadow[name].get(key))) });
      else t.rows.set(key, { op: 'upsert', fields: new Map(Object.entries(f)) });
    }
  }
  return { declared: [], tables: new Map([...tables].map(([n, t]) => [n, { clear: false, rows: t.rows }])) };
}

/** The summary's `ts` at the start (ms since 1970): BookSim stamps Date.now(), replaced by a clock of the run's own. */
const T0 = 1_796_000_000_000;

/**
 * Averages over `events` events of a `levels`-a-side book: bytes per event
 * and per row change in each form, row changes per event. The summary's `ts`
 * follows a simulated clock at `rate` level changes a second (the bench's
 * --changes: 20,000), not the machine's: at 20k/s it moves every ~13 events;
 * `rate` 1,000 moves it on every event (a feed stamping each one).
 * `checksums`: the subscriber asked for view checksums (each delta carries
 * one, 4 bytes). `version`: the book's version before the first event (the
 * body's varint version grows a byte at 2^14, 2^21, 2^28: a day at 13k
 * batches a second passes 10^9).
 */
export function bookForms({ levels = 2000, events = 20_000, seed = 19, rate = 20_000, checksums = false, version: firstVersion = 1 } = {}) {
  const book = benchBook(levels, seed);
  const image = book.image();
  image.fields.ts = T0;
  const shadow = { bids: new Map(), asks: new Map() };
  for (const o of image.tables.ops) if (o.op === 'upsert') shadow[o.table].set(o.key, { ...o.fields });
  const keyedEnc = new KeyedEncoder();
  const flatEnc = new Encoder();
  const frames = new FrameWriter2();
  // Field ids (summary and row fields) handed out on first use, as the server's topic does; the
  // image bound them, so later deltas carry ids only. Tables bound once (the subscriber's full view).
  const ids = new Map();
  const keyed = { id: 1, name: BENCH_BOOK.topic, epoch: EPOCH, fieldId: (f) => ids.get(f) ?? (ids.set(f, ids.size + 1), ids.size) };
  for (const f of [...Object.keys(image.fields), 'qty', 'orders']) keyed.fieldId(f);
  let keyedVersion = firstVersion;
  // Key bases as fan-out picks them (view-entry.ts keyBaseOf): each side's best key when first bound.
  const bindings = new Map([
    ['bids', { id: 0, spec: { name: 'bids', key: 'int', order: { key: 'desc' } }, depth: 0, fields: [], keyBase: book.bestBid }],
    ['asks', { id: 1, spec: { name: 'asks', key: 'int', order: { key: 'asc' } }, depth: 0, fields: [], keyBase: book.bestAsk }],
  ]);
  // Today's flat form: `b.<price>` / `a.<price>` = qty (null: level gone), summary beside.
  const flat = new Topic('book.FLAT', EPOCH, 0, 2);
  const price = (k) => (k * BENCH_BOOK.tick).toFixed(1);
  const flatImage = new Map(Object.entries(image.fields));
  for (const t of ['bids', 'asks']) for (const [k, f] of shadow[t]) flatImage.set(`${t[0]}.${price(k)}`, f.qty);
  flat.apply(flatImage, 0);
  // Lightstreamer: subscription 1 (COMMAND, items bids = 1, asks = 2: key|command|qty|orders), 2 (MERGE summary).
  const LS_SCHEMA = ['key', 'command', 'qty', 'orders'];
  const SUMMARY = ['mid', 'spread', 'last', 'ts'];
  const lsSent = { bids: new Map(), asks: new Map() };
  let lastSummary = { ...image.fields };
  // Per form: whole messages (`x`) and their row part (`xRows`: the message less the same message without its row changes).
  const sum = { p2: 0, p2Rows: 0, ls: 0, lsRows: 0, json: 0, jsonRows: 0, flat: 0, flatRows: 0, rowChanges: 0 };
  const NO_ROWS = { declared: [], tables: new Map() };
  for (let i = 0; i < events; i++) {
    const e = book.event();
    e.fields.ts = T0 + Math.floor((book.rowChanges * 1000) / rate);
    const change = netChange(e.tables.ops, shadow);
    let rows = 0;
    for (const t of change.tables.values()) rows += t.rows.size;
    sum.rowChanges += rows;
    const summary = Object.entries(e.fields).filter(([k, v]) => lastSummary[k] !== v);
    // protocol 2: one KeyedDelta2 in a frame, as a fast-path frame holds it.
    const version = ++keyedVersion;
    const o = { namesFrom: ids.size + 1, bind: false, ...(checksums ? { checksum: 0x9e3779b9 } : {}) };
    const p2 = frames.write(0, [keyedEnc.keyedDelta2(keyed, version - 1, version, summary, change, bindings, o)]).byteLength;
    sum.p2 += p2 + wsHeader(p2);
    sum.p2Rows += p2 - frames.write(0, [keyedEnc.keyedDelta2(keyed, version - 1, version, summary, NO_ROWS, bindings, o)]).byteLength;
    // Lightstreamer COMMAND mode: one line per row change (a range delete is one DELETE per level,
    // as Lightstreamer leaves it to the publisher); unchanged fields of a key empty. Lines + CR LF.
    let ls = 0;
    for (const [name, t] of change.tables) {
      for (const [key, c] of t.rows) {
        const sent = lsSent[name];
        const m = new Map([['key', String(key)]]);
        if (c.op === 'delete') {
          m.set('command', 'DELETE');
          sent.delete(key);
        } else {
          const prev = sent.get(key);
          m.set('command', prev ? 'UPDATE' : 'ADD');
          const now = { ...(prev ?? {}), ...Object.fromEntries(c.fields) };
          for (const f of ['qty', 'orders']) if (!prev || prev[f] !== now[f]) m.set(f, now[f]);
          sent.set(key, now);
        }
        ls += utf8.encode(lightstreamerLine(1, name === 'bids' ? 1 : 2, LS_SCHEMA, m)).byteLength + 2;
      }
    }
    sum.lsRows += ls;
    if (summary.length) ls += utf8.encode(lightstreamerLine(2, 1, SUMMARY, new Map(summary))).byteLength + 2;
    sum.ls += ls;
    // A depth-update JSON message (Binance style: prices and sizes as strings, "0" = level gone), with the summary.
    const side = (name) => [...(change.tables.get(name)?.rows ?? [])].map(([k, c]) => [price(k), c.op === 'delete' ? '0' : String(shadow[name].get(k).qty), c.op === 'delete' ? 0 : shadow[name].get(k).orders]);
    const depthJson = (b, a) => utf8.encode(JSON.stringify({ e: 'depthUpdate', E: e.fields.ts, s: 'BENCH', u: version, b, a, ...Object.fromEntries(summary) })).byteLength;
    const jb = depthJson(side('bids'), side('asks'));
    sum.json += jb + wsHeader(jb);
    sum.jsonRows += jb - depthJson([], []);
    // Today's flat form: the same changes as fields of a Delta2 (new levels bring their names).
    const fc = new Map(summary);
    for (const [name, t] of change.tables) for (const [k, c] of t.rows) fc.set(`${name[0]}.${price(k)}`, c.op === 'delete' ? null : shadow[name].get(k).qty);
    const fNames = flat.fieldIdsEnd;
    const fv = flat.apply(fc, 0);
    const fb = frames.write(0, [flatEnc.delta2(flat, fv - 1, fv, fc, { namesFrom: fNames, bind: false })]).byteLength;
    sum.flat += fb + wsHeader(fb);
    sum.flatRows += fb - frames.write(0, [flatEnc.delta2(flat, fv - 1, fv, summary, { namesFrom: fNames, bind: false })]).byteLength;
    lastSummary = { ...lastSummary, ...e.fields };
  }
  const per = (k) => ({ perUpdate: sum[k] / events, perRowChange: sum[`${k}Rows`] / sum.rowChanges });
  return {
    levels,
    events,
    rate,
    checksums,
    rowChangesPerEvent: sum.rowChanges / events,
    forms: { protocol2: per('p2'), lightstreamerCommand: per('ls'), depthJson: per('json'), flatFields: per('flat') },
  };
}
