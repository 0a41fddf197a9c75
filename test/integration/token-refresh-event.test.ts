// The SDK's `token` event against a real server (issue 20: a desk shows "the
// token's remaining lifetime as it is refreshed"): every token the server
// takes is told once with its exp — at connect (each reconnect too) and at
// each accepted refresh, over WebSocket and SSE — and nothing is told for a
// refused token, a refused refresh, or a connection without a token.

import { afterEach, describe, expect, it } from 'vitest';
import type { ClientOptions, TickfanClient, TokenEvent } from '../../src/client/index.js';
import { TcpProxy } from '../e2e/tcp-proxy.js';
import { Harness, sleep, waitFor } from './helpers.js';
import { SECRET, token } from './security-helpers.js';

const WRONG_KEY = 'another-secret-that-is-also-32-characters-long!!';
const h = new Harness();
afterEach(async () => {
  await h.close();
});

/** The exp (s) of a JWT, as minted. */
function expOf(t: string): number {
  return (JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()) as { exp: number }).exp;
}

function tokenEvents(c: TickfanClient): TokenEvent[] {
  const seen: TokenEvent[] = [];
  c.on('token', (e) => seen.push(e));
  return seen;
}

/** A token function minting `lifeS`-second tokens for desk-7, remembering each one's exp; `refuse` makes it sign with the wrong key. */
function minter(lifeS: number) {
  const m = {
    exps: [] as number[],
    refuse: false,
    fn: async (): Promise<string> => {
      const t = await token({ subscribe: ['ev.>'] }, { expSec: lifeS, sub: 'desk-7', ...(m.refuse ? { secret: WRONG_KEY } : {}) });
      if (!m.refuse) m.exps.push(expOf(t));
      return t;
    },
  };
  return m;
}

describe('the token event', () => {
  for (const transport of ['ws', 'sse'] as const) {
    it(`${transport}: one event at connect and one per accepted refresh, each with the exp of the token taken; again at a reconnect`, async () => {
      const server = await h.server({ auth: { secret: SECRET } });
      const proxy = await TcpProxy.start(server.port);
      const m = minter(3);
      const c = h.client(proxy.port, { token: m.fn, transport } as ClientOptions);
      const seen = tokenEvents(c);
      // 3-second tokens: refreshed a third of their life before exp, so about every 2 s.
      await waitFor(() => seen.filter((e) => e.refreshed).length >= 2, 10_000, 'two refreshes');
      expect(seen[0]).toMatchObject({ refreshed: false, sub: 'desk-7' });
      expect(seen.slice(1).every((e) => e.refreshed)).toBe(true);
      // Each event is a token the function handed out, in order, with exp (s) and expiresAt (ms) agreeing.
      expect(seen.map((e) => e.exp)).toEqual(m.exps.slice(0, seen.length));
      for (const e of seen) expect(e.expiresAt).toBe(e.exp! * 1000);
      expect(c.stats.reconnects).toBe(0);

      // A new connection takes a token again (the cached one, while it has life left): told with refreshed false.
      const n = seen.length;
      expect(proxy.cut()).toBeGreaterThan(0);
      await waitFor(() => seen.length > n, 5_000, 'the token event of the new connection');
      expect(seen[n]!.refreshed).toBe(false);
      expect(seen[n]!.exp).toBe(m.exps.at(-1));
      expect(c.stats.reconnects).toBe(1);
      await proxy.close();
    }, 20_000);
  }

  it('a fixed token: one event per connection taken, none for a refused one; no token: no event', async () => {
    const server = await h.server({ auth: { secret: SECRET, anonymous: true } });
    const fixed = await token({ subscribe: ['ev.>'] }, { expSec: 600, sub: 'desk-8' });
    const c = h.client(server, { token: fixed });
    const seen = tokenEvents(c);
    await waitFor(() => seen.length === 1, 5_000, 'the token event');
    expect(seen).toEqual([{ exp: expOf(fixed), expiresAt: expOf(fixed) * 1000, sub: 'desk-8', refreshed: false }]);

    const bad = h.client(server, { token: await token({ subscribe: ['ev.>'] }, { expSec: 600, secret: WRONG_KEY }) });
    const badSeen = tokenEvents(bad);
    await waitFor(() => bad.state === 'closed', 5_000, 'the refused client to stop');
    expect(badSeen).toEqual([]);

    const anon = await h.connected(server);
    const anonSeen = tokenEvents(anon);
    anon.subscribe('ev.x');
    await sleep(300);
    expect(anonSeen).toEqual([]);
  }, 20_000);

  it('a refused refresh is not told: the events stay with the token still in use', async () => {
    const server = await h.server({ auth: { secret: SECRET } });
    const m = minter(4);
    const c = h.client(server, { token: m.fn });
    const seen = tokenEvents(c);
    await waitFor(() => seen.length === 1, 5_000, 'the token event at connect');
    m.refuse = true;
    const errors: Error[] = [];
    c.on('error', (e) => errors.push(e));
    // The refresh (about 1.3 s before exp) is refused; nothing is told until the session ends at exp.
    await waitFor(() => c.state !== 'connected', 8_000, 'the session to end at exp');
    expect(seen).toHaveLength(1);
    expect(seen[0]!.exp).toBe(m.exps[0]);
  }, 20_000);
});
