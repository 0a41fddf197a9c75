// youngGeneration 'small' (young-generation.ts): after a burst of long-lived
// allocations, as a connect storm makes, V8's new space must still be at its
// starting size; with 'node' it grows (what the option exists for). Each case
// runs in a fresh node process (the setting is process-wide), on the build.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { keepYoungGenerationSmall } from '../../src/server/young-generation.js';

const MODULE = new URL('../../dist/server/young-generation.js', import.meta.url).href;
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** New space (KiB) after 300,000 retained objects, in a fresh process that applied `mode`. */
function newSpaceAfterStorm(mode: string, nodeFlags: string[] = []): { kib: number; result: string } {
  const script = `
    import { getHeapSpaceStatistics } from 'node:v8';
    const { keepYoungGenerationSmall } = await import(${JSON.stringify(MODULE)});
    const result = keepYoungGenerationSmall(${JSON.stringify(mode)});
    const keep = [];
    for (let i = 0; i < 300000; i++) keep.push({ a: i, b: [i, i + 1], c: 'x' + i, d: new Map() });
    const ns = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    console.log(JSON.stringify({ kib: ns.space_size / 1024, result, kept: keep.length }));`;
  const r = spawnSync(process.execPath, [...nodeFlags, '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 30_000, env: { ...process.env, NODE_OPTIONS: '' } });
  if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim()) as { kib: number; result: string };
}

describe('youngGeneration', () => {
  it("'small' keeps new space at its starting size through an allocation storm; 'node' lets it grow", () => {
    const small = newSpaceAfterStorm('small');
    const node = newSpaceAfterStorm('node');
    expect(small.result).toBe('set');
    expect(node.result).toBe('node');
    expect(small.kib, `new space with 'small': ${small.kib} KiB`).toBeLessThanOrEqual(4096);
    expect(node.kib, `new space with 'node': ${node.kib} KiB`).toBeGreaterThanOrEqual(16384);
  });

  it('leaves a process started with its own young-generation flag alone', () => {
    expect(keepYoungGenerationSmall('small', ['--max-semi-space-size=8'], '')).toBe('flags');
    expect(keepYoungGenerationSmall('small', [], '--semi_space_growth_factor=3')).toBe('flags');
    const own = newSpaceAfterStorm('small', ['--max-semi-space-size=32']);
    expect(own.result).toBe('flags');
    expect(own.kib).toBeGreaterThan(4096);
  });
});
