// `tickfan pub` with row ops and `tickfan sub --depth N` (the built dist/cli.js,
// spawned) against a real server: row batches land as one version each and
// read back exactly through GET /snapshot; refusals exit 1 with the error's
// name; usage errors exit 2; the ladder printed per version into a pipe equals
// the server's top N at that version. TICKFAN_CLI runs another build.

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TickfanServer } from '../../src/index.js';
import { http, waitFor } from './helpers.js';

const cli = process.env.TICKFAN_CLI ?? fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

function env(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TICKFAN_')));
}

function run(args: string[], stdin?: string): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { env: env(), stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    if (stdin !== undefined) child.stdin!.end(stdin);
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

type Snap = { version: number; fields: Record<string, unknown>; tables: Record<string, { rows: [number, Record<string, unknown>][] }> };

describe('tickfan pub and sub with keyed topics', { timeout: 60_000 }, () => {
  let server: TickfanServer;
  let url: string;
  const snap = async (topic: string, q = ''): Promise<Snap> => (await http(server.port, 'GET', `/snapshot/${topic}${q}`)).body as Snap;

  beforeAll(async () => {
    server = await startServer({ port: 0, host: '127.0.0.1', log: () => {} });
    url = `--url=ws://127.0.0.1:${server.port}/ws`;
  });
  afterAll(() => server?.close());

  it('pub: row ops in order as one batch per run; a new bids/asks is declared; read back exactly by GET /snapshot', async () => {
    const a = await run(['pub', 'book.CLI1', url, 'last=65000.5', '--table', 'bids', '--upsert', '6500050', 'qty=3', 'orders=2', '--upsert', '6500000', 'qty=1.25', '--table', 'asks', '--upsert', '6500100', 'qty=2']);
    expect(a.status, a.stderr).toBe(0);
    expect(a.stdout).toMatch(/^book\.CLI1 v1 \(epoch \d+\)\n$/);
    expect(a.stderr).toMatch(/declaring bids int:desc, asks int:asc/);
    const b = await run(['pub', 'book.CLI1', url, '--table', 'bids', '--delete', '6500000', '--replace', '6500050', 'qty=4', '--table', 'asks', '--upsert', '6500200', 'qty=5', '--upsert', '6500300', 'qty=6']);
    expect(b.stdout).toMatch(/^book\.CLI1 v2 /);
    let s = await snap('book.CLI1');
    expect(s.version).toBe(2);
    expect(s.fields).toEqual({ last: 65000.5 });
    expect(s.tables.bids!.rows).toEqual([[6500050, { qty: 4 }]]);
    expect(s.tables.asks!.rows).toEqual([[6500100, { qty: 2 }], [6500200, { qty: 5 }], [6500300, { qty: 6 }]]);
    // deleteRange by key (inclusive, open ends), clear.
    const c = await run(['pub', 'book.CLI1', url, '--table', 'asks', '--delete-range', '..6500200', '--table', 'bids', '--clear']);
    expect(c.status, c.stderr).toBe(0);
    s = await snap('book.CLI1');
    expect(s.version).toBe(3);
    expect(s.tables.asks!.rows).toEqual([[6500300, { qty: 6 }]]);
    expect(s.tables.bids!.rows).toEqual([]);
  });

  it('pub: a failing guard refuses the whole batch (exit 1, the code and row named); --json as an argument and from stdin', async () => {
    await run(['pub', 'book.CLI2', url, '--table', 'bids', '--upsert', '7', 'qty=1']);
    const refused = await run(['pub', 'book.CLI2', url, 'last=9', '--table', 'bids', '--upsert', '8', 'qty=2', '--upsert', '7', 'qty=3', '--if-new']);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/TICKFAN_ERR_ROW_GUARD: table bids row 7/);
    let s = await snap('book.CLI2');
    expect(s.version).toBe(1);
    expect(s.fields).toEqual({});
    expect(s.tables.bids!.rows).toEqual([[7, { qty: 1 }]]);
    const j = await run(['pub', 'book.CLI2', url, '--json', '{"fields":{"last":9},"tables":{"bids":{"upsert":{"8":{"qty":2}},"delete":[7]}}}']);
    expect(j.stdout).toMatch(/^book\.CLI2 v2 /);
    const k = await run(['pub', 'book.CLI2', url, '--json', '-'], '{"tables":{"bids":{"ops":[{"op":"delete","key":8,"guard":"ifExists"}]}}}');
    expect(k.stdout).toMatch(/^book\.CLI2 v3 /);
    s = await snap('book.CLI2');
    expect(s.fields).toEqual({ last: 9 });
    expect(s.tables.bids!.rows).toEqual([]);
    // A table that is neither bids nor asks must be declared: the server's answer says so.
    const u = await run(['pub', 'blotter.CLI2', url, '--table', 'orders', '--upsert', 'A1', 'qty=5']);
    expect(u.status).toBe(1);
    expect(u.stderr).toMatch(/TICKFAN_ERR_BAD_REQUEST: .*declare/);
    const d = await run(['pub', 'blotter.CLI2', url, '--table', 'orders', '--declare', 'string:asc', '--upsert', 'A1', 'qty=5', 'side=buy']);
    expect(d.status, d.stderr).toBe(0);
    expect((await snap('blotter.CLI2')).tables.orders!.rows).toEqual([['A1', { qty: 5, side: 'buy' }]]);
  });

  it('pub and sub: usage errors exit 2 with the usage line', async () => {
    for (const args of [
      ['pub', 'book.X', '--upsert', '1', 'qty=1'],
      ['pub', 'book.X', '--table', 'bids', '--if-new'],
      ['pub', 'book.X', '--table', 'bids', '--delete-range', '5'],
      ['pub', 'book.X', '--table', 'bids', '--declare', 'float:up', '--clear'],
      ['pub', 'book.X', '--table', 'bids'],
      ['sub', 'book.X', '--depth', '-1'],
    ]) {
      const r = await run([...args, url]);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/Usage:/);
    }
  });

  it('sub --depth 3 into a pipe: one ladder per version, equal to the top 3 of GET /snapshot at that version', async () => {
    const topic = 'book.CLI3';
    const levels = (side: 'bids' | 'asks', base: number, n: number) =>
      Array.from({ length: n }, (_, i) => ({ op: 'upsert' as const, table: side, key: base + (side === 'bids' ? -i : i), fields: { qty: i + 1, orders: 1 } }));
    server.publishBatch(topic, {
      fields: { tick: 0.5, mid: 100 },
      tables: { declare: [{ name: 'bids', key: 'int', order: { key: 'desc' } }, { name: 'asks', key: 'int', order: { key: 'asc' } }], ops: [...levels('bids', 199, 8), ...levels('asks', 201, 8)] },
    });
    const child = spawn(process.execPath, [cli, 'sub', topic, url, '--depth', '3', '--count', '4'], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    await waitFor(() => out.includes(`${topic} v1`), 10_000, 'the first ladder');
    const expected = new Map<number, string[]>();
    const ladder = (s: Snap) => [
      ...s.tables.asks!.rows.slice().reverse().map(([k, f]) => `ask ${(k * 0.5).toFixed(1)} ${f.qty} ${f.orders}`),
      ...s.tables.bids!.rows.map(([k, f]) => `bid ${(k * 0.5).toFixed(1)} ${f.qty} ${f.orders}`),
    ];
    expected.set(1, ladder(await snap(topic, '?depth=3')));
    // Outside the window (no row change shown), a delete that refills from below, a deleteRange through the top.
    const steps = [
      [{ op: 'upsert' as const, table: 'bids', key: 190, fields: { qty: 9, orders: 9 } }],
      [{ op: 'delete' as const, table: 'asks', key: 201 }],
      [{ op: 'deleteRange' as const, table: 'bids', from: 197, to: 199 }],
    ];
    for (const [i, ops] of steps.entries()) {
      const { version } = server.publishBatch(topic, { fields: { mid: 100.5 + i }, tables: { ops } });
      expected.set(version, ladder(await snap(topic, '?depth=3')));
    }
    expect(await exited).toBe(0);
    const blocks = out.trim().split('\n\n');
    expect(blocks).toHaveLength(4);
    for (const block of blocks) {
      const lines = block.split('\n');
      const version = Number(/ v(\d+)/.exec(lines[0]!)![1]);
      expect(lines[0]).not.toMatch(/tick=/);
      const rows = lines.filter((l) => /^(ask|bid) /.test(l)).map((l) => l.trim().split(/\s+/).join(' '));
      expect(rows, `v${version}`).toEqual(expected.get(version));
      expect(lines.some((l) => /^---\s+spread \d+\.\d$/.test(l))).toBe(true);
    }
  });
});
