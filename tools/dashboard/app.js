// app.js - the dashboard's shell: login by token, navigation per role, the live feed, and the
// render timing of each view, read by the browser test: performance.measure('view:<name>') from
// the navigation to the view drawn, and 'view:<name>:full' to the figures that arrive later
// (KPI columns, promotions' lines and budget) drawn too (body[data-full] then names the view).
import { api, token, openFeed, ApiError } from './api.js';
import { el, replace, clear } from './dom.js';
import * as f from './fmt.js';
import * as V from './views.js';

const STAFF = ['admin', 'finance', 'auditor'];
const VIEWS = [
  { path: 'overview', label: 'Overview', roles: STAFF, mount: V.overview },
  { path: 'pipeline', label: 'Pipeline', roles: STAFF, mount: V.pipeline },
  { path: 'partners', label: 'Partners', roles: STAFF, mount: V.partners },
  { path: 'payouts', label: 'Payouts', roles: STAFF, mount: V.payouts },
  { path: 'promotions', label: 'Promotions', roles: STAFF, mount: V.promotions },
  { path: 'announcements', label: 'Announcements', roles: STAFF, mount: V.announcements },
  { path: 'portal', label: 'Portal', roles: ['partner'], mount: V.portal },
];
const FEED_ROLES = ['admin', 'finance', 'auditor', 'feed'];
const $ = (id) => document.getElementById(id);

// ctx: what every view shares. Cached reads are dropped on every live event (gen).
const ctx = {
  status: null, role: null, me: null, openPeriod: null, head: 0, gen: 0,
  has: (feature) => !!(ctx.status && ctx.status.features.includes(feature)),
  cache: new Map(),
  // slow: while a request for key is in flight, callers share it even if the head moved, so a
  // burst of commits never stacks up commission replays on the server (one in flight per key).
  cached(key, load, slow) {
    const hit = ctx.cache.get(key);
    if (hit && (hit.gen === ctx.gen || (slow && !hit.settled))) return hit.p;
    const p = load();
    const entry = { gen: ctx.gen, p, seq: ctx.head, settled: false };
    ctx.cache.set(key, entry);
    p.then(() => { entry.settled = true; }, () => { if (ctx.cache.get(key) === entry) ctx.cache.delete(key); });
    return p;
  },
  // true when the answer cached under key predates the last event (the view asks again)
  stale: (key) => { const hit = ctx.cache.get(key); return !!hit && hit.gen !== ctx.gen; },
  partners: () => ctx.cached('partners', () => api('/v1/partners')),
  // KPIs may take the commission processor's time: cached per head, never awaited by a view's first draw.
  kpiKey: (period, partner, byRep) => `kpi ${period} ${partner || ''} ${byRep ? 'rep' : ''}`,
  kpi: (period, partner, byRep) => ctx.cached(ctx.kpiKey(period, partner, byRep),
    () => api('/v1/kpi?' + new URLSearchParams({ period, ...(partner ? { partner } : {}), ...(byRep ? { by: 'rep' } : {}) })), true),
  kpiSeq: (period) => ctx.cache.get(ctx.kpiKey(period))?.seq ?? ctx.head,
  // the answer of the sign-in, used once by the first view instead of asking again
  signinStatus: null,
  async refreshStatus() {
    const st = ctx.signinStatus || await api('/v1/status');
    ctx.signinStatus = null;
    applyStatus(st);
    return st;
  },
  // late(promise): a figure the view draws after its first draw (a KPI, the promotions); while
  // the view is being mounted, 'view:<name>:full' waits for each to be drawn (or to fail).
  lateDraws: null,
  late(p) { if (ctx.lateDraws) ctx.lateDraws.push(p); return p; },
};

function applyStatus(st) {
  ctx.status = st;
  ctx.role = st.role;
  f.setOffset(st.utc_offset_min);
  if (st.head_seq !== undefined && st.head_seq > ctx.head) ctx.head = st.head_seq;
  const closed = st.closed_periods || [];
  ctx.openPeriod = closed.length ? f.nextPeriod(closed[closed.length - 1]) : f.periodOf(st.today, st.period_kind);
}

let current = null; // {name, refresh}
let feed = null;
let navSeq = 0;

function allowed() { return VIEWS.filter((v) => v.roles.includes(ctx.role)); }

function drawNav(active) {
  const nav = $('nav');
  replace(nav, allowed().map((v) => el('a', { href: '#/' + v.path, 'aria-current': v.path === active ? 'page' : null }, v.label)));
  nav.hidden = false;
}

async function route() {
  if (!ctx.role) return;
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const views = allowed();
  if (!views.length) {
    replace($('view'), el('h1', null, 'No dashboard view'), el('p', null, `The ${ctx.role} role has no view here; it is for the API (see docs/integration-guide.md).`));
    return;
  }
  let v = views.find((x) => x.path === parts[0]);
  if (!v) { location.replace('#/' + views[0].path); return; }
  const seq = ++navSeq;
  const name = parts[0] === 'partners' && parts[1] ? 'partner' : v.path;
  drawNav(v.path);
  const root = el('div', { class: 'view', 'data-view': name });
  replace($('view'), root);
  current = null;
  document.body.dataset.ready = '';
  document.body.dataset.full = '';
  performance.mark('nav:' + seq);
  const late = ctx.lateDraws = [];
  try {
    const handle = name === 'partner' ? await V.partnerPage(root, ctx, parts[1]) : await v.mount(root, ctx);
    if (seq !== navSeq) return;
    performance.measure('view:' + name, 'nav:' + seq);
    current = { name, ...handle };
    document.body.dataset.ready = name;
    document.title = `${name === 'partner' ? parts[1] : v.label} · accrue`;
    ctx.lateDraws = null;
    Promise.allSettled(late).then(() => {
      if (seq !== navSeq) return;
      performance.measure(`view:${name}:full`, 'nav:' + seq);
      document.body.dataset.full = name;
    });
  } catch (e) {
    if (ctx.lateDraws === late) ctx.lateDraws = null;
    if (seq !== navSeq) return;
    if (e instanceof ApiError && e.status === 401) { logout('Your token is no longer valid.'); return; }
    root.append(el('p', { class: 'msg bad', role: 'alert' }, `${e.code || 'error'}: ${e.message}`));
    document.body.dataset.ready = name;
  }
}

// ---- live: every committed event invalidates the cache and redraws the current view ----------

// A burst of events is coalesced into one redraw (80 ms after the first), and redraws are at
// least 300 ms apart under a steady stream: well inside the 1 s of the spec, and a busy ledger
// does not make every open page re-read the partner list ten times a second.
let pending = false, running = false, lastEnd = 0;
function onEvent(ev) {
  if (ev && ev.seq > ctx.head) ctx.head = ev.seq;
  ctx.gen++;
  if (pending) return;
  pending = true;
  setTimeout(liveRefresh, Math.max(80, 300 - (performance.now() - lastEnd)));
}
async function liveRefresh() {
  if (running) { setTimeout(liveRefresh, 80); return; }
  pending = false;
  if (!current || !current.refresh) return;
  running = true;
  const name = current.name;
  try {
    await current.refresh();
    if (current && current.name === name) document.body.dataset.live = String(ctx.head);
  } catch { /* the next event or navigation retries */ }
  running = false;
  lastEnd = performance.now();
}
function setLive(on) {
  const n = $('live');
  n.textContent = on ? 'live' : 'reconnecting';
  n.classList.toggle('on', on);
}

// ---- login -------------------------------------------------------------------------------

async function start() {
  let st;
  try {
    st = await api('/v1/status');
    if (st.role === 'partner') ctx.me = await api('/v1/partners/' + encodeURIComponent(st.partner_id));
  } catch (e) {
    token.clear();
    showLogin(e instanceof ApiError && e.status === 401 ? 'That token is not valid.' : `Cannot sign in: ${e.message}`);
    return;
  }
  applyStatus(st);
  ctx.signinStatus = st;
  $('login').hidden = true;
  $('who').hidden = false;
  $('role').textContent = st.role;
  $('whoname').textContent = ctx.me ? ctx.me.name : '';
  $('whoname').title = ctx.me ? `${ctx.me.name} (${ctx.me.partner_id})` : '';
  if (FEED_ROLES.includes(st.role)) {
    feed = openFeed(ctx.head + 1, onEvent, setLive);
  } else {
    const n = $('live');
    n.textContent = 'updates on each action';
    n.classList.add('on');
  }
  // replaceState fires no hashchange: the view is routed (its data asked for) exactly once
  if (!location.hash || location.hash === '#/') {
    history.replaceState(null, '', '#/' + (allowed()[0] || { path: '' }).path);
  }
  await route();
  ctx.signinStatus = null; // a later Overview asks for a current one
}

function showLogin(msg) {
  ctx.role = null;
  $('nav').hidden = true;
  $('who').hidden = true;
  clear($('view'));
  $('login').hidden = false;
  $('loginerr').textContent = msg || '';
  $('token').value = '';
  $('token').focus();
  document.body.dataset.ready = 'login';
}

function logout(msg) {
  if (feed) { feed.stop(); feed = null; }
  token.clear();
  ctx.cache.clear();
  ctx.status = null; ctx.me = null; ctx.head = 0; current = null; ctx.signinStatus = null;
  history.replaceState(null, '', '/');
  showLogin(msg);
}

$('loginform').addEventListener('submit', (e) => {
  e.preventDefault();
  const t = $('token').value.trim();
  if (!t) return;
  token.set(t);
  $('loginerr').textContent = '';
  start();
});
$('logout').addEventListener('click', () => logout(''));
window.addEventListener('hashchange', route);
// The skip link moves the focus to the content; its #main is not a route for the hash router.
document.querySelector('a.skip').addEventListener('click', (e) => {
  e.preventDefault();
  $('main').focus();
});

if (token.get()) start(); else showLogin('');
