// Peer: nats-server (Debian's), as a NATS user would push prices to browsers:
// its WebSocket listener, one subject per topic (tickfan's topic names are
// valid subjects: `px.H0001`), clients subscribing with SUB. No versions, no
// snapshots, no conflation: every update is one MSG to every subscriber.
// This process is the publisher: it starts the broker on loopback ports it
// picks itself (config in a temporary directory), connects one plain NATS
// client (TCP) and publishes each update of the shared paced feed
// (driver.mjs) with PUB; the payload is the same bytes the raw uWS peer sends
// (payload.mjs). The broker's pid goes to the runner with `ready`, so its CPU
// counts as the server's (with this publisher's, as tickfan's own publisher
// counts in tickfan's) and it is killed with the run. RSS is the broker's.

import { brokerBinary } from '../lib/peers.mjs';
import { BatchedSocket, BrokerProc, rssOf } from './brokers.mjs';
import { payloadEncoder } from './payload.mjs';
import { serve } from './driver.mjs';

const binary = brokerBinary('nats');
if (!binary) throw new Error('nats-server is not installed (apt-get install nats-server)');

const broker = new BrokerProc('nats-server', binary);
const conf = broker.file(
  'nats.conf',
  [
    'listen: 127.0.0.1:-1',
    'http: 127.0.0.1:-1',
    'websocket {',
    '  listen: "127.0.0.1:-1"',
    '  no_tls: true',
    '  compression: false',
    '}',
    '',
  ].join('\n'),
);
broker.start(['-c', conf]);
const ports = await broker.waitLog({
  ws: /Listening for websocket clients on ws:\/\/127\.0\.0\.1:(\d+)/,
  client: /Listening for client connections on 127\.0\.0\.1:(\d+)/,
  http: /Starting http monitor on 127\.0\.0\.1:(\d+)/,
  ready: /Server is ready/,
});

// The publisher: a NATS client over TCP. INFO → CONNECT + PING; PONG → ready.
const CRLF = Buffer.from('\r\n');
let ready;
const connected = new Promise((resolve, reject) => {
  ready = resolve;
  setTimeout(() => reject(new Error(`nats publisher: no PONG in 10 s\n${broker.log.slice(-2000)}`)), 10_000).unref();
});
let lineBuf = '';
const pub = new BatchedSocket(Number(ports.client), (d) => {
  lineBuf += d.toString('latin1');
  let nl;
  while ((nl = lineBuf.indexOf('\n')) >= 0) {
    const line = lineBuf.slice(0, nl).trim();
    lineBuf = lineBuf.slice(nl + 1);
    if (line.startsWith('INFO')) pub.now('CONNECT {"verbose":false,"pedantic":false,"echo":false,"lang":"tickfan-bench","version":"1","protocol":1}\r\nPING\r\n');
    else if (line === 'PONG') ready();
    else if (line === 'PING') pub.now('PONG\r\n');
    else if (line.startsWith('-ERR')) console.error(`[nats publisher] ${line}`);
  }
});
await connected;

const payload = payloadEncoder();
let published = 0;

async function varz() {
  try {
    const r = await fetch(`http://127.0.0.1:${ports.http}/varz`);
    return await r.json();
  } catch {
    return {};
  }
}

serve({
  publish: (topic, fields) => {
    const p = payload(topic, fields);
    pub.write(Buffer.from(`PUB ${topic} ${p.length}\r\n`));
    pub.write(p, true);
    pub.write(CRLF);
    published++;
  },
  stats: async () => {
    const v = await varz();
    // The publisher's own connection is not a subscriber.
    return { connections: v.connections === undefined ? undefined : v.connections - 1, slowDisconnects: v.slow_consumers ?? 0, publishes: published, publisherBacklog: pub.pending, brokerOutMsgs: v.out_msgs };
  },
  memory: () => ({ rss: rssOf(broker.pid), heapUsed: null, heapTotal: null, external: null, arrayBuffers: null, gc: false, of: 'nats-server' }),
  close: async () => {
    pub.close();
    await broker.stop();
  },
});
process.send({ type: 'ready', port: Number(ports.ws), pid: process.pid, pids: [broker.pid], rssPid: broker.pid, dirs: [broker.dir] });
