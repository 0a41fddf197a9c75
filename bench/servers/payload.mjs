// The bytes of one update as every peer without versions sends it (raw
// uWebSockets.js, nats-server, mosquitto): the very Delta tickfan would send,
// encoded once with tickfan's Encoder, so payload sizes are equal across
// systems. Protocol 1: a size-prefixed FlatBuffers Delta. Protocol 2
// (BENCH_PROTOCOL=2): the Delta2 tickfan sends its protocol-2 subscribers
// (varint size, kind byte, root; field ids in order of first use, names
// only in a topic's first delta). The load generator reads the publish
// timestamp from these bytes the same way for all three peers.

import { Encoder, FrameWriter2 } from '../../dist/protocol/index.js';

/**
 * `frame`: protocol 2 only — the whole frame tickfan sends a protocol-2
 * subscriber for one update (sequence 0, "count me", then the message), not
 * just the message: raw uWebSockets.js sends it so that the load generator
 * reads both servers' frames with the same parser (loadgen-client.mjs).
 */
export function payloadEncoder(protocol = Number(process.env.BENCH_PROTOCOL ?? 1), { frame = false } = {}) {
  const enc = new Encoder();
  const writer2 = new FrameWriter2();
  const versions = new Map();
  /** Protocol 2: what tickfan's sequencer keeps per topic to encode a Delta2 (id, epoch, field ids). */
  const refs = new Map();
  const refOf = (topic) => {
    let r = refs.get(topic);
    if (!r) {
      const ids = new Map();
      refs.set(topic, (r = { id: refs.size + 1, name: topic, epoch: 1, ids, fieldId: (f) => ids.get(f) ?? 0 }));
    }
    return r;
  };
  /** The payload of the next update of `topic` (a view: copy or send it before the next call). */
  return (topic, fields) => {
    const v = (versions.get(topic) ?? 0) + 1;
    versions.set(topic, v);
    if (protocol === 2) {
      const r = refOf(topic);
      const namesFrom = r.ids.size + 1;
      for (const f of Object.keys(fields)) if (!r.ids.has(f)) r.ids.set(f, r.ids.size + 1);
      const msg = enc.delta2(r, v - 1, v, Object.entries(fields), { namesFrom, bind: false });
      // FrameWriter2 writes seq 0 (one byte) first: the brokers have no sequence numbers.
      const f = writer2.write(0, [msg]);
      return frame ? f : f.subarray(1);
    }
    return enc.delta(topic, 1, v - 1, v, 1, Object.entries(fields), Date.now());
  };
}
