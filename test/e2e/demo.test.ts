// The demo page in a real browser (Debian's headless Chromium, driven by
// playwright-core) against a real server with the demo feed. Every connection
// of the page goes through a TCP proxy the test controls, so "the network
// dropped" is one call. A screenshot lands in test/e2e/artifacts/ on every run.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TickfanServer } from '../../src/index.js';
import { MarketSim } from '../../src/demo/index.js';
import { http } from '../integration/helpers.js';
import { TcpProxy } from './tcp-proxy.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ARTIFACTS = join(ROOT, 'test/e2e/artifacts');
const CHROMIUM = '/usr/bin/chromium';
// Without it, Chromium's background services try the network, and on a closed network its connections are refused.
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const missing = !existsSync(CHROMIUM);
// Outside CI a machine without Chromium skips (and says so); in CI .ci/run installs it, so a missing one fails.
const skip = missing && !process.env.CI;
if (skip) console.warn(`test/e2e: skipped: ${CHROMIUM} is not installed (apt-get install chromium)`);

interface Row {
  topic: string;
  version: number;
  cells: string[];
  state: Record<string, unknown> | null;
}

/** What the page shows: every grid row's cells and version, and the SDK's state of the topic. */
function shown(page: Page): Promise<Row[]> {
  return page.evaluate(() =>
    [...document.querySelectorAll<HTMLTableRowElement>('tr[data-topic]')].map((tr) => ({
      topic: tr.dataset.topic!,
      version: Number(tr.dataset.version),
      cells: [...tr.cells].map((td) => td.textContent ?? ''),
      state: ((window as unknown as { tickfan: { stateOf(t: string): { state: Record<string, unknown> } | undefined } }).tickfan.stateOf(tr.dataset.topic!)?.state ?? null) as Record<string, unknown> | null,
    })),
  );
}

function stats(page: Page): Promise<Record<string, number>> {
  return page.evaluate(() => ({ ...(window as unknown as { tickfan: { stats: Record<string, number> } }).tickfan.stats }));
}

async function pollPage<T>(page: Page, read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await page.waitForTimeout(50);
  }
}

describe.skipIf(skip)(`demo page in headless Chromium (${CHROMIUM})`, () => {
  let server: TickfanServer;
  let sim: MarketSim;
  let proxy: TcpProxy;
  let context: BrowserContext;
  let profile: string;
  let url: string;
  let topics: string[];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (missing) throw new Error(`${CHROMIUM} is missing: .ci/run installs it with apt-get install chromium`);
    // The page loads the SDK bundle the server serves: build it from the current sources.
    execFileSync(process.execPath, [join(ROOT, 'scripts/build-browser.mjs')], { cwd: ROOT, stdio: 'pipe' });
    mkdirSync(ARTIFACTS, { recursive: true });
    server = await startServer({ port: 0, host: '127.0.0.1', demoPage: true, heartbeatMs: 1_000, log: () => {} });
    sim = new MarketSim((topic, changes) => server.publish(topic, changes), { symbols: 120, rate: 800 });
    sim.start();
    topics = sim.topics.filter((t) => !t.startsWith('book.'));
    proxy = await TcpProxy.start(server.port);
    url = `http://127.0.0.1:${proxy.port}/`;
    profile = mkdtempSync(join(tmpdir(), 'tickfan-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1440, height: 900 },
      deviceScaleFactor: 1,
    });
  }, 40_000);

  afterAll(async () => {
    await context?.close();
    await proxy?.close();
    sim?.stop();
    await server?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  async function open(opts: { noWebSocket?: boolean } = {}): Promise<Page> {
    const page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(String(err)));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/ERR_CONNECTION|net::|WebSocket connection|EventSource/.test(m.text())) pageErrors.push(m.text());
    });
    if (opts.noWebSocket) await page.addInitScript(() => delete (window as { WebSocket?: unknown }).WebSocket);
    await page.goto(url);
    await page.waitForSelector('body[data-state="connected"]', { timeout: 10_000 });
    await pollPage(page, () => shown(page), (rows) => rows.length === topics.length && rows.every((r) => r.version > 0), 10_000, 'every topic on the page');
    return page;
  }

  /** Stops the feed, waits until the page shows every topic at the server's version, and checks it against GET /snapshot. */
  async function expectExact(page: Page): Promise<void> {
    sim.stop();
    try {
      const want = new Map(topics.map((t) => [t, server.store.get(t)!.version]));
      const rows = await pollPage(page, () => shown(page), (rs) => rs.every((r) => r.version === want.get(r.topic)), 10_000, 'the page to show the server versions');
      for (const r of rows) {
        const { status, body } = (await http(server.port, 'GET', `/snapshot/${r.topic}`)) as { status: number; body: { version: number; fields: Record<string, number> } };
        expect(status).toBe(200);
        expect(r.version, r.topic).toBe(body.version);
        // Exact: the SDK's state is the server's, field for field …
        expect(r.state, r.topic).toEqual(body.fields);
        // … and the grid shows it.
        const d = r.topic.startsWith('fx.') ? (r.topic.includes('JPY') ? 3 : 5) : 2;
        expect(r.cells.slice(1, 3), r.topic).toEqual([body.fields.bid!.toFixed(d), body.fields.ask!.toFixed(d)]);
        if (!r.topic.startsWith('fx.')) expect(r.cells[3], r.topic).toBe(body.fields.last!.toFixed(d));
        expect(r.cells.at(-1)).toBe(`v${body.version}`);
      }
      const book = await http(server.port, 'GET', '/snapshot/book.BTC-USD');
      await pollPage(page, () => page.evaluate(() => document.getElementById('book')!.dataset.version), (v) => Number(v) === (book.body as { version: number }).version, 5_000, 'the order book version');
    } finally {
      sim.start();
    }
  }

  it('loads the page, prices update live, and a screenshot is saved', async () => {
    const page = await open();
    expect(await page.textContent('#transport')).toBe('WebSocket');
    const first = new Map((await shown(page)).map((r) => [r.topic, r.version]));
    const later = await pollPage(page, () => shown(page), (rows) => rows.filter((r) => r.version > first.get(r.topic)!).length >= 20, 10_000, 'prices to update');
    for (const r of later) expect(r.cells[1]).toMatch(/^\d+\.\d+$/);
    // The order book and the counters are live too.
    expect(Number(await page.evaluate(() => document.getElementById('book')!.dataset.version))).toBeGreaterThan(0);
    expect(Number((await page.textContent('#k-rate'))!.replace(/,/g, ''))).toBeGreaterThan(0);
    await page.waitForTimeout(400); // a few flashes in the picture
    await page.screenshot({ path: join(ARTIFACTS, 'demo.png') });

    // The rate selector resubscribes at the chosen rate; prices keep coming.
    for (const [label, rate] of [['Every update', '0'], ['1 / s', '1'], ['10 / s', '10']] as const) {
      await page.click(`#rate button:text-is("${label}")`);
      await page.waitForSelector(`body[data-rate="${rate}"]`);
      expect(await page.getAttribute(`#rate button[data-rate="${rate}"]`, 'aria-pressed')).toBe('true');
      const at = new Map((await shown(page)).map((r) => [r.topic, r.version]));
      await pollPage(page, () => shown(page), (rows) => rows.filter((r) => r.version > at.get(r.topic)!).length >= 10, 10_000, `prices at ${label}`);
    }
    expect(pageErrors).toEqual([]);
    await page.close();
  }, 30_000);

  it('reconnects after the server-side connection is cut, resumes, and shows the exact values of GET /snapshot', async () => {
    const page = await open();
    const before = await stats(page);
    expect(proxy.cut()).toBeGreaterThan(0);
    await pollPage(page, () => stats(page), (s) => s.reconnects === before.reconnects + 1, 10_000, 'the reconnect');
    await page.waitForSelector('body[data-state="connected"]', { timeout: 10_000 });
    // The resume was by catch-up, merged deltas where the history covered the cut, not a fresh start.
    // (Polled for the deltas themselves: the page's first catch-up may be one of the snapshots.)
    const after = await pollPage(page, () => stats(page), (s) => s.catchUpDeltas > before.catchUpDeltas, 10_000, 'catch-ups by merged delta');
    expect(after.catchUps).toBeGreaterThan(before.catchUps);
    expect(after.sequenceGaps).toBe(0);
    await expectExact(page);
    expect(await page.textContent('#c-reconnects')).toBe(String(after.reconnects));
    expect(pageErrors).toEqual([]);
    await page.close();
  }, 30_000);

  it('works over SSE when WebSocket is unavailable, and resumes its session after a cut', async () => {
    const page = await open({ noWebSocket: true });
    expect(await page.evaluate(() => typeof (window as { WebSocket?: unknown }).WebSocket)).toBe('undefined');
    expect(await page.textContent('#transport')).toBe('SSE');
    const first = new Map((await shown(page)).map((r) => [r.topic, r.version]));
    await pollPage(page, () => shown(page), (rows) => rows.filter((r) => r.version > first.get(r.topic)!).length >= 20, 10_000, 'prices to update over SSE');

    const before = await stats(page);
    expect(proxy.cut()).toBeGreaterThan(0);
    await pollPage(page, () => stats(page), (s) => s.reconnects === before.reconnects + 1, 10_000, 'the SSE reconnect');
    await page.waitForSelector('body[data-state="connected"]', { timeout: 10_000 });
    expect(await page.textContent('#transport')).toBe('SSE');
    const after = await pollPage(page, () => stats(page), (s) => s.catchUpDeltas > before.catchUpDeltas, 10_000, 'the catch-ups over SSE');
    expect(after.sequenceGaps).toBe(0);
    await expectExact(page);
    // After the resume: the log and the counters tell the story.
    await page.waitForTimeout(1_200);
    await page.screenshot({ path: join(ARTIFACTS, 'demo-sse-resumed.png') });
    expect(pageErrors).toEqual([]);
    await page.close();
  }, 30_000);
});
