// Issue 17: one run of the cluster fault-injection suite (cluster-fault-suite.ts)
// — real nats-server, origin and two edges, clients through a failover proxy,
// five faults, convergence with no further publishes after each. Prints the
// convergence time per fault; with FAULT_SUITE_OUT=<file> also writes the
// whole result as JSON (scripts/fault-suite.mjs runs it N times in a row).

import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runFaultSuite } from './cluster-fault-suite.js';

describe('cluster fault suite', () => {
  it('every client, edge and the origin converge after each fault, with no wrong state on the way', async () => {
    const result = await runFaultSuite({ log: (l) => console.log(`[fault-suite] ${l}`), keepLogsOnFailure: !!process.env.FAULT_SUITE_OUT });
    if (process.env.FAULT_SUITE_OUT) writeFileSync(process.env.FAULT_SUITE_OUT, JSON.stringify(result, null, 2));
    const table = result.faults.map((f) => `${f.fault.padEnd(15)} ${f.ok ? 'ok ' : 'FAIL'} ${String(f.convergedMs).padStart(6)} ms  (from fault ${f.fromFaultMs} ms, from last publish ${f.fromQuietMs} ms)  ${f.info}`);
    console.log(
      [
        `fault suite run: ${result.ok ? 'passed' : 'FAILED'} in ${result.durationMs} ms; updates ${JSON.stringify(result.updates)}; publishes ${JSON.stringify(result.publishes)}`,
        ...table,
        ...result.notRepublished.map((s) => `not republished after the origin restart: ${s}`),
        ...result.edgeHealth,
        ...result.clientStats,
        ...result.notes.map((s) => `note: ${s}`),
        ...result.modelAnomalies.map((s) => `model anomaly: ${s}`),
        ...result.resyncs.map((s) => `model resync: ${s}`),
      ].join('\n'),
    );
    expect(result.error).toBeUndefined();
    expect(result.violations).toEqual([]);
    expect(result.faults.filter((f) => !f.ok).map((f) => `${f.fault}: ${f.problems.slice(0, 8).join('; ')}`)).toEqual([]);
    expect(result.ok).toBe(true);
  }, 240_000);
});
