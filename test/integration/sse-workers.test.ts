// SSE commands across 2 fan-out workers when the worker holding the session
// is busy: a POST /sse/<session> that lands on the other worker waits for the
// holder's answer instead of calling the session unknown (a 404 the SDK
// takes as the end of its stream: it reconnects and resumes, and a late
// joiner skips versions — found by keyed-acceptance-late-joiners over SSE).
// The busy worker is made so with stallWorker (its event loop blocked 2 s);
// each POST opens its own connection, so the kernel spreads them over both
// workers. Also: a session no worker holds is still a prompt 404, and the
// stream carries every answer (the pongs) once the holder is back.

import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { Harness, http, sleep, waitFor } from './helpers.js';

const h = new Harness();
const cleanup: (() => void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0)) f();
  await h.close();
});

/** A raw SSE stream: its session id and the messages of its events. */
function openStream(port: number): Promise<{ session: () => string; messages: Record<string, any>[] }> {
  return new Promise((resolve, reject) => {
    const messages: Record<string, any>[] = [];
    let session = '';
    let buf = '';
    const req = request({ host: '127.0.0.1', port, path: '/sse', agent: false, headers: { accept: 'text/event-stream' } });
    req.on('response', (res) => {
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        let at: number;
        while ((at = buf.indexOf('\n\n')) >= 0) {
          for (const line of buf.slice(0, at).split('\n')) {
            if (!line.startsWith('data: ')) continue;
            for (const m of JSON.parse(line.slice(6)) as Record<string, any>[]) {
              if (m.type === 'session') session = m.session;
              messages.push(m);
            }
          }
          buf = buf.slice(at + 2);
        }
      });
      resolve({ session: () => session, messages });
    });
    req.on('error', reject);
    req.end();
    cleanup.push(() => req.destroy());
  });
}

describe('SSE commands with 2 fan-out workers', () => {
  it('a command reaches a session whose worker is busy for 2 s (answered 202, not 404); an unknown session is a prompt 404', async () => {
    const server = await h.server({ workers: 2 });
    const s = await openStream(server.port);
    await waitFor(() => s.session() !== '', 5_000, 'the session event');
    const sid = s.session();
    let nonce = 0;
    const statuses: number[] = [];
    // Stall each worker in turn: in one of the rounds the session's holder is the busy one.
    for (const w of [0, 1]) {
      const stalled = server.stallWorker(w, 2_000);
      await sleep(50); // the stall begins (no signal until it ends)
      const posts = Array.from({ length: 12 }, () => http(server.port, 'POST', `/sse/${sid}`, [{ type: 'ping', nonce: ++nonce }]));
      const answers = await Promise.all(posts);
      statuses.push(...answers.map((a) => a.status));
      await stalled;
    }
    expect(statuses.filter((st) => st !== 202), `statuses ${statuses.join(',')}`).toEqual([]);
    // Every command reached the session: one pong each, on its stream.
    await waitFor(() => s.messages.filter((m) => m.type === 'pong').length === nonce, 5_000, 'every pong');
    expect(new Set(s.messages.filter((m) => m.type === 'pong').map((m) => Number(m.nonce))).size).toBe(nonce);

    // No worker holds this one: every peer says so, so the answer does not wait for a timeout.
    const t0 = Date.now();
    const unknown = await Promise.all(Array.from({ length: 6 }, () => http(server.port, 'POST', '/sse/AAAAAAAAAAAAAAAA', [{ type: 'ping' }])));
    for (const u of unknown) expect(u).toMatchObject({ status: 404, body: { error: { code: 3, message: expect.stringMatching(/no SSE session AAAAAAAAAAAAAAAA/) } } });
    expect(Date.now() - t0).toBeLessThan(900);
  }, 20_000);
});
