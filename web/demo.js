// The demo page's script: subscribes to px.*, fx.* and book.BTC-USD with the
// browser bundle of the tickfan SDK and renders them once per animation frame.
import { connect } from '/tickfan.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
const transport = params.get('transport') || undefined; // 'ws' | 'sse' | undefined (auto)
const client = connect(`${proto}//${location.host}/ws`, { transport, backoff: { initialMs: 100, maxMs: 5000 } });
window.tickfan = client; // for tests and the curious

const rows = new Map(); // topic -> { tr, cells, last }
const dirty = new Map(); // topic -> update (latest per frame)
let book = null;
let updates = 0;
let subs = [];

const fmt = (v, d = 2) => (typeof v === 'number' ? v.toFixed(d) : v ?? '');
const digits = (topic) => (topic.startsWith('fx.') ? (topic.includes('JPY') ? 3 : 5) : 2);

function row(topic) {
  let r = rows.get(topic);
  if (r) return r;
  const tr = document.createElement('tr');
  tr.dataset.topic = topic;
  const cells = {};
  for (const k of ['sym', 'bid', 'ask', 'last', 'change', 'volume', 'ver']) {
    const td = document.createElement('td');
    if (k === 'sym' || k === 'ver') td.className = k;
    tr.appendChild(td);
    cells[k] = td;
  }
  cells.sym.textContent = topic.replace(/^(px|fx)\./, '');
  r = { tr, cells, shown: {} };
  rows.set(topic, r);
  // Keep rows sorted by topic name.
  const body = $('grid').tBodies[0];
  const after = [...rows.keys()].sort().indexOf(topic);
  body.insertBefore(tr, body.children[after] || null);
  $('count').textContent = `${rows.size} topics`;
  return r;
}

function flash(td, dir) {
  td.classList.remove('flash-up', 'flash-down');
  void td.offsetWidth; // restart the transition
  td.classList.add(dir > 0 ? 'flash-up' : 'flash-down');
  setTimeout(() => td.classList.remove('flash-up', 'flash-down'), 120);
}

function renderRow(topic, u) {
  const r = row(topic);
  const s = u.state;
  const d = digits(topic);
  for (const k of ['bid', 'ask', 'last']) {
    const v = s[k];
    if (v === r.shown[k]) continue;
    if (typeof r.shown[k] === 'number' && typeof v === 'number') flash(r.cells[k], v - r.shown[k]);
    r.cells[k].textContent = fmt(v, d);
    r.shown[k] = v;
  }
  const chg = s.change;
  r.cells.change.textContent = typeof chg === 'number' ? (chg > 0 ? '+' : '') + chg.toFixed(d) : '';
  r.cells.change.className = chg > 0 ? 'pos' : chg < 0 ? 'neg' : '';
  r.cells.volume.textContent = typeof s.volume === 'number' ? s.volume.toLocaleString('en-US') : '';
  r.cells.ver.textContent = `v${u.version}`;
  r.tr.dataset.version = String(u.version);
  r.tr.dataset.epoch = String(u.epoch);
}

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
  const max = Math.max(1, ...bids.map((x) => x[1]), ...asks.map((x) => x[1]));
  const line = (cls, [p, q]) =>
    `<tr class="${cls}"><td>${p.toFixed(1)}</td><td class="bar"><i style="width:${((q / max) * 100).toFixed(1)}%"></i>${q.toFixed(2)}</td></tr>`;
  $('book').innerHTML =
    asks.slice(0, 10).reverse().map((x) => line('ask', x)).join('') +
    `<tr class="mid"><td colspan="2">mid ${fmt(s.mid, 1)}</td></tr>` +
    bids.slice(0, 10).map((x) => line('bid', x)).join('');
  $('book-ver').textContent = `v${u.version}`;
  $('book').dataset.version = String(u.version);
}

function frame() {
  for (const [topic, u] of dirty) renderRow(topic, u);
  dirty.clear();
  if (book) renderBook(book), (book = null);
  const st = client.stats;
  $('c-updates').textContent = updates.toLocaleString('en-US');
  $('c-gaps').textContent = st.gaps;
  $('c-cud').textContent = st.catchUpDeltas;
  $('c-cus').textContent = st.catchUpSnapshots;
  $('c-reconnects').textContent = st.reconnects;
  requestAnimationFrame(frame);
}

function subscribe(maxRate) {
  for (const s of subs) s.unsubscribe();
  subs = ['px.*', 'fx.*'].map((p) => {
    const s = client.subscribe(p, { maxRate });
    s.on('update', (u) => {
      updates++;
      dirty.set(u.topic, u);
    });
    s.on('status', (e) => rows.get(e.topic)?.tr.querySelectorAll('td').forEach((td) => td.classList.toggle('stale', e.status === 'stale')));
    return s;
  });
  const b = client.subscribe('book.BTC-USD', { maxRate });
  b.on('update', (u) => {
    updates++;
    book = u;
  });
  subs.push(b);
}

client.on('state', ({ to }) => {
  $('state').textContent = to;
  $('light').className = `light ${to}`;
  $('transport').textContent = client.transport ? `· ${client.transport}` : '';
  document.body.dataset.state = to;
});
$('rate').addEventListener('change', (e) => subscribe(Number(e.target.value)));
subscribe(Number($('rate').value));
requestAnimationFrame(frame);
