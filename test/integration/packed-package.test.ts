// The package as a user gets it: `npm pack` (of the build `npm test` has just
// made), the tarball installed into an empty project, then what a newcomer
// does first — `import { connect } from 'tickfan/client'` type-checks and runs
// against `startServer` from 'tickfan', and `npx tickfan serve --demo` serves
// its demo page and the browser bundle. Dependencies come from the npm cache
// where it has them (--prefer-offline), else from the registry.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from './helpers.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const tsc = join(root, 'node_modules/.bin/tsc');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

let dir = '';
let project = '';
let tarball = '';
let packed: { size: number; unpackedSize: number; files: { path: string; size: number }[] };

function run(cmd: string, args: string[], cwd: string, timeout = 60_000): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout, env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

beforeAll(() => {
  expect(existsSync(join(root, 'dist/index.js')), 'dist/ is built (npm test builds it first)').toBe(true);
  dir = mkdtempSync(join(tmpdir(), 'tickfan-pack-'));
  // --ignore-scripts: `prepare` would rebuild dist/, which `npm test` has just built.
  packed = JSON.parse(run(npm, ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], root))[0];
  tarball = join(dir, (packed as unknown as { filename: string }).filename);
  project = join(dir, 'project');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'tickfan-newcomer', private: true, type: 'module' }));
  run(npm, ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], project, 120_000);
}, 150_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('holds what users run and nothing they do not', () => {
    const paths = packed.files.map((f) => f.path);
    for (const need of ['package.json', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/client/index.js', 'dist/client/index.d.ts', 'dist/cli.js', 'dist/browser/tickfan.js', 'dist/browser/tickfan.d.ts', 'web/index.html', 'web/demo.js', 'schemas/tickfan.fbs'])
      expect(paths, need).toContain(need);
    // No source maps: tsc's point at src/, which is not shipped, and the browser bundle's (≈ 0.7 MB
    // with the SDK's sources in it) serves those developing tickfan; a clone builds and serves it.
    expect(paths.filter((p) => p.endsWith('.map'))).toEqual([]);
    expect(paths.filter((p) => /(^|\/)(test|bench|src)\//.test(p) || p.endsWith('.test.js'))).toEqual([]);
    // Every page the README links to is in the package.
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    for (const [, link] of readme.matchAll(/\]\((docs\/[\w.-]+\.md)(#[\w-]*)?\)/g)) expect(paths, link).toContain(link);
    // A budget against accidents (maps, tests, a stray build): 452 KB at the end of session 4, 579 KB
    // after session 5's features (keyed per-subscription views, request-reply across nodes, adaptive
    // batching, the desk token issuer, the keyed wire's kind 5; d.ts files are 0.43 MB unpacked).
    expect(packed.size, `tarball ${packed.size} B`).toBeLessThan(640 * 1024);
  });

  it("`import { connect } from 'tickfan/client'` type-checks and runs against startServer from 'tickfan'", () => {
    writeFileSync(
      join(project, 'check.ts'),
      `import { connect, type Update } from 'tickfan/client';
import { startServer } from 'tickfan';

const server = await startServer({ port: 0, host: '127.0.0.1', log: () => {} });
server.publish('px.PACK', { bid: 1.25 });
const client = connect(\`ws://127.0.0.1:\${server.port}/ws\`);
const sub = client.subscribe('px.PACK');
const seen: Update[] = [];
sub.on('update', (u) => seen.push(u));
await sub.ready;
server.publish('px.PACK', { bid: 1.5 });
while (sub.version < 2) await new Promise((r) => setTimeout(r, 10));
console.log(JSON.stringify({ version: sub.version, bid: sub.state.bid, updates: seen.length, transport: client.transport }));
client.close();
await server.close();
`,
    );
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, outDir: 'out', typeRoots: [join(root, 'node_modules/@types')], types: ['node'] },
        include: ['check.ts'],
      }),
    );
    run(tsc, ['-p', 'tsconfig.json'], project);
    const out = run(process.execPath, ['out/check.js'], project, 30_000);
    expect(JSON.parse(out.trim().split('\n').pop()!)).toEqual({ version: 2, bid: 1.5, updates: 2, transport: 'ws' });
  });

  it('`npx tickfan serve --demo` serves the demo page, its script and the browser bundle', async () => {
    let child: ChildProcess | null = null;
    let output = '';
    try {
      // Its own process group, so that npx and the server it starts stop together.
      child = spawn('npx', ['--no-install', 'tickfan', 'serve', '--demo', '--port', '0', '--workers', '0'], { cwd: project, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
      await waitFor(() => /listening on ws:\/\/127\.0\.0\.1:\d+\/ws/.test(output), 20_000, `the server to listen:\n${output}`);
      const port = Number(/listening on ws:\/\/127\.0\.0\.1:(\d+)\/ws/.exec(output)![1]);
      const page = await fetch(`http://127.0.0.1:${port}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<html');
      for (const path of ['/demo.js', '/tickfan.js']) {
        const r = await fetch(`http://127.0.0.1:${port}${path}`);
        expect(r.status, path).toBe(200);
        expect(r.headers.get('content-type'), path).toContain('javascript');
      }
      expect(existsSync(join(project, 'node_modules/tickfan/dist/browser/tickfan.js'))).toBe(true);
    } finally {
      if (child?.pid) {
        try {
          process.kill(-child.pid, 'SIGTERM');
        } catch {
          /* already gone */
        }
        await new Promise<void>((resolve) => (child!.exitCode !== null ? resolve() : child!.once('exit', () => resolve())));
      }
    }
  }, 40_000);
});
