// SSE commands across 2 fan-out workers when the worker holding the session
// is busy: a POST /sse/<session> that lands on the other worker waits for the
// holder's answer instead of calling the session unknown (a 404 the SDK
// takes as the end of its stream: it reconnects and resumes, and a late
// joiner skips versions — found by keyed-acceptance-late-joiners over SSE).
// The busy worker is made so with stallWorker (its event loop blocked 2 s);
// each POST opens its own connection, so the kernel spreads them over both
// workers. Also: a session no worker holds is still a prompt 404, and the
// stream carries every answer (the pongs) once the holder is back. Likewise a
// reconnect with Last-Event-ID that lands on the other worker while the
// holder is stalled 1.5 s takes the session over (resumed, its subscription
// restored and live) instead of starting a new one (before: after 1 s).

import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { Harness, http, sleep, waitFor } from './helpers.js';

const h = new Harness();
const cleanup: (() => void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0)) f();
  await h.close();
});

interface Stream {
  session: () => string;
  /** The id of the last event (what EventSource would send as Last-Event-ID). */
  lastId: () => string;
  messages: Record<string, any>[];
  close: () => void;
}

/** A raw SSE stream: its session id, its last event id and the messages of its events. */
function openStream(port: number, lastEventId = ''): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const messages: Record<string, any>[] = [];
    let session = '';
    let lastId = '';
    let buf = '';
    const headers: Record<string, string> = { accept: 'text/event-stream', ...(lastEventId ? { 'last-event-id': lastEventId } : {}) };
    const req = request({ host: '127.0.0.1', port, path: '/sse', agent: false, headers });
    req.on('response', (res) => {
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        let at: number;
        while ((at = buf.indexOf('\n\n')) >= 0) {
          for (const line of buf.slice(0, at).split('\n')) {
            if (line.startsWith('id: ')) lastId = line.slice(4);
            if (!line.startsWith('data: ')) continue;
            for (const m of JSON.parse(line.slice(6)) as Record<string, any>[]) {
              if (m.type === 'session') session = m.session;
              messages.push(m);
            }
          }
          buf = buf.slice(at + 2);
        }
      });
      resolve({ session: () => session, lastId: () => lastId, messages, close: () => req.destroy() });
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

  it('a reconnect with Last-Event-ID on the other worker takes over a session whose worker is busy for 1.5 s (resumed, not a new session)', async () => {
    const server = await h.server({ workers: 2 });
    server.publish('sw.a', { x: 1 });
    let s = await openStream(server.port);
    await waitFor(() => s.messages.some((m) => m.type === 'welcome'), 5_000, 'the welcome');
    await http(server.port, 'POST', `/sse/${s.session()}`, [{ type: 'subscribe', id: 1, topics: ['sw.a'] }]);
    await waitFor(() => s.messages.some((m) => m.type === 'snapshot'), 5_000, 'the snapshot');
    const sid = s.session();
    const workerOf = (st: Stream) => String(st.messages.find((m) => m.type === 'welcome')!.server);
    let elsewhere = 0;
    // Each attempt: the stream goes, its worker is stalled, the client comes back. Until it lands on the other one.
    for (let attempt = 0; attempt < 12 && elsewhere < 2; attempt++) {
      const holder = workerOf(s);
      const last = s.lastId();
      s.close();
      await sleep(100); // the holder notices the stream is gone
      const stalled = server.stallWorker(Number(/\/w(\d+)$/.exec(holder)![1]), 1_500);
      await sleep(50);
      const next = await openStream(server.port, last);
      await waitFor(() => next.messages.some((m) => m.type === 'welcome'), 5_000, 'the resumed stream');
      await stalled;
      expect(next.messages[0], `attempt ${attempt}`).toMatchObject({ type: 'session', session: sid, resumed: true, subs: [{ id: 1, paused: false }] });
      if (workerOf(next) !== holder) elsewhere++;
      s = next;
    }
    expect(elsewhere, 'resumes that landed on the other worker').toBe(2);
    // The resumed subscription is live, nothing lost: a publish arrives once, on its base (the quiet case too: nothing else came).
    const before = s.messages.length;
    server.publish('sw.a', { x: 2 });
    await waitFor(() => s.messages.slice(before).some((m) => m.type === 'delta'), 5_000, 'the delta');
    expect(s.messages.slice(before).filter((m) => m.type === 'delta')).toMatchObject([{ base: 1, version: 2, changes: { x: 2 } }]);
  }, 40_000);
});
