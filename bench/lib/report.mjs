// Writes results: bench/results/<scenario>.json (everything measured),
// <scenario>.md and <scenario>.svg (rendered by the scenario), and the
// summary README.md plus a self-contained index.html with every chart,
// rebuilt from all the JSON files present.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fmtRatio } from './common.mjs';

const ORDER = ['fanout', 'latency', 'connections', 'reconnect-storm', 'slow-consumers', 'http-publish', 'wire', 'request-reply', 'stomp', 'cluster', 'book'];

export function mdTable(headers, rows, align) {
  const a = align ?? headers.map((_, i) => (i === 0 ? 'l' : 'r'));
  const sep = a.map((x) => (x === 'r' ? '---:' : x === 'c' ? ':---:' : '---'));
  const line = (cells) => `| ${cells.map((c) => String(c ?? '–').replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(headers), line(sep), ...rows.map(line)].join('\n');
}

/** Target rows: what was asked, what was measured, met or missed and by how much. */
export function targetsTable(targets) {
  if (!targets?.length) return '';
  const rows = targets.map((t) => {
    const shown = t.shown ?? (t.measured === null || t.measured === undefined ? '–' : t.unit === '×' ? fmtRatio(t.measured) : `${t.measured}${t.unit ?? ''}`);
    return [t.name, t.met ? '✅ met' : t.met === false ? '❌ missed' : '–', shown, t.note ?? ''];
  });
  return mdTable(['target', 'result', 'measured', 'note'], rows, ['l', 'l', 'r', 'l']);
}

async function renderer(name) {
  return import(`../scenarios/${name}.mjs`);
}

function header(doc) {
  const m = doc.machine;
  return `Measured ${m.date.slice(0, 16).replace('T', ' ')} UTC on ${m.cores} × ${m.cpu}, ${m.memGiB} GiB, Node ${m.node}, Linux ${m.kernel}, tickfan ${m.commit}. Reproduce: \`${doc.command}\``;
}

export async function renderDoc(doc) {
  const mod = await renderer(doc.scenario);
  return mod.render(doc);
}

export async function writeScenario(out, doc) {
  const r = await renderDoc(doc);
  const json = JSON.stringify(doc, (_k, v) => (typeof v === 'number' && !Number.isInteger(v) ? Math.round(v * 1000) / 1000 : v), 2);
  writeFileSync(join(out, `${doc.scenario}.json`), `${json}\n`);
  writeFileSync(join(out, `${doc.scenario}.svg`), `${r.svg}\n`);
  // Charts of their own beside the scenario's (fanout: p99 against delivered updates/s).
  for (const [file, svg] of Object.entries(r.files ?? {})) writeFileSync(join(out, file), `${svg}\n`);
  const md = [`# ${doc.title} (\`${doc.scenario}\`)`, '', `> ${doc.question}`, '', header(doc), '', `![${doc.title}](${doc.scenario}.svg)`, '', r.md, ''];
  if (doc.profiles?.length) {
    md.push('## CPU profile of the server (node --cpu-prof, self time)', '');
    for (const p of doc.profiles) {
      md.push(`\`${p.file}\` — ${p.totalMs} ms sampled`, '');
      md.push(mdTable(['function', 'where', 'self ms', 'share'], p.top.map((t) => [t.fn, t.where, t.selfMs, `${t.pct}%`]), ['l', 'l', 'r', 'r']), '');
    }
  }
  writeFileSync(join(out, `${doc.scenario}.md`), md.join('\n'));
}

export async function writeSummary(out) {
  const docs = ORDER.filter((n) => existsSync(join(out, `${n}.json`))).map((n) => JSON.parse(readFileSync(join(out, `${n}.json`), 'utf8')));
  if (!docs.length) return;
  const rendered = [];
  for (const d of docs) rendered.push({ doc: d, r: await renderDoc(d) });
  const md = ['# tickfan benchmark results', ''];
  md.push('Written by `npm run bench` / `tickfan bench`; one section per scenario, full numbers in each `<scenario>.json`, charts in `index.html` and the `.svg` files.', '');
  md.push('## Headlines', '');
  md.push(
    mdTable(
      ['scenario', 'headline', 'targets'],
      rendered.map(({ doc, r }) => [
        `[${doc.scenario}](${doc.scenario}.md)`,
        r.headline,
        (doc.targets ?? []).map((t) => `${t.met ? '✅' : '❌'} ${t.name}`).join('<br>') || '–',
      ]),
      ['l', 'l', 'l'],
    ),
    '',
  );
  for (const { doc, r } of rendered) {
    md.push(`## ${doc.title} (\`${doc.scenario}\`)`, '', `> ${doc.question}`, '', header(doc), '', `![${doc.title}](${doc.scenario}.svg)`, '', r.md, '');
  }
  writeFileSync(join(out, 'README.md'), md.join('\n'));
  writeFileSync(join(out, 'index.html'), html(rendered));
}

function html(rendered) {
  const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const first = rendered[0]?.doc.machine;
  const sections = rendered
    .map(({ doc, r }) => {
      const targets = (doc.targets ?? [])
        .map((t) => `<li class="${t.met ? 'ok' : 'miss'}"><span class="tag">${t.met ? 'met' : 'missed'}</span> ${esc(t.name)} — <b>${esc(t.shown ?? (t.unit === '×' ? fmtRatio(t.measured) : `${t.measured}${t.unit ?? ''}`))}</b>${t.note ? ` <span class="note">${esc(t.note)}</span>` : ''}</li>`)
        .join('');
      return `<section id="${doc.scenario}"><h2>${esc(doc.title)} <code>${doc.scenario}</code></h2><p class="q">${esc(doc.question)}</p><p class="h">${esc(r.headline)}</p>${targets ? `<ul class="t">${targets}</ul>` : ''}<div class="c">${r.svg}</div><p class="cmd">Reproduce: <code>${esc(doc.command)}</code> · ${doc.durationSec} s · ${esc(doc.machine.date.slice(0, 16).replace('T', ' '))} UTC</p></section>`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>tickfan benchmarks</title>
<style>
body{font:15px/1.5 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;background:#f8fafc;color:#0f172a}
header{background:#0f172a;color:#e2e8f0;padding:20px 28px}header h1{margin:0 0 4px;font-size:22px}header p{margin:0;color:#94a3b8}
nav{padding:10px 28px;background:#e2e8f0}nav a{margin-right:16px;color:#1e3a8a;text-decoration:none}
main{max-width:1520px;margin:0 auto;padding:8px 20px 40px}
section{background:#fff;border:1px solid #e2e8f0;border-radius:10px;margin:18px 0;padding:14px 20px}
h2{margin:4px 0}h2 code{font-size:14px;color:#64748b}.q{color:#475569;margin:2px 0}.h{font-size:17px;font-weight:600;margin:8px 0}
ul.t{margin:6px 0 10px;padding-left:0;list-style:none}ul.t li{margin:3px 0}.tag{display:inline-block;min-width:52px;text-align:center;border-radius:4px;padding:0 6px;margin-right:6px;font-size:12px;font-weight:600;color:#fff}li.ok .tag{background:#16a34a}li.miss .tag{background:#dc2626}.note{color:#64748b;font-size:13px}
.c svg{max-width:100%;height:auto}.cmd{color:#64748b;font-size:13px}code{background:#f1f5f9;padding:1px 4px;border-radius:4px}
</style></head><body>
<header><h1>tickfan benchmarks</h1><p>${first ? esc(`${first.cores} × ${first.cpu} · ${first.memGiB} GiB · Node ${first.node} · tickfan ${first.commit}`) : ''} — tickfan against raw uWebSockets.js, Socket.IO, nats-server and mosquitto, measured side by side in the same run.</p></header>
<nav>${rendered.map(({ doc }) => `<a href="#${doc.scenario}">${doc.scenario}</a>`).join('')}</nav>
<main>
${sections}
</main></body></html>
`;
}
