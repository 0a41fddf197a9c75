#!/usr/bin/env node
// Smoke check of the outside peers' drivers (nats-server, mosquitto). First
// the load generator's NATS and MQTT parsers on synthetic streams cut into
// frames at every size (a message may span frames: nothing lost, nothing
// misread). Then end to end through the same code the scenarios use: starts each broker (loopback,
// temporary config, free ports), subscribes a few load-generator clients over
// WebSockets, publishes a short paced feed and checks every update reached
// every subscriber with a publish timestamp the load generator could read,
// then checks the broker is gone. A few seconds per broker.
//
//   node bench/peers-check.mjs [nats,mosquitto]
//
// A broker that is not installed is skipped with one line (exit 0), or fails
// the check when CI=true: in CI a missing peer must not pass silently.

import { existsSync } from 'node:fs';
import { layout, sleep, topicNames } from './lib/common.mjs';
import { resetQuietBudget, setup, teardown } from './lib/measure.mjs';
import { SYSTEM_NAMES, brokerBinary, BROKERS } from './lib/peers.mjs';
import { MqttReader, NatsReader } from './lib/loadgen-brokers.mjs';
import { mqttPublishHead } from './lib/mqtt.mjs';

const systems = (process.argv[2] ?? 'nats,mosquitto').split(',');
const ci = process.env.CI === 'true' || process.env.CI === '1';
if (!existsSync(new URL('../dist/index.js', import.meta.url))) {
  console.error('peers-check: dist/ is missing; run `npm run build` first');
  process.exit(2);
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The parsers over a stream of 50 messages (control packets among them), cut into frames of `cut` bytes. */
function parserCheck() {
  const pay = (i) => Buffer.from(`P${String(i).padStart(4, '0')}${'x'.repeat((i * 3) % 200)}`);
  const nats = [Buffer.from('INFO {"server_id":"x"}\r\n'), Buffer.from('PONG\r\n')];
  const mqtt = [Buffer.from([0x90, 3, 0, 1, 0])]; // SUBACK
  for (let i = 0; i < 50; i++) {
    nats.push(Buffer.from(`MSG px.S0001 1 ${pay(i).length}\r\n`), pay(i), Buffer.from('\r\n'));
    if (i % 7 === 0) nats.push(Buffer.from('PING\r\n'));
    mqtt.push(mqttPublishHead(Buffer.from('px/S0001'), pay(i).length), pay(i));
  }
  const bad = [];
  for (const [Reader, stream] of [[NatsReader, Buffer.concat(nats)], [MqttReader, Buffer.concat(mqtt)]]) {
    for (const cut of [1, 2, 3, 5, 7, 13, 64, 1000, stream.length]) {
      const got = [];
      const client = { topics: ['px.S0001'], index: 0, ready: false, send() {}, subscribed() { this.ready = true; }, serverError: (m) => bad.push(m), delivered: (b, p) => got.push(b.latin1Slice(p, p + 5)) };
      const r = new Reader(client);
      for (let o = 0; o < stream.length; o += cut) {
        // Each frame's payload inside a larger read buffer, as the load generator hands it over.
        const piece = stream.subarray(o, o + cut);
        r.feed(Buffer.concat([Buffer.from('junk\n'), piece, Buffer.from('\njunk')]), 5, 5 + piece.length);
      }
      if (!client.ready || got.length !== 50 || got.some((g, i) => g !== `P${String(i).padStart(4, '0')}`)) bad.push(`${Reader.name} with ${cut}-byte frames: ${got.length} of 50 read, subscribed ${client.ready}`);
    }
  }
  return bad;
}

let failed = 0;
const parsers = parserCheck();
if (parsers.length) {
  failed++;
  console.error(`peers-check: parsers FAILED: ${parsers.join('; ')}`);
} else console.log('peers-check: NATS and MQTT parsers ok on streams cut at 1 … n bytes per frame');
resetQuietBudget(0);
for (const system of systems) {
  const b = BROKERS[system];
  if (!b) throw new Error(`peers-check: "${system}" is not an outside peer (${Object.keys(BROKERS).join(', ')})`);
  if (!brokerBinary(system)) {
    const line = `peers-check: ${SYSTEM_NAMES[system]} skipped: \`${b.binary}\` is not installed (apt-get install ${b.pkg})`;
    if (ci) {
      console.error(`${line} — failing because CI is set`);
      failed++;
    } else console.log(line);
    continue;
  }
  const topics = topicNames(4, 'px.S');
  const clients = layout(6, topics, 2); // 3 subscribers per topic
  const t0 = performance.now();
  let env;
  let brokerPid;
  try {
    env = await setup(system, { clients, topics, workers: 1, protocol: 2, sampleEvery: 1, connectConcurrency: 6 });
    brokerPid = env.server.pids[1];
    // Exact: every update published in the window reaches each of its 3 subscribers once.
    await env.lg.window();
    const before = await env.server.ask('counters');
    await env.server.ask('publish', { rate: 400, topics, fields: 4 });
    await sleep(1000);
    await env.server.ask('stop');
    const after = await env.server.ask('counters');
    const expected = (after.published - before.published) * 3;
    let got = -1;
    for (let i = 0; i < 20 && got < expected; i++) {
      await sleep(100);
      got = (await env.lg.counters()).deliveries;
    }
    await sleep(200);
    const c = await env.lg.collect();
    const problems = [];
    if (expected === 0) problems.push('nothing published');
    if (c.deliveries !== expected) problems.push(`${c.deliveries} deliveries, expected ${expected}`);
    if (!(c.latencyUs.count > 0) || !(c.latencyUs.p50 > 0)) problems.push('no publish timestamp read from the payload');
    if (c.errors || c.serverErrors) problems.push(`${c.errors} client errors, ${c.serverErrors} server errors`);
    if (problems.length) throw new Error(problems.join('; '));
    console.log(
      `peers-check: ${SYSTEM_NAMES[system]} ok — ${c.deliveries} of ${expected} deliveries, p50 ${c.latencyUs.p50} µs, ` +
        `${Math.round(c.bytes / c.deliveries)} bytes each, ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
  } catch (err) {
    failed++;
    console.error(`peers-check: ${SYSTEM_NAMES[system]} FAILED: ${err?.message ?? err}`);
  } finally {
    if (env) await teardown(env);
  }
  if (brokerPid && alive(brokerPid)) {
    failed++;
    console.error(`peers-check: ${SYSTEM_NAMES[system]} FAILED: the broker (pid ${brokerPid}) outlived its run`);
  }
}
setTimeout(() => process.exit(failed ? 1 : 0), 100);
