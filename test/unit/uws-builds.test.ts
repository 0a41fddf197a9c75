// What the uWebSockets.js loader tells a user whose runtime the installed
// build does not load on: one case per kind of runtime (the pinned build's
// Node 20, the upstream build's Node 22/24/25 with and without glibc 2.38,
// musl, an old Node, a runtime no build targets, a platform none ships).

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { NativeUwsMissingError } from '../../src/server/uws.js';
import { PINNED_UWS, UPSTREAM_UWS, currentRuntime, uwsAdvice, type Runtime } from '../../src/server/uws-builds.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string> };

const linux = (node: string, modules: string, glibc: string | null = '2.36'): Runtime => ({ node, modules, platform: 'linux', arch: 'x64', glibc });

describe('uwsAdvice', () => {
  it('Node 20 where the pinned build ships a binary: reinstall it', () => {
    const a = uwsAdvice(linux('20.19.0', '115'));
    expect(a).toContain('Node.js 20.19.0 (module ABI 115) on linux-x64 with glibc 2.36');
    expect(a).toMatch(/reinstall .*npm ci/);
    expect(a).toContain('UWS_USE_FALLBACK');
  });

  it('Node 22 with glibc 2.36: the upstream builds need 2.38, so Node 20 or a newer system', () => {
    const a = uwsAdvice(linux('22.11.0', '127'));
    expect(a).toContain('need glibc 2.38');
    expect(a).toContain('run Node.js 20 here');
    expect(a).not.toContain('overrides');
  });

  it.each([
    ['22.11.0', '127'],
    ['24.1.0', '137'],
    ['25.0.0', '141'],
  ])('Node %s with glibc 2.39: override uWebSockets.js with upstream v20.57.0', (node, modules) => {
    const a = uwsAdvice(linux(node, modules, '2.39'));
    expect(a).toContain(`"overrides": { "uWebSockets.js": "${UPSTREAM_UWS.spec}" }`);
    expect(a).toContain('v20.57.0');
  });

  it('macOS and Windows need no glibc: Node 24 gets the override', () => {
    for (const platform of ['darwin', 'win32']) {
      const a = uwsAdvice({ node: '24.0.0', modules: '137', platform, arch: platform === 'darwin' ? 'arm64' : 'x64', glibc: null });
      expect(a, platform).toContain('"overrides"');
    }
  });

  it('a build that needs a newer glibc than this system has (an override on Node 20): back to the pinned build, or a newer system', () => {
    const detail = "Error: /lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.38' not found (required by uws_linux_x64_115.node)";
    const a = uwsAdvice(linux('20.19.0', '115'), detail);
    expect(a).toContain('needs glibc 2.38');
    expect(a).toContain('remove your "overrides" of uWebSockets.js');
    expect(uwsAdvice(linux('22.11.0', '127'), detail)).toMatch(/needs glibc 2\.38: move to a system .* or run Node\.js 20/);
  });

  it('musl (Alpine): a glibc-based image', () => {
    expect(uwsAdvice(linux('20.19.0', '115', null))).toMatch(/glibc Linux only.*bookworm/);
  });

  it('Node 18: tickfan needs 20', () => {
    expect(uwsAdvice(linux('18.20.0', '108'))).toContain('tickfan needs Node.js 20');
  });

  it('Node 23 or 26: neither build tickfan is checked with targets it', () => {
    for (const [node, modules] of [['23.1.0', '131'], ['26.0.0', '147']] as const) {
      const a = uwsAdvice(linux(node, modules, '2.39'));
      expect(a, node).toContain('Node.js 20 with the pinned build, or on Node.js 22, 24 and 25');
    }
  });

  it('a platform no build ships (linux-ppc64)', () => {
    expect(uwsAdvice({ node: '20.19.0', modules: '115', platform: 'linux', arch: 'ppc64', glibc: '2.36' })).toContain('No uWebSockets.js build exists for linux-ppc64');
  });

  it('the pinned build is the one package.json installs', () => {
    expect(pkg.dependencies['uWebSockets.js']).toBe(PINNED_UWS.spec);
    expect(PINNED_UWS.abis['115']).toBe(20);
    expect(UPSTREAM_UWS.abis).toEqual({ '115': 20, '127': 22, '137': 24, '141': 25 });
  });

  it('the error names this runtime', () => {
    const rt = currentRuntime();
    const err = new NativeUwsMissingError('simulated');
    expect(err.code).toBe('TICKFAN_ERR_UWS_NOT_NATIVE');
    expect(err.message).toContain(`Node.js ${rt.node} (module ABI ${rt.modules}) on ${rt.platform}-${rt.arch}`);
  });
});
