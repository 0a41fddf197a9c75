// Self-contained SVG charts for the results (no dependencies): line charts
// with linear or log axes, HDR percentile plots, and horizontal bar charts
// with a target marker. GitHub renders the .svg files inline.

export const COLORS = { tickfan: '#2563eb', uws: '#16a34a', sio: '#dc2626', nats: '#7c3aed', mosquitto: '#ea580c', a: '#7c3aed', b: '#ea580c', c: '#0891b2', d: '#64748b' };
const PALETTE = ['#2563eb', '#16a34a', '#dc2626', '#7c3aed', '#ea580c', '#0891b2', '#64748b'];
const FONT = 'font-family="system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif"';

function esc(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function niceLinearTicks(min, max, n = 5) {
  const span = max - min || 1;
  const step0 = span / n;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= step0) ?? step0;
  const ticks = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function logTicks(min, max) {
  const out = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= min * 0.999 && v <= max * 1.001) out.push(v);
    }
  }
  // Too many labels on a wide range: keep the powers of ten.
  return out.length > 9 ? out.filter((v) => Number.isInteger(Math.log10(v))) : out;
}

function axis(min, max, log, pad) {
  if (log) {
    const lo = Math.log10(Math.max(min, 1e-12));
    const hi = Math.log10(Math.max(max, min * 10));
    const a = pad ? Math.floor(lo * 2) / 2 : lo;
    const b = pad ? Math.ceil(hi * 2) / 2 : hi;
    return { map: (v) => (Math.log10(Math.max(v, 1e-12)) - a) / (b - a || 1), ticks: logTicks(10 ** a, 10 ** b) };
  }
  const ticks = niceLinearTicks(min, max);
  const a = Math.min(min, ticks[0]);
  const b = Math.max(max, ticks[ticks.length - 1]);
  return { map: (v) => (v - a) / (b - a || 1), ticks };
}

/**
 * A line chart.
 * @param {object} o
 * @param {string} o.title
 * @param {{ name: string, color?: string, points: [number, number][], dashed?: boolean }[]} o.series
 * @param {boolean} [o.xLog] @param {boolean} [o.yLog]
 * @param {(v: number) => string} [o.xFmt] @param {(v: number) => string} [o.yFmt]
 * @param {number[]} [o.xTicks]  explicit x ticks (e.g. percentiles)
 * @param {(x: number) => number} [o.xTransform]  plot transform of x (percentile plots)
 * @param {{ y?: number, x?: number, label: string, color?: string }[]} [o.refs]
 */
export function lineChart(o) {
  const W = o.width ?? 720;
  const H = o.height ?? 380;
  const m = { l: 76, r: 34, t: 44, b: 58 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const tx = o.xTransform ?? ((x) => x);
  const all = o.series.flatMap((s) => s.points).filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1]) && (!o.yLog || p[1] > 0));
  const refY = (o.refs ?? []).filter((r) => r.y !== undefined).map((r) => r.y);
  const xs = all.map((p) => tx(p[0]));
  const ys = [...all.map((p) => p[1]), ...refY];
  if (all.length === 0) return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="60"><text x="10" y="30" ${FONT}>${esc(o.title)}: no data</text></svg>`;
  const xa = axis(Math.min(...xs), Math.max(...xs), o.xLog, false);
  const ya = axis(o.yMin ?? (o.yLog ? Math.min(...ys) : Math.min(0, ...ys)), Math.max(...ys) * (o.yLog ? 1 : 1.05), o.yLog, true);
  const X = (x) => m.l + xa.map(tx(x)) * pw;
  const Y = (y) => m.t + ph - ya.map(y) * ph;
  const xFmt = o.xFmt ?? String;
  const yFmt = o.yFmt ?? String;
  const parts = [];
  parts.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#fff"/>`);
  parts.push(`<text x="${m.l}" y="22" font-size="15" font-weight="600" ${FONT}>${esc(o.title)}</text>`);
  if (o.subtitle) parts.push(`<text x="${m.l}" y="38" font-size="11" fill="#555" ${FONT}>${esc(o.subtitle)}</text>`);
  for (const t of ya.ticks) {
    const y = Y(t);
    if (y < m.t - 1 || y > m.t + ph + 1) continue;
    parts.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#e5e7eb"/>`);
    parts.push(`<text x="${m.l - 6}" y="${(y + 4).toFixed(1)}" font-size="11" text-anchor="end" fill="#444" ${FONT}>${esc(yFmt(t))}</text>`);
  }
  const xt = o.xTicks ?? xa.ticks;
  for (const t of xt) {
    const x = X(t);
    if (x < m.l - 1 || x > m.l + pw + 1) continue;
    parts.push(`<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${m.t}" y2="${m.t + ph}" stroke="#f1f5f9"/>`);
    parts.push(`<text x="${x.toFixed(1)}" y="${m.t + ph + 16}" font-size="11" text-anchor="middle" fill="#444" ${FONT}>${esc(xFmt(t))}</text>`);
  }
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#94a3b8"/>`);
  if (o.xLabel) parts.push(`<text x="${m.l + pw / 2}" y="${H - 14}" font-size="12" text-anchor="middle" fill="#222" ${FONT}>${esc(o.xLabel)}</text>`);
  if (o.yLabel) parts.push(`<text transform="translate(16 ${m.t + ph / 2}) rotate(-90)" font-size="12" text-anchor="middle" fill="#222" ${FONT}>${esc(o.yLabel)}</text>`);
  for (const r of o.refs ?? []) {
    const c = r.color ?? '#f59e0b';
    if (r.y !== undefined) {
      const y = Y(r.y);
      parts.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="${c}" stroke-width="1.5" stroke-dasharray="6 4"/>`);
      parts.push(`<text x="${m.l + pw - 4}" y="${(y - 5).toFixed(1)}" font-size="11" text-anchor="end" fill="${c}" ${FONT}>${esc(r.label)}</text>`);
    } else if (r.x !== undefined) {
      const x = X(r.x);
      parts.push(`<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${m.t}" y2="${m.t + ph}" stroke="${c}" stroke-width="1.5" stroke-dasharray="6 4"/>`);
      parts.push(`<text x="${(x + 4).toFixed(1)}" y="${m.t + 12}" font-size="11" fill="${c}" ${FONT}>${esc(r.label)}</text>`);
    }
  }
  o.series.forEach((s, i) => {
    const c = s.color ?? PALETTE[i % PALETTE.length];
    const pts = s.points.filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1]) && (!o.yLog || p[1] > 0));
    if (!pts.length) return;
    const d = pts.map((p, j) => `${j ? 'L' : 'M'}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join('');
    parts.push(`<path d="${d}" fill="none" stroke="${c}" stroke-width="2.2"${s.dashed ? ' stroke-dasharray="5 4"' : ''}/>`);
    for (const p of pts) {
      const bad = s.bad?.(p);
      parts.push(`<circle cx="${X(p[0]).toFixed(1)}" cy="${Y(p[1]).toFixed(1)}" r="${bad ? 4 : 3}" fill="${bad ? '#fff' : c}" stroke="${c}" stroke-width="1.5"/>`);
    }
  });
  // Legend, top left inside the plot.
  o.series.forEach((s, i) => {
    const c = s.color ?? PALETTE[i % PALETTE.length];
    const y = m.t + 14 + i * 17;
    parts.push(`<rect x="${m.l + 10}" y="${y - 9}" width="14" height="4" fill="${c}"/>`);
    parts.push(`<text x="${m.l + 30}" y="${y - 3}" font-size="12" fill="#222" ${FONT}>${esc(s.name)}</text>`);
  });
  if (o.note) parts.push(`<text x="${m.l + pw}" y="${H - 14}" font-size="10" text-anchor="end" fill="#666" ${FONT}>${esc(o.note)}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}">${parts.join('')}</svg>`;
}

/** Percentile plot (HDR style): x is the percentile on a 1/(1-p) scale. */
export function percentileChart(o) {
  const tx = (p) => Math.log10(1 / (1 - Math.min(p, 99.999) / 100));
  const ticks = [0, 50, 90, 99, 99.9, 99.99, 99.999].filter((p) => o.series.some((s) => s.points.some((q) => q[0] >= p)));
  return lineChart({
    ...o,
    xTransform: tx,
    xTicks: ticks,
    xFmt: (p) => (p === 0 ? '0%' : `${p}%`),
    xLabel: o.xLabel ?? 'percentile',
    yLog: o.yLog ?? true,
  });
}

/**
 * Horizontal bars, one group per row, optional target marker.
 * @param {{ title: string, subtitle?: string, rows: { label: string, value: number, color?: string, text?: string }[], log?: boolean, fmt?: (v:number)=>string, target?: { value: number, label: string } }} o
 */
export function barChart(o) {
  const W = o.width ?? 720;
  const rowH = 30;
  const m = { l: 190, r: 110, t: o.subtitle ? 50 : 40, b: 34 };
  const H = m.t + m.b + o.rows.length * rowH;
  const pw = W - m.l - m.r;
  const vals = o.rows.map((r) => r.value).filter((v) => Number.isFinite(v) && (!o.log || v > 0));
  if (o.target) vals.push(o.target.value);
  // Nothing to draw (no step passed): an axis from 1, not an endless one from Infinity.
  if (!vals.length) vals.push(1);
  const max = Math.max(...vals, 1e-9);
  const min = o.log ? Math.min(...vals) : 0;
  const a = o.log ? axis(min / 2, max * 1.5, true, true) : axis(0, max * 1.1, false, false);
  const X = (v) => m.l + Math.max(0, a.map(v)) * pw;
  const fmt = o.fmt ?? String;
  const parts = [`<rect x="0" y="0" width="${W}" height="${H}" fill="#fff"/>`];
  parts.push(`<text x="12" y="22" font-size="15" font-weight="600" ${FONT}>${esc(o.title)}</text>`);
  if (o.subtitle) parts.push(`<text x="12" y="38" font-size="11" fill="#555" ${FONT}>${esc(o.subtitle)}</text>`);
  for (const t of a.ticks) {
    const x = X(t);
    if (x < m.l - 1 || x > m.l + pw + 1) continue;
    parts.push(`<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${m.t - 4}" y2="${H - m.b}" stroke="#eef2f7"/>`);
    parts.push(`<text x="${x.toFixed(1)}" y="${H - m.b + 15}" font-size="10" text-anchor="middle" fill="#555" ${FONT}>${esc(fmt(t))}</text>`);
  }
  o.rows.forEach((r, i) => {
    const y = m.t + i * rowH;
    const c = r.color ?? PALETTE[i % PALETTE.length];
    parts.push(`<text x="${m.l - 8}" y="${y + rowH / 2 + 4}" font-size="12" text-anchor="end" fill="#222" ${FONT}>${esc(r.label)}</text>`);
    if (Number.isFinite(r.value) && (!o.log || r.value > 0)) {
      const w = Math.max(1, X(r.value) - m.l);
      parts.push(`<rect x="${m.l}" y="${y + 5}" width="${w.toFixed(1)}" height="${rowH - 10}" rx="3" fill="${c}"/>`);
      parts.push(`<text x="${(m.l + w + 6).toFixed(1)}" y="${y + rowH / 2 + 4}" font-size="12" fill="#111" ${FONT}>${esc(r.text ?? fmt(r.value))}</text>`);
    } else {
      parts.push(`<text x="${m.l + 6}" y="${y + rowH / 2 + 4}" font-size="12" fill="#888" ${FONT}>${esc(r.text ?? 'not measured')}</text>`);
    }
  });
  if (o.target) {
    const x = X(o.target.value);
    parts.push(`<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${m.t - 6}" y2="${H - m.b}" stroke="#f59e0b" stroke-width="2" stroke-dasharray="6 4"/>`);
    parts.push(`<text x="${(x + 4).toFixed(1)}" y="${m.t - 8}" font-size="11" fill="#b45309" ${FONT}>${esc(o.target.label)}</text>`);
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}">${parts.join('')}</svg>`;
}

/** Several charts stacked into one SVG. */
export function stack(svgs) {
  let y = 0;
  let w = 0;
  const parts = [];
  for (const s of svgs) {
    const m = /viewBox="0 0 (\d+(?:\.\d+)?) (\d+(?:\.\d+)?)"/.exec(s);
    const sw = Number(m?.[1] ?? 720);
    const sh = Number(m?.[2] ?? 380);
    parts.push(`<g transform="translate(0 ${y})">${s.replace(/^<svg[^>]*>/, '').replace(/<\/svg>$/, '')}</g>`);
    y += sh + 8;
    w = Math.max(w, sw);
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${w} ${y}" width="${w}" height="${y}"><rect width="${w}" height="${y}" fill="#fff"/>${parts.join('')}</svg>`;
}
