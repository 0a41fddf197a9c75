// The benchmark's broker peers (issue 21) must not rot between benchmark runs:
// bench/peers-check.mjs runs the load generator's NATS and MQTT parsers on
// streams cut at every frame size, then starts Debian's nats-server and
// mosquitto as the bench does and checks exact delivery counts end to end
// and that each broker is gone afterwards. With CI set it fails when a broker
// is missing (.ci/run installs both); elsewhere it skips that broker.

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

describe('bench peers', () => {
  it('nats-server and mosquitto deliver every message through the bench drivers, and stop', () => {
    const r = spawnSync(process.execPath, ['bench/peers-check.mjs'], { encoding: 'utf8', timeout: 60_000 });
    const out = `${r.stdout}\n${r.stderr}`;
    expect(r.status, out).toBe(0);
    expect(out).toMatch(/parsers ok/);
    if (process.env.CI) {
      expect(out).toMatch(/nats-server ok — (\d+) of \1 deliveries/);
      expect(out).toMatch(/mosquitto ok — (\d+) of \1 deliveries/);
    }
  }, 70_000);
});
