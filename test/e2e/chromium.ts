// What the browser tests share: Debian's Chromium and the flags that keep it
// off the network, where screenshots go, and whether to skip (outside CI a
// machine without Chromium skips and says so; in CI .ci/run installs it, so a
// missing one fails).

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ARTIFACTS = join(ROOT, 'test/e2e/artifacts');
export const CHROMIUM = '/usr/bin/chromium';
// Without them, Chromium's background services try the network, and on a closed network its connections are refused.
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export const missing = !existsSync(CHROMIUM);
export const skip = missing && !process.env.CI;
if (skip) console.warn(`test/e2e: skipped: ${CHROMIUM} is not installed (apt-get install chromium)`);
