// V8's young generation in a server process and in each fan-out worker
// (src/server/heap.ts): `tickfan serve` (shebang) and `npm start` carry the
// flags, and a worker's young-generation limit gives it the same semi-spaces
// as the main thread gets from the flags.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SEMI_SPACE_MB, SERVER_NODE_FLAGS, WORKER_YOUNG_GENERATION_MB } from '../../src/server/heap.js';

const root = new URL('../../', import.meta.url);

// Allocates enough surviving objects to make V8 grow its new space as far as it may, then prints its size.
const GROW = `
const v8 = require('node:v8');
const keep = [];
for (let i = 0; i < 3e6; i++) { keep.push({ i }); if (keep.length > 2e5) keep.length = 0; }
const size = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
`;

describe('young generation', () => {
  it('the CLI runs with the server flags (its shebang) and so does npm start', () => {
    const shebang = readFileSync(new URL('src/cli.ts', root), 'utf8').split('\n')[0];
    expect(shebang).toBe(`#!/usr/bin/env -S node ${SERVER_NODE_FLAGS.join(' ')}`);
    const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).toBe(`node ${SERVER_NODE_FLAGS.join(' ')} dist/cli.js serve --demo`);
  });

  it('caps the new space at two semi-spaces in the main thread and, through its limit, in a worker', () => {
    const main = Number(execFileSync(process.execPath, [...SERVER_NODE_FLAGS, '-e', `${GROW} console.log(size())`], { encoding: 'utf8' }));
    const worker = Number(
      execFileSync(
        process.execPath,
        [
          '-e',
          `const { Worker } = require('node:worker_threads');
           const w = new Worker(${JSON.stringify(`${GROW} require('node:worker_threads').parentPort.postMessage(size())`)}, { eval: true, resourceLimits: { maxYoungGenerationSizeMb: ${WORKER_YOUNG_GENERATION_MB} } });
           w.on('message', (n) => { console.log(n); process.exit(0); });`,
        ],
        { encoding: 'utf8' },
      ),
    );
    const unlimited = Number(execFileSync(process.execPath, ['-e', `${GROW} console.log(size())`], { encoding: 'utf8' }));
    expect(main).toBe(2 * SEMI_SPACE_MB * 1024 * 1024);
    expect(worker).toBe(main);
    expect(unlimited).toBeGreaterThan(main); // without the flags it grows further: the cap is what holds it
  });
});
