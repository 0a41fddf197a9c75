// The systems a scenario can run and what each needs: tickfan, raw
// uWebSockets.js and Socket.IO come with node_modules; nats-server and
// mosquitto are outside binaries (Debian's packages), found on PATH or in
// /usr/sbin, and a scenario skips each one that is missing with one line.
// Also the names, colours and delivery semantics the reports state.

import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export const SYSTEM_NAMES = { tickfan: 'tickfan', uws: 'raw uWebSockets.js', sio: 'Socket.IO', nats: 'nats-server', mosquitto: 'mosquitto' };

/** Peers that are outside programs: binary name, env override, Debian package. */
export const BROKERS = {
  nats: { binary: 'nats-server', env: 'BENCH_NATS_SERVER', pkg: 'nats-server' },
  mosquitto: { binary: 'mosquitto', env: 'BENCH_MOSQUITTO', pkg: 'mosquitto' },
};

/**
 * How each system delivers updates, for the reports: tickfan batches (every
 * update of a channel in one event-loop turn in one frame) and conflates only
 * with a rate tier; the peers send every update as a message of its own.
 */
export const DELIVERY = {
  tickfan: 'batches each channel\'s updates of one event-loop turn into one frame; conflates only with a rate tier (`--max-rate`)',
  uws: 'one WebSocket frame per update per subscriber, no conflation',
  sio: 'one Socket.IO packet (WebSocket frame) per update per subscriber, no conflation',
  nats: 'one NATS MSG per update per subscriber (the server may put several MSGs in one WebSocket frame), no conflation',
  mosquitto: 'one MQTT PUBLISH (QoS 0) per update per subscriber, no conflation',
};

function executable(p) {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Path of a broker's binary, or null when it is not installed. */
export function brokerBinary(system) {
  const b = BROKERS[system];
  if (!b) return null;
  if (process.env[b.env]) return executable(process.env[b.env]) ? process.env[b.env] : null;
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/bin'];
  for (const d of dirs) if (d && executable(join(d, b.binary))) return join(d, b.binary);
  return null;
}

/**
 * The systems of a comma-separated list that can run here. Each missing
 * broker is reported on one line through `say` and listed in `skipped`.
 */
export function usableSystems(list, scenario, say) {
  const systems = [];
  const skipped = {};
  for (const s of String(list).split(',').filter(Boolean)) {
    if (!(s in SYSTEM_NAMES)) throw new Error(`${scenario}: unknown system "${s}" (known: ${Object.keys(SYSTEM_NAMES).join(', ')})`);
    if (BROKERS[s] && !brokerBinary(s)) {
      const b = BROKERS[s];
      skipped[s] = `${b.binary} not installed`;
      say(`${scenario}: skipping ${SYSTEM_NAMES[s]}: \`${b.binary}\` not found on PATH or in /usr/sbin (apt-get install ${b.pkg}, or set ${b.env})`);
    } else systems.push(s);
  }
  return { systems, skipped };
}
