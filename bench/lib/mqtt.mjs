// The few MQTT 3.1.1 packets the benchmark sends (QoS 0 only), shared by the
// mosquitto peer's publisher (servers/mosquitto.mjs) and the load
// generator's subscribers (lib/loadgen-brokers.mjs). Spec: MQTT 3.1.1, §2-3.

/** MQTT topic for a tickfan topic name: levels are separated by `/`. */
export function mqttTopic(name) {
  return name.replaceAll('.', '/');
}

/** Remaining-length varint (1-4 bytes). */
function remaining(n) {
  const out = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 128;
    out.push(b);
  } while (n > 0);
  return out;
}

function str(s) {
  const b = Buffer.from(s, 'utf8');
  const out = Buffer.allocUnsafe(2 + b.length);
  out.writeUInt16BE(b.length, 0);
  b.copy(out, 2);
  return out;
}

function packet(first, body) {
  return Buffer.concat([Buffer.from([first, ...remaining(body.length)]), body]);
}

/** CONNECT: protocol "MQTT" level 4, clean session, keep-alive 0 (no pings needed). */
export function mqttConnect(clientId) {
  const head = Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x02, 0, 0]);
  return packet(0x10, Buffer.concat([head, str(clientId)]));
}

/** SUBSCRIBE (packet id 1) to every topic at QoS 0. */
export function mqttSubscribe(topics) {
  const parts = [Buffer.from([0, 1])];
  for (const t of topics) parts.push(str(t), Buffer.from([0]));
  return packet(0x82, Buffer.concat(parts));
}

/** The bytes of a QoS 0 PUBLISH before its payload: fixed header, remaining length, topic. */
export function mqttPublishHead(topic, payloadLength) {
  const rl = remaining(2 + topic.length + payloadLength);
  const out = Buffer.allocUnsafe(1 + rl.length + 2 + topic.length);
  out[0] = 0x30;
  for (let i = 0; i < rl.length; i++) out[1 + i] = rl[i];
  out.writeUInt16BE(topic.length, 1 + rl.length);
  topic.copy(out, 3 + rl.length);
  return out;
}
