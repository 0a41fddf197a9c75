// The demo page's script: a desk on a live market. It subscribes to px.*,
// fx.* (flat topics), one keyed order book (book.BTC-USD by default, as a
// depth-10 view of its bids and asks tables) and the desk's blotter
// (blotter.<desk>, table orders: one row per order, its whole latest state),
// and sends orders with request-reply (orders.submit / orders.cancel, the
// demo order service: docs/desks.md), all with the browser bundle of the
// tickfan SDK (WebSocket, or SSE where WebSocket is not available). Rendering
// happens once per animation frame. The header shows the connection's state
// and, when a token is in use, its remaining lifetime as the SDK refreshes it
// (the client's `token` event).
import { connect } from '/tickfan.js';
import { pageToken, showTokenLife } from '/page-token.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
const transport = params.get('transport') || undefined; // 'ws' | 'sse' | undefined (auto)
// The token: ?token=, ?tokenUrl= (refreshed in session), or none (page-token.js).
const token = await pageToken(params);
const claims = token.claims;
// The desk: a token's subject, or on an open server a name of this page's own (?desk=…, or a random one), sent as the order's `desk` field.
const desk = claims?.sub ?? params.get('desk') ?? `desk-${Math.random().toString(36).slice(2, 8)}`;
const client = connect(`${proto}//${location.host}/ws`, { transport, token: token.source, backoff: { initialMs: 100, maxMs: 5000 } });
window.tickfan = client; // for tests and the curious

const nf = new Intl.NumberFormat('en-US');
const rows = new Map(); // topic -> row
const dirty = new Map(); // topic -> latest update, rendered on the next frame
let book = null; // the book's latest update, rendered on the next frame
let bookSub = null;
let bookName = params.get('book') || 'BTC-USD';
let bookRate = 10;
const bookChanged = { bids: new Set(), asks: new Set() }; // keys changed since the last frame: they flash
let rowChanges = 0;
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

const LEVELS = 10; // the depth of the view: the server keeps each side's top 10 exact, the page sorts nothing
const QTY_DECIMALS = { 'BTC-USD': 4, 'ETH-USD': 3, 'SOL-USD': 2, AAPL: 0 };
const decimalsOf = (tick) => (typeof tick === 'number' && tick > 0 ? Math.max(0, Math.ceil(-Math.log10(tick) - 1e-9)) : 0);
const flashes = new Map(); // `${side}:${key}` -> count, so a level that changes again restarts its flash

function renderBook(u) {
  const s = u.state;
  const tick = typeof s.tick === 'number' ? s.tick : 1;
  const pd = decimalsOf(tick);
  const qd = QTY_DECIMALS[bookName] ?? 2;
  // Rows in the table's order (best first), straight from the SDK's view of each table.
  const side = (name) => {
    let total = 0;
    return bookSub.table(name).rows().slice(0, LEVELS).map((r) => ({ key: r.key, qty: r.fields.qty ?? 0, orders: r.fields.orders ?? 0, total: (total += r.fields.qty ?? 0) }));
  };
  const b = side('bids');
  const a = side('asks');
  const max = Math.max(1e-9, b.at(-1)?.total ?? 0, a.at(-1)?.total ?? 0);
  // Depth bars (cumulative size) behind each row, growing from the right; a level changed since the last frame flashes.
  const line = (cls, name, r) => {
    let q = '';
    if (bookChanged[name].has(r.key)) {
      const id = `${name}:${r.key}`;
      const n = (flashes.get(id) ?? 0) + 1;
      flashes.set(id, n);
      q = ` class="q${n & 1}"`;
    }
    return `<tr class="${cls}" data-key="${r.key}" style="--depth:${((r.total / max) * 100).toFixed(1)}%"><td class="px">${(r.key * tick).toFixed(pd)}</td><td${q}>${r.qty.toFixed(qd)}</td><td>${r.orders}</td><td>${r.total.toFixed(qd)}</td></tr>`;
  };
  const pad = (n) => '<tr class="empty"><td class="px">—</td><td></td><td></td><td></td></tr>'.repeat(Math.max(0, LEVELS - n));
  const spread = a[0] && b[0] ? ((a[0].key - b[0].key) * tick).toFixed(pd) : '—';
  $('book').innerHTML =
    pad(a.length) +
    a.slice().reverse().map((r) => line('ask', 'asks', r)).join('') +
    `<tr class="mid"><td class="px">${fmt(s.mid, pd + 1)}</td><td colspan="3"><span>spread</span>${spread}</td></tr>` +
    b.map((r) => line('bid', 'bids', r)).join('') +
    pad(b.length);
  bookChanged.bids.clear();
  bookChanged.asks.clear();
  $('book-ver').textContent = `v${u.version}`;
  $('book-last').textContent = fmt(s.last, pd);
  $('book-rows').textContent = nf.format(rowChanges);
  $('book').dataset.version = String(u.version);
  $('book').dataset.topic = u.topic;
  touch = { symbol: bookName, tick, pd, bid: b[0] ? b[0].key * tick : null, ask: a[0] ? a[0].key * tick : null };
  followTouch();
}

function subscribeBook() {
  bookSub?.unsubscribe();
  for (const btn of document.querySelectorAll('#books button')) btn.setAttribute('aria-pressed', String(btn.dataset.book === bookName));
  $('book-title').textContent = `${bookName} book`;
  const topic = `book.${bookName}`;
  bookSub = client.subscribe(topic, { tables: { bids: { depth: LEVELS }, asks: { depth: LEVELS } }, maxRate: bookRate });
  bookSub.on('update', (u) => {
    updates++;
    // One update per version with every row change of the view in u.rows (a snapshot: every row as replace).
    for (const r of u.rows ?? []) {
      rowChanges++;
      if (r.op !== 'delete' && !u.snapshot) bookChanged[r.table]?.add(r.key);
    }
    book = u;
  });
  bookSub.on('error', (e) => log('bad', `<b>${topic}</b> ${String(e.message).replace(/[<>&]/g, '')}`));
  document.body.dataset.book = bookName;
}

// ------------------------------------------------------------------ the desk: ticket and blotter

const esc = (v) => String(v ?? '').replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]);
const TICKS = { 'BTC-USD': 0.5, 'ETH-USD': 0.05, 'SOL-USD': 0.01, AAPL: 0.01 }; // the demo books' tick grids
const QTY_DEFAULT = { 'BTC-USD': 0.05, 'ETH-USD': 0.5, 'SOL-USD': 10, AAPL: 100 };
const STATES = { working: 'working', partiallyFilled: 'partial', filled: 'filled', cancelled: 'cancelled' };
let touch = null; // the shown book's best bid and ask, from the ladder
let side = 'buy';
let priceFollows = true; // the price tracks the touch until the trader types one or clicks a ladder row
let blotterSub = null;
let blotterDirty = false;
const blotterChanged = new Set(); // order ids changed since the last frame: their rows flash
const rowFlashes = new Map();
let clOrdSeq = 0;

// The ticket's symbol is the book shown; its price follows the touch a buy or sell would cross (the ask to buy, the bid to sell).
function ticketSymbol() {
  $('t-symbol').value = bookName;
  $('t-qty').value = String(QTY_DEFAULT[bookName] ?? 1);
  $('t-qty').step = String(10 ** -(QTY_DECIMALS[bookName] ?? 2));
  $('t-price').step = String(TICKS[bookName] ?? 0.01);
  priceFollows = true;
  $('t-price').value = '';
  followTouch();
}

function followTouch() {
  $('t-touch').textContent = touch && touch.symbol === bookName ? `bid ${fmt(touch.bid, touch.pd)} · ask ${fmt(touch.ask, touch.pd)}` : '';
  // Not under the trader's cursor: a keystroke would land in a replaced value.
  if (!priceFollows || !touch || touch.symbol !== bookName || document.activeElement === $('t-price')) return;
  const px = side === 'buy' ? touch.ask : touch.bid;
  if (typeof px === 'number') $('t-price').value = px.toFixed(touch.pd);
}

function setSide(s) {
  side = s;
  for (const b of document.querySelectorAll('#t-side button')) b.setAttribute('aria-pressed', String(b.dataset.side === s));
  $('ticket').dataset.side = s;
  $('t-submit').textContent = s === 'buy' ? 'Buy' : 'Sell';
  followTouch();
}

function ticketStatus(kind, html) {
  const el = $('t-status');
  el.className = `status ${kind}`;
  el.innerHTML = html;
}

// A request lost to a dropped connection is sent again with the same clOrdId: the service answers it with the same order, never a second one.
async function request(service, payload) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await client.request(service, payload, { timeout: 5_000 });
    } catch (err) {
      const again = ['TICKFAN_ERR_DISCONNECTED', 'TICKFAN_ERR_RESPONDER_GONE', 'TICKFAN_ERR_NO_RESPONDER'].includes(err?.code);
      if (!again || attempt >= 3 || (service === 'orders.submit' && !payload.clOrdId)) throw err;
      await new Promise((r) => setTimeout(r, 300 * attempt));
    }
  }
}

async function submit(e) {
  e.preventDefault();
  const order = { desk, side, symbol: bookName, price: Number($('t-price').value), qty: Number($('t-qty').value), clOrdId: `${desk}-${Date.now().toString(36)}-${++clOrdSeq}` };
  ticketStatus('', `sending ${esc(order.side)} ${esc(order.qty)} ${esc(order.symbol)} @ ${esc(order.price)} …`);
  let reply;
  try {
    reply = await request('orders.submit', order);
  } catch (err) {
    ticketStatus('bad', `<b>${esc(err.code ?? 'error')}</b> ${esc(err.message)}`);
    return;
  }
  if (reply instanceof Uint8Array || reply.status !== 'accepted') {
    ticketStatus('bad', `<b>refused · ${esc(reply.reason)}</b> ${esc(reply.message)}`);
    log('bad', `order <b>refused</b> ${esc(reply.reason)}`);
    return;
  }
  ticketStatus('good', `<b>accepted</b> ${esc(reply.orderId)} · ${esc(reply.state)}${reply.duplicate ? ' (resent)' : ''} · blotter v${esc(reply.version)}`);
  log('good', `order <b>${esc(reply.orderId)}</b> accepted: ${esc(order.side)} ${esc(order.qty)} ${esc(order.symbol)} @ ${esc(order.price)}`);
  // The reply says where its row was written; once the blotter holds that version, the row is on screen.
  blotterSub.reached(reply, { timeout: 5_000 }).catch((err) => log('warn', `<b>blotter</b> ${esc(err.message)}`));
}

async function cancel(orderId) {
  ticketStatus('', `cancelling ${esc(orderId)} …`);
  let reply;
  try {
    reply = await request('orders.cancel', { desk, orderId });
  } catch (err) {
    ticketStatus('bad', `<b>${esc(err.code ?? 'error')}</b> ${esc(err.message)}`);
    return;
  }
  if (reply instanceof Uint8Array || reply.status !== 'cancelled') {
    ticketStatus('bad', `<b>cancel refused · ${esc(reply.reason)}</b> ${esc(reply.message)}`);
    return;
  }
  ticketStatus('good', `<b>cancelled</b> ${esc(orderId)} · blotter v${esc(reply.version)}`);
  log('', `order <b>${esc(orderId)}</b> cancelled`);
}

function subscribeBlotter() {
  $('desk').textContent = desk;
  document.body.dataset.desk = desk;
  const topic = `blotter.${desk}`;
  blotterSub = client.subscribe(topic, { tables: { orders: {} } }); // every row, every field
  window.tickfanDesk = { desk, blotter: blotterSub }; // for tests: the SDK's own view of the blotter
  blotterSub.on('update', (u) => {
    updates++;
    for (const r of u.rows ?? []) if (!u.snapshot && r.op !== 'delete') blotterChanged.add(r.key);
    $('blotter').dataset.version = String(u.version);
    blotterDirty = true;
  });
  blotterSub.on('error', (e) => log('bad', `<b>${esc(topic)}</b> ${esc(e.message)}`));
}

// Newest first (the table sorts by seq descending): each row an order's whole latest state.
function renderBlotter() {
  const rows = blotterSub.table('orders').rows();
  let open = 0;
  $('blotter').innerHTML = rows
    .map(({ key, fields: f }) => {
      const pd = decimalsOf(TICKS[f.symbol] ?? 0.01);
      const qd = QTY_DECIMALS[f.symbol] ?? 2;
      const live = f.state === 'working' || f.state === 'partiallyFilled';
      if (live) open++;
      let cls = `st-${f.state}`;
      if (blotterChanged.has(key)) {
        const n = (rowFlashes.get(key) ?? 0) + 1;
        rowFlashes.set(key, n);
        cls += ` f${n & 1}`;
      }
      const time = typeof f.updatedAt === 'number' ? new Date(f.updatedAt).toLocaleTimeString('en-GB') : '';
      const num = (v, d) => (typeof v === 'number' ? v.toFixed(d) : '');
      return (
        `<tr class="${cls}" data-key="${esc(key)}" data-state="${esc(f.state)}" data-rev="${esc(f.rev)}" data-filled="${esc(f.filled)}" title="updated ${time}">` +
        `<td class="oid">${esc(key)}</td><td class="side ${f.side === 'buy' ? 'buy' : 'sell'}">${esc(f.side)}</td><td class="symbol">${esc(f.symbol)}</td>` +
        `<td>${num(f.price, pd)}</td><td>${num(f.qty, qd)}</td><td class="filled">${num(f.filled, qd)}</td>` +
        `<td class="avg">${typeof f.avgPx === 'number' ? f.avgPx.toFixed(pd + 1) : ''}</td>` +
        `<td class="state"><span>${esc(STATES[f.state] ?? f.state)}</span></td><td class="rev">${esc(f.rev)}</td>` +
        `<td class="act">${live ? `<button type="button" class="cancel" data-order="${esc(key)}">Cancel</button>` : ''}</td></tr>`
      );
    })
    .join('');
  blotterChanged.clear();
  $('blotter-count').textContent = rows.length ? `${rows.length} order${rows.length === 1 ? '' : 's'} · ${open} working` : '';
  $('blotter-empty').hidden = rows.length > 0;
}

$('t-side').addEventListener('click', (e) => {
  const s = e.target.closest('button')?.dataset.side;
  if (s) setSide(s);
});
$('t-symbol').addEventListener('change', (e) => setBook(e.target.value));
$('t-price').addEventListener('input', () => (priceFollows = false));
$('t-price').addEventListener('blur', followTouch);
$('t-follow').addEventListener('click', () => {
  priceFollows = true;
  followTouch();
});
$('ticket').addEventListener('submit', submit);
// A click on a ladder row puts its price in the ticket.
$('book').addEventListener('click', (e) => {
  const tr = e.target.closest('tr[data-key]');
  if (!tr || !touch) return;
  priceFollows = false;
  $('t-price').value = (Number(tr.dataset.key) * touch.tick).toFixed(touch.pd);
});
$('blotter').addEventListener('click', (e) => {
  const id = e.target.closest('button.cancel')?.dataset.order;
  if (id) cancel(id);
});
setSide('buy');

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
  if (blotterDirty) renderBlotter(), (blotterDirty = false);
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
  // The book follows the selector at 1 / s; otherwise a ladder a person can read: at most 10 / s.
  bookRate = maxRate === 1 ? 1 : 10;
  subscribeBook();
}

function matches(topic) {
  return !filter || topic.slice(3).toLowerCase().includes(filter);
}

$('filter').addEventListener('input', (e) => {
  filter = e.target.value.trim().toLowerCase();
  for (const r of rows.values()) r.tr.hidden = !matches(r.topic);
});
function setBook(name) {
  if (!name || name === bookName) return;
  bookName = name;
  book = null;
  touch = null;
  $('book').innerHTML = '';
  $('book').dataset.version = '';
  subscribeBook();
  ticketSymbol();
  log('', `order book <b>book.${name}</b>, a depth-10 view`);
}
$('books').addEventListener('click', (e) => setBook(e.target.closest('button')?.dataset.book));
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
// The client's own errors (a token problem is also shown in the header).
client.on('error', (err) => log('bad', `<b>${esc(err?.code ?? 'error')}</b> ${esc(err?.message)}`));
showTokenLife(client, $('token'), token, log);

setInterval(() => {
  $('clock').textContent = new Date().toLocaleTimeString('en-GB');
}, 250);
subscribe(Number(params.get('rate') ?? 10));
subscribeBlotter();
ticketSymbol();
requestAnimationFrame(frame);
