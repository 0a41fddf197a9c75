// `tickfan serve` as operators run it (the built dist/cli.js): configuration
// from file < environment < flags with errors naming the setting and its
// source, pino JSON logs on stderr, and graceful shutdown (RELIABILITY 22):
// SIGTERM → clients get 1001 going away → exit 0, with and without workers;
// an uncaught exception closes the server the same way, then exits 1. Also
// `serve --help` (made from the option table) and `tickfan sub` into a reader
// that goes away. TICKFAN_CLI runs them against another build than dist/.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { OPTION_ENTRIES } from '../../src/server/option-table.js';
import { http, waitFor } from './helpers.js';
import { SECRET, closed, token, upgrade } from './security-helpers.js';

const cli = process.env.TICKFAN_CLI ?? fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'tickfan-cli-'));
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** Environment without any TICKFAN_* settings of the machine running the tests. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TICKFAN_')));
  return { ...env, ...extra };
}

interface Served {
  child: ChildProcess;
  port: number;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

async function serve(args: string[], env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<Served> {
  const child = spawn(process.execPath, [...nodeArgs, cli, 'serve', ...args], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await waitFor(() => /listening on ws:\/\/[^:]+:\d+/.test(out) || child.exitCode !== null, 10_000, `tickfan serve to start (stderr: ${err})`);
  const port = Number(/listening on ws:\/\/[^:]+:(\d+)/.exec(out)?.[1]);
  return { child, port, stdout: () => out, stderr: () => err, exited };
}

function fails(args: string[], env: Record<string, string> = {}): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [cli, 'serve', ...args], { env: cleanEnv(env), encoding: 'utf8', timeout: 15_000 });
  return { status: r.status, stderr: r.stderr };
}

function jsonLines(text: string): { level: number; msg: string; [k: string]: unknown }[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: number; msg: string });
}

async function wsOpen(port: number, query = ''): Promise<WebSocket> {
  const u = await upgrade(`ws://127.0.0.1:${port}/ws${query}`);
  if (!u.ok) throw new Error(`upgrade refused: ${u.status}`);
  return u.ws;
}

describe('tickfan serve: configuration', () => {
  it('reads a YAML file, the environment and flags (file < env < flags) and applies them', async () => {
    const file = join(dir, 'tickfan.yaml');
    writeFileSync(join(dir, 'secret.txt'), `${SECRET}\n`);
    writeFileSync(file, ['port: 1', 'maxConnections: 7', 'limits:', '  maxTopics: 3', '  historySize: 16', 'auth:', '  secret: "@secret.txt"', '  anonymous: true', 'topicTtlMs: 60000'].join('\n'));
    // One thread: with workers each would admit its share of maxConnections, wherever the kernel puts a socket.
    const s = await serve(['--config', file, '--port', '0', '--max-connections', '2', '--workers', '0'], { TICKFAN_MAX_TOPICS: '4', TICKFAN_MAX_CONNECTIONS: '5' });
    expect(s.port).toBeGreaterThan(0); // the flag beat the file's port 1
    // maxConnections: flag 2 beat env 5 beat file 7.
    const a = await wsOpen(s.port);
    const b = await wsOpen(s.port);
    expect(await upgrade(`ws://127.0.0.1:${s.port}/ws`)).toMatchObject({ ok: false, status: 503 });
    // The secret came from the file next to the config; anonymous is read-only.
    const jwt = await token({ publish: ['cf.>'] }, { expSec: 600 });
    const pub = (t: string, auth?: string) =>
      new Promise<number>((resolve, reject) => {
        void import('node:http').then(({ request }) => {
          const req = request({ host: '127.0.0.1', port: s.port, method: 'POST', path: `/publish/${t}`, agent: false, headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${auth}` } : {}) } }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          });
          req.on('error', reject);
          req.end('{"v":1}');
        });
      });
    expect(await pub('cf.A')).toBe(403);
    // maxTopics: env 4 beat file 3.
    for (const t of ['cf.A', 'cf.B', 'cf.C', 'cf.D']) expect(await pub(t, jwt)).toBe(200);
    expect(await pub('cf.E', jwt)).toBe(507);
    a.close();
    b.close();
    const logs = jsonLines(s.stderr());
    expect(logs.find((l) => l.msg.startsWith('listening on'))).toMatchObject({ level: 30, name: 'tickfan', auth: true, anonymous: true, topicTtlMs: 60000 });
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(0);
  });

  it.each([
    ['an unknown key in a JSON file', { file: ['tickfan.json', '{"port": 0, "maxConections": 5}'] }, [], {}, /maxConections in config file .*tickfan\.json: options\.maxConections is not a tickfan option/],
    ['an unknown nested key in a YAML file', { file: ['bad.yaml', 'limits:\n  maxTopic: 5\n'] }, [], {}, /limits\.maxTopic in config file .*bad\.yaml: options\.limits\.maxTopic is not a tickfan option/],
    ['a bad value in a YAML file', { file: ['bad2.yml', 'idleTimeoutSec: 5\n'] }, [], {}, /idleTimeoutSec in config file .*bad2\.yml: options\.idleTimeoutSec must be 0 \(off\) or between 8 and 960/],
    ['a file that is not YAML', { file: ['broken.yaml', 'port: [1,\n'] }, [], {}, /config file .*broken\.yaml is not valid YAML/],
    ['a bad environment value', {}, [], { TICKFAN_MAX_CONNECTIONS: 'many' }, /environment variable TICKFAN_MAX_CONNECTIONS must be an integer \(got "many"\)/],
    ['an environment value out of range', {}, [], { TICKFAN_MAX_CONNECTIONS_PER_IP: '0' }, /environment variable TICKFAN_MAX_CONNECTIONS_PER_IP: options\.maxConnectionsPerIp must be an integer between 1/],
    ['a bad flag value', {}, ['--port', '70000'], {}, /flag --port: options\.port must be an integer between 0 and 65535/],
    ['a short secret', {}, ['--auth-secret', 'short'], {}, /flag --auth-secret: options\.auth\.secret must be a string of at least 32 characters/],
    ['a missing key file', {}, ['--auth-public-key', '@/nonexistent/key.pem'], {}, /flag --auth-public-key: options\.auth\.publicKey: cannot read \/nonexistent\/key\.pem/],
    ['a bad origin', {}, ['--allowed-origins', 'desk.example.com'], {}, /flag --allowed-origins: options\.allowedOrigins must be an array of origins/],
    ['a bad log level', {}, [], { TICKFAN_LOG_LEVEL: 'loud' }, /environment variable TICKFAN_LOG_LEVEL: options\.logLevel must be one of/],
  ] as const)('refuses to start on %s, naming the setting and its source', (_label, fileSpec, args, env, pattern) => {
    const extra: string[] = [];
    if ('file' in fileSpec) {
      const path = join(dir, fileSpec.file[0]);
      writeFileSync(path, fileSpec.file[1]);
      extra.push('--config', path);
    }
    const r = fails(['--port', '0', ...extra, ...args], env);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(pattern);
  });

  it('an environment setting overrides a bad file value, and the error names whichever source set it last', () => {
    const path = join(dir, 'over.json');
    writeFileSync(path, '{"heartbeatMs": 1}');
    expect(fails(['--port', '0', '--config', path], { TICKFAN_HEARTBEAT_MS: '2' }).stderr).toMatch(/environment variable TICKFAN_HEARTBEAT_MS: options\.heartbeatMs/);
    expect(fails(['--port', '0', '--config', path, '--heartbeat-ms', '3'], { TICKFAN_HEARTBEAT_MS: '2' }).stderr).toMatch(/flag --heartbeat-ms: options\.heartbeatMs/);
  });
});

describe('tickfan serve: shutdown', () => {
  it('SIGTERM: stops accepting, clients get 1001 going away, the process exits 0', async () => {
    const s = await serve(['--port', '0', '--demo', '--demo-rate', '200', '--demo-symbols', '20']);
    const ws = await wsOpen(s.port);
    const code = closed(ws);
    s.child.kill('SIGTERM');
    expect(await code).toBe(1001);
    expect(await s.exited).toBe(0);
    expect(jsonLines(s.stderr()).some((l) => /SIGTERM: closing/.test(l.msg))).toBe(true);
    await expect(http(s.port, 'GET', '/healthz')).rejects.toThrow();
  });

  it('SIGTERM with worker threads: 1001 to clients of every worker, exit 0, no crash on exit', async () => {
    const s = await serve(['--port', '0', '--workers', '2']);
    const sockets = await Promise.all(Array.from({ length: 6 }, () => wsOpen(s.port)));
    const codes = Promise.all(sockets.map(closed));
    s.child.kill('SIGTERM');
    expect(await codes).toEqual(sockets.map(() => 1001));
    expect(await s.exited).toBe(0);
    expect(s.stderr()).not.toMatch(/Aborted|Segmentation|terminate called/);
  });

  it('an uncaught exception closes the server first (clients get 1001), logs it, and exits 1', async () => {
    const s = await serve(['--port', '0'], {}, ['--import', 'data:text/javascript,setTimeout(() => { throw new Error("boom from a test") }, 1500)']);
    const ws = await wsOpen(s.port);
    expect(await closed(ws)).toBe(1001);
    expect(await s.exited).toBe(1);
    const logs = jsonLines(s.stderr());
    expect(logs.find((l) => l.msg.startsWith('uncaught exception: Error: boom from a test'))).toMatchObject({ level: 50 });
  });
});

describe('tickfan serve --help', () => {
  it('lists every flag of the option table with its environment variable, and exits 0', () => {
    const r = spawnSync(process.execPath, [cli, 'serve', '--help'], { env: cleanEnv(), encoding: 'utf8', timeout: 15_000 });
    expect(r.status).toBe(0);
    for (const e of OPTION_ENTRIES.filter((x) => x.flag)) {
      expect(r.stdout).toMatch(new RegExp(`^  --${e.flag}\\b.*${e.env}`, 'm'));
    }
  });
});

describe('tickfan sub', () => {
  it('a reader that goes away (`tickfan sub | head -1`) ends it quietly with exit status 0', async () => {
    const s = await serve(['--port', '0', '--workers', '0', '--demo', '--demo-rate', '500', '--demo-symbols', '20']);
    const sub = spawn(process.execPath, [cli, 'sub', 'px.*', '--url', `ws://127.0.0.1:${s.port}/ws`], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(sub);
    let err = '';
    sub.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => sub.once('exit', (code) => resolve(code)));
    // Like `head -1`: read the first update, then close the reading end of the pipe.
    await new Promise<void>((resolve) => sub.stdout!.once('data', () => resolve()));
    sub.stdout!.destroy();
    expect(await exited).toBe(0);
    expect(err).not.toMatch(/EPIPE|Error|\n\s+at /);
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(0);
  });
});
