#!/usr/bin/env node
// Bundles the client SDK for browsers: dist/browser/tickfan.js (ESM, minified),
// served by the server at /tickfan.js. Types come from tsc (dist/client/*.d.ts).
import { build } from 'esbuild';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist/browser/tickfan.js');
mkdirSync(dirname(out), { recursive: true });
await build({
  entryPoints: [join(root, 'src/client/index.ts')],
  outfile: out,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2020'],
  minify: true,
  sourcemap: true,
  // Node-only fallback for runtimes without a global WebSocket; never loaded in browsers.
  external: ['ws'],
  legalComments: 'none',
  logLevel: 'warning',
});
// Types: re-export the SDK's declarations emitted by tsc.
writeFileSync(join(root, 'dist/browser/tickfan.d.ts'), "export * from '../client/index.js';\n");
const size = statSync(out).size;
const gz = gzipSync(readFileSync(out)).length;
// docs/browsers-and-sse.md quotes these figures ("The SDK bundle").
console.log(`dist/browser/tickfan.js: ${(size / 1000).toFixed(1)} kB minified, ${(gz / 1000).toFixed(1)} kB gzipped (${size} / ${gz} bytes)`);
