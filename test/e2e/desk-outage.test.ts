// Issue 20, "Blotter across an outage", in headless Chromium: the desk page
// submits orders from its ticket, then the network goes down (a TCP proxy
// the test controls drops the page's connection and refuses new ones); while
// the page is offline its orders fill (the demo order service with its timer
// stopped, stepped by the test at fill chance 1, orders priced to cross); the
// network comes back and the page's blotter — read from its DOM and from the
// SDK's table the page exposes — is exactly the service's own record, each
// fill once (filled = the sum of the record's fills, `fills` = their count),
// with nothing published after the reconnect (the quiet case). Then fills go
// on live and the page follows them. Over WebSocket and over SSE.

import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TickfanServer } from '../../src/index.js';
import type { OrderService } from '../../src/demo/index.js';
import { INSTRUMENTS, qtyOf } from '../../src/demo/orders/index.js';
import type { FieldValue } from '../../src/protocol/index.js';
import { http } from '../integration/helpers.js';
import { ARTIFACTS, CHROMIUM, skip } from './chromium.js';
import { deskRig, type DeskRig } from './desk-rig.js';
import { blotterDom, orderFromTicket, pollPage, touch } from './desk-page.js';
import type { TcpProxy } from './tcp-proxy.js';

type Row = Record<string, FieldValue>;

describe.skipIf(skip)(`a desk across an outage, in headless Chromium (${CHROMIUM})`, () => {
  let rig: DeskRig;
  let server: TickfanServer;
  let svc: OrderService;
  let proxy: TcpProxy;
  let context: BrowserContext;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    // The demo order service as `npm start` runs it, but its fills come when the test steps it: every marketable order fills at each step.
    rig = await deskRig({ symbols: 20, rate: 200, service: { fillChance: 1, seed: 33 }, quiesce: true });
    ({ server, svc, proxy, context } = rig);
  }, 40_000);

  afterAll(async () => {
    await rig?.close();
  });

  /** The blotter as the page's SDK holds it (window.tickfanDesk.blotter), by order id, and its version. */
  function sdkBlotter(page: Page): Promise<{ version: number; rows: [string, Row][] }> {
    return page.evaluate(() => {
      const d = (window as unknown as { tickfanDesk: { blotter: { table(t: string): { rows(): { key: string; fields: Record<string, unknown> }[] } } } }).tickfanDesk;
      return {
        version: Number(document.getElementById('blotter')!.dataset.version),
        rows: d.blotter.table('orders').rows().map((r) => [r.key, r.fields] as [string, Row]),
      };
    });
  }

  /** The service's record of the desk: rows by order id, newest first as the table sorts (seq descending). */
  function record(desk: string): [string, Row][] {
    return [...svc.rowsOf(desk)].sort((a, b) => (b[1].seq as number) - (a[1].seq as number));
  }

  /** Each fill once, in the record itself: filled lots = the sum of the fills, and the row says the same. */
  function expectRecordConsistent(desk: string): void {
    for (const o of svc.orders.values()) {
      if (o.desk !== desk) continue;
      const inst = INSTRUMENTS.get(o.symbol)!;
      expect(o.fills.reduce((n, f) => n + f.lots, 0), `${o.id}: filled = the sum of its fills`).toBe(o.filledLots);
      expect(new Set(o.fills.map((f) => f.id)).size, `${o.id}: fill ids unique`).toBe(o.fills.length);
      expect(svc.rowsOf(desk).get(o.id)!.filled).toBe(qtyOf(inst, o.filledLots));
    }
  }

  /** The page (DOM and SDK) equals the record, field for field; every row's fills and filled as the record's fills add up. */
  async function expectPageIsRecord(page: Page, desk: string): Promise<void> {
    const want = record(desk);
    const sdk = await sdkBlotter(page);
    expect(sdk.rows).toEqual(want);
    const dom = await blotterDom(page);
    expect(dom.map((r) => ({ key: r.key, state: r.state, rev: r.rev, filled: r.filled }))).toEqual(want.map(([key, f]) => ({ key, state: f.state, rev: f.rev, filled: f.filled })));
    for (const [id, f] of sdk.rows) {
      const o = svc.orders.get(id)!;
      const inst = INSTRUMENTS.get(o.symbol)!;
      expect(f.fills, `${id}: each fill once`).toBe(o.fills.length);
      expect(f.filled, `${id}: filled = the sum of the record's fills`).toBe(qtyOf(inst, o.fills.reduce((n, x) => n + x.lots, 0)));
      expect(f.lastFillId ?? null).toBe(o.fills.at(-1)?.id ?? null);
    }
  }

  async function open(query: string, noWebSocket: boolean): Promise<Page> {
    const page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(String(err)));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/ERR_CONNECTION|net::|WebSocket connection|EventSource|Failed to load resource/.test(m.text())) pageErrors.push(m.text());
    });
    if (noWebSocket) await page.addInitScript(() => delete (window as { WebSocket?: unknown }).WebSocket);
    await page.goto(`http://127.0.0.1:${proxy.port}/${query}`);
    await page.waitForSelector('body[data-state="connected"]', { timeout: 10_000 });
    await pollPage(page, () => touch(page), (t) => t.ask > t.bid && t.bid > 0, 10_000, 'the ladder');
    return page;
  }

  for (const transport of ['ws', 'sse'] as const) {
    it(`${transport}: orders fill while the page is offline; back online, its blotter is the service's record, each fill once (quiet case), then follows live fills`, async () => {
      const desk = `desk-out-${transport}`;
      const page = await open(`?desk=${desk}`, transport === 'sse');
      expect(await page.textContent('#transport')).toBe(transport === 'sse' ? 'SSE' : 'WebSocket');

      // Four orders from the ticket: three priced to cross (they fill at each step), one far from the touch (it stays working).
      const t = await touch(page);
      const answers = [
        await orderFromTicket(page, { side: 'buy', price: t.ask + 200, qty: 0.01 }),
        await orderFromTicket(page, { side: 'sell', price: t.bid - 200, qty: 0.02 }),
        await orderFromTicket(page, { side: 'buy', price: t.ask + 200, qty: 0.005 }),
        await orderFromTicket(page, { side: 'buy', price: t.bid - 2_000, qty: 0.01 }),
      ];
      for (const a of answers) expect(a).toMatch(/accepted O-\S+ · working/);
      const ids = answers.map((a) => /accepted (O-\S+)/.exec(a)![1]!);
      await pollPage(page, () => blotterDom(page), (r) => r.length === 4 && r.every((x) => x.state === 'working'), 5_000, 'four working orders');
      await expectPageIsRecord(page, desk);
      // From here on, every row change the page's SDK delivers is recorded: none may go backwards.
      await page.evaluate(() => {
        const d = (window as unknown as { tickfanDesk: { blotter: { on(e: string, fn: (u: { rows?: { key: string; op: string }[] }) => void): void; table(t: string): { get(k: string): Record<string, unknown> | undefined } } }; seen: unknown[] }).tickfanDesk;
        const seen: { key: string; rev: number; fills: number; filled: number }[] = [];
        (window as unknown as { seen: typeof seen }).seen = seen;
        d.blotter.on('update', (u) => {
          for (const r of u.rows ?? []) {
            const f = d.blotter.table('orders').get(r.key);
            if (f) seen.push({ key: r.key, rev: f.rev as number, fills: f.fills as number, filled: f.filled as number });
          }
        });
      });
      const before = await page.evaluate(() => ({ ...(window as unknown as { tickfan: { stats: Record<string, number> } }).tickfan.stats }));

      // The network goes down.
      expect(proxy.offline()).toBeGreaterThan(0);
      await page.waitForSelector('body[data-state="disconnected"], body[data-state="connecting"]', { timeout: 10_000 });
      // Fills while the page is offline: three steps, every crossing order filled (often in part) at each until done.
      for (let i = 0; i < 3; i++) {
        svc.step();
        await page.waitForTimeout(100);
      }
      await pollPage(page, async () => svc.settled, (s) => s, 5_000, 'the service to publish its fills');
      const outageFills = ids.slice(0, 3).map((id) => svc.orders.get(id)!.fills.length);
      expect(outageFills.every((n) => n >= 1), `fills during the outage: ${outageFills}`).toBe(true);
      expect(Math.max(...outageFills), 'an order filled in parts while offline (the seed makes it so)').toBeGreaterThanOrEqual(2);
      expect(svc.orders.get(ids[3]!)!.fills).toEqual([]);
      expectRecordConsistent(desk);
      // The page has seen none of it: still offline, its blotter as before the outage.
      expect(await page.getAttribute('body', 'data-state')).not.toBe('connected');
      expect((await blotterDom(page)).map((r) => [r.state, r.rev, r.filled])).toEqual(ids.map(() => ['working', 1, 0]).reverse());
      expect(await page.evaluate(() => (window as unknown as { seen: unknown[] }).seen)).toEqual([]);
      const at = svc.positionOf(desk)!;

      // The network is back: the page reconnects and resumes; nothing is published to the blotter after this (quiet case).
      proxy.online();
      await page.waitForSelector('body[data-state="connected"]', { timeout: 15_000 });
      await pollPage(page, () => sdkBlotter(page), (b) => b.version === at.version, 10_000, `the blotter at v${at.version}`);
      await pollPage(page, () => blotterDom(page), (r) => JSON.stringify(r.map((x) => x.rev)) === JSON.stringify(record(desk).map(([, f]) => f.rev)), 5_000, 'the DOM rendered');
      await expectPageIsRecord(page, desk);
      await page.waitForTimeout(500);
      expect(svc.positionOf(desk)).toEqual(at); // quiet: no publish helped
      await expectPageIsRecord(page, desk);
      const after = await page.evaluate(() => ({ ...(window as unknown as { tickfan: { stats: Record<string, number> } }).tickfan.stats }));
      expect(after.reconnects! - before.reconnects!).toBeGreaterThanOrEqual(1);

      // Live again: more fills (the outage's partial ones go on), then a cancel of the resting order from its row.
      svc.step();
      svc.step();
      await page.click(`#blotter tr[data-key="${ids[3]}"] button.cancel`);
      await pollPage(page, () => blotterDom(page), (r) => r.find((x) => x.key === ids[3])?.state === 'cancelled', 5_000, 'the cancel');
      await pollPage(page, async () => svc.settled, (s) => s, 5_000, 'the service to publish');
      const last = svc.positionOf(desk)!;
      await pollPage(page, () => sdkBlotter(page), (b) => b.version === last.version, 5_000, `the blotter at v${last.version}`);
      await page.waitForTimeout(100);
      await expectPageIsRecord(page, desk);
      expectRecordConsistent(desk);

      // No row went backwards in what the page's SDK delivered, and the last of each is the record's.
      const seen = await page.evaluate(() => (window as unknown as { seen: { key: string; rev: number; fills: number; filled: number }[] }).seen);
      expect(seen.length).toBeGreaterThan(0);
      for (const id of ids) {
        const chain = seen.filter((s) => s.key === id);
        for (let i = 1; i < chain.length; i++) {
          expect(chain[i]!.rev, `${id} rev`).toBeGreaterThanOrEqual(chain[i - 1]!.rev);
          expect(chain[i]!.fills, `${id} fills`).toBeGreaterThanOrEqual(chain[i - 1]!.fills);
          expect(chain[i]!.filled, `${id} filled`).toBeGreaterThanOrEqual(chain[i - 1]!.filled);
        }
      }
      // And the server's own snapshot of the blotter says the same.
      const { body } = (await http(server.port, 'GET', `/snapshot/blotter.${desk}`)) as { body: { version: number; tables: { orders: { rows: [string, Row][] } } } };
      expect(body.version).toBe(last.version);
      expect(body.tables.orders.rows).toEqual(record(desk));

      if (transport === 'ws') await page.screenshot({ path: join(ARTIFACTS, 'desk-outage.png') });
      expect(pageErrors).toEqual([]);
      console.log(
        `desk outage (${transport}): fills during the outage ${outageFills.join('/')}, blotter v${at.version} on reconnect, v${last.version} at the end; page stats ${JSON.stringify({ reconnects: after.reconnects! - before.reconnects!, catchUpDeltas: after.catchUpDeltas! - before.catchUpDeltas!, catchUpSnapshots: after.catchUpSnapshots! - before.catchUpSnapshots! })}`,
      );
      await page.close();
    }, 60_000);
  }
});
