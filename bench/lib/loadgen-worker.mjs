// Load-generator worker (a piscina task that lives for a whole run): holds
// one group of WebSocket clients (loadgen-group.mjs; each client and its
// frame parser: loadgen-client.mjs) and runs the main thread's commands —
// connect, reset, collect, counters, stall, drop, close — arriving on a
// MessagePort, answering each with its result.

import hdr from 'hdr-histogram-js';
import { Group } from './loadgen-group.mjs';

/** Piscina task: runs until the main thread says "close". */
export default async function run({ ctl, spec }) {
  const g = new Group(spec, ctl);
  let finish;
  const finished = new Promise((r) => (finish = r));
  const cpu0 = process.cpuUsage();
  ctl.on('message', async ({ id, type, args = {} }) => {
    let result;
    try {
      switch (type) {
        case 'connect':
          result = await g.connectAll(args.concurrency ?? 256, args.upTo ?? Infinity);
          result.lastError = g.lastError;
          break;
        case 'reset':
          g.reset();
          result = { ok: true };
          break;
        case 'collect':
          result = { ...g.counters(), hist: hdr.encodeIntoCompressedBase64(g.hist) };
          if (args.reset) g.reset();
          break;
        case 'counters':
          result = g.counters();
          break;
        case 'stall': {
          const want = new Set(args.indices);
          for (const c of g.clients) {
            c.stalled = want.has(c.index);
            if (c.stalled) c.sock?.pause();
          }
          result = { stalled: g.clients.filter((c) => c.stalled).length };
          break;
        }
        case 'drop':
          result = await g.drop(args);
          break;
        case 'close':
          g.closing = true;
          for (const c of g.clients) c.kill();
          result = { ok: true };
          finish();
          break;
        default:
          throw new Error(`unknown command ${type}`);
      }
      ctl.postMessage({ id, result });
    } catch (err) {
      ctl.postMessage({ id, error: String(err?.stack ?? err) });
    }
  });
  await finished;
  ctl.close();
  return { cpu: process.cpuUsage(cpu0) };
}
