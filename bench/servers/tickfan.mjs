// tickfan under benchmark: startServer() from the build (dist/) in its own
// process, fed by the shared in-process publisher (driver.mjs).
// Options come as JSON in BENCH_SERVER_OPTS (ServerOptions, e.g. hardCapBytes).

import { DEFAULT_OPTIONS, startServer } from '../../dist/index.js';
import { serve } from './driver.mjs';

// Every benchmark client comes from 127.0.0.x: lift the per-address admission
// limit (a guard against one abusive host, not a capacity limit).
const BENCH_DEFAULTS = 'maxConnectionsPerIp' in DEFAULT_OPTIONS ? { maxConnectionsPerIp: 10_000_000 } : {};
// BENCH_TICKFAN_OPTS (JSON) adds options to any scenario's tickfan, e.g. '{"eagerFlushes":32}'.
const given = { ...BENCH_DEFAULTS, ...JSON.parse(process.env.BENCH_SERVER_OPTS || '{}'), ...JSON.parse(process.env.BENCH_TICKFAN_OPTS || '{}') };
const warnings = { count: 0, last: '' };
const server = await startServer({
  port: 0,
  host: '127.0.0.1',
  ...given,
  // Slow-consumer closes are expected in some scenarios: count them, print errors only.
  log: (level, msg) => {
    if (level === 'error') console.error(`[tickfan] ${msg}`);
    else if (level === 'warn') (warnings.count++, (warnings.last = msg));
  },
});

serve({
  publish: (topic, fields) => server.publish(topic, fields),
  stats: () => ({ ...server.stats.toJSON(), warnings: warnings.count }),
  versions: (topics) => {
    const out = {};
    for (const t of topics) {
      const topic = server.store.get(t);
      if (topic) out[t] = { epoch: topic.epoch, version: topic.version };
    }
    return out;
  },
  close: () => server.close(),
});
process.send({ type: 'ready', port: server.port, pid: process.pid });
