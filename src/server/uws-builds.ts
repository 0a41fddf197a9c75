// Which uWebSockets.js builds load on which runtime, and what to tell a user
// whose runtime the installed build does not cover: the loader (uws.ts) puts
// this advice in its error. docs/operations.md ("Runtimes") says the same.

/** The runtime a native binary has to match. */
export interface Runtime {
  /** Node.js version, e.g. `20.19.0`. */
  node: string;
  /** Node's module ABI (`process.versions.modules`): 115 is Node 20, 127 Node 22, 137 Node 24, 141 Node 25. */
  modules: string;
  platform: string;
  arch: string;
  /** glibc version on Linux (`2.36`); null elsewhere, and on musl Linux (Alpine). */
  glibc: string | null;
}

/** A uWebSockets.js build: the Node ABIs and platforms it ships binaries for, and the glibc its Linux binaries need. */
export interface UwsBuild {
  name: string;
  /** What to put in package.json to install it. */
  spec: string;
  /** Node module ABI → Node major version. */
  abis: Readonly<Record<string, number>>;
  platforms: readonly string[];
  glibc: string;
}

/** The build package.json pins (the npm package of upstream v20.30.0): loads on Node 16, 18 and 20; tickfan needs 20. */
export const PINNED_UWS: UwsBuild = {
  name: 'the pinned build (@trufflesuite/uws-js-unofficial 20.30.0, upstream v20.30.0)',
  spec: 'npm:@trufflesuite/uws-js-unofficial@20.30.0-unofficial.0',
  abis: { '93': 16, '108': 18, '115': 20 },
  platforms: ['linux-x64', 'linux-arm64', 'linux-arm', 'darwin-x64', 'darwin-arm64', 'win32-x64'],
  glibc: '2.27',
};

/** Upstream v20.57.0: Node 20, 22, 24 and 25; its Linux binaries need glibc 2.38 (Debian 13, Ubuntu 24.04, RHEL 10). */
export const UPSTREAM_UWS: UwsBuild = {
  name: 'upstream uWebSockets.js v20.57.0',
  spec: 'github:uNetworking/uWebSockets.js#v20.57.0',
  abis: { '115': 20, '127': 22, '137': 24, '141': 25 },
  platforms: ['linux-x64', 'linux-arm64', 'darwin-x64', 'darwin-arm64', 'win32-x64'],
  glibc: '2.38',
};

/** The runtime this process runs on. */
export function currentRuntime(): Runtime {
  let glibc: string | null = null;
  if (process.platform === 'linux') {
    const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
    glibc = header?.glibcVersionRuntime ?? null;
  }
  return { node: process.versions.node, modules: process.versions.modules, platform: process.platform, arch: process.arch, glibc };
}

/** `a` is at least `b`, comparing dotted version numbers. */
function atLeast(a: string, b: string): boolean {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d > 0;
  }
  return true;
}

const OVERRIDE = (spec: string) => `"overrides": { "uWebSockets.js": "${spec}" }`;

/**
 * One or two sentences: what to install (or which runtime to use) so that
 * uWebSockets.js loads natively here. `detail` is what the failed load said:
 * a binary that needs a newer glibc than this system has is named as such.
 */
export function uwsAdvice(rt: Runtime, detail = ''): string {
  const major = Number(rt.node.split('.')[0]);
  const where = `${rt.platform}-${rt.arch}`;
  const here = `Node.js ${rt.node} (module ABI ${rt.modules}) on ${where}${rt.platform === 'linux' ? (rt.glibc ? ` with glibc ${rt.glibc}` : ' without glibc (musl)') : ''}`;
  const see = 'See docs/operations.md, "Runtimes".';
  if (major < 20) return `This is ${here}. tickfan needs Node.js 20 (or 22, 24, 25 with ${UPSTREAM_UWS.name}). ${see}`;
  if (rt.platform === 'linux' && !rt.glibc)
    return `This is ${here}. uWebSockets.js ships binaries for glibc Linux only: use a glibc-based system or image (e.g. node:20-bookworm-slim). ${see}`;
  const pinned = PINNED_UWS.abis[rt.modules] !== undefined && PINNED_UWS.platforms.includes(where);
  const upstream = UPSTREAM_UWS.abis[rt.modules] !== undefined && UPSTREAM_UWS.platforms.includes(where);
  const needs = /GLIBC_(\d+\.\d+)' not found/.exec(detail)?.[1];
  if (needs && pinned)
    return (
      `This is ${here}, and the installed uWebSockets.js build needs glibc ${needs}. On Node.js 20 the pinned build (glibc ${PINNED_UWS.glibc}) loads here: ` +
      `remove your "overrides" of uWebSockets.js and reinstall, or move to a system with glibc ${needs} or later. ${see}`
    );
  if (needs)
    return `This is ${here}, and the installed uWebSockets.js build needs glibc ${needs}: move to a system with glibc ${needs} or later (Debian 13, Ubuntu 24.04), or run Node.js 20 with the pinned build (glibc ${PINNED_UWS.glibc}). ${see}`;
  if (pinned) {
    const glibc = rt.glibc && !atLeast(rt.glibc, PINNED_UWS.glibc) ? ` It needs glibc ${PINNED_UWS.glibc} or later.` : '';
    return `This is ${here}, which ${PINNED_UWS.name} supports: reinstall so that its binary is present (\`npm ci\`, or \`npm rebuild\`) and unset UWS_USE_FALLBACK.${glibc} ${see}`;
  }
  if (upstream) {
    if (rt.glibc && !atLeast(rt.glibc, UPSTREAM_UWS.glibc))
      return (
        `This is ${here}. The uWebSockets.js builds for Node ${major} (${UPSTREAM_UWS.name}) need glibc ${UPSTREAM_UWS.glibc}: ` +
        `run Node.js 20 here (the pinned build needs glibc ${PINNED_UWS.glibc}), or move to a system with glibc ${UPSTREAM_UWS.glibc} or later (Debian 13, Ubuntu 24.04). ${see}`
      );
    return `This is ${here}: install ${UPSTREAM_UWS.name} in place of the pinned build, with ${OVERRIDE(UPSTREAM_UWS.spec)} in your package.json, then \`npm install\`. ${see}`;
  }
  if (!PINNED_UWS.platforms.includes(where) && !UPSTREAM_UWS.platforms.includes(where))
    return `This is ${here}. No uWebSockets.js build exists for ${where}: use Linux (x64, arm64), macOS or Windows x64. ${see}`;
  return `This is ${here}. tickfan runs on Node.js 20 with the pinned build, or on Node.js 22, 24 and 25 with ${UPSTREAM_UWS.name} (${OVERRIDE(UPSTREAM_UWS.spec)}); use one of those. ${see}`;
}
