// Peer: raw uWebSockets.js topic pub/sub — the transport's ceiling. No
// versions, no snapshots, no sequence numbers: each update is the same
// FlatBuffers Delta tickfan would send (encoded once with tickfan's Encoder,
// so the payload is byte for byte the same size) published with the native
// app.publish(), one WebSocket frame per update per subscriber. With
// BENCH_PROTOCOL=2 the frame is the very frame tickfan sends its protocol-2
// subscribers for one update: sequence 0 (one byte), then the Delta2 (varint
// size, kind byte, root; field ids in order of first use, names only in a
// topic's first delta) — the same bytes, read by the load generator with the
// same parser as tickfan's (its cost, near saturation, shows in latency).
// Client → server: a text frame "sub <topic>,<topic>,…", answered "ok <n>".

import { createRequire } from 'node:module';
import { payloadEncoder } from './payload.mjs';
import { serve } from './driver.mjs';

const require = createRequire(import.meta.url);
const uws = require('uWebSockets.js');
const given = JSON.parse(process.env.BENCH_SERVER_OPTS || '{}');
const payload = payloadEncoder(undefined, { frame: true });
const decoder = new TextDecoder();
let connections = 0;
let published = 0;

const app = uws.App();
app.ws('/*', {
  compression: uws.DISABLED,
  maxPayloadLength: 1024 * 1024,
  maxBackpressure: given.hardCapBytes ?? 8 * 1024 * 1024,
  closeOnBackpressureLimit: 0,
  idleTimeout: 60,
  sendPingsAutomatically: true,
  open: () => void connections++,
  close: () => void connections--,
  message: (ws, message) => {
    const text = decoder.decode(message);
    if (!text.startsWith('sub ')) return;
    const topics = text.slice(4).split(',');
    for (const t of topics) ws.subscribe(t);
    ws.send(`ok ${topics.length}`, false);
  },
});
const listen = await new Promise((resolve, reject) =>
  app.listen('127.0.0.1', 0, (s) => (s ? resolve(s) : reject(new Error('uws-raw: cannot listen')))),
);

serve({
  publish: (topic, fields) => {
    app.publish(topic, payload(topic, fields), true, false);
    published++;
  },
  stats: () => ({ connections, publishes: published }),
  close: async () => uws.us_listen_socket_close(listen),
});
process.send({ type: 'ready', port: uws.us_socket_local_port(listen), pid: process.pid });
