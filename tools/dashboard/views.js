// views.js - the views of dashboard.md. Each view is mount(root, ctx) -> {refresh}: it builds
// its controls once, then refresh() reloads its data and redraws the parts that show data (so
// a live update never steals the keyboard focus from a control). Fast data (projections) is
// drawn at once; a figure that needs the commission processor (KPI commission, a draft run)
// is drawn as "computing…" and filled in when it arrives, never blocking the view.
import { api, download, ApiError } from './api.js';
import { el, replace, clear, link, table, barChart } from './dom.js';
import * as f from './fmt.js';

const PAGE = 50;
const DEALS_PAGE = 200; // a stage's open deals a page (the server's /v1/deals pages by offset)
const LINES_PAGE = 100; // statement lines a page: a closed period of 2,000 partners holds 100,000+

const card = (title, ...kids) => el('section', { class: 'card' }, el('h2', null, title), ...kids);
const computing = (what) => el('span', { class: 'computing', role: 'status' }, `computing ${what}…`);
const empty = (text) => el('p', { class: 'empty' }, text);
const errMsg = (e) => el('p', { class: 'msg bad', role: 'alert' },
  e instanceof ApiError ? `${e.code}: ${e.message}` : String(e && e.message ? e.message : e));
const kv = (pairs) => el('dl', { class: 'kv' }, pairs.map(([k, v]) => [el('dt', null, k), el('dd', null, v)]));
const q = (params) => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') s.set(k, v);
  const t = s.toString();
  return t ? '?' + t : '';
};
const sumBy = (rows, keyf, valf) => {
  const m = new Map();
  for (const r of rows) m.set(keyf(r), (m.get(keyf(r)) || 0n) + f.big(valf(r)));
  return m;
};
const moneyMap = (m) => (m.size ? [...m].map(([c, v]) => f.money(v, c)).join(' + ') : '—');
const field = (label, input) => {
  const id = input.id || 'f-' + Math.random().toString(36).slice(2, 9);
  input.id = id;
  return el('div', { class: input.type === 'checkbox' ? 'field check' : 'field' }, el('label', { for: id }, label), input);
};
function periodOptions(ctx, selected) {
  const opts = [], seen = new Set();
  let p = ctx.openPeriod;
  const monthly = /^\d{4}-\d{2}$/.test(p);
  for (let i = 0; i < 12; i++) { opts.push(p); seen.add(p); p = f.prevPeriod(p); }
  if (monthly) {
    let qp = f.quarterOf(ctx.openPeriod);
    for (let i = 0; i < 4; i++) { if (!seen.has(qp)) opts.push(qp); qp = f.prevPeriod(qp); }
  }
  if (selected && !opts.includes(selected)) opts.unshift(selected);
  return opts.map((o) => el('option', { value: o, selected: o === selected ? true : null }, o === ctx.openPeriod ? `${o} (open)` : o));
}
// The pager's buttons carry a focus key: after the redraw they start, the focus is back on them.
function pager(state, total, redraw, size = PAGE) {
  const pages = Math.max(1, Math.ceil(total / size));
  if (state.page >= pages) state.page = pages - 1;
  return el('div', { class: 'pager' },
    el('button', { type: 'button', class: 'small', disabled: state.page === 0 ? true : null,
      'aria-label': 'Previous page', 'data-focus': 'pager:prev',
      on: { click: () => { state.page--; redraw(); } } },
    '‹ Prev'),
    el('span', { class: 'muted' }, `page ${state.page + 1} of ${pages} · ${f.int(total)} rows`),
    el('button', { type: 'button', class: 'small', disabled: state.page >= pages - 1 ? true : null,
      'aria-label': 'Next page', 'data-focus': 'pager:next',
      on: { click: () => { state.page++; redraw(); } } },
    'Next ›'));
}
// A statement's lines, LINES_PAGE rows at a time: the answer is read whole (the server has no
// paging), but only the page on screen becomes DOM rows, so 148,000 lines draw as fast as 100.
const STATEMENT_COLS = [{ label: 'line', num: true }, { label: 'origin' }, { label: 'kind' },
  { label: 'source' }, { label: 'at' }, { label: 'rule' }, { label: 'basis', num: true },
  { label: 'amount', num: true }];
const shownIn = new WeakMap(); // box -> the last statement asked for in it (latest wins)
async function showStatement(box, period, partner) {
  const ask = {};
  shownIn.set(box, ask);
  replace(box, computing('lines'));
  let lines;
  try {
    const path = `/v1/payouts/${encodeURIComponent(period)}/statement${q({ partner })}`;
    lines = (await api(path)).lines;
  } catch (e) { if (shownIn.get(box) === ask) replace(box, errMsg(e)); return; }
  if (shownIn.get(box) !== ask) return;
  if (!lines.length) { replace(box, empty(`No lines in ${period}.`)); return; }
  const pg = { page: 0 };
  const draw = () => {
    const from = pg.page * LINES_PAGE, rows = lines.slice(from, from + LINES_PAGE);
    replace(box, table({
      caption: `Statement ${period}${partner ? ' · ' + partner : ''} · ${f.int(lines.length)}`
        + ' lines',
      cols: STATEMENT_COLS,
      rows: rows.map((l) => [l.line, l.origin_period, l.kind, l.source_id, f.dateTime(l.at), l.rule,
        f.money(l.basis_minor, l.currency), f.money(l.amount_minor, l.currency)]),
      rowClass: (i) => (rows[i].origin_period !== period ? 'prior' : null),
    }), pager(pg, lines.length, draw, LINES_PAGE));
  };
  draw();
}
function csvButton(period, partner, label) {
  const msg = el('span', { class: 'msg', role: 'status' });
  const b = el('button', { type: 'button', class: 'small', on: { click: async () => {
    try {
      const r = await download(`/v1/payouts/${encodeURIComponent(period)}/statement${q({ partner })}`,
        `statement-${period}${partner ? '-' + partner : ''}.csv`);
      msg.textContent = ` ${f.int(r.bytes)} bytes`;
    } catch (e) { msg.textContent = ` ${e.message}`; }
  } } }, label || 'CSV');
  return el('span', null, b, msg);
}

// ---- Overview ----------------------------------------------------------------------------

// The server counts the events of the last 24 h among the last events_24h_scanned of the log
// only; when the log is longer (events_24h_partial) the count is a lower bound: "≥ N".
function events24(st) {
  const partial = !!st.events_24h_partial;
  const scanned = f.int(st.events_24h_scanned);
  const why = partial ? `A lower bound: only the last ${scanned} events of the log were read;`
    + ' older ones dated in the last 24 h are not counted.' : null;
  return [el('div', { class: 'big', title: why }, (partial ? '≥ ' : '') + f.int(st.events_24h)),
    el('p', { class: 'hint' }, 'business time, by each event\'s at',
      partial ? ` (at least: only the last ${scanned} events read)` : '')];
}

export async function overview(root, ctx) {
  const grid = el('div', { class: 'grid' });
  root.append(el('h1', null, 'Overview'), grid);
  const draft = { period: ctx.openPeriod, res: null, seq: 0, running: false, err: null };
  const draftBox = el('div');
  function drawDraft() {
    const btn = el('button', { type: 'button', disabled: draft.running ? true : null, on: { click: runDraft } }, draft.res ? 'Run again' : 'Run draft');
    const body = [];
    if (draft.running) body.push(computing(`the draft of ${draft.period}`));
    else if (draft.err) body.push(errMsg(draft.err));
    else if (draft.res) {
      body.push(el('div', { class: 'big' }, moneyMap(new Map(Object.entries(draft.res.totals || {})))));
      body.push(el('p', { class: 'hint' }, `${f.int(draft.res.line_count)} lines as of seq ${f.int(draft.res.through_seq)}`,
        ctx.head > draft.res.through_seq ? ` · ${f.int(ctx.head - draft.res.through_seq)} events since` : ''));
    } else body.push(el('p', { class: 'hint' }, 'Computed on demand: a draft replays the period.'));
    replace(draftBox, ...body, btn);
  }
  async function runDraft() {
    draft.running = true; draft.err = null; drawDraft();
    try { draft.res = await api(`/v1/payouts/${encodeURIComponent(draft.period)}/run`, { method: 'POST' }); } catch (e) { draft.err = e; }
    draft.running = false; drawDraft();
  }
  async function refresh() {
    const [st, partners, pipe, payouts, onb, ann] = await Promise.all([
      ctx.refreshStatus(), ctx.partners(), api('/v1/pipeline'), api('/v1/payouts'),
      ctx.has('onboarding') ? api('/v1/onboarding').catch((e) => e) : null,
      ctx.has('announcements') ? api('/v1/announcements').catch((e) => e) : null]);
    const byStatus = new Map(), byTier = new Map();
    for (const p of partners) {
      byStatus.set(p.status, (byStatus.get(p.status) || 0) + 1);
      byTier.set(p.tier, (byTier.get(p.tier) || 0) + 1);
    }
    const count = (m) => [...m].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, f.int(v)]);
    const last = payouts.length ? payouts[payouts.length - 1] : null;
    const openAmt = sumBy(pipe, (r) => r.currency, (r) => r.amount_minor);
    const openDeals = pipe.reduce((a, r) => a + r.deals, 0);
    let cert = el('p', { class: 'hint' }, 'No onboarding endpoint on this server yet (program.md).');
    if (onb instanceof Error) cert = errMsg(onb);
    else if (onb) {
      const rows = Array.isArray(onb) ? onb : onb.partners || [];
      const n = rows.filter((r) => r.certified).length;
      cert = [el('div', { class: 'big' }, rows.length ? f.bp(Math.floor((n * 10000) / rows.length)) : '—'),
        el('p', { class: 'hint' }, `${f.int(n)} of ${f.int(rows.length)} partners certified`)];
    }
    let pend = el('p', { class: 'hint' }, 'No announcements endpoint on this server yet (program.md).');
    if (ann instanceof Error) pend = errMsg(ann);
    else if (ann) {
      const p = ann.reduce((a, x) => a + (x.pending || 0), 0), o = ann.reduce((a, x) => a + (x.overdue || 0), 0);
      pend = [el('div', { class: 'big' }, f.int(p)), el('p', { class: 'hint' }, `acknowledgements pending over ${f.int(ann.length)} announcements, ${f.int(o)} overdue`)];
    }
    replace(grid,
      card('Ledger head', el('div', { class: 'big' }, `seq ${f.int(st.head_seq)}`),
        kv([['chain head', el('span', { class: 'mono' }, st.head_hash)], ['as of', `${f.dateTime(st.now)} ${f.offsetLabel()}`]])),
      card('Events, last 24 h', events24(st)),
      card('Open pipeline', el('div', { class: 'big' }, moneyMap(openAmt)), el('p', { class: 'hint' }, `${f.int(openDeals)} open deals`)),
      card(`Draft commission · ${draft.period}`, draftBox),
      card('Last closed period', last ? [el('div', { class: 'big' }, last.period),
        kv([['fingerprint', el('span', { class: 'mono' }, last.fingerprint)], ['lines', f.int(last.lines)], ['totals', moneyMap(new Map(Object.entries(last.totals || {})))], ['closed at seq', f.int(last.seq)]])]
        : el('p', { class: 'hint' }, 'No period closed yet.')),
      card('Certified partners', cert),
      card('Announcements pending', pend),
      card(`Partners · ${f.int(partners.length)}`,
        table({ caption: 'Partners by status', hideCaption: true,
          cols: [{ label: 'status' }, { label: 'partners', num: true }], rows: count(byStatus) }),
        el('div', null, table({ caption: 'Partners by tier', hideCaption: true,
          cols: [{ label: 'tier' }, { label: 'partners', num: true }], rows: count(byTier) }))));
    drawDraft();
  }
  await refresh();
  return { refresh };
}

// ---- Pipeline ----------------------------------------------------------------------------

export async function pipeline(root, ctx) {
  const st = { partner: '', stage: null, page: 0 };
  const dl = el('datalist', { id: 'partner-ids' });
  const input = el('input', { type: 'search', list: 'partner-ids', placeholder: 'every partner', spellcheck: 'false' });
  const chartBox = el('div', { class: 'card' }), tableBox = el('div'), dealsBox = el('div');
  const apply = () => { st.partner = input.value.trim(); st.stage = null; st.page = 0; refresh(); };
  input.addEventListener('change', apply);
  root.append(el('h1', null, 'Pipeline'),
    el('form', { class: 'toolbar', on: { submit: (e) => { e.preventDefault(); apply(); } } },
      field('Filter by partner', input), dl, el('button', { type: 'submit' }, 'Apply')),
    el('div', { class: 'stack' }, chartBox, tableBox, dealsBox));
  // the 2,000+ suggestions are built when the filter is first used, not on every visit
  input.addEventListener('focus', () => { if (!dl.firstChild) ctx.partners().then((ps) => replace(dl, ps.map((p) => el('option', { value: p.partner_id }, p.name)))); }, { once: true });
  async function showDeals() {
    if (!st.stage) { clear(dealsBox); return; }
    const stage = st.stage, page = st.page;
    try {
      // every deal of the stage, DEALS_PAGE at a time: the server pages by offset
      const r = await api('/v1/deals' + q({ stage, partner: st.partner, limit: DEALS_PAGE, offset: page * DEALS_PAGE || '' }));
      if (st.stage !== stage || st.page !== page) return;
      if (!r.deals.length && page > 0 && r.matched > 0) { st.page = Math.ceil(r.matched / DEALS_PAGE) - 1; return showDeals(); }
      replace(dealsBox, r.deals.length ? [table({
        caption: `Open deals in ${stage}${st.partner ? ' · ' + st.partner : ''}${r.matched > r.deals.length ? ` (${f.int(r.offset + 1)}–${f.int(r.offset + r.deals.length)} of ${f.int(r.matched)})` : ''}`,
        cols: [{ label: 'deal' }, { label: 'partner' }, { label: 'name' }, { label: 'customer', cls: 'hide-sm' }, { label: 'amount', num: true }, { label: 'in stage since' }, { label: 'expected close', cls: 'hide-sm' }],
        rows: r.deals.map((d) => [d.deal_id, link(d.partner_id, 'partners', d.partner_id), d.name || '—', d.customer_id, d.amount_minor === null ? '—' : f.money(d.amount_minor, d.currency), d.entered_stage_on, d.expected_close || '—']),
      }), r.matched > DEALS_PAGE ? pager(st, r.matched, showDeals, DEALS_PAGE) : null] : empty(`No open deals in ${stage}.`));
    } catch (e) { replace(dealsBox, errMsg(e)); }
  }
  async function refresh() {
    let rows, stages;
    try {
      [rows, stages] = await Promise.all([api('/v1/pipeline' + q({ partner: st.partner })), api('/v1/deals' + q({ partner: st.partner, limit: 1 }))]);
    } catch (e) { replace(tableBox, errMsg(e)); clear(chartBox); return; }
    const order = stages.stages.map((s) => s.name);
    const agg = new Map();
    for (const r of rows) {
      const k = r.stage + '\u0000' + r.currency;
      const a = agg.get(k) || { stage: r.stage, currency: r.currency, deals: 0, amount: 0n, oldest: 0 };
      a.deals += r.deals; a.amount += f.big(r.amount_minor); a.oldest = Math.max(a.oldest, r.oldest_days);
      agg.set(k, a);
    }
    const list = [...agg.values()];
    for (const s of order) if (!list.some((a) => a.stage === s)) list.push({ stage: s, currency: null, deals: 0, amount: 0n, oldest: null });
    const rank = (s) => { const i = order.indexOf(s); return i < 0 ? 1e6 : i; };
    list.sort((a, b) => rank(a.stage) - rank(b.stage) || (a.stage < b.stage ? -1 : a.stage > b.stage ? 1 : 0));
    const currencies = [...new Set(list.filter((a) => a.currency).map((a) => a.currency))];
    replace(chartBox, el('h2', null, `Open amount by stage${st.partner ? ' · ' + st.partner : ''}`),
      currencies.length ? currencies.map((c) => barChart(list.filter((a) => a.currency === c || (!a.currency && currencies.length === 1)).map((a) => ({ label: a.stage, value: a.amount, note: `${f.int(a.deals)} deal${a.deals === 1 ? '' : 's'}` })),
        { title: `Open amount by stage in ${c}`, fmt: (v) => f.money(v, c) })) : empty('No open deals.'));
    replace(tableBox, table({
      caption: 'Stages (choose one to list its deals)',
      cols: [{ label: 'stage' }, { label: 'open deals', num: true }, { label: 'amount', num: true }, { label: 'oldest in stage', num: true }],
      rows: list.map((a) => [el('button', { type: 'button', class: 'link', 'aria-pressed': st.stage === a.stage ? 'true' : 'false', on: { click: () => { st.stage = a.stage; st.page = 0; showDeals(); } } }, a.stage),
        f.int(a.deals), a.currency ? f.money(a.amount, a.currency) : '—', a.oldest === null ? '—' : `${f.int(a.oldest)} d`]),
    }));
    await showDeals();
  }
  await refresh();
  return { refresh };
}

// ---- Partners ----------------------------------------------------------------------------

export async function partners(root, ctx) {
  const st = { period: ctx.openPeriod, search: '', sort: { key: 'partner_id', dir: 1 }, page: 0, kpi: null, kpiFor: null, kpiErr: null, list: [] };
  const sel = el('select', null, periodOptions(ctx, st.period));
  const search = el('input', { type: 'search', placeholder: 'id, name, tier, kind…', spellcheck: 'false' });
  const box = el('div'), note = el('p', { class: 'hint', role: 'status' });
  sel.addEventListener('change', () => { st.period = sel.value; loadKpi(); draw(); });
  search.addEventListener('input', () => { st.search = search.value.trim().toLowerCase(); st.page = 0; draw(); });
  root.append(el('h1', null, 'Partners'),
    el('div', { class: 'toolbar' }, field('Period (month or quarter)', sel), field('Search', search)), note, box);
  let kpiGen = 0;
  function loadKpi() {
    const gen = ++kpiGen, period = st.period;
    st.kpiErr = null;
    if (st.kpiFor !== period) st.kpi = null;
    ctx.late(ctx.kpi(period).then((rows) => {
      if (gen !== kpiGen) return;
      st.kpi = new Map(rows.map((r) => [r.partner_id, r])); st.kpiFor = period; draw();
      if (ctx.stale(ctx.kpiKey(period))) loadKpi(); // commits landed meanwhile: one more, latest wins
    }, (e) => { if (gen === kpiGen) { st.kpiErr = e; draw(); } }));
  }
  function value(p, key) {
    const k = st.kpi && st.kpi.get(p.partner_id);
    switch (key) {
      case 'net': return k ? f.big(k.net_revenue_minor) : null;
      case 'newc': return k ? k.new_customers : null;
      case 'win': return k ? k.win_rate_bp : null;
      case 'comm': return k ? f.big(k.commission_minor) : null;
      case 'cert': return k && k.certified !== undefined ? (k.certified ? 1 : 0) : null;
      default: return p[key] === null || p[key] === undefined ? '' : String(p[key]).toLowerCase();
    }
  }
  function draw() {
    const s = st.search;
    let rows = s ? st.list.filter((p) => [p.partner_id, p.name, p.tier, p.kind, p.status, p.region].some((v) => v && String(v).toLowerCase().includes(s))) : st.list.slice();
    const { key, dir } = st.sort;
    rows.sort((a, b) => {
      const x = value(a, key), y = value(b, key);
      if (x === y) return a.partner_id < b.partner_id ? -1 : 1;
      if (x === null) return 1;
      if (y === null) return -1;
      return (x < y ? -1 : 1) * dir;
    });
    const total = rows.length;
    rows = rows.slice(st.page * PAGE, st.page * PAGE + PAGE);
    const waiting = !st.kpi && !st.kpiErr;
    note.textContent = '';
    if (waiting) replace(note, computing(`the KPIs of ${st.period} (the commission column replays the period; the list is current)`));
    else if (st.kpiErr) replace(note, errMsg(st.kpiErr));
    else note.textContent = `KPIs of ${st.period} as of seq ${f.int(ctx.kpiSeq(st.period))}${ctx.stale(ctx.kpiKey(st.period)) ? ' (recomputing for newer events…)' : ''}.`;
    const pend = () => (waiting ? el('span', { class: 'computing' }, '…') : '—');
    const onSort = (k) => { st.sort = { key: k, dir: st.sort.key === k ? -st.sort.dir : 1 }; draw(); };
    replace(box, table({
      caption: `${f.int(total)} partners`,
      sort: st.sort, onSort,
      cols: [{ label: 'partner', sort: 'partner_id' }, { label: 'name', sort: 'name' }, { label: 'tier', sort: 'tier' }, { label: 'kind', sort: 'kind', cls: 'hide-sm' },
        { label: 'status', sort: 'status', cls: 'hide-sm' }, { label: 'certified', sort: 'cert', cls: 'hide-sm' }, { label: 'net revenue', num: true, sort: 'net' }, { label: 'new customers', num: true, sort: 'newc' },
        { label: 'win rate', num: true, sort: 'win' }, { label: 'commission', num: true, sort: 'comm' }],
      rows: rows.map((p) => {
        const k = st.kpi && st.kpi.get(p.partner_id);
        const cur = (k && k.currency) || p.currency;
        return [link(p.partner_id, 'partners', p.partner_id), p.name, p.tier, p.kind, p.status,
          k && k.certified !== undefined ? (k.certified ? 'yes' : 'no') : '—',
          k ? f.money(k.net_revenue_minor, cur) : pend(), k ? f.int(k.new_customers) : pend(),
          k ? f.bp(k.win_rate_bp) : pend(), k ? f.money(k.commission_minor, cur) : pend()];
      }),
    }), pager(st, total, draw));
  }
  async function refresh() {
    st.list = await ctx.partners();
    loadKpi();
    draw();
  }
  await refresh();
  return { refresh };
}

// ---- A partner's own page (staff) and the portal (partner tokens) share these parts ------------

function repsTable(partner, repKpi) {
  if (!partner.reps.length) return empty('No reps registered.');
  const m = repKpi instanceof Map ? repKpi : null;
  return table({
    caption: `Reps of ${partner.partner_id}`, hideCaption: true,
    cols: [{ label: 'rep' }, { label: 'name' }, { label: 'net revenue', num: true }, { label: 'deals won', num: true }, { label: 'win rate', num: true }, { label: 'commission', num: true }],
    rows: partner.reps.map((r) => {
      const k = m && m.get(r.rep_id);
      const c = (x) => (k ? x(k) : m ? '—' : el('span', { class: 'computing' }, '…'));
      return [r.rep_id, r.name, c((x) => f.money(x.net_revenue_minor, partner.currency)), c((x) => f.int(x.deals_won)), c((x) => f.bp(x.win_rate_bp)), c((x) => f.money(x.commission_minor, partner.currency))];
    }),
  });
}

function kpiCard(k, partner, period) {
  if (!k) return card(`KPIs · ${period}`, el('p', { class: 'hint' }, 'No activity in this period.'));
  return card(`KPIs · ${period}`, kv([
    ['net revenue', f.money(k.net_revenue_minor, partner.currency)], ['commission', f.money(k.commission_minor, partner.currency)],
    ['new customers', f.int(k.new_customers)], ['deals registered', f.int(k.deals_registered)],
    ['won / lost', `${f.int(k.deals_won)} / ${f.int(k.deals_lost)}`], ['win rate', f.bp(k.win_rate_bp)],
    ['median days to win', f.days(k.median_days_to_win)], ['training modules', f.int(k.training_modules)]]));
}

// A progress bar: its width goes through the CSSOM (allowed by the CSP), never a style attribute.
function bar(pct) { const s = el('span'); s.style.width = `${pct}%`; return s; }

async function onboardingCard(ctx, partner) {
  if (ctx.has('onboarding')) {
    try {
      const r = await api('/v1/onboarding' + q({ partner: partner.partner_id }));
      const row = Array.isArray(r) ? r.find((x) => x.partner_id === partner.partner_id) || r[0] : r;
      if (row) {
        const mods = row.modules || [], done = row.completed || [], n = mods.length;
        const pct = n ? Math.floor((done.length * 100) / n) : 100;
        return card('Onboarding', el('div', { class: 'progress', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': String(pct), 'aria-label': 'onboarding progress' }, bar(pct)),
          kv([['certified', row.certified ? `yes${row.certified_on ? ', since ' + row.certified_on : ''}` : 'no'], ['completed', `${f.int(done.length)} of ${f.int(n)} modules`],
            ['missing', (row.missing || []).join(', ') || '—']]));
      }
    } catch (e) { return card('Onboarding', errMsg(e)); }
  }
  const t = partner.training || [];
  return card('Onboarding', el('p', { class: 'hint' }, ctx.has('onboarding') ? 'No onboarding record.' : 'Training completed (no onboarding list on this server yet):'),
    t.length ? table({ caption: 'Training completed', hideCaption: true,
      cols: [{ label: 'module' }, { label: 'rep' }, { label: 'date' }],
      rows: t.map((x) => [x.module, x.rep_id || '—', x.date]) })
      : empty('No training recorded.'));
}

function statementsCard(ctx, partnerId) {
  const box = el('div');
  const periods = (ctx.status.closed_periods || []).slice().reverse();
  return card('Statements of closed periods', periods.length ? table({
    caption: 'Statements of closed periods', hideCaption: true,
    cols: [{ label: 'period' }, { label: 'lines' }, { label: 'download' }],
    rows: periods.map((p) => [p, el('button', { type: 'button', class: 'small', on: { click: () => showStatement(box, p, partnerId) } }, 'Show lines'), csvButton(p, partnerId)]),
  }) : el('p', { class: 'hint' }, 'No period closed yet.'), box);
}

// Open deals, PAGE rows at a time (a big partner holds thousands: the DOM stays small). st: the
// page shown, kept by the caller so that a redraw stays on it.
function dealsTable(all, stages, onMove, more, st = { page: 0 }) {
  if (!all.length) return empty('No open deals.');
  const box = el('div');
  const draw = () => replace(box, dealsPage(all.slice(st.page * PAGE, st.page * PAGE + PAGE), stages, onMove, more),
    all.length > PAGE ? pager(st, all.length, draw) : null);
  draw();
  return box;
}

function dealsPage(deals, stages, onMove, more) {
  const names = stages.map((s) => s.name);
  return table({
    caption: `Open deals${more ? ` (the first ${f.int(more.shown)} of ${f.int(more.matched)})` : ''}`,
    cols: [{ label: 'deal' }, { label: 'name' }, { label: 'customer', cls: 'hide-sm' }, { label: 'amount', num: true }, { label: 'stage' }, { label: 'since', cls: 'hide-sm' }, ...(onMove ? [{ label: 'move' }] : [])],
    rows: deals.map((d) => {
      const row = [d.deal_id, d.name || '—', d.customer_id, d.amount_minor === null ? '—' : f.money(d.amount_minor, d.currency), d.stage, d.entered_stage_on];
      if (onMove) {
        const next = names[names.indexOf(d.stage) + 1];
        const s = el('select', { 'aria-label': `next stage of ${d.deal_id}` }, names.filter((n) => n !== d.stage).map((n) => el('option', { value: n, selected: n === next ? true : null }, n)));
        row.push(el('span', { class: 'actions' }, s, ' ',
          el('button', { type: 'button', class: 'small', on: { click: () => onMove(d, { stage: s.value }) } }, 'Move'), ' ',
          el('button', { type: 'button', class: 'small', on: { click: () => onMove(d, { outcome: 'won' }) } }, 'Won'), ' ',
          el('button', { type: 'button', class: 'small', on: { click: () => onMove(d, { outcome: 'lost' }) } }, 'Lost')));
      }
      return row;
    }),
  });
}

export async function partnerPage(root, ctx, id) {
  const st = { period: ctx.openPeriod };
  const head = el('div'), grid = el('div', { class: 'grid' }), dealsBox = el('div'), stmts = el('div');
  const sel = el('select', null, periodOptions(ctx, st.period));
  sel.addEventListener('change', () => { st.period = sel.value; refresh(); });
  root.append(head, el('div', { class: 'toolbar' }, field('Period', sel)), el('div', { class: 'stack' }, grid, dealsBox, stmts));
  const dealsPage = { page: 0 };
  let gen = 0;
  async function refresh() {
    const g = ++gen;
    let p;
    try { p = await api('/v1/partners/' + encodeURIComponent(id)); } catch (e) {
      replace(head, el('h1', null, 'Partner'), errMsg(e));
      clear(grid); clear(dealsBox); clear(stmts); return;
    }
    replace(head, el('p', null, link('‹ Partners', 'partners')), el('h1', null, p.name, ' ', el('span', { class: 'pill' }, p.partner_id)),
      kv([['tier / kind', `${p.tier} / ${p.kind}`], ['status', p.status], ['plan', `${p.plan_id} (${p.currency})`], ['region', p.region || '—']]));
    const kpiSlot = el('div', { class: 'card' }, el('h2', null, `KPIs · ${st.period}`), computing('the KPIs'));
    const repSlot = el('div', { class: 'card wide' }, el('h2', null, 'Reps'), repsTable(p, null));
    replace(grid, kpiSlot, await onboardingCard(ctx, p), repSlot);
    // a partner's open deals, up to the API's 1,000, paged here (the portal reads as many)
    const [deals] = await Promise.all([api('/v1/deals' + q({ partner: id, limit: 1000 }))]);
    replace(dealsBox, dealsTable(deals.deals, deals.stages, null,
      deals.truncated ? { shown: deals.deals.length, matched: deals.matched } : null, dealsPage));
    // the closed periods are those of the sign-in: built once, the lines shown survive a redraw
    if (!stmts.firstChild) replace(stmts, statementsCard(ctx, id));
    ctx.late(ctx.kpi(st.period, id).then(
      (rows) => { if (g === gen) kpiSlot.replaceWith(kpiCard(rows[0], p, st.period)); },
      (e) => { if (g === gen) replace(kpiSlot, errMsg(e)); }));
    ctx.late(ctx.kpi(st.period, id, true).then((rows) => {
      if (g !== gen) return;
      const byRep = new Map(rows.map((r) => [r.rep_id, r]));
      replace(repSlot, el('h2', null, `Reps · ${st.period}`), repsTable(p, byRep));
    }, (e) => { if (g === gen) replace(repSlot, errMsg(e)); }));
  }
  await refresh();
  return { refresh };
}

// ---- Payouts -----------------------------------------------------------------------------

export async function payouts(root, ctx) {
  const closedBox = el('div'), draftBox = el('div'), linesBox = el('div');
  const draft = { period: ctx.openPeriod, res: null, running: false, err: null, page: 0 };
  const sel = el('select', null, periodOptions(ctx, draft.period));
  sel.addEventListener('change', () => { draft.period = sel.value; });
  const runBtn = el('button', { type: 'button', on: { click: run } }, 'Run draft');
  root.append(el('h1', null, 'Payouts'), el('div', { class: 'stack' },
    el('section', null, el('h2', null, 'Closed periods'), closedBox, linesBox),
    el('section', { class: 'card' }, el('h2', null, 'Draft run'), el('p', { class: 'hint' }, 'A draft replays the period on demand; nothing is written.'),
      el('div', { class: 'toolbar' }, field('Period', sel), runBtn), draftBox)));
  async function run() {
    draft.running = true; draft.err = null; runBtn.disabled = true; drawDraft();
    try { draft.res = await api(`/v1/payouts/${encodeURIComponent(draft.period)}/run`, { method: 'POST' }); draft.page = 0; } catch (e) { draft.err = e; }
    draft.running = false; runBtn.disabled = false; drawDraft();
  }
  function drawDraft() {
    if (draft.running) { replace(draftBox, computing(`the draft of ${draft.period}`)); return; }
    if (draft.err) { replace(draftBox, errMsg(draft.err)); return; }
    const r = draft.res;
    if (!r) { clear(draftBox); return; }
    const ps = r.partners || [];
    const rows = ps.slice(draft.page * PAGE, draft.page * PAGE + PAGE);
    replace(draftBox, kv([['period', r.period], ['as of seq', f.int(r.through_seq)], ['lines', f.int(r.line_count)], ['totals', moneyMap(new Map(Object.entries(r.totals || {})))],
      ['fingerprint', el('span', { class: 'mono' }, r.fingerprint)], ['unplanned sales', f.int(r.unplanned_count)]]),
    table({
      caption: 'Totals per partner (rows with prior-period lines are marked)',
      cols: [{ label: 'partner' }, { label: 'lines', num: true }, { label: 'sale', num: true, cls: 'hide-sm' }, { label: 'bonus', num: true, cls: 'hide-sm' }, { label: 'prior period', num: true }, { label: 'total', num: true }],
      rows: rows.map((p) => {
        const k = p.by_kind || {};
        const bonus = f.big(k.new_customer_bonus) + f.big(k.target_bonus) + f.big(k.promotion);
        return [link(p.partner_id, 'partners', p.partner_id), f.int(p.lines), f.money(k.sale, p.currency), f.money(bonus, p.currency),
          f.big(p.prior_period_minor) !== 0n ? el('span', { class: 'pill warn' }, f.money(p.prior_period_minor, p.currency)) : '—', f.money(p.total_minor, p.currency)];
      }),
      rowClass: (i) => (f.big(rows[i].prior_period_minor) !== 0n ? 'prior' : null),
    }), pager(draft, ps.length, drawDraft));
  }
  async function refresh() {
    const list = await api('/v1/payouts');
    if (!list.length) { replace(closedBox, empty('No period closed yet.')); return; }
    replace(closedBox, table({
      caption: 'Closed periods', hideCaption: true,
      cols: [{ label: 'period' }, { label: 'fingerprint' }, { label: 'lines', num: true }, { label: 'totals', num: true }, { label: 'through seq', num: true, cls: 'hide-sm' }, { label: 'statement' }, { label: 'audit' }],
      rows: list.slice().reverse().map((c) => {
        const out = el('span', { role: 'status' });
        const audit = el('button', { type: 'button', class: 'small', on: { click: async () => {
          replace(out, computing('the audit'));
          try {
            const a = await api(`/v1/payouts/${encodeURIComponent(c.period)}/audit`);
            replace(out, a.match ? el('span', { class: 'pill ok' }, 'reproduced') : el('span', { class: 'pill bad' }, `differs at line ${a.first_diff_line}`));
          } catch (e) { replace(out, errMsg(e)); }
        } } }, 'Audit');
        return [c.period, el('span', { class: 'mono' }, c.fingerprint), f.int(c.lines), moneyMap(new Map(Object.entries(c.totals || {}))), f.int(c.through_seq),
          el('span', null, csvButton(c.period, null), ' ', el('button', { type: 'button', class: 'small', on: { click: () => showStatement(linesBox, c.period, null) } }, 'Lines')),
          el('span', null, audit, ' ', out)];
      }),
    }));
  }
  await refresh();
  drawDraft();
  return { refresh };
}

// ---- Promotions and announcements (program.md; empty until the server has them) -------------

export async function promotions(root, ctx) {
  const box = el('div'), note = el('p', { class: 'hint', role: 'status' });
  root.append(el('h1', null, 'Promotions'), note, box);
  let gen = 0;
  // GET /v1/promotions computes budget used / left by replaying the log: the view draws at once
  // and fills the table when the answer arrives (one request in flight, latest wins).
  function load() {
    const g = ++gen;
    const p = ctx.cached('promotions', () => api('/v1/promotions'), true);
    if (!box.firstChild) replace(box, computing('the promotions (budget used and left replay the log)'));
    return Promise.all([p, ctx.partners()]).then(([list, ps]) => {
      if (g !== gen) return;
      draw(list, ps);
      note.textContent = ctx.stale('promotions') ? 'Recomputing for newer events…' : '';
      if (ctx.stale('promotions')) load();
    }, (e) => { if (g === gen) replace(box, errMsg(e)); });
  }
  function draw(list, ps) {
    const arr = Array.isArray(list) ? list : list.promotions || [];
    if (!arr.length) { replace(box, empty('No promotion published.')); return; }
    // amounts are in the plan's currency (program.md); a plan's partners all share it
    const planCur = new Map(ps.map((p) => [p.plan_id, p.currency]));
    const today = ctx.status.today;
    replace(box, table({
      caption: 'Running and ended promotions',
      cols: [{ label: 'promotion' }, { label: 'title' }, { label: 'plan', cls: 'hide-sm' }, { label: 'from' }, { label: 'last day' }, { label: 'state' }, { label: 'rate', num: true }, { label: 'per sale', num: true, cls: 'hide-sm' }, { label: 'lines', num: true }, { label: 'budget used', num: true }, { label: 'budget left', num: true }],
      rows: arr.map((p) => {
        const d = p.promotion || p, cur = p.currency || d.currency || planCur.get(d.plan_id);
        const last = p.last_day || p.ends_on || d.to;
        const state = today < d.from ? 'planned' : today > last ? 'ended' : 'running';
        const used = p.budget_used_minor ?? p.used_minor ?? p.total_minor;
        const left = p.budget_left_minor ?? p.left_minor ?? null;
        const m = (v) => (cur ? f.money(v, cur) : f.int(v));
        return [d.promo_id, d.title || '—', d.plan_id, d.from, last, el('span', { class: 'pill ' + (state === 'running' ? 'ok' : '') }, state), f.bp(d.rate_bp || 0),
          d.per_sale_minor === undefined ? '—' : m(d.per_sale_minor), f.int(p.lines ?? 0), used === undefined ? '—' : m(used),
          left === null ? (d.budget_minor ? '—' : 'no budget') : m(left)];
      }),
    }));
  }
  async function refresh() {
    if (!ctx.has('promotions')) { replace(box, empty('This server has no promotions endpoint yet (program.md): nothing to show.')); return; }
    ctx.late(load());
  }
  await refresh();
  return { refresh };
}

function nowTs() { return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'); }

// An announcement's text (program.md: what a partner reads and acknowledges), folded under
// "read" (open when the partner still has to acknowledge it); shown as text, never markup.
function annBody(a, open) {
  if (a.body === undefined || a.body === '') return '—';
  return el('details', { class: 'ann-body', open }, el('summary', {}, 'read'), el('p', {}, a.body));
}

export async function announcements(root, ctx) {
  const box = el('div'), formBox = el('div');
  root.append(el('h1', null, 'Announcements'), el('div', { class: 'stack' }, box, formBox));
  if (ctx.has('announcements') && (ctx.role === 'admin' || ctx.role === 'finance')) {
    const id = el('input', { required: true, pattern: '[A-Za-z0-9_.:\\-]{1,64}', spellcheck: 'false' });
    const title = el('input', { required: true, maxlength: '256' });
    const body = el('textarea', { required: true });
    const tier = el('input'), kind = el('select', null, ['', 'reseller', 'distributor', 'broker', 'referral'].map((k) => el('option', { value: k }, k || 'any')));
    const region = el('input'), ack = el('input', { type: 'checkbox', checked: true }), due = el('input', { type: 'date' });
    const msg = el('p', { class: 'msg', role: 'status' });
    const form = el('form', { class: 'form', on: { submit: async (e) => {
      e.preventDefault();
      const audience = {};
      if (tier.value.trim()) audience.tier = tier.value.trim();
      if (kind.value) audience.kind = kind.value;
      if (region.value.trim()) audience.region = region.value.trim();
      const data = { announcement_id: id.value.trim(), title: title.value, body: body.value, requires_ack: ack.checked };
      if (Object.keys(audience).length) data.audience = audience;
      if (due.value) data.due = due.value;
      try {
        await api('/v1/events', { method: 'POST', body: [{ id: 'announcement:' + data.announcement_id, type: 'announcement.published', at: nowTs(), data }] });
        msg.className = 'msg ok'; msg.textContent = `Published ${data.announcement_id}.`; form.reset(); ack.checked = true;
      } catch (err) { msg.className = 'msg bad'; msg.textContent = `${err.code || ''}: ${err.message}`; }
    } } },
    field('Announcement id', id), field('Title', title), el('div', { class: 'full' }, field('Body', body)),
    field('Audience: tier', tier), field('Audience: kind', kind), field('Audience: region', region), field('Due', due), field('Requires acknowledgement', ack),
    el('div', null, el('button', { type: 'submit' }, 'Publish')), el('div', { class: 'full' }, msg));
    replace(formBox, card('Publish an announcement', form));
  }
  async function refresh() {
    if (!ctx.has('announcements')) { replace(box, empty('This server has no announcements endpoint yet (program.md): nothing to show.')); return; }
    const list = await api('/v1/announcements');
    if (!list.length) { replace(box, empty('No announcement published.')); return; }
    replace(box, table({
      caption: 'Announcements',
      cols: [{ label: 'id' }, { label: 'title' }, { label: 'published' }, { label: 'due', cls: 'hide-sm' }, { label: 'audience', num: true }, { label: 'acknowledged', num: true }, { label: 'pending', num: true }, { label: 'overdue', num: true }, { label: 'text' }],
      rows: list.map((a) => [a.announcement_id, a.title, f.dateTime(a.at), a.due || '—', f.int(a.audience), a.requires_ack ? f.int(a.acknowledged) : 'info only',
        a.requires_ack ? f.int(a.pending) : '—', a.overdue ? el('span', { class: 'pill bad' }, f.int(a.overdue)) : f.int(a.overdue || 0), annBody(a, false)]),
    }));
  }
  await refresh();
  return { refresh };
}

// ---- Portal (partner tokens) ---------------------------------------------------------------

function toMinor(text, cur) {
  const d = f.minorDigits(cur), m = /^\s*(\d+)(?:\.(\d*))?\s*$/.exec(text.replace(/,/g, ''));
  if (!m || (m[2] && m[2].length > d)) return null;
  return (BigInt(m[1]) * 10n ** BigInt(d) + BigInt((m[2] || '').padEnd(d, '0') || '0')).toString();
}

export async function portal(root, ctx) {
  const me = ctx.me;
  const grid = el('div', { class: 'grid' }), pipeBox = el('div'), dealsBox = el('div'), extra = el('div', { class: 'stack' });
  const msg = el('p', { class: 'msg', role: 'status' });
  const say = (ok, text) => { msg.className = 'msg ' + (ok ? 'ok' : 'bad'); msg.textContent = text; };
  // register a deal
  const dname = el('input', { maxlength: '200' }), cust = el('input', { required: true, spellcheck: 'false' });
  const amount = el('input', { inputmode: 'decimal', placeholder: f.minorDigits(me.currency) ? '0.00' : '0' });
  const close = el('input', { type: 'date' });
  const rep = el('select', null, el('option', { value: '' }, '—'), me.reps.map((r) => el('option', { value: r.rep_id }, r.name)));
  const form = el('form', { class: 'form', on: { submit: async (e) => {
    e.preventDefault();
    const data = { customer_id: cust.value.trim(), currency: me.currency };
    if (dname.value.trim()) data.name = dname.value.trim();
    if (amount.value.trim()) {
      const m = toMinor(amount.value, me.currency);
      if (m === null) { say(false, `amount: at most ${f.minorDigits(me.currency)} decimals`); return; }
      data.amount_minor = Number(m);
    }
    if (close.value) data.expected_close = close.value;
    if (rep.value) data.rep_id = rep.value;
    try {
      const r = await api('/v1/deals', { method: 'POST', body: { data } });
      say(true, `Registered deal ${r.deal_id || ''}.`); form.reset(); await refresh();
    } catch (err) { say(false, `${err.code}: ${err.message}`); }
  } } },
  field('Customer id', cust), field('Deal name', dname), field(`Amount (${me.currency})`, amount), field('Expected close', close), field('Rep', rep),
  el('div', null, el('button', { type: 'submit' }, 'Register deal')));
  root.append(el('h1', null, me.name), el('p', { class: 'hint' }, `${me.partner_id} · ${me.tier} ${me.kind} · ${me.currency}`),
    el('div', { class: 'stack' }, grid, card('Register a deal', form, msg), pipeBox, dealsBox, extra));
  async function move(d, body) {
    try {
      await api(`/v1/deals/${encodeURIComponent(d.deal_id)}/stage`, { method: 'POST', body: { data: body } });
      say(true, body.outcome ? `Deal ${d.deal_id} closed ${body.outcome}.` : `Deal ${d.deal_id} moved to ${body.stage}.`);
      await refresh();
    } catch (err) { say(false, `${err.code}: ${err.message}`); }
  }
  // built once: the lines on screen and the deals' page stay through the redraw after an action
  const stmtCard = statementsCard(ctx, null), dealsPage = { page: 0 };
  let gen = 0;
  async function refresh() {
    const g = ++gen;
    const [pipe, deals, onb] = await Promise.all([api('/v1/pipeline'), api('/v1/deals' + q({ limit: 1000 })), onboardingCard(ctx, me)]);
    const kpiSlot = el('div', { class: 'card' }, el('h2', null, `KPIs · ${ctx.openPeriod}`), computing('the KPIs'));
    replace(grid, kpiSlot, card('Open pipeline', el('div', { class: 'big' }, moneyMap(sumBy(pipe, (r) => r.currency, (r) => r.amount_minor))),
      el('p', { class: 'hint' }, `${f.int(pipe.reduce((a, r) => a + r.deals, 0))} open deals`)), onb);
    replace(pipeBox, pipe.length ? table({ caption: 'Pipeline by stage', cols: [{ label: 'stage' }, { label: 'deals', num: true }, { label: 'amount', num: true }, { label: 'oldest', num: true }],
      rows: pipe.map((r) => [r.stage, f.int(r.deals), f.money(r.amount_minor, r.currency), `${f.int(r.oldest_days)} d`]) }) : empty('No open deals.'));
    replace(dealsBox, dealsTable(deals.deals, deals.stages, move,
      deals.truncated ? { shown: deals.deals.length, matched: deals.matched } : null, dealsPage));
    const parts = [stmtCard];
    if (ctx.has('announcements')) parts.push(await announcementsForPartner());
    replace(extra, ...parts);
    ctx.late(ctx.kpi(ctx.openPeriod, me.partner_id).then(
      (rows) => { if (g === gen) kpiSlot.replaceWith(kpiCard(rows[0], me, ctx.openPeriod)); },
      (e) => { if (g === gen) replace(kpiSlot, errMsg(e)); }));
  }
  async function announcementsForPartner() {
    try {
      const list = await api('/v1/announcements');
      if (!list.length) return card('Announcements', el('p', { class: 'hint' }, 'No announcements.'));
      return card('Announcements', table({
        caption: 'Announcements', hideCaption: true,
        cols: [{ label: 'title' }, { label: 'published' }, { label: 'due' }, { label: 'state' }, { label: '' }],
        rows: list.map((a) => [el('div', {}, a.title, annBody(a, a.state === 'pending' || a.state === 'overdue')), f.dateTime(a.at), a.due || '—', el('span', { class: 'pill ' + (a.state === 'read' ? 'ok' : a.state === 'overdue' ? 'bad' : a.state === 'pending' ? 'warn' : '') }, a.state),
          a.state === 'pending' || a.state === 'overdue' ? el('button', { type: 'button', class: 'small', on: { click: async () => {
            try { await api(`/v1/announcements/${encodeURIComponent(a.announcement_id)}/ack`, { method: 'POST', body: {} }); say(true, `Acknowledged ${a.title}.`); await refresh(); } catch (err) { say(false, `${err.code}: ${err.message}`); }
          } } }, 'Acknowledge') : '']),
      }));
    } catch (e) { return card('Announcements', errMsg(e)); }
  }
  await refresh();
  return { refresh };
}
