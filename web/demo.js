// The demo page's script: subscribes to px.*, fx.* and book.BTC-USD with the
// browser bundle of the tickfan SDK (WebSocket, or SSE where WebSocket is not
// available) and renders them once per animation frame.
import { connect } from '/tickfan.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
const transport = params.get('transport') || undefined; // 'ws' | 'sse' | undefined (auto)
const client = connect(`${proto}//${location.host}/ws`, { transport, backoff: { initialMs: 100, maxMs: 5000 } });
window.tickfan = client; // for tests and the curious

const nf = new Intl.NumberFormat('en-US');
const rows = new Map(); // topic -> row
const dirty = new Map(); // topic -> latest update, rendered on the next frame
let book = null;
let subs = [];
let updates = 0;
let filter = '';

const digits = (topic) => (topic.startsWith('fx.') ? (topic.includes('JPY') ? 3 : 5) : 2);
const fmt = (v, d) => (typeof v === 'number' ? v.toFixed(d) : '');

// ------------------------------------------------------------------ grid rows

function makeRow(topic) {
  const fx = topic.startsWith('fx.');
  const tr = document.createElement('tr');
  tr.dataset.topic = topic;
  const keys = fx ? ['sym', 'bid', 'ask', 'spread', 'ver'] : ['sym', 'bid', 'ask', 'last', 'chg', 'pct', 'vol', 'ver'];
  const cells = {};
  for (const k of keys) {
    const td = document.createElement('td');
    td.className = k;
    tr.appendChild(td);
    cells[k] = td;
  }
  const name = topic.slice(3);
  cells.sym.innerHTML = fx ? `${name.slice(0, 3)}<span class="slash">/</span>${name.slice(3)}` : name;
  const r = { topic, fx, tr, cells, shown: {}, flashes: {} };
  rows.set(topic, r);
  const body = $(fx ? 'fx' : 'grid').tBodies[0];
  const sorted = [...rows.values()].filter((x) => x.fx === fx).map((x) => x.topic).sort();
  body.insertBefore(tr, rows.get(sorted[sorted.indexOf(topic) + 1])?.tr ?? null);
  tr.hidden = !matches(topic);
  return r;
}

// A brief flash on every tick: the cell's class alternates between two
// names of the same animation, so each tick restarts it (no timers, no reflow).
function flash(r, k, dir) {
  const n = (r.flashes[k] = (r.flashes[k] ?? 0) + 1);
  r.cells[k].classList.remove('u0', 'u1', 'd0', 'd1');
  r.cells[k].classList.add(`${dir > 0 ? 'u' : 'd'}${n & 1}`);
}

function setPrice(r, k, v, d) {
  const old = r.shown[k];
  if (v === old) return;
  r.shown[k] = v;
  r.cells[k].textContent = fmt(v, d);
  if (typeof old === 'number' && typeof v === 'number' && v !== old) flash(r, k, v - old);
}

function renderRow(topic, u) {
  const r = rows.get(topic) ?? makeRow(topic);
  const s = u.state;
  const d = digits(topic);
  setPrice(r, 'bid', s.bid, d);
  setPrice(r, 'ask', s.ask, d);
  if (r.fx) {
    const pip = topic.includes('JPY') ? 100 : 10_000;
    r.cells.spread.textContent = typeof s.bid === 'number' && typeof s.ask === 'number' ? ((s.ask - s.bid) * pip).toFixed(1) : '';
  } else {
    const prev = r.shown.last;
    setPrice(r, 'last', s.last, d);
    if (s.last !== prev && typeof prev === 'number') r.cells.last.dataset.dir = s.last > prev ? 'up' : 'down';
    const chg = s.change;
    const cls = typeof chg !== 'number' || chg === 0 ? 'flat' : chg > 0 ? 'up' : 'down';
    r.cells.chg.textContent = typeof chg === 'number' ? (chg > 0 ? '+' : '') + chg.toFixed(d) : '';
    r.cells.chg.className = `chg ${cls}`;
    const pct = typeof chg === 'number' && typeof s.open === 'number' && s.open ? (chg / s.open) * 100 : null;
    r.cells.pct.textContent = pct === null ? '' : `${pct > 0 ? '+' : ''}${pct.toFixed(2)}%`;
    r.cells.pct.className = `pct ${cls}`;
    r.cells.vol.textContent = typeof s.volume === 'number' ? nf.format(s.volume) : '';
  }
  r.cells.ver.textContent = `v${u.version}`;
  r.tr.dataset.version = String(u.version);
  r.tr.dataset.epoch = String(u.epoch);
}

// ------------------------------------------------------------------ order book

const LEVELS = 7;

function renderBook(u) {
  const s = u.state;
  const bids = [];
  const asks = [];
  for (const [k, v] of Object.entries(s)) {
    if (k.startsWith('b.')) bids.push([Number(k.slice(2)), v]);
    else if (k.startsWith('a.')) asks.push([Number(k.slice(2)), v]);
  }
  bids.sort((a, b) => b[0] - a[0]);
  asks.sort((a, b) => a[0] - b[0]);
  const side = (list) => {
    let total = 0;
    return list.slice(0, LEVELS).map(([p, q]) => [p, q, (total += q)]);
  };
  const b = side(bids);
  const a = side(asks);
  const max = Math.max(1e-9, b.at(-1)?.[2] ?? 0, a.at(-1)?.[2] ?? 0);
  // Depth bars (cumulative size) behind each row, growing from the right.
  const line = (cls, [p, q, t]) =>
    `<tr class="${cls}" style="--depth:${((t / max) * 100).toFixed(1)}%"><td class="px">${p.toFixed(1)}</td><td>${q.toFixed(2)}</td><td>${t.toFixed(2)}</td></tr>`;
  const spread = a[0] && b[0] ? a[0][0] - b[0][0] : null;
  $('book').innerHTML =
    a.slice().reverse().map((x) => line('ask', x)).join('') +
    `<tr class="mid"><td class="px">${fmt(s.mid, 1)}</td><td colspan="2"><span>spread</span>${spread === null ? '—' : spread.toFixed(1)}</td></tr>` +
    b.map((x) => line('bid', x)).join('');
  $('book-ver').textContent = `v${u.version}`;
  $('book').dataset.version = String(u.version);
}

// ------------------------------------------------------------------ counters, log

const kpiShown = {};
function kpi(id, value, box) {
  const text = typeof value === 'number' ? nf.format(value) : value;
  if (kpiShown[id] === text) return;
  const bump = kpiShown[id] !== undefined && box;
  kpiShown[id] = text;
  $(id).textContent = text;
  if (bump) {
    const el = $(box);
    el.classList.add('bumped');
    setTimeout(() => el.classList.remove('bumped'), 50);
  }
}

function log(kind, html) {
  const el = document.createElement('div');
  el.className = kind;
  el.innerHTML = `<time>${new Date().toLocaleTimeString('en-GB')}</time><span>${html}</span>`;
  const box = $('log');
  box.prepend(el);
  while (box.children.length > 60) box.lastChild.remove();
}

let rateWindow = [];
function frame(now) {
  for (const [topic, u] of dirty) renderRow(topic, u);
  dirty.clear();
  if (book) renderBook(book), (book = null);
  const st = client.stats;
  rateWindow.push([now, updates]);
  while (rateWindow.length > 2 && now - rateWindow[0][0] > 1000) rateWindow.shift();
  const [t0, n0] = rateWindow[0];
  kpi('k-rate', now - t0 > 250 ? Math.round(((updates - n0) * 1000) / (now - t0)) : 0);
  kpi('k-topics', rows.size + (book || $('book').dataset.version ? 1 : 0));
  kpi('c-gaps', st.gapsHealed, 'kb-gaps');
  $('c-gaps-open').textContent = st.gaps > st.gapsHealed ? `${st.gaps - st.gapsHealed} healing` : '';
  kpi('c-cud', st.catchUpDeltas, 'kb-cu');
  kpi('c-cus', st.catchUpSnapshots, 'kb-cu');
  kpi('c-reconnects', st.reconnects, 'kb-rc');
  kpi('c-frames', st.frames);
  kpi('c-seqgaps', st.sequenceGaps);
  requestAnimationFrame(frame);
}

// ------------------------------------------------------------------ subscriptions

function subscribe(maxRate) {
  for (const s of subs) s.unsubscribe();
  for (const b of document.querySelectorAll('#rate button')) b.setAttribute('aria-pressed', String(Number(b.dataset.rate) === maxRate));
  document.body.dataset.rate = String(maxRate);
  subs = ['px.*', 'fx.*'].map((p) => {
    const s = client.subscribe(p, { maxRate });
    s.on('update', (u) => {
      updates++;
      dirty.set(u.topic, u);
    });
    s.on('status', (e) => rows.get(e.topic)?.tr.classList.toggle('stale', e.status === 'stale'));
    return s;
  });
  const b = client.subscribe('book.BTC-USD', { maxRate });
  b.on('update', (u) => {
    updates++;
    book = u;
  });
  subs.push(b);
}

function matches(topic) {
  return !filter || topic.slice(3).toLowerCase().includes(filter);
}

$('filter').addEventListener('input', (e) => {
  filter = e.target.value.trim().toLowerCase();
  for (const r of rows.values()) r.tr.hidden = !matches(r.topic);
});
$('rate').addEventListener('click', (e) => {
  const rate = e.target.closest('button')?.dataset.rate;
  if (rate !== undefined && document.body.dataset.rate !== rate) {
    subscribe(Number(rate));
    log('', `rate set to <b>${rate === '0' ? 'every update' : `${rate} / s`}</b> per symbol`);
  }
});

let wasConnected = false;
client.on('state', ({ to }) => {
  $('state').textContent = { connected: 'live', connecting: 'connecting', disconnected: 'reconnecting', closed: 'closed' }[to] ?? to;
  $('transport').textContent = client.transport === 'sse' ? 'SSE' : client.transport === 'ws' ? 'WebSocket' : '—';
  document.body.dataset.state = to;
  document.body.dataset.transport = client.transport ?? '';
  if (to !== 'connected') return;
  const before = { ...client.stats };
  log('good', `<b>connected</b> over ${client.transport === 'sse' ? 'SSE' : 'WebSocket'}`);
  if (wasConnected) {
    // Report the resume once its catch-ups are in.
    setTimeout(() => {
      const st = client.stats;
      log('good', `resumed: <b>${st.catchUpDeltas - before.catchUpDeltas}</b> delta and <b>${st.catchUpSnapshots - before.catchUpSnapshots}</b> snapshot catch-ups`);
    }, 1000);
  }
  wasConnected = true;
});
client.on('disconnect', ({ code, reason }) => log('bad', `<b>disconnected</b> ${code}${reason ? ` · ${reason.replace(/[<>&]/g, '')}` : ''}`));

setInterval(() => ($('clock').textContent = new Date().toLocaleTimeString('en-GB')), 250);
subscribe(Number(params.get('rate') ?? 10));
requestAnimationFrame(frame);
