// Examples that cannot rot. Every TypeScript and JavaScript block in README.md
// and docs/*.md (and the module script of every HTML block) is extracted and
// type-checked with tsc against the real exports: 'tickfan' and
// 'tickfan/client' resolve to this repository's build (dist/, as the package
// exports it), '/tickfan.js' to the browser bundle's types, anything else to
// node_modules. A few names an example may use without declaring them are
// declared once below (PRELUDE); everything else an example must import.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DOCS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** Names examples may use as given: a connected SDK client, a token, and a page's own render function. */
const PRELUDE = `declare const client: import('tickfan/client').TickfanClient;
declare const token: string;
declare function render(topic: string, state: Record<string, unknown>, version: number): void;
`;

interface Example {
  doc: string;
  /** Line of the doc where the example's code starts. */
  line: number;
  ext: 'ts' | 'js';
  code: string;
}

/** The code blocks of one markdown file that are TypeScript or JavaScript (HTML: its module scripts). */
export function examples(doc: string, md: string): Example[] {
  const out: Example[] = [];
  const lines = md.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w+)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const lang = open[1]!;
    let j = i + 1;
    while (j < lines.length && lines[j] !== '```') j++;
    const body = lines.slice(i + 1, j);
    if (lang === 'ts' || lang === 'typescript') out.push({ doc, line: i + 2, ext: 'ts', code: body.join('\n') });
    else if (lang === 'js' || lang === 'javascript') out.push({ doc, line: i + 2, ext: 'js', code: body.join('\n') });
    else if (lang === 'html') {
      // Blank out everything but the module scripts' contents, so that line numbers still match the doc.
      let inScript = false;
      const kept = body.map((l) => {
        if (/<script type="module">/.test(l)) return (inScript = true), '';
        if (/<\/script>/.test(l)) return (inScript = false), '';
        return inScript ? l : '';
      });
      if (kept.some((l) => l.trim())) out.push({ doc, line: i + 2, ext: 'ts', code: kept.join('\n') });
    }
    i = j;
  }
  return out;
}

describe('the examples in README.md and docs/', () => {
  const all = DOCS.flatMap((doc) => examples(doc, readFileSync(join(ROOT, doc), 'utf8')));

  it('are found (a Node client, a browser page, the embedded server, STOMP, tokens)', () => {
    expect(all.length).toBeGreaterThanOrEqual(8);
    expect(all.filter((e) => e.doc === 'README.md').length).toBeGreaterThanOrEqual(3);
  });

  it('type-check against the real exports', () => {
    expect(existsSync(join(ROOT, 'dist/client/index.d.ts')), 'dist/ is built (npm test builds it first)').toBe(true);
    // Inside the repository, so that other imports (jose, @stomp/stompjs, ws) resolve from its node_modules.
    const dir = join(ROOT, 'node_modules/.cache/tickfan-doc-examples');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const files = new Map<string, Example>();
    for (const [n, e] of all.entries()) {
      const name = `${e.doc.replace(/[/.]/g, '_')}_${n}.${e.ext === 'ts' ? 'mts' : 'mjs'}`;
      // One module per example; the export keeps it a module even when it imports nothing.
      writeFileSync(join(dir, name), `${e.code}\nexport {};\n`);
      files.set(name, e);
    }
    writeFileSync(join(dir, 'prelude.d.ts'), PRELUDE);
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          lib: ['ES2023', 'DOM'],
          strict: true,
          noEmit: true,
          allowJs: true,
          checkJs: true,
          skipLibCheck: true,
          types: ['node'],
          typeRoots: [join(ROOT, 'node_modules/@types')],
          paths: {
            tickfan: [join(ROOT, 'dist/index.d.ts')],
            'tickfan/client': [join(ROOT, 'dist/client/index.d.ts')],
            '/tickfan.js': [join(ROOT, 'dist/browser/tickfan.d.ts')],
          },
        },
        include: ['*.mts', '*.mjs', 'prelude.d.ts'],
      }),
    );
    const r = spawnSync(join(ROOT, 'node_modules/.bin/tsc'), ['-p', join(dir, 'tsconfig.json')], { encoding: 'utf8', timeout: 120_000 });
    // Errors point at the doc and line the example came from.
    const errors = `${r.stdout}${r.stderr}`
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => {
        const m = /([\w.-]+)\((\d+),(\d+)\): (.*)$/.exec(l);
        const e = m && files.get(m[1]!);
        return e ? `${e.doc}:${e.line + Number(m![2]) - 1}: ${m![4]}` : l;
      });
    expect(errors).toEqual([]);
    expect(r.status).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  }, 150_000);
});
