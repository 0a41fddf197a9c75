// Reading and driving the desk page (web/) from a browser test: its blotter
// as shown (the DOM rows), the ladder's touch, the order ticket, and polling
// the page until something holds.

import type { Page } from 'playwright-core';

/** One row of the page's blotter as shown (data attributes and cell texts). */
export interface DomRow {
  key: string;
  state: string;
  rev: number;
  filled: number;
  cells: string[];
}

/** The blotter the page shows, newest first. */
export function blotterDom(page: Page): Promise<DomRow[]> {
  return page.evaluate(() =>
    [...document.querySelectorAll<HTMLTableRowElement>('#blotter tr[data-key]')].map((tr) => ({
      key: tr.dataset.key!,
      state: tr.dataset.state!,
      rev: Number(tr.dataset.rev),
      filled: Number(tr.dataset.filled),
      cells: [...tr.cells].map((td) => td.textContent ?? ''),
    })),
  );
}

/** The ladder's best ask and bid (prices as shown). */
export function touch(page: Page): Promise<{ ask: number; bid: number }> {
  return page.evaluate(() => {
    const asks = [...document.querySelectorAll<HTMLTableRowElement>('#book tr.ask')];
    const bids = [...document.querySelectorAll<HTMLTableRowElement>('#book tr.bid')];
    return { ask: Number(asks.at(-1)?.cells[0]?.textContent), bid: Number(bids[0]?.cells[0]?.textContent) };
  });
}

/** Reads until `ok`, every 50 ms; throws with the last value read after `timeoutMs`. */
export async function pollPage<T>(page: Page, read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${JSON.stringify(v).slice(0, 400)}`);
    await page.waitForTimeout(50);
  }
}

/** Fills the ticket and submits; resolves with the status line once the answer is in. */
export async function orderFromTicket(page: Page, o: { side: 'buy' | 'sell'; price: number; qty: number }): Promise<string> {
  await page.click(`#t-side button[data-side="${o.side}"]`);
  await page.fill('#t-price', String(o.price));
  await page.fill('#t-qty', String(o.qty));
  await page.click('#t-submit');
  await page.waitForSelector('#t-status.good, #t-status.bad', { timeout: 10_000 });
  const text = (await page.textContent('#t-status'))!;
  await page.evaluate(() => (document.getElementById('t-status')!.className = 'status'));
  return text;
}
