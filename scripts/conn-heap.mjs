// conn-heap — what one idle subscribed connection costs the server's JS heap
// (and RSS), and which objects make it up. A tickfan server (from dist/, run
// `npm run build` first) runs in a child process under --expose-gc; this
// process opens protocol-2 connections to it with the bench's load generator,
// each subscribed to 1 of --topics topics. At each step the child runs a full
// GC and reports heap and RSS; with --snapshot it also writes a heap snapshot,
// and the per-connection difference between the first and the last step is
// printed as a class histogram (self sizes).
//
//   node scripts/conn-heap.mjs                     # steps 500,2000,10000
//   node scripts/conn-heap.mjs --steps 500,2000 --snapshot
//   node scripts/conn-heap.mjs --json out.json     # the figures as JSON too
//   node scripts/conn-heap.mjs --settle 20         # wait 20 s idle before each measure (V8's memory reducer)

import { fork } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';

const CHILD = process.argv[2] === '--child';

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = process.argv[i + 1];
  return v === undefined || v.startsWith('--') ? true : v;
}

if (CHILD) await child();
else await parent();

/** The server: startServer() from dist/, seeded topics, answers `measure` and `snapshot` over IPC. */
async function child() {
  const { startServer } = await import('../dist/index.js');
  const topics = Number(process.env.CONN_HEAP_TOPICS);
  const server = await startServer({ port: 0, host: '127.0.0.1', maxConnectionsPerIp: 10_000_000, log: () => {} });
  for (let i = 0; i < topics; i++) server.publish(topicName(i), { t: 1, bid: 100.5, ask: 101.5, last: 101, size: 3 });
  const measure = () => {
    for (let i = 0; i < 4; i++) globalThis.gc();
    const m = process.memoryUsage();
    return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, connections: server.stats.connections, subscriptions: server.stats.subscriptions };
  };
  process.on('message', (msg) => {
    if (msg.type === 'measure') process.send({ id: msg.id, value: measure() });
    else if (msg.type === 'snapshot') {
      const m = measure();
      const file = v8.writeHeapSnapshot(msg.file);
      process.send({ id: msg.id, value: { ...m, file } });
    } else if (msg.type === 'exit') server.close().then(() => process.exit(0));
  });
  process.send({ type: 'ready', port: server.port });
}

function topicName(i) {
  return `px.C${String(i).padStart(4, '0')}`;
}

/** Class histogram of a heap snapshot: bytes and counts by node type and constructor name. */
function histogram(file) {
  const snap = JSON.parse(readFileSync(file, 'utf8'));
  const meta = snap.snapshot.meta;
  const fields = meta.node_fields;
  const width = fields.length;
  const types = meta.node_types[0];
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  const nodes = snap.nodes;
  const strings = snap.strings;
  const out = new Map();
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + iType]];
    let key;
    if (type === 'object' || type === 'closure' || type === 'native' || type === 'hidden' || type === 'array' || type === 'object shape') key = `${type}: ${strings[nodes[i + iName]]}`;
    else key = `(${type})`;
    const e = out.get(key) ?? { bytes: 0, count: 0 };
    e.bytes += nodes[i + iSize];
    e.count++;
    out.set(key, e);
  }
  return out;
}

async function parent() {
  const steps = String(arg('steps', '500,2000,10000')).split(',').map(Number);
  const topicsN = Number(arg('topics', 1000));
  const withSnapshot = arg('snapshot', false) === true;
  const jsonOut = arg('json', '');
  const settleMs = Number(arg('settle', 0.5)) * 1000;
  const { LoadGen } = await import('../bench/lib/loadgen.mjs');
  const { layout, loopbackAddrs } = await import('../bench/lib/common.mjs');
  const dir = mkdtempSync(join(tmpdir(), 'conn-heap-'));
  const proc = fork(fileURLToPath(import.meta.url), ['--child'], {
    execArgv: ['--expose-gc', '--max-old-space-size=4096'],
    env: { ...process.env, CONN_HEAP_TOPICS: String(topicsN), TICKFAN_QUIET: '1' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let nextId = 1;
  const waiting = new Map();
  let ready;
  const readyP = new Promise((r) => (ready = r));
  proc.on('message', (m) => {
    if (m.type === 'ready') ready(m);
    else waiting.get(m.id)?.(m.value);
  });
  const ask = (type, more = {}) =>
    new Promise((resolve) => {
      const id = nextId++;
      waiting.set(id, resolve);
      proc.send({ type, id, ...more });
    });
  const { port } = await readyP;
  const topics = Array.from({ length: topicsN }, (_, i) => topicName(i));
  const top = steps[steps.length - 1];
  const lg = new LoadGen({ proto: 'tickfan', port, path: '/ws', clients: layout(top, topics, 1), addrs: loopbackAddrs(4), protocol: 2, workers: 1 });
  const points = [];
  try {
    points.push({ target: 0, ...(await ask('measure')) });
    for (const [i, n] of steps.entries()) {
      const c = await lg.connect({ concurrency: 200, upTo: n, timeoutMs: 300_000 });
      if (c.connected < n) throw new Error(`only ${c.connected} of ${n} connected (${c.lastError ?? 'no error'})`);
      await new Promise((r) => setTimeout(r, settleMs));
      const snap = withSnapshot && (i === 0 || i === steps.length - 1);
      const m = snap ? await ask('snapshot', { file: join(dir, `s${n}.heapsnapshot`) }) : await ask('measure');
      points.push({ target: n, ...m });
      const base = points[0];
      console.log(
        `${String(m.connections).padStart(6)} conns: heap ${(m.heapUsed / 2 ** 20).toFixed(2)} MiB ` +
          `(${Math.round((m.heapUsed - base.heapUsed) / m.connections)} B/conn over 0), RSS ${(m.rss / 2 ** 20).toFixed(1)} MiB ` +
          `(${Math.round((m.rss - base.rss) / m.connections)} B/conn over 0), heap reserved ${(m.heapTotal / 2 ** 20).toFixed(1)} MiB, external ${(m.external / 2 ** 20).toFixed(1)} MiB`,
      );
    }
    const first = points[1];
    const last = points[points.length - 1];
    const dn = last.connections - first.connections;
    const result = {
      steps: points,
      heapPerConn: (last.heapUsed - points[0].heapUsed) / last.connections,
      heapPerConnAdded: dn ? (last.heapUsed - first.heapUsed) / dn : NaN,
      rssPerConn: (last.rss - points[0].rss) / last.connections,
      rssPerConnAdded: dn ? (last.rss - first.rss) / dn : NaN,
    };
    console.log(
      `JS heap per connection: ${result.heapPerConn.toFixed(0)} B (over 0), ${result.heapPerConnAdded.toFixed(0)} B added from ${first.connections} to ${last.connections}; ` +
        `RSS ${result.rssPerConn.toFixed(0)} B (over 0), ${result.rssPerConnAdded.toFixed(0)} B added`,
    );
    if (withSnapshot && dn > 0) {
      const a = histogram(first.file);
      const b = histogram(last.file);
      const rows = [];
      for (const [k, e] of b) {
        const o = a.get(k) ?? { bytes: 0, count: 0 };
        const bytes = (e.bytes - o.bytes) / dn;
        const count = (e.count - o.count) / dn;
        if (Math.abs(bytes) >= 1) rows.push({ k, bytes, count });
      }
      rows.sort((x, y) => y.bytes - x.bytes);
      const total = rows.reduce((s, r) => s + r.bytes, 0);
      console.log(`heap-snapshot difference per connection added (${first.connections} → ${last.connections}), self sizes, total ${total.toFixed(0)} B:`);
      for (const r of rows.slice(0, 30)) console.log(`  ${r.bytes.toFixed(1).padStart(7)} B  ${r.count.toFixed(2).padStart(5)} ×  ${r.k}`);
      result.histogram = rows;
    }
    if (jsonOut) writeFileSync(jsonOut, JSON.stringify(result, null, 2));
  } finally {
    await lg.close().catch(() => {});
    proc.send({ type: 'exit' });
    await new Promise((r) => {
      const t = setTimeout(() => (proc.kill(), r()), 3000);
      proc.once('exit', () => (clearTimeout(t), r()));
    });
    if (arg('keep', false) === true) console.log(`snapshots kept in ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}
