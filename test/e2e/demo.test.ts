// The demo page in a real browser (Debian's headless Chromium, driven by
// playwright-core) against a real server with the demo feed. Every connection
// of the page goes through a TCP proxy the test controls, so "the network
// dropped" is one call. The order book is a keyed topic shown as a ladder from
// a depth-10 view; the ladder is checked against GET /snapshot?depth=10.
// Screenshots land in test/e2e/artifacts/ on every run.

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TickfanServer } from '../../src/index.js';
import { MarketSim } from '../../src/demo/index.js';
import { http } from '../integration/helpers.js';
import { ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ROOT, missing, skip } from './chromium.js';
import { TcpProxy } from './tcp-proxy.js';


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

/** The ladder the page shows: [side, price, size, orders] per level, asks (worst first) then bids (best first), and its version. */
function ladder(page: Page): Promise<{ topic: string; version: number; rows: string[][] }> {
  return page.evaluate(() => {
    const body = document.getElementById('book')!;
    const rows = [...body.querySelectorAll<HTMLTableRowElement>('tr.ask, tr.bid')].map((tr) => [tr.className, ...[...tr.cells].slice(0, 3).map((td) => td.textContent ?? '')]);
    return { topic: body.dataset.topic ?? '', version: Number(body.dataset.version), rows };
  });
}

type BookSnapshot = { version: number; fields: { tick: number }; tables: Record<'bids' | 'asks', { rows: [number, { qty: number; orders: number }][] }> };

/** The ladder GET /snapshot/<topic>?depth=10 gives, formatted as the page formats it. */
async function snapshotLadder(port: number, topic: string, qtyDecimals: number): Promise<{ version: number; rows: string[][] }> {
  const { body } = (await http(port, 'GET', `/snapshot/${topic}?depth=10`)) as { body: BookSnapshot };
  const tick = body.fields.tick;
  const pd = Math.max(0, Math.ceil(-Math.log10(tick) - 1e-9));
  const row = (side: string) => ([k, f]: [number, { qty: number; orders: number }]) => [side, (k * tick).toFixed(pd), f.qty.toFixed(qtyDecimals), String(f.orders)];
  return { version: body.version, rows: [...body.tables.asks.rows.slice().reverse().map(row('ask')), ...body.tables.bids.rows.map(row('bid'))] };
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
    sim = new MarketSim((topic, changes) => server.publish(topic, changes), { symbols: 120, rate: 800 }, (topic, batch) => server.publishBatch(topic, batch));
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
      // The ladder: the depth-10 view of both tables, exactly the server's top 10 at that version.
      const wantBook = await snapshotLadder(server.port, 'book.BTC-USD', 4);
      const got = await pollPage(page, () => ladder(page), (l) => l.version === wantBook.version, 5_000, 'the order book version');
      expect(got.rows).toHaveLength(20);
      expect(got.rows).toEqual(wantBook.rows);
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
    // The order book (a depth-10 view: 10 levels a side, asks above bids, prices rising upwards) and the counters are live too.
    const l0 = await pollPage(page, () => ladder(page), (l) => l.rows.length === 20, 10_000, 'a ladder of 10 levels a side');
    expect(l0.topic).toBe('book.BTC-USD');
    expect(l0.rows.map((r) => r[0])).toEqual([...Array(10).fill('ask'), ...Array(10).fill('bid')]);
    const prices = l0.rows.map((r) => Number(r[1]));
    expect(prices).toEqual(prices.slice().sort((a, b) => b - a));
    await pollPage(page, () => ladder(page), (l) => l.version > l0.version, 10_000, 'the book to update');
    expect(Number((await page.textContent('#k-rate'))!.replace(/,/g, ''))).toBeGreaterThan(0);
    await page.waitForTimeout(400); // a few flashes in the picture
    await page.screenshot({ path: join(ARTIFACTS, 'demo.png') });
    await page.locator('#book-panel').screenshot({ path: join(ARTIFACTS, 'demo-book.png') });

    // Another book: the selector resubscribes to its depth-10 view.
    await page.click('#books button[data-book="ETH-USD"]');
    await pollPage(page, () => ladder(page), (l) => l.topic === 'book.ETH-USD' && l.rows.length === 20, 10_000, 'the ETH-USD ladder');
    await page.click('#books button[data-book="BTC-USD"]');
    await pollPage(page, () => ladder(page), (l) => l.topic === 'book.BTC-USD' && l.rows.length === 20, 10_000, 'the BTC-USD ladder again');

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
