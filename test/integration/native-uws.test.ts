// tickfan refuses to run on uWebSockets.js' slow pure-JS fallback: with the
// native binary unavailable, `tickfan serve` exits with a clear message.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isNativeUws } from '../../src/index.js';

const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

describe('native uWebSockets.js', () => {
  it('is what this test run uses', () => {
    expect(isNativeUws()).toBe(true);
  });

  it('refuses to start when only the fallback loads, naming the problem', () => {
    const r = spawnSync(process.execPath, [cli, 'serve', '--port', '0'], {
      env: { ...process.env, UWS_USE_FALLBACK: '1' },
      encoding: 'utf8',
      timeout: 15_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/did not load its native binary/);
    expect(r.stderr).toMatch(/refuses to run/);
    expect(r.stdout).not.toMatch(/listening/);
  });
});
