// The demo page as a desk, in headless Chromium (playwright-core) against a
// real server with the demo market and the demo order service (as
// `npm start` runs them): the order ticket sends orders.submit /
// orders.cancel by request-reply, refusals show inline, and the desk's
// blotter (blotter.<desk>, a keyed subscription) shows each order's latest
// state live — checked against GET /snapshot/blotter.<desk>. Over WebSocket,
// and over SSE with window.WebSocket removed. Saves test/e2e/artifacts/desk.png.

import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TickfanServer } from '../../src/index.js';
import { http } from '../integration/helpers.js';
import { ARTIFACTS, CHROMIUM, skip } from './chromium.js';
import { deskRig, type DeskRig } from './desk-rig.js';
import { blotterDom as blotter, orderFromTicket, pollPage, touch } from './desk-page.js';
import type { TcpProxy } from './tcp-proxy.js';


describe.skipIf(skip)(`the demo page as a desk, in headless Chromium (${CHROMIUM})`, () => {
  let rig: DeskRig;
  let server: TickfanServer;
  let proxy: TcpProxy;
  let context: BrowserContext;
  let url: string;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    // The demo order service as `npm start` runs it: fills at random times (every 200 ms, chance 0.25).
    rig = await deskRig({ symbols: 40, rate: 400 });
    ({ server, proxy, context } = rig);
    url = `http://127.0.0.1:${proxy.port}/`;
  }, 40_000);

  afterAll(async () => {
    await rig?.close();
  });

  async function open(query: string, opts: { noWebSocket?: boolean } = {}): Promise<Page> {
    const page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(String(err)));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/ERR_CONNECTION|net::|WebSocket connection|EventSource/.test(m.text())) pageErrors.push(m.text());
    });
    if (opts.noWebSocket) await page.addInitScript(() => delete (window as { WebSocket?: unknown }).WebSocket);
    await page.goto(url + query);
    await page.waitForSelector('body[data-state="connected"]', { timeout: 10_000 });
    await pollPage(page, () => touch(page), (t) => t.ask > t.bid && t.bid > 0, 10_000, 'the ladder');
    return page;
  }

  /** The page's blotter equals GET /snapshot/blotter.<desk>, row for row (the page may be a moment behind: polled). */
  async function expectBlotterAsServer(page: Page, desk: string): Promise<void> {
    let want: { key: string; state: string; rev: number; filled: number }[] = [];
    await pollPage(
      page,
      async () => {
        const { body } = (await http(server.port, 'GET', `/snapshot/blotter.${desk}`)) as { body: { tables: { orders: { rows: [string, Record<string, unknown>][] } } } };
        want = body.tables.orders.rows.map(([key, f]) => ({ key, state: f.state as string, rev: f.rev as number, filled: f.filled as number }));
        return (await blotter(page)).map(({ key, state, rev, filled }) => ({ key, state, rev, filled }));
      },
      (got) => JSON.stringify(got) === JSON.stringify(want),
      5_000,
      'the page blotter to equal the server',
    );
  }

  it('submits from the ticket, shows refusals inline, fills and cancels in the live blotter; saves desk.png', async () => {
    const page = await open('?desk=desk-e2e');
    expect(await page.textContent('#desk')).toBe('desk-e2e');
    expect(await page.textContent('#token')).toBe('no token (auth off)');
    expect(await page.textContent('#transport')).toBe('WebSocket');
    // The price follows the touch: the ask to buy, the bid to sell; a click on a ladder row sets it.
    await pollPage(page, async () => [await touch(page), Number(await page.inputValue('#t-price'))] as const, ([t, p]) => p === t.ask, 5_000, 'the buy price at the ask');
    await page.click('#t-side button[data-side="sell"]');
    await pollPage(page, async () => [await touch(page), Number(await page.inputValue('#t-price'))] as const, ([t, p]) => p === t.bid, 5_000, 'the sell price at the bid');
    // While the trader is in the price field the touch does not move it (what they type would land in a replaced
    // value: "65000.5" + "65201"); out of it, it follows again.
    await page.focus('#t-price');
    const held = await page.inputValue('#t-price');
    await pollPage(page, () => touch(page), (t) => t.bid !== Number(held), 10_000, 'the bid to move');
    expect(await page.inputValue('#t-price')).toBe(held);
    await page.evaluate(() => (document.activeElement as HTMLElement).blur());
    await pollPage(page, async () => [await touch(page), Number(await page.inputValue('#t-price'))] as const, ([t, p]) => p === t.bid, 5_000, 'the sell price at the bid again');
    // (Read and clicked in one turn of the page: the ladder re-renders every frame.)
    const thirdPx = await page.evaluate(() => {
      const tr = document.querySelectorAll<HTMLTableRowElement>('#book tr.bid')[2]!;
      const px = tr.cells[0]!.textContent;
      tr.cells[1]!.click();
      return px;
    });
    expect(await page.inputValue('#t-price')).toBe(thirdPx);

    // Refused by the service: the reason and message, inline; nothing in the blotter.
    expect(await orderFromTicket(page, { side: 'buy', price: 65_000.3, qty: 0.01 })).toMatch(/refused · BAD_PRICE.*tick/);
    expect(await orderFromTicket(page, { side: 'buy', price: 65_000, qty: 0 })).toMatch(/refused · BAD_QTY/);
    expect(await blotter(page)).toEqual([]);

    const t = await touch(page);
    // A buy well above the ask: marketable, it fills at the touch (at random times, often in part).
    const crossing = await orderFromTicket(page, { side: 'buy', price: t.ask + 100, qty: 0.002 });
    expect(crossing).toMatch(/accepted O-\S+ · working/);
    const filledId = /accepted (O-\S+)/.exec(crossing)![1]!;
    // A buy far below the bid and a sell far above the ask: they stay working.
    const passive = /accepted (O-\S+)/.exec(await orderFromTicket(page, { side: 'buy', price: t.bid - 500, qty: 0.05 }))![1]!;
    const resting = /accepted (O-\S+)/.exec(await orderFromTicket(page, { side: 'sell', price: t.ask + 500, qty: 0.1 }))![1]!;
    // Newest first, each accepted order in the blotter.
    const rows = await pollPage(page, () => blotter(page), (r) => r.length === 3, 5_000, 'three orders in the blotter');
    expect(rows.map((r) => r.key)).toEqual([resting, passive, filledId]);
    expect(rows[0]!.cells.slice(1, 5)).toEqual(['sell', 'BTC-USD', (t.ask + 500).toFixed(1), '0.1000']);

    // Cancel the passive buy from its row.
    await page.click(`#blotter tr[data-key="${passive}"] button.cancel`);
    await page.waitForSelector('#t-status.good, #t-status.bad', { timeout: 10_000 });
    expect(await page.textContent('#t-status')).toMatch(new RegExp(`cancelled ${passive}`));
    await pollPage(page, () => blotter(page), (r) => r.find((x) => x.key === passive)?.state === 'cancelled', 5_000, 'the cancel in the blotter');
    expect(await page.locator(`#blotter tr[data-key="${passive}"] button.cancel`).count()).toBe(0);

    // The crossing buy fills, in the blotter: state filled, filled = qty, rev past 1.
    const filled = await pollPage(page, () => blotter(page), (r) => r.find((x) => x.key === filledId)?.state === 'filled', 20_000, 'the fill');
    const f = filled.find((x) => x.key === filledId)!;
    expect(f.filled).toBe(0.002);
    expect(f.rev).toBeGreaterThan(1);
    expect(filled.find((x) => x.key === resting)!.state).toBe('working');
    await expectBlotterAsServer(page, 'desk-e2e');

    await page.waitForTimeout(300);
    await page.screenshot({ path: join(ARTIFACTS, 'desk.png') });
    expect(pageErrors).toEqual([]);
    await page.close();
  }, 40_000);

  it('works as a desk over SSE when WebSocket is unavailable', async () => {
    const page = await open('', { noWebSocket: true });
    expect(await page.textContent('#transport')).toBe('SSE');
    const desk = (await page.textContent('#desk'))!;
    expect(desk).toMatch(/^desk-[a-z0-9]+$/);
    const t = await touch(page);
    const answer = await orderFromTicket(page, { side: 'sell', price: t.bid - 100, qty: 0.002 });
    expect(answer).toMatch(/accepted O-\S+/);
    const id = /accepted (O-\S+)/.exec(answer)![1]!;
    await pollPage(page, () => blotter(page), (r) => r[0]?.key === id && r[0].state === 'filled', 20_000, 'the fill over SSE');
    expect(await orderFromTicket(page, { side: 'sell', price: 1, qty: 1.23456 })).toMatch(/refused · BAD_QTY/);
    await expectBlotterAsServer(page, desk);
    expect(pageErrors).toEqual([]);
    await page.close();
  }, 40_000);
});
