// The load generator's subscribers for the outside brokers: the NATS client
// protocol (text lines; MSG with a binary payload) and MQTT 3.1.1 at QoS 0,
// each spoken over the load generator's own WebSocket client
// (loadgen-client.mjs hands every data frame's payload here). Both brokers
// treat WebSocket frames as a byte stream (a message may span frames, a frame
// may hold many), so each reader is a streaming parser that handles complete
// messages in place and copies only one that is cut by a frame boundary.
// Hand-rolled rather than nats.ws / mqtt.js for the same reason as the other
// clients: at thousands of connections and millions of messages a second a
// full client (objects, promises and iterators per message, timers per
// connection) would make the load generator the bottleneck.

import { mqttConnect, mqttSubscribe, mqttTopic } from './mqtt.mjs';

const NL = 10;

/** Shared streaming logic: `unitLen` (−1 while unknown), `headTake`, `unit`. */
class StreamReader {
  constructor(client) {
    this.c = client;
    this.carry = null;
  }

  feed(b, p, end) {
    if (this.carry) {
      for (;;) {
        const c = this.carry;
        const need = this.unitLen(c, 0, c.length);
        if (need > 0 && c.length >= need) break;
        if (p === end) return;
        const take = need > 0 ? Math.min(need - c.length, end - p) : this.headTake(b, p, end);
        this.carry = Buffer.concat([c, b.subarray(p, p + take)]);
        p += take;
      }
      const c = this.carry;
      this.carry = null;
      this.unit(c, 0, c.length);
    }
    while (p < end) {
      const need = this.unitLen(b, p, end);
      if (need < 0 || p + need > end) {
        // Copied: the read buffer is reused by the next read.
        this.carry = Buffer.from(b.subarray(p, end));
        return;
      }
      this.unit(b, p, need);
      p += need;
    }
  }
}

/** NATS: INFO → CONNECT + SUBs + PING; PONG → subscribed; MSG → a delivery; PING → PONG. */
export class NatsReader extends StreamReader {
  static subprotocol = '';

  open() {
    this.sids = 0;
  }

  /** Bytes of the unit at p: a control line, or a MSG line + payload + CRLF. */
  unitLen(b, p, end) {
    const nl = b.indexOf(NL, p);
    if (nl < 0 || nl >= end) return -1;
    if (b[p] !== 0x4d /* M */) return nl + 1 - p;
    let e = b[nl - 1] === 13 ? nl - 1 : nl;
    let n = 0;
    let mul = 1;
    while (e > p && b[e - 1] >= 48 && b[e - 1] <= 57) {
      n += (b[--e] - 48) * mul;
      mul *= 10;
    }
    return nl + 1 - p + n + 2;
  }

  headTake(b, p, end) {
    const nl = b.indexOf(NL, p);
    return nl < 0 || nl >= end ? end - p : nl + 1 - p;
  }

  unit(b, p, len) {
    const c0 = b[p];
    if (c0 === 0x4d /* MSG */) {
      this.c.delivered(b, b.indexOf(NL, p) + 1);
    } else if (c0 === 0x49 /* INFO */) {
      const subs = this.c.topics.map((t, i) => `SUB ${t} ${i + 1}\r\n`).join('');
      this.c.send(Buffer.from(`CONNECT {"verbose":false,"pedantic":false,"echo":false,"lang":"tickfan-bench","version":"1","protocol":1}\r\n${subs}PING\r\n`));
    } else if (c0 === 0x50 /* PING or PONG */) {
      if (b[p + 1] === 0x49) this.c.send(Buffer.from('PONG\r\n'));
      else if (!this.c.ready) this.c.subscribed();
    } else if (c0 === 0x2d /* -ERR */) {
      this.c.serverError(b.latin1Slice(p, p + len).trim());
    }
  }
}

/** MQTT 3.1.1: CONNECT + SUBSCRIBE (QoS 0) at once; SUBACK → subscribed; PUBLISH → a delivery. */
export class MqttReader extends StreamReader {
  static subprotocol = 'mqtt';

  open() {
    const id = `tb-${process.pid}-${this.c.index}-${Math.floor(Math.random() * 1e9)}`;
    // A client may send packets right after CONNECT, before CONNACK (3.1.1 §3.1.4).
    this.c.send(Buffer.concat([mqttConnect(id), mqttSubscribe(this.c.topics.map(mqttTopic))]));
  }

  /** Bytes of the packet at p: fixed header, remaining-length varint, body. */
  unitLen(b, p, end) {
    let n = 0;
    let mul = 1;
    for (let i = p + 1; i < end && i < p + 5; i++) {
      n += (b[i] & 127) * mul;
      if ((b[i] & 128) === 0) return i + 1 - p + n;
      mul *= 128;
    }
    return -1;
  }

  headTake() {
    return 1;
  }

  unit(b, p, len) {
    const type = b[p] >> 4;
    let h = p + 1;
    while (b[h] & 128) h++;
    h++;
    if (type === 3 /* PUBLISH */) {
      const topicLen = (b[h] << 8) | b[h + 1];
      const qos = (b[p] >> 1) & 3;
      this.c.delivered(b, h + 2 + topicLen + (qos ? 2 : 0));
    } else if (type === 9 /* SUBACK */) {
      for (let i = h + 2; i < p + len; i++) if (b[i] === 0x80) return this.c.serverError('SUBACK refused a topic');
      if (!this.c.ready) this.c.subscribed();
    } else if (type === 2 /* CONNACK */) {
      if (b[h + 1] !== 0) this.c.serverError(`CONNACK refused: ${b[h + 1]}`);
    }
  }
}

export const BROKER_READERS = { nats: NatsReader, mosquitto: MqttReader };
