#!/usr/bin/env node
// Bytes of JS heap a tickfan server allocates per published update, measured
// in-process and deterministically (no timing): the server runs in this
// process, its subscribers (the SDK, protocol 2) in a child process, so only
// the server's own work is counted. Phases, each after a forced GC:
//   idle     the same event-loop turns with nothing published (the loop's own cost)
//   object   the publisher's update object alone (what bench/servers/driver.mjs builds)
//   publish  server.publish(topic, object) for N updates, K per turn, round-robin
// Allocation = heap in use after − before + what every GC in between freed
// (v8.GCProfiler), so it is exact with or without a GC in the phase. With
// --profile, V8's sampling heap profiler runs over the publish phase and the
// top allocation sites are listed (self bytes per update).
// At the end every subscriber must hold every topic's last version (checked).
//
//   node --expose-gc bench/alloc-publish.mjs [--dist dist] [--subscribers 1000] [--topics 100]
//        [--updates 20000] [--per-turn 10] [--fields 4] [--profile] [--json]

import { fork } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import v8 from 'node:v8';
import { Session } from 'node:inspector';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const flag = (name) => args.includes(`--${name}`);
const dist = resolve(opt('dist', new URL('../dist', import.meta.url).pathname));

// ------------------------------------------------------------ subscribers (child process)

async function child() {
  const { connect } = await import(pathToFileURL(`${dist}/client/index.js`).href);
  const port = Number(opt('port'));
  const subscribers = Number(opt('subscribers'));
  const topics = JSON.parse(opt('topic-list'));
  const clients = [];
  const subs = [];
  for (let i = 0; i < subscribers; i++) {
    const c = connect(`ws://127.0.0.1:${port}/ws`, { transport: 'ws' });
    clients.push(c);
    subs.push(c.subscribe(topics[i % topics.length]));
  }
  // Gone with the parent, whatever way it ends.
  process.on('disconnect', () => process.exit(0));
  await Promise.all(subs.map((s) => s.ready));
  process.send({ type: 'ready' });
  process.on('message', async (m) => {
    if (m.type === 'versions') {
      // Every subscription at the version the server says its topic reached (waits for the stream to drain).
      const want = m.versions;
      const deadline = Date.now() + 30_000;
      for (;;) {
        const behind = subs.filter((s, i) => s.version !== want[topics[i % topics.length]]);
        if (behind.length === 0 || Date.now() > deadline) {
          process.send({ type: 'versions', behind: behind.length, gaps: clients.reduce((n, c) => n + c.stats.gaps, 0), catchUps: clients.reduce((n, c) => n + c.stats.catchUps, 0) });
          return;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    if (m.type === 'exit') {
      for (const c of clients) c.close();
      setTimeout(() => process.exit(0), 100);
    }
  });
}

// ------------------------------------------------------------ server (this process)

function heapAllocation() {
  const profiler = new v8.GCProfiler();
  profiler.start();
  const used0 = v8.getHeapStatistics().used_heap_size;
  return () => {
    const r = profiler.stop();
    let freed = 0;
    for (const g of r?.statistics ?? []) {
      const d = (g.beforeGC?.heapStatistics?.usedHeapSize ?? 0) - (g.afterGC?.heapStatistics?.usedHeapSize ?? 0);
      if (d > 0) freed += d;
    }
    return { bytes: freed + v8.getHeapStatistics().used_heap_size - used0, gcs: r?.statistics?.length ?? 0 };
  };
}

const turn = () => new Promise((r) => setImmediate(r));

async function main() {
  if (typeof globalThis.gc !== 'function') {
    console.error('run with node --expose-gc');
    process.exit(2);
  }
  const subscribers = Number(opt('subscribers', 1000));
  const nTopics = Number(opt('topics', 100));
  const updates = Number(opt('updates', 20000));
  const perTurn = Number(opt('per-turn', 10));
  const nFields = Number(opt('fields', 4));
  const { startServer } = await import(pathToFileURL(`${dist}/index.js`).href);
  const server = await startServer({ port: 0, host: '127.0.0.1', maxConnectionsPerIp: 1e7, log: () => {} });
  const topics = Array.from({ length: nTopics }, (_, i) => `px.A${i}`);
  const NAMES = ['bid', 'ask', 'last', 'size', 'bidSize', 'askSize'].slice(0, nFields);
  const price = NAMES.map((_, i) => 100 + i * 0.25);
  // The bench publisher's update (driver.mjs): t in ns, then fields moving every time, never integers.
  const makeUpdate = () => {
    const f = { t: Number(process.hrtime.bigint()) };
    for (let j = 0; j < NAMES.length; j++) {
      price[j] += (j & 1 ? -0.0625 : 0.0625) + 0.001;
      f[NAMES[j]] = price[j];
    }
    return f;
  };
  for (const t of topics) server.publish(t, makeUpdate());

  const kid = fork(new URL(import.meta.url).pathname, ['--child', '--dist', dist, '--port', String(server.port), '--subscribers', String(subscribers), '--topic-list', JSON.stringify(topics)], { stdio: 'inherit', execArgv: [] });
  const fromKid = (type) => new Promise((r) => kid.on('message', (m) => m.type === type && r(m)));
  await fromKid('ready');

  let next = 0;
  let sink = null;
  const runTurns = async (n, body) => {
    for (let done = 0; done < n; ) {
      const k = Math.min(perTurn, n - done);
      for (let i = 0; i < k; i++) body();
      done += k;
      await turn();
    }
  };
  const idle = () => {};
  const object = () => {
    sink = makeUpdate();
  };
  const publish = () => {
    const t = topics[next];
    next = next + 1 === topics.length ? 0 : next + 1;
    server.publish(t, makeUpdate());
  };
  const measure = async (body) => {
    globalThis.gc();
    await turn();
    globalThis.gc();
    const read = heapAllocation();
    const t0 = process.cpuUsage();
    await runTurns(updates, body);
    const cpu = process.cpuUsage(t0);
    // CPU of the whole process (GC threads too): indicative only while other work shares the cores.
    return { ...read(), cpuUs: cpu.user + cpu.system };
  };

  // Warm-up: the JIT, the channels' queues and the sockets' buffers.
  await runTurns(Math.min(updates, 20000), publish);
  if (opt('paced')) return finish(await paced(Number(opt('paced')), Number(opt('seconds', 5)), publish), { server, kid, fromKid, topics });
  const rounds = Number(opt('rounds', 3));
  const rows = { idle: [], object: [], publish: [] };
  for (let r = 0; r < rounds; r++) {
    rows.idle.push(await measure(idle));
    rows.object.push(await measure(object));
    rows.publish.push(await measure(publish));
  }
  let profile = null;
  if (flag('profile')) profile = await sampleProfile(() => runTurns(updates, publish));

  const check = await converged({ server, kid, fromKid, topics });

  const med = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const per = (k) => med(rows[k].map((x) => x.bytes / updates));
  const out = {
    params: { subscribers, topics: nTopics, updates, perTurn, fields: nFields, rounds, dist },
    idlePerUpdate: per('idle'),
    objectPerUpdate: per('object'),
    publishPerUpdate: per('publish'),
    // What the server adds: the publish phase less the loop's own turns and the publisher's object.
    serverPerUpdate: per('publish') - per('idle') - (per('object') - per('idle')),
    cpuUsPerUpdate: med(rows.publish.map((x) => x.cpuUs / updates)) - med(rows.idle.map((x) => x.cpuUs / updates)),
    gcs: { idle: rows.idle.map((x) => x.gcs), object: rows.object.map((x) => x.gcs), publish: rows.publish.map((x) => x.gcs) },
    check,
    profile,
  };
  if (flag('json')) console.log(JSON.stringify(out, null, 2));
  else {
    const b = (x) => `${x.toFixed(0)} B`;
    console.log(`${subscribers} subscribers × 1 of ${nTopics} topics, ${updates} updates, ${perTurn} per turn, ${nFields} fields + t; medians of ${rounds} (${dist})`);
    console.log(`  loop turns only:        ${b(out.idlePerUpdate)} per update's share`);
    console.log(`  publisher's object:     ${b(out.objectPerUpdate - out.idlePerUpdate)} per update`);
    console.log(`  publish (all of it):    ${b(out.publishPerUpdate - out.idlePerUpdate)} per update`);
    console.log(`  the server's own share: ${b(out.serverPerUpdate)} per update`);
    console.log(`  CPU per update (publish less idle turns; indicative): ${out.cpuUsPerUpdate.toFixed(2)} µs`);
    console.log(`  GCs in phases: ${JSON.stringify(out.gcs)}`);
    console.log(`  subscribers behind at the end: ${check.behind} (gaps ${check.gaps}, catch-ups ${check.catchUps})`);
    if (profile) {
      console.log(`  sampled allocation sites over ${updates} updates (self bytes per update; sampling interval ${profile.interval} B):`);
      for (const s of profile.top) console.log(`    ${s.perUpdate.toFixed(1).padStart(7)} B  ${s.site}`);
    }
  }
  if (check.behind) process.exitCode = 1;
}

/** Every subscriber at its topic's last version (the quiet case: nothing is published meanwhile); then the server closes. */
async function converged({ server, kid, fromKid, topics }) {
  const versions = {};
  for (const t of topics) versions[t] = server.store.get(t).version;
  kid.send({ type: 'versions', versions });
  const check = await fromKid('versions');
  kid.send({ type: 'exit' });
  await server.close();
  return check;
}

async function finish(out, ctx) {
  out.check = await converged(ctx);
  console.log(JSON.stringify(out, null, 2));
  if (out.check.behind) process.exitCode = 1;
}

/**
 * What survives the scavenges at a steady rate: `rate` updates/s paced as the
 * bench's publisher does (every 1 ms tick the updates due), for `seconds`.
 * Per scavenge, from v8.GCProfiler: bytes left in the young generation and
 * bytes promoted to the old one; with --profile, the sampling heap profiler
 * keeping only objects no scavenge collected (still alive, or promoted).
 */
async function paced(rate, seconds, publishOne) {
  const session = flag('profile') ? new Session() : null;
  const post = (m, p = {}) => new Promise((res, rej) => session.post(m, p, (e, r) => (e ? rej(e) : res(r))));
  if (session) {
    session.connect();
    await post('HeapProfiler.startSampling', { samplingInterval: Number(opt('interval', 256)), includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: false });
  }
  const gcp = new v8.GCProfiler();
  gcp.start();
  const t0 = performance.now();
  let due0 = 0;
  let published = 0;
  await new Promise((done) => {
    const timer = setInterval(() => {
      const now = performance.now();
      if (now - t0 > seconds * 1000) {
        clearInterval(timer);
        return done();
      }
      const dueTotal = Math.floor(((now - t0) * rate) / 1000);
      for (let i = due0; i < dueTotal; i++) publishOne();
      published += dueTotal - due0;
      due0 = dueTotal;
    }, 1);
  });
  const r = gcp.stop();
  const space = (st, name) => st?.heapSpaceStatistics?.find((x) => x.spaceName === name)?.spaceUsedSize ?? 0;
  const gcs = (r?.statistics ?? []).map((g) => ({
    type: g.gcType,
    ms: +(g.cost / 1000).toFixed(2),
    youngAfter: space(g.afterGC, 'new_space'),
    promoted: space(g.afterGC, 'old_space') - space(g.beforeGC, 'old_space'),
  }));
  let survivors = null;
  if (session) {
    // What this turn still holds is young, not surviving: a scavenge first drops it from the profile.
    globalThis.gc({ type: 'minor' });
    const { profile } = await post('HeapProfiler.stopSampling');
    session.disconnect();
    const bySite = new Map();
    const walk = (node, stack) => {
      const f = node.callFrame;
      const chain = [...stack, `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(dist|bench|node_modules)\//, '$1/')}:${f.lineNumber + 1}`];
      if (node.selfSize) {
        const key = chain.slice(-3).reverse().join(' ← ');
        bySite.set(key, (bySite.get(key) ?? 0) + node.selfSize);
      }
      for (const c of node.children) walk(c, chain);
    };
    walk(profile.head, []);
    survivors = [...bySite.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(opt('top', 25))).map(([site, bytes]) => ({ site, kb: +(bytes / 1024).toFixed(1) }));
  }
  const scav = gcs.filter((g) => g.type === 'Scavenge');
  const sum = (xs) => xs.reduce((a, b) => a + b, 0);
  return {
    paced: { rate, seconds, published },
    scavenges: scav.length,
    otherGcs: gcs.length - scav.length,
    scavengeMs: { max: Math.max(0, ...scav.map((g) => g.ms)), total: +sum(scav.map((g) => g.ms)).toFixed(1) },
    youngAfterKB: scav.map((g) => Math.round(g.youngAfter / 1024)),
    promotedKB: scav.map((g) => Math.round(g.promoted / 1024)),
    survivors,
  };
}

/** V8's sampling heap profiler over `fn`: the top allocation sites by self bytes, per update. */
async function sampleProfile(fn) {
  const session = new Session();
  session.connect();
  const post = (m, p = {}) => new Promise((res, rej) => session.post(m, p, (e, r) => (e ? rej(e) : res(r))));
  const interval = Number(opt('interval', 64));
  const updates = Number(opt('updates', 20000));
  await post('HeapProfiler.startSampling', { samplingInterval: interval, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  await fn();
  const { profile } = await post('HeapProfiler.stopSampling');
  session.disconnect();
  const bySite = new Map();
  const walk = (node, stack) => {
    const f = node.callFrame;
    const here = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(dist|bench|node_modules)\//, '$1/')}:${f.lineNumber + 1}`;
    const chain = [...stack, here];
    if (node.selfSize) {
      // The allocating function and its two callers.
      const key = chain.slice(-3).reverse().join(' ← ');
      bySite.set(key, (bySite.get(key) ?? 0) + node.selfSize);
    }
    for (const c of node.children) walk(c, chain);
  };
  walk(profile.head, []);
  const top = [...bySite.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, Number(opt('top', 25)))
    .map(([site, bytes]) => ({ site, perUpdate: bytes / updates }));
  return { interval, top };
}

if (flag('child')) await child();
else await main();
