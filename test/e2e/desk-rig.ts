// What the desk browser tests stand on: a real server with the demo page,
// the demo market and the demo order service (as `npm start` runs them), a
// TCP proxy in front of it (so a test can cut the page's network), and a
// headless Chromium profile. One place for the set-up desk.test.ts and
// desk-outage.test.ts share, and for taking it down.

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { startServer, type TickfanServer } from '../../src/index.js';
import { connect, type TickfanClient } from '../../src/client/index.js';
import { MarketSim, OrderService } from '../../src/demo/index.js';
import { ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ROOT, missing } from './chromium.js';
import { TcpProxy } from './tcp-proxy.js';

export interface DeskRig {
  server: TickfanServer;
  sim: MarketSim;
  svcClient: TickfanClient;
  svc: OrderService;
  /** In front of the server: pages load from `http://127.0.0.1:${proxy.port}/`. */
  proxy: TcpProxy;
  context: BrowserContext;
  close(): Promise<void>;
}

/**
 * Starts everything (the browser bundle rebuilt first). `symbols`/`rate`: the
 * market's size; `service`: the order service's options (its fills); with
 * `quiesce` the service fills only when the test steps it.
 */
export async function deskRig(o: { symbols: number; rate: number; service?: ConstructorParameters<typeof OrderService>[1]; quiesce?: boolean }): Promise<DeskRig> {
  if (missing) throw new Error(`${CHROMIUM} is missing: .ci/run installs it with apt-get install chromium`);
  execFileSync(process.execPath, [join(ROOT, 'scripts/build-browser.mjs')], { cwd: ROOT, stdio: 'pipe' });
  mkdirSync(ARTIFACTS, { recursive: true });
  const undo: (() => unknown)[] = [];
  const close = async () => {
    for (const f of undo.reverse()) await f();
  };
  try {
    const server = await startServer({ port: 0, host: '127.0.0.1', demoPage: true, heartbeatMs: 1_000, log: () => {} });
    undo.push(() => server.close());
    const sim = new MarketSim((topic, changes) => server.publish(topic, changes), { symbols: o.symbols, rate: o.rate }, (topic, batch) => server.publishBatch(topic, batch));
    sim.start();
    undo.push(() => sim.stop());
    const svcClient = connect(`ws://127.0.0.1:${server.port}/ws`);
    undo.push(() => svcClient.close());
    const svc = new OrderService(svcClient, o.service);
    await svc.start();
    undo.push(() => svc.stop());
    if (o.quiesce) svc.quiesce();
    const proxy = await TcpProxy.start(server.port);
    undo.push(() => proxy.close());
    const profile = mkdtempSync(join(tmpdir(), 'tickfan-chromium-'));
    undo.push(() => rmSync(profile, { recursive: true, force: true }));
    const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1 });
    undo.push(() => context.close());
    return { server, sim, svcClient, svc, proxy, context, close };
  } catch (err) {
    await close();
    throw err;
  }
}
