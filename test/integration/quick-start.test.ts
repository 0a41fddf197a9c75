// The README's quick start, run as written: `npm start` (without its prestart
// build: `npm test` has just built dist/, and a second build would rewrite
// files other test files are reading), then every command of the block that
// follows it — `npx tickfan sub`, `npx tickfan pub`, `curl` — against it. Only
// the port differs: the server gets a free one through TICKFAN_PORT, the CLI
// finds it through TICKFAN_URL, curl's `localhost:8080` is rewritten.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { freePort, waitFor } from './helpers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The shell blocks of the README's "Quick start" section, each as its command lines (comments dropped). */
function quickStart(): string[][] {
  const readme = readFileSync(`${ROOT}README.md`, 'utf8');
  const from = readme.indexOf('\n## Quick start\n');
  const section = readme.slice(from, readme.indexOf('\n## ', from + 1));
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) =>
    m[1]!
      .split('\n')
      .map((l) => l.replace(/\s+#\s.*$/, '').trim())
      .filter(Boolean),
  );
}

describe('the README quick start', () => {
  it('starts with npm install && npm start, npm test', () => {
    const [first] = quickStart();
    expect(first).toEqual(['npm install && npm start', 'npm test']);
  });

  it('the built CLI is executable (npx tickfan in a fresh clone runs it directly)', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    for (const file of Object.values(pkg.bin)) expect(statSync(join(ROOT, file)).mode & 0o111, `${file} must be executable`).not.toBe(0);
  });

  it('`npm start`, then each command of the next block works against it', async () => {
    const [, tryIt] = quickStart();
    expect(tryIt!.length).toBeGreaterThanOrEqual(3);
    const port = await freePort();
    const env = { ...process.env, TICKFAN_PORT: String(port), TICKFAN_WORKERS: '0', TICKFAN_URL: `ws://127.0.0.1:${port}/ws` };
    let server: ChildProcess | null = null;
    let out = '';
    try {
      // Its own process group: npm, its shell and the server stop together.
      server = spawn('npm', ['start', '--ignore-scripts'], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      server.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      server.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      await waitFor(() => out.includes(`listening on ws://127.0.0.1:${port}/ws`) && /demo feed: \d+ topics/.test(out), 20_000, `npm start to listen with the demo feed:\n${out}`);
      for (const line of tryIt!) {
        const cmd = line.replace(/localhost:8080/g, `localhost:${port}`);
        // `tickfan sub` runs until stopped: give it 3 s and read what it printed.
        const r = spawnSync('sh', ['-c', cmd], { cwd: ROOT, env, encoding: 'utf8', timeout: cmd.includes('tickfan sub') ? 3_000 : 20_000 });
        if (cmd.includes('tickfan sub') && cmd.includes('--depth')) {
          // A keyed book as a ladder, printed per version into the pipe: asks above, bids below.
          expect(r.stdout, cmd).toMatch(/^book\.BTC-USD v\d+ mid=/m);
          expect(r.stdout, cmd).toMatch(/^ask +\d+\.\d +\d/m);
          expect(r.stdout, cmd).toMatch(/^bid +\d+\.\d +\d/m);
        } else if (cmd.includes('tickfan sub')) {
          expect(r.stdout, cmd).toMatch(/^px\.AAPL v\d+ snapshot bid=/m);
          expect(r.stdout, cmd).toMatch(/^px\.AAPL v\d+ delta /m);
        } else {
          expect(r.status, `${cmd}\n${r.stderr}`).toBe(0);
          if (cmd.includes('tickfan pub')) expect(r.stdout, cmd).toMatch(cmd.includes('--table') ? /^book\.TEST v1 / : /^px\.TEST v1 /);
          if (cmd.startsWith('curl')) expect(JSON.parse(r.stdout), cmd).toMatchObject({ topic: 'px.AAPL', fields: { bid: expect.any(Number) } });
        }
      }
    } finally {
      if (server?.pid) {
        try {
          process.kill(-server.pid, 'SIGTERM');
        } catch {
          /* already gone */
        }
        await new Promise<void>((resolve) => (server!.exitCode !== null ? resolve() : server!.once('exit', () => resolve())));
      }
    }
  }, 60_000);
});
