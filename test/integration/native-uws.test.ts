// tickfan refuses to run on uWebSockets.js' slow pure-JS fallback: with the
// native binary unavailable (the pinned build falling back, or an upstream
// build throwing because its binary needs a newer glibc), `tickfan serve`
// exits with a message that names this runtime and what to install for it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
    expect(r.stderr).toContain(`Node.js ${process.versions.node} (module ABI ${process.versions.modules}) on ${process.platform}-${process.arch}`);
  });

  it('an upstream-style load failure (the binary throws) is caught and explained for this runtime', () => {
    // A preload makes require('uWebSockets.js') throw as an upstream build does when its binary needs glibc 2.38.
    const dir = mkdtempSync(join(tmpdir(), 'tickfan-uws-'));
    try {
      const preload = join(dir, 'fail-uws.cjs');
      writeFileSync(
        preload,
        `const M = require('node:module'); const load = M._load;
M._load = function (request, ...rest) {
  if (request === 'uWebSockets.js') throw new Error("/lib/x86_64-linux-gnu/libc.so.6: version \`GLIBC_2.38' not found (required by uws_linux_x64_115.node)");
  return load.call(this, request, ...rest);
};\n`,
      );
      const r = spawnSync(process.execPath, ['--require', preload, cli, 'serve', '--port', '0'], { encoding: 'utf8', timeout: 15_000 });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/did not load its native binary \(.*GLIBC_2\.38' not found/);
      expect(r.stderr).toContain(`Node.js ${process.versions.node} (module ABI ${process.versions.modules})`);
      expect(r.stderr).toContain('needs glibc 2.38');
      expect(r.stderr).toContain('docs/operations.md');
      expect(r.stdout).not.toMatch(/listening/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
