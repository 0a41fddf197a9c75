// `tickfan bench`: entry point for the benchmark suite in bench/ (see docs/performance.md; not in the npm package).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export async function runBenchCli(args: string[]): Promise<void> {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const runner = join(root, 'bench', 'run.mjs');
  if (!existsSync(runner)) {
    console.error('tickfan bench: the benchmark suite (bench/run.mjs) is not in the npm package; run it from a clone of the repository (docs/performance.md)');
    process.exit(2);
  }
  const r = spawnSync(process.execPath, [runner, ...args], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
