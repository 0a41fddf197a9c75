// The committed FlatBuffers code must be exactly what flatc generates from
// schemas/: `node scripts/gen.mjs --check` exits 0 here, and (checked in a
// scratch copy of the repo layout) exits 1 as soon as either side drifts.

import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function check(cwdRoot: string) {
  const r = spawnSync(process.execPath, [join(cwdRoot, 'scripts', 'gen.mjs'), '--check'], { cwd: cwdRoot, encoding: 'utf8', timeout: 15_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** A scratch copy of what gen.mjs reads: the script, the schemas, the generated code. */
function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tickfan-drift-'));
  for (const p of ['scripts/gen.mjs', 'schemas', 'src/protocol/generated']) {
    mkdirSync(dirname(join(dir, p)), { recursive: true });
    cpSync(join(root, p), join(dir, p), { recursive: true });
  }
  return dir;
}

describe('generated code drift', () => {
  it('src/protocol/generated matches what flatc generates from schemas/', () => {
    const r = check(root);
    expect(r.out).not.toMatch(/flatc failed/);
    expect(r.status, r.out).toBe(0);
  });

  describe('the check itself', () => {
    it('passes on an untouched copy', () => {
      const dir = scratch();
      try {
        expect(check(dir).status).toBe(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('fails when the generated code was edited by hand', () => {
      const dir = scratch();
      try {
        appendFileSync(join(dir, 'src/protocol/generated/tickfan.ts'), '\n// hand edit\n');
        const r = check(dir);
        expect(r.status).toBe(1);
        expect(r.out).toMatch(/differs from what flatc generates/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('fails when the schema changed without regenerating', () => {
      const dir = scratch();
      try {
        const fbs = join(dir, 'schemas/tickfan.fbs');
        const src = readFileSync(fbs, 'utf8');
        const changed = src.replace('table Ping { nonce: ulong; }', 'table Ping { nonce: ulong; sent: double; }');
        expect(changed).not.toBe(src);
        writeFileSync(fbs, changed);
        expect(check(dir).status).toBe(1);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
