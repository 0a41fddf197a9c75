// Peer: mosquitto (Debian's), as an MQTT user would push prices to browsers:
// MQTT 3.1.1 over its WebSocket listener, QoS 0, one MQTT topic per topic
// (tickfan's `px.H0001` becomes `px/H0001`: MQTT levels are `/`). No
// versions, no snapshots, no conflation: every update is one PUBLISH to
// every subscriber. This process is the publisher: it starts the broker with
// a config in a temporary directory on two free loopback ports (plain MQTT
// for the publisher, WebSockets for the subscribers), connects one MQTT
// client over TCP and publishes each update of the shared paced feed
// (driver.mjs) at QoS 0; the payload is the same bytes the raw uWS peer sends
// (payload.mjs). The broker's pid goes to the runner with `ready`, so its CPU
// counts as the server's and it is killed with the run. RSS is the broker's.

import { brokerBinary } from '../lib/peers.mjs';
import { mqttConnect, mqttPublishHead, mqttTopic } from '../lib/mqtt.mjs';
import { BatchedSocket, BrokerProc, freePort, rssOf } from './brokers.mjs';
import { payloadEncoder } from './payload.mjs';
import { serve } from './driver.mjs';

const binary = brokerBinary('mosquitto');
if (!binary) throw new Error('mosquitto is not installed (apt-get install mosquitto)');

const broker = new BrokerProc('mosquitto', binary);
let tcpPort = 0;
let wsPort = 0;
// mosquitto cannot pick its own port and say which: free ports are chosen
// here, and a race for one (another process took it meanwhile) is retried.
for (let attempt = 1; ; attempt++) {
  tcpPort = await freePort();
  wsPort = await freePort();
  const conf = broker.file(
    'mosquitto.conf',
    [
      `listener ${tcpPort} 127.0.0.1`,
      `listener ${wsPort} 127.0.0.1`,
      'protocol websockets',
      // Without it the WebSocket listener binds every address, whatever the host says.
      'socket_domain ipv4',
      'allow_anonymous true',
      'persistence false',
      'set_tcp_nodelay true',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      '',
    ].join('\n'),
  );
  broker.start(['-c', conf]);
  if (await broker.waitPorts([tcpPort, wsPort])) break;
  if (attempt === 3) throw new Error(`mosquitto did not start:\n${broker.log.slice(-2000)}`);
}

// The publisher: MQTT over TCP, CONNECT → CONNACK, then PUBLISH at QoS 0.
let ready;
const connected = new Promise((resolve, reject) => {
  ready = resolve;
  setTimeout(() => reject(new Error(`mosquitto publisher: no CONNACK in 10 s\n${broker.log.slice(-2000)}`)), 10_000).unref();
});
const pub = new BatchedSocket(tcpPort, (d) => {
  // The only packets a QoS 0 publisher gets back: CONNACK (0x20), PINGRESP.
  if (d[0] === 0x20) {
    if (d[3] === 0) ready();
    else console.error(`[mosquitto publisher] CONNACK refused: ${d[3]}`);
  }
});
pub.now(mqttConnect(`tickfan-bench-pub-${process.pid}`));
await connected;

const payload = payloadEncoder();
const topics = new Map();
let published = 0;

serve({
  publish: (topic, fields) => {
    let t = topics.get(topic);
    if (!t) topics.set(topic, (t = Buffer.from(mqttTopic(topic))));
    const p = payload(topic, fields);
    pub.write(mqttPublishHead(t, p.length));
    pub.write(p, true);
    published++;
  },
  stats: () => ({ publishes: published, publisherBacklog: pub.pending }),
  memory: () => ({ rss: rssOf(broker.pid), heapUsed: null, heapTotal: null, external: null, arrayBuffers: null, gc: false, of: 'mosquitto' }),
  close: async () => {
    pub.close();
    await broker.stop();
  },
});
process.send({ type: 'ready', port: wsPort, pid: process.pid, pids: [broker.pid], rssPid: broker.pid, dirs: [broker.dir] });
