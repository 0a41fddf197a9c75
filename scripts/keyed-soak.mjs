// Keyed soak (issue 19, "Memory and encoding": a soak churning 1M distinct
// keys through a 2k-row book stays flat). Not part of `npm test`:
//   npm run build && node --expose-gc scripts/keyed-soak.mjs [--keys 1000000] [--rows 2000] [--every 100000] [--max-seconds 300]
// One server in this process (the built dist/), a topic with two tables: an
// int book (`bids`, key desc) and a string-keyed blotter (`orders`, by px then
// key; keys ORD-<n>, never reused). Every batch inserts new keys into both and
// deletes the oldest once a table holds `rows`, so `keys` distinct keys pass
// through tables that never exceed `rows` rows. Three SDK subscribers follow
// it over WebSocket (depth 10; every row; depth 10 at maxRate 1) and must end
// at the last version with the sequencer's rows. Every `every` keys it prints
// heap and RSS after GC; at the end it says whether both stayed flat (the
// last sample within 10% + 8 MB of the first sample taken after the tables
// filled). Bounded by the key count and by --max-seconds.

import { startServer } from '../dist/index.js';
import { connect } from '../dist/client/index.js';
import WebSocket from 'ws';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const KEYS = arg('keys', 1_000_000);
const ROWS = arg('rows', 2_000);
const EVERY = arg('every', 100_000);
const MAX_MS = arg('max-seconds', 300) * 1000;
const PER = 10; // new keys per table per batch
const gc = globalThis.gc ?? (() => {});
if (!globalThis.gc) console.warn('run with node --expose-gc for heap figures after GC');

const server = await startServer({ port: 0, host: '127.0.0.1', log: () => {} });
const topic = 'soak.book';
const declare = [
  { name: 'bids', key: 'int', order: { key: 'desc' } },
  { name: 'orders', key: 'string', order: { fields: [{ field: 'px', dir: 'desc' }], key: 'asc' } },
];
server.publishBatch(topic, { fields: { n: 0 }, tables: { declare, ops: [] } });

const clients = [];
const subs = [
  { tables: { bids: { depth: 10 }, orders: { depth: 10 } } },
  {},
  { tables: { bids: { depth: 10 }, orders: { depth: 10 } }, maxRate: 1 },
].map((opts) => {
  const c = connect(`ws://127.0.0.1:${server.port}/ws`, { WebSocket });
  clients.push(c);
  return c.subscribe(topic, opts);
});
await Promise.all(subs.map((s) => s.ready));

const mb = (n) => (n / 1048576).toFixed(1);
const samples = [];
function sample(keys, t0) {
  gc();
  const m = process.memoryUsage();
  const t = server.store.get(topic).tables;
  samples.push({ keys, heap: m.heapUsed, rss: m.rss });
  console.log(`${String(keys).padStart(8)} keys  ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s  heap ${mb(m.heapUsed).padStart(6)} MB  rss ${mb(m.rss).padStart(6)} MB  ext ${mb(m.external).padStart(5)} MB  rows bids ${t.table('bids').size} orders ${t.table('orders').size}  version ${server.store.get(topic).version}`);
}

const t0 = Date.now();
let next = 0; // keys inserted so far, per table
let oldest = 0;
let nextSample = EVERY;
sample(0, t0);
while (next < KEYS && Date.now() - t0 < MAX_MS) {
  const ops = [];
  for (let i = 0; i < PER; i++, next++) {
    ops.push({ op: 'upsert', table: 'bids', key: 1_000_000_000 + next, fields: { qty: (next % 997) / 10 + 0.1 } });
    ops.push({ op: 'upsert', table: 'orders', key: `ORD-${next}`, fields: { px: next % 500, qty: (next % 89) + 1 } });
  }
  while (next - oldest > ROWS) {
    ops.push({ op: 'delete', table: 'bids', key: 1_000_000_000 + oldest }, { op: 'delete', table: 'orders', key: `ORD-${oldest}` });
    oldest++;
  }
  server.publishBatch(topic, { fields: { n: next }, tables: { ops } });
  if (next % 2000 === 0) await new Promise((r) => setImmediate(r));
  if (next >= nextSample) {
    await new Promise((r) => setTimeout(r, 20));
    sample(next, t0);
    nextSample += EVERY;
  }
}

const last = server.store.get(topic).version;
const deadline = Date.now() + 30_000;
while (subs.some((s) => s.version !== last) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
const t = server.store.get(topic).tables;
const full = subs[1];
const exact =
  subs.every((s) => s.version === last) &&
  full.table('bids').size === t.table('bids').size &&
  full.table('orders').size === t.table('orders').size &&
  JSON.stringify(subs[0].table('orders').rows().map((r) => r.key)) === JSON.stringify(t.table('orders').top(10).map((r) => r.key));
const filled = samples.find((s) => s.keys >= ROWS * 2) ?? samples[1] ?? samples[0];
const end = samples[samples.length - 1];
const flat = (a, b) => b <= a * 1.1 + 8 * 1048576;
console.log(
  `keys ${next} in ${((Date.now() - t0) / 1000).toFixed(1)} s, ${last} versions; subscribers at the last version and exact: ${exact}; ` +
    `heap ${mb(filled.heap)} → ${mb(end.heap)} MB (${flat(filled.heap, end.heap) ? 'flat' : 'GROWING'}), rss ${mb(filled.rss)} → ${mb(end.rss)} MB (${flat(filled.rss, end.rss) ? 'flat' : 'GROWING'}); ` +
    `client stats ${JSON.stringify(clients.map((c) => ({ gaps: c.stats.gaps, snapshots: c.stats.snapshots })))}`,
);
for (const c of clients) c.close();
await server.close();
process.exit(exact && flat(filled.heap, end.heap) && flat(filled.rss, end.rss) ? 0 : 1);
