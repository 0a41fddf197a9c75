// The wire scenario's decode runs in headless Chromium (Debian's
// /usr/bin/chromium driven by playwright-core, launched as test/e2e does):
// wire-browser-entry.mjs bundled with esbuild from the built protocol
// (dist/), loaded into a blank page, run there.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Decode ns per update in Chromium, or { skipped } when it cannot run here. */
export async function browserCpu({ updates, repeat, timeoutMs = 120_000 }) {
  if (!existsSync(CHROMIUM)) return { skipped: `${CHROMIUM} is not installed (apt-get install chromium)` };
  let build;
  let chromium;
  try {
    ({ build } = await import('esbuild'));
    ({ chromium } = await import('playwright-core'));
  } catch (err) {
    return { skipped: `esbuild / playwright-core missing: ${err.message}` };
  }
  const bundle = await build({
    entryPoints: [fileURLToPath(new URL('./wire-browser-entry.mjs', import.meta.url))],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    target: ['es2020'],
    minify: true,
    logLevel: 'silent',
  });
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(timeoutMs);
    await page.setContent('<!doctype html><meta charset="utf-8"><title>tickfan wire</title>');
    await page.addScriptTag({ content: bundle.outputFiles[0].text });
    const result = await page.evaluate((args) => globalThis.tickfanWireCpu(args), { updates, repeat });
    return { browser: `Chromium ${browser.version()}`, bundleBytes: bundle.outputFiles[0].contents.byteLength, ...result };
  } finally {
    await browser.close();
  }
}
