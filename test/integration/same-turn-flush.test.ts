// A frame batched to the end of a callback leaves in that event-loop turn.
// uWebSockets.js writes what app.publish() queued in its check handle, which
// runs before Node's setImmediate callbacks; fan-out used to send a turn's
// batched frames from setImmediate, so they sat in uWS until the *next*
// turn's drain: one whole loop iteration more, which under load doubled p50
// and p99 against a plain uWS server (the fanout bench's curve, 200–4,800
// updates/s). Now the batch goes out when the publishing callback returns.
// Shown from outside: a publish in a timer callback (batching forced on), then
// the server's thread blocked for BLOCK_MS in a setImmediate of that same
// turn. A subscriber in another process must get the update while the server
// is still blocked; before the fix it came only after.

import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Harness, waitFor, wsUrl } from './helpers.js';

const CHILD = fileURLToPath(new URL('./same-turn-flush.child.mjs', import.meta.url));
const BLOCK_MS = 600;
const h = new Harness();
let child: ChildProcess | null = null;
afterEach(async () => {
  child?.send('close');
  child = null;
  await h.close();
});

interface Got {
  version: number;
  at: number;
}

describe('batched frames leave in the turn that published them', () => {
  for (const workers of [0, 2]) {
    it(`reaches a subscriber while the server's next setImmediate blocks the loop (${workers ? `${workers} fan-out workers` : 'one thread'})`, async () => {
      // eagerBelowLoad 0, eagerFlushes 0: every publish waits for the end of its callback (batching on, as under load).
      const server = await h.server({ eagerBelowLoad: 0, eagerFlushes: 0, workers });
      server.publish('stf.t', { p: 1 });
      const got: Got[] = [];
      let ready = false;
      child = fork(CHILD, [JSON.stringify({ url: wsUrl(server), topic: 'stf.t' })], { stdio: 'inherit' });
      child.on('message', (m: Got | { ready: true } | { error: string }) => {
        if ('ready' in m) ready = true;
        else if ('error' in m) throw new Error(m.error);
        else got.push(m);
      });
      await waitFor(() => ready, 10_000, 'the subscriber to hold the snapshot');
      const blocked = await new Promise<{ from: number; to: number; version: number }>((resolve) => {
        setTimeout(() => {
          const version = server.publish('stf.t', { p: 2 }).version;
          setImmediate(() => {
            const from = Date.now();
            while (Date.now() - from < BLOCK_MS) {
              // the server's thread is busy: nothing else of it runs
            }
            resolve({ from, to: Date.now(), version });
          });
        }, 5);
      });
      await waitFor(() => got.some((g) => g.version === blocked.version), 10_000, 'the update to arrive');
      const at = got.find((g) => g.version === blocked.version)!.at;
      // With workers the frame leaves from a worker thread, not blocked here: it must come as soon, or sooner.
      expect(at, `update arrived ${at - blocked.from} ms after the block began (block: ${BLOCK_MS} ms)`).toBeLessThan(blocked.to - 100);
    });
  }
});
