// `tickfan serve` as operators run it (the built dist/cli.js): configuration
// from file < environment < flags with errors naming the setting and its
// source, pino JSON logs on stderr, and graceful shutdown (RELIABILITY 22):
// SIGTERM → clients get 1001 going away → exit 0, with and without workers;
// an uncaught exception closes the server the same way, then exits 1. Also
// `serve --help` (made from the option table) and `tickfan sub` into a reader
// that goes away; `tickfan token` (HS256 / RS256 / ES256 tokens a server with
// the matching key accepts, grants enforced exactly, expiry, refusals with
// exit status 2), `tickfan req` and `tickfan serve-echo` (replies, typed
// errors with exit status 1, signals, a closed stdout), and --help.
// TICKFAN_CLI runs them against another build than dist/.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OPTION_ENTRIES } from '../../src/server/option-table.js';
import { connect, ErrorCode, type FieldValue, type TickfanClient } from '../../src/client/index.js';
import { freePort, http, sleep, waitFor } from './helpers.js';
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

// ------------------------------------------------------------------ token, req, serve-echo

/** What a spawned command did: exit status, its stdout and its stderr. */
interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `tickfan <args>` without blocking this process (an SDK responder in this test may have to answer it). */
function run(args: string[], env: Record<string, string> = {}, timeoutMs = 15_000): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

function runSync(args: string[], env: Record<string, string> = {}): Ran {
  const r = spawnSync(process.execPath, [cli, ...args], { env: cleanEnv(env), encoding: 'utf8', timeout: 15_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A stack trace line: errors of the CLI are one message for a person, never a trace. */
const TRACE = /\n\s+at \S/;

const sdkClients: TickfanClient[] = [];
afterEach(() => {
  for (const c of sdkClients.splice(0)) c.close();
});

function sdk(port: number, token?: string): TickfanClient {
  const c = connect(`ws://127.0.0.1:${port}/ws`, { reconnect: false, ...(token ? { token } : {}) });
  sdkClients.push(c);
  return c;
}

interface Echo {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** `tickfan serve-echo` against the server on `port`, once it serves (or has exited). */
async function serveEcho(port: number, args: string[]): Promise<Echo> {
  const child = spawn(process.execPath, [cli, 'serve-echo', ...args, '--url', `ws://127.0.0.1:${port}/ws`], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await waitFor(() => /tickfan: serving \S+ as /.test(err) || child.exitCode !== null, 10_000, `serve-echo to serve (stderr: ${err})`);
  return { child, stdout: () => out, stderr: () => err, exited };
}

function req(port: number, args: string[], env: Record<string, string> = {}): Promise<Ran> {
  return run(['req', ...args, '--url', `ws://127.0.0.1:${port}/ws`], env);
}

const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

// Several servers and CLI processes per test: slow on a loaded 2-core machine.
describe('tickfan token: a server with the matching key accepts the token and enforces exactly its grants', { timeout: 60_000 }, () => {
  const GRANTS = ['--subscribe', 'px.*,fx.>', '--publish', 'px.DESK42', '--serve', 'orders.*', '--request', 'orders.>'];

  function mint(args: string[], env: Record<string, string> = {}): string {
    const r = runSync(['token', ...args], env);
    expect(r.stderr).not.toMatch(TRACE);
    expect(r.status).toBe(0);
    const jwt = r.stdout.trim();
    expect(jwt).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    return jwt;
  }

  /** Every grant checked both ways over a real connection, through the SDK and the CLI's own req and serve-echo. */
  async function enforcesExactly(port: number, jwt: string, sub: string): Promise<void> {
    const c = sdk(port, jwt);
    // publish: px.DESK42 only
    await expect(c.publish('px.DESK42', { bid: 101.25 })).resolves.toMatchObject({ topic: 'px.DESK42', version: 1 });
    for (const t of ['px.OTHER', 'fx.EURUSD', 'orders.submit']) {
      await expect(c.publish(t, { bid: 1 })).rejects.toMatchObject({ errorCode: ErrorCode.PERMISSION_DENIED });
    }
    // subscribe: inside px.* or fx.>
    const mine = c.subscribe('px.DESK42');
    await mine.ready;
    expect(c.stateOf('px.DESK42')?.state).toEqual({ bid: 101.25 });
    await c.subscribe('fx.>').ready;
    await c.subscribe('fx.EUR.*').ready;
    for (const p of ['book.BTC', 'px.>', '>', 'px.DESK42.L2', '*.DESK42']) {
      await expect(c.subscribe(p).ready, p).rejects.toMatchObject({ errorCode: ErrorCode.PERMISSION_DENIED });
    }
    // serve: inside orders.*
    const answering = c.serve('orders.submit', (p, meta) => ({ ...(p as Record<string, FieldValue>), by: 'sdk', requester: meta.requester }));
    await answering.ready;
    for (const s of ['quotes.x', 'orders.>', 'orders.submit.x', '>']) {
      await expect(c.serve(s, () => ({})).ready, s).rejects.toMatchObject({ errorCode: ErrorCode.PERMISSION_DENIED });
    }
    // request: inside orders.> — through tickfan req with the token
    const ok = await req(port, ['orders.submit', 'qty=5', '--token', jwt]);
    expect(ok.stderr).toBe('');
    expect(ok).toMatchObject({ status: 0, stdout: `qty=5 by="sdk" requester="${sub}"\n` });
    for (const s of ['quotes.x', 'orders']) {
      const denied = await req(port, [s, 'qty=5', '--token', jwt]);
      expect(denied.status).toBe(1);
      expect(denied.stderr).toMatch(new RegExp(`^tickfan: TICKFAN_ERR_PERMISSION_DENIED: not allowed to request ${s}:`));
      expect(denied.stderr).not.toMatch(TRACE);
    }
    // serve-echo with the token: inside the grant it serves, and requesters are named by their token's subject
    const echo = await serveEcho(port, ['orders.audit', '--token', jwt, '--name', 'e1']);
    const echoed = await req(port, ['orders.audit', 'n=1', '--token', jwt, '--json']);
    expect(echoed.status).toBe(0);
    expect(JSON.parse(echoed.stdout)).toMatchObject({ n: 1, echoedBy: 'e1' });
    expect(echo.stdout()).toMatch(new RegExp(`orders\\.audit #\\d+ from ${sub}: n=1\\n`));
    echo.child.kill('SIGTERM');
    expect(await echo.exited).toBe(0);
    // ... outside it, it ends with the refusal
    const refused = await serveEcho(port, ['quotes.*', '--token', jwt]);
    expect(await refused.exited).toBe(1);
    expect(refused.stderr()).toMatch(/tickfan: TICKFAN_ERR_PERMISSION_DENIED: not allowed to serve quotes\.\*/);
    expect(refused.stderr()).not.toMatch(TRACE);
  }

  it('HS256: --secret @file, the same file as the server\'s --auth-secret', async () => {
    const secretFile = join(dir, 'hs-secret.txt');
    writeFileSync(secretFile, `${SECRET}\n`);
    const s = await serve(['--port', '0', '--workers', '0', '--auth-secret', `@${secretFile}`]);
    const jwt = mint(['--secret', `@${secretFile}`, '--sub', 'desk-42', ...GRANTS, '--ttl', '1h']);
    await enforcesExactly(s.port, jwt, 'desk-42');
    // Another secret's token is refused at the door.
    const other = mint(['--secret', `${SECRET}-but-another`, '--sub', 'desk-42', ...GRANTS]);
    expect(await upgrade(`ws://127.0.0.1:${s.port}/ws?token=${other}`)).toMatchObject({ ok: false, status: 401 });
   });

  it('HS256: the secret from TICKFAN_AUTH_SECRET, as the server reads it', async () => {
    const s = await serve(['--port', '0', '--workers', '0'], { TICKFAN_AUTH_SECRET: SECRET });
    const jwt = mint(['--sub', 'env-desk', '--publish', 'px.DESK42'], { TICKFAN_AUTH_SECRET: SECRET });
    const c = sdk(s.port, jwt);
    await expect(c.publish('px.DESK42', { bid: 1 })).resolves.toMatchObject({ version: 1 });
    await expect(c.publish('px.OTHER', { bid: 1 })).rejects.toMatchObject({ errorCode: ErrorCode.PERMISSION_DENIED });
  });

  it.each([
    ['RS256', () => generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })],
    ['ES256', () => generateKeyPairSync('ec', { namedCurve: 'P-256', publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })],
  ])('%s: --private-key @key.pem (PKCS#8), the server holding the SPKI public key', async (alg, keys) => {
    const { publicKey, privateKey } = keys();
    const pub = join(dir, `${alg}.pub.pem`);
    const key = join(dir, `${alg}.key.pem`);
    writeFileSync(pub, publicKey);
    writeFileSync(key, privateKey);
    const s = await serve(['--port', '0', '--workers', '0', '--auth-public-key', `@${pub}`]);
    const r = runSync(['token', '--private-key', `@${key}`, '--sub', `svc-${alg}`, ...GRANTS, '--ttl', '15m']);
    expect(r.stderr).toMatch(new RegExp(`^tickfan: ${alg} token for "svc-${alg}", expires \\S+Z; subscribe px\\.\\*,fx\\.>; publish px\\.DESK42; serve orders\\.\\*; request orders\\.>\\n$`));
    await enforcesExactly(s.port, mint(['--private-key', `@${key}`, '--sub', `svc-${alg}`, ...GRANTS, '--ttl', '15m']), `svc-${alg}`);
    // A token signed with the shared-secret scheme is not accepted by a public-key server.
    expect(await upgrade(`ws://127.0.0.1:${s.port}/ws?token=${mint(['--secret', SECRET, '--sub', 'x', ...GRANTS])}`)).toMatchObject({ ok: false, status: 401 });
   });

  it('--issuer and --audience: a server that requires them accepts the token that carries them', async () => {
    const s = await serve(['--port', '0', '--workers', '0', '--auth-secret', SECRET, '--auth-issuer', 'desk-auth', '--auth-audience', 'md']);
    const good = mint(['--secret', SECRET, '--sub', 'x', '--subscribe', '>', '--issuer', 'desk-auth', '--audience', 'md']);
    const bare = mint(['--secret', SECRET, '--sub', 'x', '--subscribe', '>']);
    const u = await upgrade(`ws://127.0.0.1:${s.port}/ws?token=${good}`);
    expect(u.ok).toBe(true);
    if (u.ok) u.ws.close();
    expect(await upgrade(`ws://127.0.0.1:${s.port}/ws?token=${bare}`)).toMatchObject({ ok: false, status: 401 });
  });

  it('--ttl 3s: accepted at first, refused as expired once the time has passed (also by tickfan req)', async () => {
    const s = await serve(['--port', '0', '--workers', '0', '--auth-secret', SECRET]);
    // Whole seconds: 3 s from iat leaves at least 2 s to connect once minted (1 s could be gone on a loaded machine).
    const jwt = mint(['--secret', SECRET, '--sub', 'brief', '--request', '>', '--ttl', '3s']);
    const { exp, iat } = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as { exp: number; iat: number };
    expect(exp - iat).toBe(3);
    const first = await upgrade(`ws://127.0.0.1:${s.port}/ws?token=${jwt}`);
    expect(first.ok).toBe(true);
    if (first.ok) first.ws.close();
    await waitFor(() => Date.now() >= (exp + 1) * 1000, 8_000, 'the token to expire');
    const later = await upgrade(`ws://127.0.0.1:${s.port}/ws?token=${jwt}`);
    expect(later).toMatchObject({ ok: false, status: 401 });
    expect(later.ok ? '' : later.body.error?.message).toMatch(/expired/);
    const r = await req(s.port, ['orders.submit', '--token', jwt]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^tickfan: TICKFAN_ERR_UNAUTHORIZED: the token has expired/);
  });
});

describe('tickfan token: refusals a person can act on (exit status 2, no token, no stack trace)', () => {
  beforeAll(() => {
    const enc = { publicKeyEncoding: { type: 'spki', format: 'pem' } } as const;
    const files = {
      pkcs1: generateKeyPairSync('rsa', { modulusLength: 2048, ...enc, privateKeyEncoding: { type: 'pkcs1', format: 'pem' } }).privateKey,
      p384: generateKeyPairSync('ec', { namedCurve: 'P-384', ...enc, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } }).privateKey,
      spki: generateKeyPairSync('ec', { namedCurve: 'P-256', ...enc, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } }).publicKey,
    };
    for (const [name, pem] of Object.entries(files)) writeFileSync(join(dir, `bad-${name}.pem`), pem);
    writeFileSync(join(dir, 'short-secret.txt'), `${'s'.repeat(31)}\n`);
  });

  it.each([
    ['a short secret', ['--secret', 'too-short', '--sub', 'x'], /--secret: must be at least 32 characters for HS256 \(it has 9\)/],
    ['a short secret in a file', ['--secret', '@{dir}/short-secret.txt', '--sub', 'x'], /--secret: must be at least 32 characters for HS256 \(it has 31\)/],
    ['a secret file that is not there', ['--secret', '@/nonexistent/secret', '--sub', 'x'], /--secret: cannot read \/nonexistent\/secret/],
    ['a PKCS#1 RSA key', ['--private-key', '@{dir}/bad-pkcs1.pem', '--sub', 'x'], /--private-key: is a PKCS#1 RSA key .*openssl pkcs8 -topk8 -nocrypt/],
    ['a P-384 key', ['--private-key', '@{dir}/bad-p384.pem', '--sub', 'x'], /--private-key: is an EC key on curve secp384r1; ES256 needs P-256/],
    ['a public key', ['--private-key', '@{dir}/bad-spki.pem', '--sub', 'x'], /--private-key: is a public key: tokens are signed with the private key/],
    ['a key path without @', ['--private-key', 'key.pem', '--sub', 'x'], /--private-key: is not a PEM key .*write @path/],
    ['a bad subscribe pattern', ['--secret', SECRET, '--sub', 'x', '--subscribe', 'px.*,px.>.x'], /--subscribe: pattern "px\.>\.x": ">" may only be the last level/],
    ['a bad serve pattern', ['--secret', SECRET, '--sub', 'x', '--serve', 'orders.a b'], /--serve: pattern "orders\.a b": level "a b" must be/],
    ['an empty pattern', ['--secret', SECRET, '--sub', 'x', '--request', 'orders.>,'], /--request: an empty pattern/],
    ['a ttl without unit', ['--secret', SECRET, '--sub', 'x', '--ttl', '90'], /--ttl: "90" is not a lifetime: write a whole number and a unit s, m, h or d/],
    ['a ttl in weeks', ['--secret', SECRET, '--sub', 'x', '--ttl', '2w'], /--ttl: "2w" is not a lifetime/],
    ['a zero ttl', ['--secret', SECRET, '--sub', 'x', '--ttl', '0s'], /--ttl: must be at least 1 second/],
    ['no --sub', ['--secret', SECRET], /token: needs --sub NAME/],
    ['no secret or key', ['--sub', 'x'], /token: needs --secret SECRET\|@file .* or --private-key @key\.pem/],
    ['both a secret and a key', ['--secret', SECRET, '--private-key', '@{dir}/bad-p384.pem', '--sub', 'x'], /token: give --secret \(HS256\) or --private-key \(RS256 \/ ES256\), not both/],
    ['an unknown flag', ['--secret', SECRET, '--sub', 'x', '--expires', '1h'], /token: Unknown option '--expires'/],
  ])('%s', (_label, args, why) => {
    const r = runSync(['token', ...args.map((a) => a.replace('{dir}', dir))]);
    expect(r.stderr).toMatch(why);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).not.toMatch(TRACE);
  });
});

describe('tickfan req and serve-echo', { timeout: 60_000 }, () => {
  it('req prints the reply of a serve-echo responder (text and --json); serve-echo prints one line per request', async () => {
    const s = await serve(['--port', '0', '--workers', '0']);
    const echo = await serveEcho(s.port, ['orders.*', '--name', 'e1']);
    const fields = ['side=buy', 'qty=100', 'px=101.25', 'ok=true', 'gone=null', 'id=9007199254740993'];
    const text = await req(s.port, ['orders.submit', ...fields]);
    expect(text.stderr).toBe('');
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/^side="buy" qty=100 px=101\.25 ok=true gone=∅ id=9007199254740993 echoedBy="e1" at="[^"]+"\n$/);
    const json = await req(s.port, ['orders.submit', ...fields, '--json', '--timeout', '2000']);
    expect(json.status).toBe(0);
    const reply = JSON.parse(json.stdout) as Record<string, unknown>;
    expect(reply).toEqual({ side: 'buy', qty: 100, px: 101.25, ok: true, gone: null, id: { $bigint: '9007199254740993' }, echoedBy: 'e1', at: expect.stringMatching(ISO_TIME) });
    const lines = echo.stdout().trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    for (const l of lines) expect(l).toMatch(/^\S+Z orders\.submit #\d+ from anonymous: side="buy" qty=100 px=101\.25 ok=true gone=∅ id=9007199254740993$/);
    expect(lines[1]!.split(' ')[0]).toBe(reply.at);
   });

  it('a request with no fields; two serve-echo responders share the requests', async () => {
    const s = await serve(['--port', '0', '--workers', '0']);
    const a = await serveEcho(s.port, ['quotes.get', '--name', 'A']);
    const b = await serveEcho(s.port, ['quotes.*', '--name', 'B']);
    const by: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await req(s.port, ['quotes.get', '--json']);
      expect(r.status).toBe(0);
      const o = JSON.parse(r.stdout) as { echoedBy: string; at: string };
      expect(Object.keys(o).sort()).toEqual(['at', 'echoedBy']);
      by.push(o.echoedBy);
    }
    expect(new Set(by)).toEqual(new Set(['A', 'B']));
    expect(a.stdout().trimEnd().split('\n')).toHaveLength(by.filter((x) => x === 'A').length);
    expect(b.stdout().trimEnd().split('\n')).toHaveLength(by.filter((x) => x === 'B').length);
    expect(a.stdout()).toMatch(/quotes\.get #\d+ from anonymous: \(no fields\)/);
   });

  it('errors end req with status 1 and the code and message: NO_RESPONDER, REQUEST_TIMEOUT, RESPONDER_FAILED, RESPONDER_GONE', async () => {
    const s = await serve(['--port', '0', '--workers', '0']);
    const c = sdk(s.port);
    await c.serve('slow.op', () => new Promise<never>(() => {})).ready;
    await c.serve('bad.op', () => {
      throw new Error('desk closed for the day');
    }).ready;
    const leaver = sdk(s.port);
    await leaver.serve('gone.op', () => {
      setTimeout(() => leaver.close(), 20);
      return new Promise<never>(() => {});
    }).ready;

    const cases: [string[], RegExp][] = [
      [['nobody.op', 'x=1'], /^tickfan: TICKFAN_ERR_NO_RESPONDER: no responder serves nobody\.op/],
      [['slow.op', 'x=1', '--timeout', '300'], /^tickfan: TICKFAN_ERR_REQUEST_TIMEOUT: /],
      [['bad.op', 'x=1'], /^tickfan: TICKFAN_ERR_RESPONDER_FAILED: .*desk closed for the day/],
      [['gone.op', 'x=1'], /^tickfan: TICKFAN_ERR_RESPONDER_GONE: /],
    ];
    for (const [args, why] of cases) {
      const t0 = Date.now();
      const r = await req(s.port, args);
      expect(r.stderr, args[0]).toMatch(why);
      expect(r.status).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).not.toMatch(TRACE);
      if (args[0] === 'slow.op') expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    }
   });

  it('req without a server says it cannot reach it (status 1)', async () => {
    const port = await freePort();
    const r = await req(port, ['orders.submit']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`cannot reach ws://127\\.0\\.0\\.1:${port}/ws`));
    expect(r.stderr).not.toMatch(TRACE);
  });

  it.each(['SIGINT', 'SIGTERM'] as const)('serve-echo ends quietly on %s (status 0), and its service is gone', async (signal) => {
    const s = await serve(['--port', '0', '--workers', '0']);
    const echo = await serveEcho(s.port, ['orders.*']);
    expect((await req(s.port, ['orders.submit', 'n=1'])).status).toBe(0);
    echo.child.kill(signal);
    expect(await echo.exited).toBe(0);
    expect(echo.stderr()).not.toMatch(TRACE);
    expect((await req(s.port, ['orders.submit', 'n=2'])).stderr).toMatch(/TICKFAN_ERR_NO_RESPONDER/);
  });

  it('serve-echo into a reader that goes away ends quietly with status 0', async () => {
    const s = await serve(['--port', '0', '--workers', '0']);
    const echo = await serveEcho(s.port, ['orders.*']);
    const firstLine = new Promise<void>((resolve) => echo.child.stdout!.once('data', () => resolve()));
    expect((await req(s.port, ['orders.submit', 'n=1'])).status).toBe(0);
    await firstLine;
    echo.child.stdout!.destroy();
    // The next line it writes finds the pipe closed (the request's own outcome does not matter).
    await req(s.port, ['orders.submit', 'n=2']);
    expect(await Promise.race([echo.exited, sleep(15_000).then(() => 'still running')])).toBe(0);
    expect(echo.stderr()).not.toMatch(/EPIPE|Error/);
    expect(echo.stderr()).not.toMatch(TRACE);
  });

  it.each([
    ['req without a service', ['req'], /req: needs a service name/],
    ['req to a pattern', ['req', 'orders.*'], /req: "orders\.\*" is a pattern/],
    ['req with a bare word', ['req', 'orders.submit', 'buy'], /req: "buy" is not field=value/],
    ['req with a bad timeout', ['req', 'orders.submit', '--timeout', 'soon'], /req: --timeout must be a whole number of milliseconds/],
    ['req with an unknown flag', ['req', 'orders.submit', '--wait', '5'], /req: Unknown option '--wait'/],
    ['serve-echo without a service', ['serve-echo'], /serve-echo: needs a service name or pattern/],
    ['serve-echo with a bad pattern', ['serve-echo', 'orders.>.x'], /serve-echo: pattern "orders\.>\.x": ">" may only be the last level/],
    ['serve-echo with two services', ['serve-echo', 'a.b', 'c.d'], /serve-echo: one service at a time/],
  ])('usage error: %s (status 2, the usage line, no stack trace)', (_label, args, why) => {
    const r = runSync([...args, '--url', 'ws://127.0.0.1:1/ws']);
    expect(r.stderr).toMatch(why);
    expect(r.stderr).toMatch(new RegExp(`Usage:\\n  tickfan ${args[0]} `));
    expect(r.status).toBe(2);
    expect(r.stderr).not.toMatch(TRACE);
  });
});

describe('tickfan --help and each command\'s --help', () => {
  const COMMANDS = ['serve', 'sub', 'pub', 'req', 'serve-echo', 'token'];

  it('tickfan --help lists every command', () => {
    const r = runSync(['--help']);
    expect(r.status).toBe(0);
    for (const c of COMMANDS) expect(r.stdout).toMatch(new RegExp(`^  tickfan ${c} [<\\[-]`, 'm'));
    expect(r.stdout).toMatch(/^  tickfan token --sub NAME \(--secret SECRET\|@file \| --private-key @key\.pem\) .*--ttl 1h/m);
  });

  it.each(COMMANDS.filter((c) => c !== 'serve'))('tickfan %s --help gives its usage and flags (as does tickfan help <command>), status 0', (c) => {
    const r = runSync([c, '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Usage:\\n  tickfan ${c} `));
    if (c !== 'pub') expect(r.stdout).toMatch(c === 'token' ? /--private-key PEM\|@file/ : /--url URL/);
    expect(runSync(['help', c]).stdout).toBe(r.stdout);
  });

  it('req --help names the error codes it ends with', () => {
    const r = runSync(['req', '--help']);
    for (const code of ['NO_RESPONDER', 'REQUEST_TIMEOUT', 'RESPONDER_GONE', 'RESPONDER_FAILED', 'PERMISSION_DENIED']) expect(r.stdout).toContain(`TICKFAN_ERR_${code}`);
  });
});
