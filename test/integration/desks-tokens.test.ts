// The demo desk token issuer (src/demo/desk-tokens.ts) against a real server
// with authentication: its tokens are the desk's (sub = desk; its own blotter,
// the books and the order services, nothing else), short-lived and
// refreshable by an SDK token function that fetches it; bad requests get a
// typed JSON error (400 BAD_DESK, 404 NOT_FOUND); without a secret it does not
// start; and `tickfan serve --demo --auth-secret …` starts it and prints the
// desk page's URL that uses it (dist/ must be built: npm run build).

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, type TokenEvent } from '../../src/client/index.js';
import { DeskTokenIssuer, startDeskTokens } from '../../src/demo/index.js';
import { Harness, sleep, waitFor } from './helpers.js';
import { SECRET } from './security-helpers.js';

const h = new Harness();
const issuers: DeskTokenIssuer[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const i of issuers.splice(0)) await i.close();
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  await h.close();
});

function claims(token: string): { sub: string; exp: number; subscribe: string[]; request: string[]; publish?: unknown } {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as ReturnType<typeof claims>;
}

describe('the demo desk token issuer', () => {
  it("mints the desk's short-lived tokens; the server takes them, grants exactly the desk's topics, and a token function refreshes with them", async () => {
    const server = await h.server({ auth: { secret: SECRET } });
    const issuer = await DeskTokenIssuer.start({ secret: SECRET, ttlSec: 3 });
    issuers.push(issuer);
    const res = await fetch(`${issuer.url}?desk=desk-1`);
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    const t = await res.text();
    const c0 = claims(t);
    expect(c0.sub).toBe('desk-1');
    expect(c0.exp - Date.now() / 1000).toBeLessThanOrEqual(3);
    expect(c0.subscribe).toEqual(['blotter.desk-1', 'book.>', 'px.*', 'fx.*']);
    expect(c0.request).toEqual(['orders.*']);
    expect(c0.publish).toBeUndefined();

    const desk = h.client(server, { token: async () => (await fetch(`${issuer.url}?desk=desk-1`)).text() });
    const seen: TokenEvent[] = [];
    desk.on('token', (e) => seen.push(e));
    server.publish('px.AAPL', { bid: 1 });
    const own = desk.subscribe('px.AAPL');
    await own.ready;
    const other = desk.subscribe('blotter.desk-2');
    await expect(other.ready).rejects.toMatchObject({ errorCode: ErrorCode.PERMISSION_DENIED });
    await expect(desk.publish('px.AAPL', { bid: 2 })).rejects.toMatchObject({ errorCode: ErrorCode.PERMISSION_DENIED });
    // 3-second tokens, refreshed in session from the issuer.
    await waitFor(() => seen.filter((e) => e.refreshed).length >= 2, 10_000, 'two refreshes');
    expect(seen.every((e) => e.sub === 'desk-1')).toBe(true);
    expect(desk.stats.reconnects).toBe(0);
    expect(issuer.minted).toBeGreaterThanOrEqual(4);
  }, 20_000);

  it('answers a bad request with a typed JSON error, never a token', async () => {
    const issuer = await DeskTokenIssuer.start({ secret: SECRET });
    issuers.push(issuer);
    for (const q of ['', '?desk=', '?desk=two%20words', '?desk=a.b', `?desk=${'x'.repeat(65)}`]) {
      const res = await fetch(`${issuer.url}${q}`);
      expect(res.status, q).toBe(400);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('BAD_DESK');
      expect(body.error.message).toMatch(/desk-token\?desk=desk-1/);
    }
    for (const [path, method] of [['/other', 'GET'], ['/desk-token?desk=d', 'POST']] as const) {
      const res = await fetch(issuer.url.replace('/desk-token', path), { method });
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
    }
    expect(issuer.minted).toBe(0);
  });

  it('starts beside the demo only with auth.secret (a value or @file)', async () => {
    expect(await startDeskTokens(undefined, 'http://127.0.0.1:1/')).toBeNull();
    expect(await startDeskTokens({ issuer: 'x' }, 'http://127.0.0.1:1/')).toBeNull();
    const dir = mkdtempSync(join(tmpdir(), 'tickfan-desk-tokens-'));
    try {
      writeFileSync(join(dir, 'secret'), `${SECRET}\n`);
      const started = (await startDeskTokens({ secret: `@${join(dir, 'secret')}` }, 'http://127.0.0.1:8080/'))!;
      issuers.push(started.issuer);
      const tokenUrl = new URL(started.pageUrl).searchParams.get('tokenUrl')!;
      expect(tokenUrl).toMatch(new RegExp(`^${started.issuer.url.replace(/[.?]/g, '\\$&')}\\?desk=desk-[a-z0-9]+$`));
      const server = await h.server({ auth: { secret: SECRET } });
      const c = await h.connected(server, { token: await (await fetch(tokenUrl)).text() });
      expect(c.state).toBe('connected');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('`tickfan serve --demo --auth-secret …` prints the desk page URL with its token issuer; npm start (no secret) starts none', async () => {
    const cli = join(process.cwd(), 'dist/cli.js');
    const run = (args: string[]) => {
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TICKFAN_')));
      const child = spawn(process.execPath, [cli, 'serve', '--demo', '--port', '0', '--workers', '0', '--demo-rate', '50', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      const out = { text: '' };
      child.stdout!.on('data', (d: Buffer) => (out.text += d.toString()));
      return { child, out };
    };
    const withAuth = run(['--auth-secret', SECRET]);
    await waitFor(() => /desk page with them: (\S+)/.test(withAuth.out.text), 15_000, 'the desk token line');
    const page = /desk page with them: (\S+)/.exec(withAuth.out.text)![1]!;
    const tokenUrl = new URL(page).searchParams.get('tokenUrl')!;
    const t = await (await fetch(tokenUrl)).text();
    expect(claims(t).exp - Date.now() / 1000).toBeGreaterThan(50);
    expect(claims(t).sub).toBe(new URL(tokenUrl).searchParams.get('desk'));
    const port = Number(new URL(page).port);
    const c = await h.connected(port, { token: t });
    const book = c.subscribe('book.BTC-USD', { tables: { bids: { depth: 1 }, asks: { depth: 1 } } });
    await book.ready;

    const open = run([]);
    await waitFor(() => /demo order service/.test(open.out.text), 15_000, 'the open demo to start');
    await sleep(300);
    expect(open.out.text).not.toMatch(/desk token/);
  }, 40_000);
});
