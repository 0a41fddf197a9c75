// Reads a V8 .cpuprofile (node --cpu-prof) and ranks functions by self time,
// so a results file can say what limited a run, not just that it was limited.

import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

/**
 * Top functions by self time.
 * @returns {{ totalMs: number, top: { fn: string, where: string, selfMs: number, pct: number }[] }}
 */
export function topSelf(file, limit = 15, root = process.cwd()) {
  const p = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = (p.timeDeltas[i] ?? 0) / 1000;
    const n = byId.get(p.samples[i]);
    if (!n) continue;
    total += dt;
    const cf = n.callFrame;
    const url = cf.url ? cf.url.replace(/^file:\/\//, '') : '';
    const where = url ? `${url.startsWith('/') ? relative(root, url) : url}:${cf.lineNumber + 1}` : '';
    const key = `${cf.functionName || '(anonymous)'}\u0000${where}`;
    self.set(key, (self.get(key) ?? 0) + dt);
  }
  const top = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([k, ms]) => {
      const [fn, where] = k.split('\u0000');
      return { fn, where, selfMs: Math.round(ms), pct: Math.round((ms / total) * 1000) / 10 };
    });
  return { totalMs: Math.round(total), top };
}
