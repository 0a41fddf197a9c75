// Keeps the protocol reference's error and close code tables (docs/protocol.md)
// in step with src/protocol/codes.ts.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CloseCode, ErrorCode, ERROR_CODE_TEXT, CLOSE_CODE_TEXT, errorCodeName } from '../../src/protocol/index.js';

const doc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');

function table(heading: string): Map<number, string[]> {
  const start = doc.indexOf(`\n${heading}\n`);
  expect(start, `docs/protocol.md has a "${heading}" section`).toBeGreaterThan(-1);
  const rows = new Map<number, string[]>();
  for (const line of doc.slice(start + 1).split('\n').slice(1)) {
    if (line.startsWith('#')) break;
    const cells = line.split('|').map((c) => c.trim());
    const code = Number(cells[1]);
    if (line.startsWith('|') && Number.isInteger(code) && cells[1] !== '') rows.set(code, cells.slice(2, -1));
  }
  return rows;
}

describe('documented codes', () => {
  it('lists every protocol error code with its name, and nothing else', () => {
    const rows = table('## Error codes');
    expect([...rows.keys()].sort((a, b) => a - b)).toEqual(Object.values(ErrorCode).sort((a, b) => a - b));
    for (const [name, code] of Object.entries(ErrorCode)) {
      expect(rows.get(code)?.[0]).toBe(name);
      expect(errorCodeName(code)).toBe(`TICKFAN_ERR_${name}`);
      expect(ERROR_CODE_TEXT[code].length).toBeGreaterThan(10);
    }
  });

  it('lists every WebSocket close code, and nothing else', () => {
    const rows = table('## Close codes');
    expect([...rows.keys()].sort((a, b) => a - b)).toEqual(Object.values(CloseCode).sort((a, b) => a - b));
    for (const code of Object.values(CloseCode)) expect(CLOSE_CODE_TEXT[code].length).toBeGreaterThan(5);
  });
});
