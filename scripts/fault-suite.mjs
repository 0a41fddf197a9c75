#!/usr/bin/env node
// Runs issue 17's cluster fault suite (test/integration/cluster-fault-suite.test.ts)
// N times in a row, each in its own vitest process, and prints the convergence
// time per fault (median and worst over the runs that converged), how many runs
// passed and the longest streak of passes. Each run's JSON result and output go
// to a directory it names; a failed run keeps its processes' logs.
//
//   node scripts/fault-suite.mjs [--runs 10] [--build] [--stop-on-failure] [--out DIR]
//
// Needs dist/ built from the working tree (--build runs `npm run build` first) and nats-server.
// FAULT_SUITE_DIST=/path/to/other/dist runs the nodes and the SDK of another build (an A/B).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const value = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1] : dflt;
};
if (flag('--help') || flag('-h')) {
  console.log('node scripts/fault-suite.mjs [--runs 10] [--build] [--stop-on-failure] [--out DIR]');
  process.exit(0);
}
const runs = Number(value('--runs', '10'));
if (!Number.isInteger(runs) || runs < 1 || runs > 1000) {
  console.error('--runs must be a whole number from 1 to 1000');
  process.exit(2);
}
const out = value('--out', join('/tmp', `tickfan-fault-suite-${new Date().toISOString().replace(/[:.]/g, '-')}`));
mkdirSync(out, { recursive: true });

if (flag('--build')) {
  const b = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
  if (b.status !== 0) process.exit(b.status ?? 1);
}
const dist = process.env.FAULT_SUITE_DIST || join(root, 'dist');
if (!existsSync(join(dist, 'cli.js'))) {
  console.error(`${join(dist, 'cli.js')} is missing: run \`npm run build\` (or pass --build)`);
  process.exit(2);
}

const results = [];
let streak = 0;
let bestStreak = 0;
for (let i = 1; i <= runs; i++) {
  const json = join(out, `run-${i}.json`);
  const started = Date.now();
  const r = spawnSync('npx', ['vitest', 'run', 'test/integration/cluster-fault-suite.test.ts'], {
    cwd: root,
    env: { ...process.env, FAULT_SUITE_OUT: json, FORCE_COLOR: '0' },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    timeout: 300_000,
  });
  writeFileSync(join(out, `run-${i}.log`), `${r.stdout ?? ''}\n${r.stderr ?? ''}`);
  let result = null;
  try {
    result = JSON.parse(readFileSync(json, 'utf8'));
  } catch {
    // the run died before writing its result: counted as failed
  }
  const passed = r.status === 0 && result?.ok === true;
  results.push({ run: i, passed, result });
  streak = passed ? streak + 1 : 0;
  bestStreak = Math.max(bestStreak, streak);
  const line = result
    ? result.faults.map((f) => `${f.fault} ${f.ok ? '' : 'FAIL '}${f.convergedMs}`).join(', ')
    : `no result (exit ${r.status}${r.error ? `, ${r.error.message}` : ''})`;
  console.log(`run ${i}/${runs}: ${passed ? 'passed' : 'FAILED'} in ${((Date.now() - started) / 1000).toFixed(1)} s — ${line}`);
  if (!passed) {
    if (result) {
      for (const f of result.faults.filter((x) => !x.ok)) console.log(`  ${f.fault} did not converge: ${f.problems.slice(0, 6).join('; ')}`);
      for (const v of result.violations.slice(0, 10)) console.log(`  violation: ${v}`);
      if (result.error) console.log(`  error: ${result.error.split('\n')[0]}`);
      if (result.logsDir) console.log(`  process logs kept in ${result.logsDir}`);
    }
    console.log(`  output: ${join(out, `run-${i}.log`)}`);
    if (flag('--stop-on-failure')) break;
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : Math.round((s[s.length / 2 - 1] + s[s.length / 2]) / 2)) : NaN;
};
const faults = [...new Set(results.flatMap((r) => r.result?.faults.map((f) => f.fault) ?? []))];
const reference = {
  'nats-restart': 'from nats-server listening again',
  'origin-stop': 'from SIGCONT (stopped 3 s)',
  'edge-kill': 'from the kill',
  'edge-back': 'from the failback to the restarted edge',
  'origin-restart': 'from the last republish ack',
  'reader-stall': 'from the reader reading again',
};
console.log('\nconvergence per fault in ms, median / worst over the runs that converged (measured from the moment in brackets):');
for (const name of faults) {
  const all = results.flatMap((r) => r.result?.faults.filter((f) => f.fault === name) ?? []);
  const ok = all.filter((f) => f.ok);
  const conv = ok.map((f) => f.convergedMs);
  const quiet = ok.map((f) => f.fromQuietMs);
  console.log(
    `  ${name.padEnd(15)} ${String(median(conv)).padStart(6)} / ${String(Math.max(...conv)).padStart(6)}   last publish → converged ${median(quiet)} / ${Math.max(...quiet)}   ${ok.length}/${all.length} converged   (${reference[name] ?? ''})`,
  );
}
const last = results.findLast((r) => r.result)?.result;
if (last?.notRepublished.length) console.log(`\nnot republished after the origin restart (last run, recorded, not judged):\n  ${last.notRepublished.join('\n  ')}`);
const notes = [...new Set(results.flatMap((r) => r.result?.notes ?? []))];
if (notes.length) console.log(`\nnotes:\n  ${notes.slice(0, 20).join('\n  ')}`);
const passed = results.filter((r) => r.passed).length;
console.log(`\n${passed} of ${results.length} runs passed; longest streak ${bestStreak} in a row; results in ${out}`);
writeFileSync(join(out, 'summary.json'), JSON.stringify({ runs: results.length, passed, bestStreak, results: results.map((r) => ({ run: r.run, passed: r.passed, faults: r.result?.faults })) }, null, 2));
process.exit(passed === results.length ? 0 : 1);
