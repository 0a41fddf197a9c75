// GET /metrics in Prometheus text format (prom-client): every metric the
// operations doc (docs/operations.md) lists is there, and each one moves with what the server does.

import { afterEach, describe, expect, it } from 'vitest';
import { Encoder } from '../../src/protocol/index.js';
import { Harness, http, isType, waitFor, wsUrl } from './helpers.js';
import { upgrade } from './security-helpers.js';

const h = new Harness();
afterEach(() => h.close());

const enc = new Encoder();

/** Prometheus text → Map of `name{labels}` → value (HELP/TYPE lines checked separately). */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

async function scrape(port: number): Promise<{ text: string; m: Map<string, number> }> {
  const res = await http(port, 'GET', '/metrics');
  expect(res.status).toBe(200);
  const text = res.body as string;
  return { text, m: parse(text) };
}

const LISTED = [
  ['tickfan_connections', 'gauge'],
  ['tickfan_subscriptions', 'gauge'],
  ['tickfan_topics', 'gauge'],
  ['tickfan_stale_topics', 'gauge'],
  ['tickfan_publishes_total', 'counter'],
  ['tickfan_deliveries_total', 'counter'],
  ['tickfan_frames_total', 'counter'],
  ['tickfan_bytes_out_total', 'counter'],
  ['tickfan_encodes_total', 'counter'],
  ['tickfan_conflated_updates_total', 'counter'],
  ['tickfan_snapshot_encodes_total', 'counter'],
  ['tickfan_catchups_total', 'counter'],
  ['tickfan_slow_lane_entries_total', 'counter'],
  ['tickfan_slow_consumer_disconnects_total', 'counter'],
  ['tickfan_errors_total', 'counter'],
  ['tickfan_event_loop_lag_seconds', 'gauge'],
  ['tickfan_process_resident_memory_bytes', 'gauge'],
  ['tickfan_nodejs_heap_size_used_bytes', 'gauge'],
  ['tickfan_nodejs_active_handles', 'gauge'],
] as const;

describe('GET /metrics', () => {
  it('lists every documented metric with HELP and TYPE, and the values follow the server', async () => {
    const server = await h.server({ topicTtlMs: 200 });
    const first = await scrape(server.port);
    for (const [name, type] of LISTED) {
      expect(first.text, name).toContain(`# HELP ${name} `);
      expect(first.text, name).toContain(`# TYPE ${name} ${type}`);
    }
    expect(first.m.get('tickfan_connections')).toBe(0);

    // Activity: two subscribers (one throttled), publishes, a resume catch-up, a bad frame.
    // Many fields, so a catch-up over a few versions is a (smaller) delta rather than a snapshot.
    server.publish('mx.A', { px: 1, ...Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`f${i}`, `value ${i}`])) });
    const fast = await h.connected(server);
    const slow = await h.connected(server);
    const s1 = fast.subscribe('mx.*');
    const s2 = slow.subscribe('mx.A', { maxRate: 1 });
    await Promise.all([s1.ready, s2.ready]);
    for (let i = 2; i <= 20; i++) server.publish('mx.A', { px: i });
    await waitFor(() => fast.stateOf('mx.A')?.version === 20, 2_000, 'the fast subscriber');
    const raw = await h.raw(server);
    const t = server.store.get('mx.A')!;
    raw.send(enc.subscribe(7, ['mx.A'], 0, [], [{ topic: 'mx.A', epoch: t.epoch, version: 18 }]));
    await raw.next(isType('ack'), 0);
    raw.sendRaw(new Uint8Array([1, 2, 3]));
    await raw.next(isType('error'), 0);
    await waitFor(() => server.store.get('mx.A')!.stale, 2_000, 'mx.A to go stale');

    const { m } = await scrape(server.port);
    expect(m.get('tickfan_connections')).toBe(3);
    expect(m.get('tickfan_subscriptions')).toBe(3);
    expect(m.get('tickfan_topics')).toBe(1);
    expect(m.get('tickfan_stale_topics')).toBe(1);
    expect(m.get('tickfan_publishes_total')).toBe(20);
    expect(m.get('tickfan_deliveries_total')).toBeGreaterThanOrEqual(19);
    expect(m.get('tickfan_frames_total')).toBeGreaterThan(3);
    expect(m.get('tickfan_bytes_out_total')).toBeGreaterThan(1000);
    expect(m.get('tickfan_conflated_updates_total')).toBe(19);
    expect(m.get('tickfan_catchups_total{kind="delta"}')).toBeGreaterThanOrEqual(1);
    expect(m.get('tickfan_catchups_total{kind="snapshot"}')).toBeGreaterThanOrEqual(2);
    expect(m.get('tickfan_errors_total{code="TICKFAN_ERR_BAD_FRAME"}')).toBe(1);
    expect(m.get('tickfan_slow_lane_entries_total')).toBe(0);
    expect(m.get('tickfan_slow_consumer_disconnects_total')).toBe(0);
    expect(m.get('tickfan_event_loop_lag_seconds')).toBeGreaterThanOrEqual(0);
    expect(m.get('tickfan_process_resident_memory_bytes')).toBeGreaterThan(10_000_000);

    // Refusals count as errors by code too.
    const refused = await h.server({ maxConnections: 1 });
    await h.connected(refused);
    expect(await upgrade(wsUrl(refused))).toMatchObject({ ok: false, status: 503 });
    expect((await scrape(refused.port)).m.get(`tickfan_errors_total{code="TICKFAN_ERR_TOO_MANY_CONNECTIONS"}`)).toBe(1);
  });
});
