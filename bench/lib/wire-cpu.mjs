#!/usr/bin/env node
// The wire scenario's CPU runs in Node, in a process of their own (a fresh
// heap and JIT, nothing else on its event loop): encode and decode time per
// update for protocol 1, protocol 2 and JSON on the demo feed and on the
// fan-out payload. Arguments: one JSON object { updates, repeat }; prints
// the result as JSON on stdout.

import { demoUpdates, fanoutUpdates, prepareCpu, runCpu } from './wire-forms.mjs';

const { updates = 20_000, repeat = 5 } = JSON.parse(process.argv[2] ?? '{}');
const out = {
  demo: runCpu(prepareCpu(demoUpdates({ count: updates })), { repeat }),
  fanout: runCpu(prepareCpu(fanoutUpdates({ count: updates })), { repeat }),
};
process.stdout.write(`${JSON.stringify(out)}\n`);
