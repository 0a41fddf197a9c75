// The README is the front door and docs/ the reference: every page of docs/
// is reachable from the README, opens with a title and a contents line, and
// every relative link in them (files and #headings) leads somewhere.

import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PAGES = readdirSync(join(ROOT, 'docs'))
  .filter((f) => f.endsWith('.md'))
  .map((f) => `docs/${f}`);
const ALL = ['README.md', ...PAGES];

const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');

/** The text outside fenced code blocks (a `#` in a shell comment is not a heading). */
function prose(md: string): string {
  return md.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '');
}

/** GitHub's anchors for a page's headings (lower case, punctuation dropped, spaces to dashes, repeats numbered). */
export function anchors(md: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const [, text] of prose(md).matchAll(/^#{1,6} +(.+?) *#*$/gm)) {
    const base = text!
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n ? `${base}-${n}` : base);
  }
  return out;
}

describe('README and docs/', () => {
  it('the README links every page of docs/', () => {
    const readme = read('README.md');
    expect(PAGES.length).toBeGreaterThanOrEqual(9);
    for (const page of PAGES) expect(readme, page).toContain(`](${page}`);
  });

  it('every page opens with a title and a contents line whose links are its own headings', () => {
    for (const page of PAGES) {
      const [title, blank, contents] = read(page).split('\n');
      expect(title, page).toMatch(/^# \S/);
      expect(blank, page).toBe('');
      expect(contents, page).toMatch(/^Contents: \[/);
      const own = anchors(read(page));
      const listed = [...contents!.matchAll(/\]\(#([^)]+)\)/g)].map((m) => m[1]!);
      expect(listed.length, page).toBeGreaterThan(0);
      for (const a of listed) expect(own.has(a), `${page}: contents link #${a}`).toBe(true);
    }
  });

  it('every relative link leads to a file that exists, and to a heading on it', () => {
    const broken: string[] = [];
    for (const doc of ALL) {
      for (const [, target] of prose(read(doc)).matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue;
        const [path, hash] = target!.split('#') as [string, string | undefined];
        const file = path ? normalize(join(dirname(doc), path)) : doc;
        if (!existsSync(join(ROOT, file))) {
          broken.push(`${doc}: ${target} (no file ${relative('.', file)})`);
          continue;
        }
        if (hash && file.endsWith('.md') && !anchors(read(file)).has(hash)) broken.push(`${doc}: ${target} (no heading #${hash} in ${file})`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('the README stays a front door: a few hundred lines at most', () => {
    expect(read('README.md').split('\n').length).toBeLessThan(300);
  });
});
