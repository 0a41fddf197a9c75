// Issue 20's desk page with a token (headless Chromium): a server with
// authentication, the demo desk token issuer (src/demo/desk-tokens.ts, as
// `tickfan serve --demo` starts it with auth.secret; here minting 4-second
// tokens) and the page opened with ?tokenUrl=: the desk is the token's subject, the header shows the token's
// remaining lifetime, and as the SDK refreshes the token on the open
// connection (its `token` event) the lifetime starts over, several times,
// with no reconnect; an order placed with the token lands in the desk's
// blotter; a token URL that gives no token is shown as such. Saves
// test/e2e/artifacts/desk-token.png.

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TickfanServer } from '../../src/index.js';
import { connect, type TickfanClient } from '../../src/client/index.js';
import { DeskTokenIssuer, MarketSim, OrderService } from '../../src/demo/index.js';
import { mintToken } from '../../src/token.js';
import { ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ROOT, missing, skip } from './chromium.js';
import { blotterDom, orderFromTicket, pollPage, touch } from './desk-page.js';

const SECRET = 'desk-token-e2e-secret-at-least-32-characters';
const DESK = 'desk-tok';
const TOKEN_LIFE_S = 4;

describe.skipIf(skip)(`the desk page refreshing its token, in headless Chromium (${CHROMIUM})`, () => {
  let server: TickfanServer;
  let sim: MarketSim;
  let svcClient: TickfanClient;
  let svc: OrderService;
  let issuer: DeskTokenIssuer;
  let tokenUrl: string;
  const minted: number[] = []; // exp (s) of each desk token handed out, as the page fetched them
  let context: BrowserContext;
  let profile: string;

  beforeAll(async () => {
    if (missing) throw new Error(`${CHROMIUM} is missing: .ci/run installs it with apt-get install chromium`);
    execFileSync(process.execPath, [join(ROOT, 'scripts/build-browser.mjs')], { cwd: ROOT, stdio: 'pipe' });
    mkdirSync(ARTIFACTS, { recursive: true });
    server = await startServer({ port: 0, host: '127.0.0.1', demoPage: true, heartbeatMs: 1_000, auth: { secret: SECRET }, log: () => {} });
    sim = new MarketSim((topic, changes) => server.publish(topic, changes), { symbols: 20, rate: 200 }, (topic, batch) => server.publishBatch(topic, batch));
    sim.start();
    const svcToken = await mintToken({ secret: SECRET, sub: 'demo-orders', serve: ['orders.*'], publish: ['blotter.>'], subscribe: ['book.>'], ttl: '1h' });
    svcClient = connect(`ws://127.0.0.1:${server.port}/ws`, { token: svcToken });
    svc = new OrderService(svcClient, { fillChance: 1, seed: 4 });
    await svc.start();
    // The desk's token service: what a deployment's login-backed endpoint would be, minting short-lived desk tokens.
    issuer = await DeskTokenIssuer.start({ secret: SECRET, ttlSec: TOKEN_LIFE_S });
    tokenUrl = `${issuer.url}?desk=${DESK}`;
    profile = mkdtempSync(join(tmpdir(), 'tickfan-chromium-'));
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1 });
  }, 40_000);

  afterAll(async () => {
    await context?.close();
    svc?.stop();
    svcClient?.close();
    sim?.stop();
    await server?.close();
    await issuer?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('shows the token lifetime and starts it over at each refresh in session (no reconnect); orders go with the token', async () => {
    const errors: string[] = [];
    const page = await context.newPage();
    page.on('pageerror', (err) => errors.push(String(err)));
    page.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())));
    page.on('response', (r) => {
      // (A response still coming as the page closes has no body to read: ignored.)
      if (r.url() === tokenUrl) r.text().then((t) => minted.push((JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()) as { exp: number }).exp), () => {});
    });
    await page.goto(`http://127.0.0.1:${server.port}/?tokenUrl=${encodeURIComponent(tokenUrl)}`);
    await page.waitForSelector('body[data-state="connected"]', { timeout: 10_000 });
    expect(await page.textContent('#desk')).toBe(DESK);
    await pollPage(page, () => page.textContent('#token'), (t) => /^token \ds left$/.test(t ?? ''), 5_000, 'the lifetime shown');

    // Watch the header for a while: the lifetime counts down, then starts over at each refresh.
    const shown: { text: string; exp: string; refreshes: number }[] = [];
    const until = Date.now() + 3 * TOKEN_LIFE_S * 1000;
    while (Date.now() < until) {
      shown.push(
        await page.evaluate(() => {
          const el = document.getElementById('token')!;
          return { text: el.textContent ?? '', exp: el.dataset.exp ?? '', refreshes: Number(el.dataset.refreshes ?? 0) };
        }),
      );
      await page.waitForTimeout(200);
    }
    const refreshes = shown.at(-1)!.refreshes;
    expect(refreshes, 'refreshes in 12 s of 4-second tokens').toBeGreaterThanOrEqual(3);
    // Each refresh shows the newer token's exp, one the token service minted, and "refreshed n×".
    const exps = [...new Set(shown.map((s) => Number(s.exp)))];
    expect(exps.length).toBeGreaterThanOrEqual(3);
    expect([...exps].sort((a, b) => a - b)).toEqual(exps);
    for (const e of exps) expect(minted).toContain(e);
    expect(shown.at(-1)!.text).toMatch(new RegExp(`^token \\ds left · refreshed ${refreshes}×$`));
    // The lifetime went down and back up: it was refreshed before running out, never shown expired.
    const secs = shown.map((s) => Number(/token (\d+)s left/.exec(s.text)?.[1] ?? NaN));
    expect(secs.every((n) => n >= 1 && n <= TOKEN_LIFE_S)).toBe(true);
    expect(secs.some((n, i) => i > 0 && n > secs[i - 1]!)).toBe(true);
    // In session: no reconnect, no catch-up.
    const stats = await page.evaluate(() => ({ ...(window as unknown as { tickfan: { stats: Record<string, number> } }).tickfan.stats }));
    expect(stats.reconnects).toBe(0);
    expect(stats.catchUpDeltas! + stats.catchUpSnapshots!).toBe(0);
    expect(await page.getAttribute('body', 'data-state')).toBe('connected');

    // An order with the token: the service takes the desk from the token (no desk field needed), and it fills.
    await pollPage(page, () => touch(page), (t) => t.ask > t.bid && t.bid > 0, 10_000, 'the ladder');
    const t = await touch(page);
    const answer = await orderFromTicket(page, { side: 'buy', price: t.ask + 100, qty: 0.002 });
    expect(answer).toMatch(/accepted O-\S+/);
    const id = /accepted (O-\S+)/.exec(answer)![1]!;
    expect(svc.orders.get(id)!.desk).toBe(DESK);
    await pollPage(page, () => blotterDom(page), (r) => r[0]?.key === id && r[0].state === 'filled', 10_000, 'the fill');
    await page.screenshot({ path: join(ARTIFACTS, 'desk-token.png') });
    expect(errors).toEqual([]);
    expect(issuer.minted).toBeGreaterThanOrEqual(refreshes + 1);
    console.log(`desk token: ${issuer.minted} tokens minted (${TOKEN_LIFE_S} s), ${refreshes} refreshes seen on the page, lifetimes shown ${[...new Set(secs)].join(',')} s; reconnects ${stats.reconnects}`);
    await page.close();
  }, 40_000);

  it('a token URL that gives no token: the header says so, the page does not crash, and the client stops after 3 tries', async () => {
    const errors: string[] = [];
    const page = await context.newPage();
    page.on('pageerror', (err) => errors.push(String(err)));
    // No desk in the token URL: the issuer answers 400 BAD_DESK every time.
    await page.goto(`http://127.0.0.1:${server.port}/?tokenUrl=${encodeURIComponent(issuer.url)}`);
    await pollPage(page, () => page.textContent('#token'), (t) => t === 'token: token unavailable', 10_000, 'the token problem shown');
    await page.waitForSelector('body[data-state="closed"]', { timeout: 15_000 });
    expect(await page.textContent('#log')).toMatch(/TICKFAN_ERR_TOKEN_UNAVAILABLE.*answered 400/);
    expect(errors).toEqual([]);
    await page.close();
  }, 30_000);
});
