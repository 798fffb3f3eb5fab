// run.mjs - the dashboard in a real browser: Debian's chromium driven by the pinned
// playwright-core of package.json. Called by tests/run.sh (through make test) with the -O2
// build:   node tests/dashboard/run.mjs [--accrue build/accrue] [--gen build/accrue-gen]
//          [--partners 2000] [--sales 20000] [--shots docs/img] [--no-shots]
//          [--ledger DIR --only-gen]   (time the views on an existing ledger instead)
//
// Two ledgers, each served by its own `accrue serve` on a random loopback port: the worked
// example of commissions.md (plus a few deals, reps and a partner named
// `<img src=x onerror=alert(1)>`), and a generated one of 2,000 partners. Checks: a login per
// role; every view of every staff role; no console error, no page error, no failed request
// and no HTTP error answer in any view; a partner token that cannot reach another partner's
// data through the page or its requests; a deal registered in the partner's portal showing up
// live in a finance context; the hostile name shown as text; a sign-in that routes once; a
// caption on every table; the skip link; the focus kept through Enter and live redraws; a
// statement's lines paged 100 at a time; a partial 24-hour count shown as "≥ N". Takes the
// screenshots of docs/img/ at 1280x800 and 390x844 and prints each view's render times
// (performance.measure of the page: navigation to drawn, view:<name>, and to drawn in full with
// the figures that arrive later, view:<name>:full), written next to the binary under test as
// dashboard-timings.json. Ends with `run.mjs: P passed, F failed`.
//
// Times are measured and printed, not asserted: the server under test may be a sanitizer
// build on a shared 2-core machine. A wait for something that must happen has a generous
// deadline (LIVE_MS); speed goals (1 s live update, 300 ms per view) are for the benchmarks.
import { spawn, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');
const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const argv = process.argv.slice(2);
const opt = (k, d) => { const i = argv.indexOf('--' + k); return i >= 0 ? argv[i + 1] : d; };
const ACCRUE = path.resolve(ROOT, opt('accrue', 'build/accrue'));
const GEN = path.resolve(ROOT, opt('gen', 'build/accrue-gen'));
const PARTNERS = +opt('partners', 2000);
const SALES = +opt('sales', 20000);
const BIG = opt('ledger', null) ? path.resolve(opt('ledger')) : null; // time an existing ledger instead
const ONLY_GEN = argv.includes('--only-gen');
const SHOTS = argv.includes('--no-shots') ? null : path.resolve(ROOT, opt('shots', 'docs/img'));
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'accrue-dash-'));
const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };
const STAFF_VIEWS = ['overview', 'pipeline', 'partners', 'payouts', 'promotions', 'announcements'];
const XSS = '<img src=x onerror=alert(1)>';
const LIVE_MS = 15000; // deadline for a live update to show: the update must come, its time is printed

let passed = 0, failed = 0;
let PROGRAM = false; // the build knows program.md's events and endpoints
const servers = [];
let browser = null;
function ok(cond, name, detail) {
  if (cond) { passed++; console.log(`  ok   ${name}`); }
  else { failed++; console.log(`  FAIL ${name}${detail ? ': ' + detail : ''}`); }
  return cond;
}
async function step(name, fn) {
  try { await fn(); } catch (e) { ok(false, name, (e && e.stack ? e.stack : String(e)).split('\n').slice(0, 4).join(' | ')); }
}

// ---- ledgers and servers --------------------------------------------------------------------

function acc(ledger, ...args) {
  return execFileSync(ACCRUE, ['--ledger', ledger, '--quiet', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 28 });
}
function tokens(dir, lines) {
  const f = path.join(dir, 'tokens');
  fs.writeFileSync(f, lines.map(([s, r, p]) => `${s} ${r}${p ? ' ' + p : ''}`).join('\n') + '\n', { mode: 0o600 });
  return f;
}
function serve(ledger, tokenFile) {
  return new Promise((resolve, reject) => {
    const p = spawn(ACCRUE, ['--ledger', ledger, 'serve', '--listen', '127.0.0.1:0', '--token-file', tokenFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    servers.push(p);
    let err = '';
    p.report = () => err;
    const t = setTimeout(() => reject(new Error('serve did not start: ' + err.slice(0, 400))), 10000);
    p.stderr.on('data', (d) => {
      err += d;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(err);
      if (m) { clearTimeout(t); resolve({ base: m[1], proc: p }); }
      if (err.length > 1e6) err = err.slice(-1e5);
    });
    p.on('exit', (c) => reject(new Error(`serve exited ${c}: ${err.slice(0, 400)}`)));
  });
}
// Stops the browser and every server (SIGTERM: a clean exit 0 with no sanitizer report).
async function stopAll() {
  if (browser) await browser.close().catch(() => {});
  const codes = await Promise.all(servers.map((p) => new Promise((r) => {
    if (p.exitCode !== null) return r(p.exitCode);
    const t = setTimeout(() => { p.kill('SIGKILL'); r('killed'); }, 10000);
    p.on('exit', (c, sig) => { clearTimeout(t); r(c === null ? sig : c); });
    p.kill('SIGTERM');
  })));
  servers.forEach((p, i) => {
    const rep = p.report ? p.report() : '';
    ok((codes[i] === 0 || (BIG && codes[i] === 'killed')) && !/Sanitizer|runtime error:/.test(rep), `server ${i + 1}: SIGTERM, exit 0, no sanitizer report`,
      `${codes[i]} ${(rep.match(/(==\d+==ERROR|runtime error:)[^\n]*/) || [''])[0]}`);
  });
  fs.rmSync(TMP, { recursive: true, force: true });
}

const T = { admin: 'adm-dashboard-0001', finance: 'fin-dashboard-0001', auditor: 'aud-dashboard-0001', ingest: 'ing-dashboard-0001', feed: 'fee-dashboard-0001' };

function workedLedger() {
  const l = path.join(TMP, 'worked');
  acc(l, 'init', '--period', 'month', '--utc-offset', '+09:00');
  acc(l, 'append', path.join(ROOT, 'tests/cli/worked/events.jsonl'));
  acc(l, 'payout', 'close', '2026-07');
  acc(l, 'append', path.join(ROOT, 'tests/cli/worked/late.jsonl'));
  acc(l, 'append', path.join(HERE, 'demo-extra.jsonl'));
  // the program's events (program.md) when this build has them: onboarding, a promotion, announcements
  try { acc(l, 'append', path.join(HERE, 'demo-program.jsonl')); PROGRAM = true; } catch { PROGRAM = false; }
  return l;
}
function genLedger() {
  if (BIG) {
    const first = JSON.parse(acc(BIG, 'partner', 'list', '--format', 'json'))[0].partner_id;
    const head = /head seq\s+(\d+)/.exec(acc(BIG, 'stats'));
    return { l: BIG, first, events: head ? +head[1] : null };
  }
  const l = path.join(TMP, 'gen'), f = path.join(TMP, 'gen.jsonl');
  fs.writeFileSync(f, execFileSync(GEN, ['--partners', String(PARTNERS), '--sales', String(SALES), '--seed', '13', '--months', '6', '--start', '2026-01-01'], { maxBuffer: 1 << 30 }));
  acc(l, 'init', '--period', 'month', '--utc-offset', '+09:00');
  acc(l, 'append', f);
  acc(l, 'payout', 'close', '2026-01');
  const first = JSON.parse(acc(l, 'partner', 'list', '--format', 'json'))[0].partner_id;
  return { l, first, events: fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).length };
}

// ---- pages ------------------------------------------------------------------------------------

// A context with every problem recorded: console errors, page errors, failed requests,
// HTTP errors, dialogs (an alert would be the XSS firing), and every request URL and answer.
async function open(base, size) {
  const context = await browser.newContext({ viewport: SIZES[size], deviceScaleFactor: 1 });
  const page = await context.newPage();
  const rec = { problems: [], requests: [], bodies: [] , allow404: false };
  page.on('console', (m) => { if (m.type() === 'error') rec.problems.push('console: ' + m.text()); });
  page.on('pageerror', (e) => rec.problems.push('pageerror: ' + e.message));
  page.on('dialog', (d) => { rec.problems.push('dialog: ' + d.message()); d.dismiss().catch(() => {}); });
  page.on('requestfailed', (r) => {
    const why = r.failure() ? r.failure().errorText : '';
    // the feed is a never-ending request: closing the page aborts it
    if (!(r.url().includes('/v1/feed') && /ABORTED/.test(why))) rec.problems.push(`requestfailed: ${r.url()} ${why}`);
  });
  page.on('response', async (r) => {
    rec.requests.push(r.url());
    if (r.status() >= 400 && !rec.allow404) rec.problems.push(`http ${r.status()}: ${r.url()}`);
    if (!r.url().includes('/v1/feed')) rec.bodies.push(r.text().then((t) => ({ url: r.url(), t }), () => ({ url: r.url(), t: '' })));
  });
  await page.goto(base + '/');
  await page.waitForSelector('body[data-ready="login"]');
  return { context, page, rec };
}
async function login(page, secret, expect) {
  await page.fill('#token', secret);
  await page.click('#loginform button[type=submit]');
  await page.waitForFunction((v) => document.body.dataset.ready === v, expect, { timeout: 15000 });
}
async function visit(page, hash, name, timeout = 15000) {
  await page.evaluate((h) => { location.hash = h; }, hash);
  await page.waitForFunction((v) => document.body.dataset.ready === v, name, { timeout });
  return page.evaluate((v) => { const m = performance.getEntriesByName('view:' + v); return m.length ? m[m.length - 1].duration : null; }, name);
}
async function shot(page, file) {
  if (!SHOTS) return;
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(SHOTS, file), fullPage: false });
}
async function noComputing(page, timeout) {
  const t0 = Date.now();
  await page.waitForFunction(() => !document.querySelector('.computing'), null, { timeout });
  return Date.now() - t0;
}
// The view's tables without a caption (each table needs one, shown or for screen readers only).
function uncaptioned(page) {
  return page.evaluate(() => [...document.querySelectorAll('#view table')]
    .filter((t) => !t.caption || !t.caption.textContent.trim())
    .map((t) => `${document.body.dataset.ready}: `
      + [...t.querySelectorAll('th')].map((h) => h.textContent).join('/')));
}
// What has the keyboard focus: its focus key, aria-label or text, or "BODY" when focus was lost.
function focused(page) {
  return page.evaluate(() => {
    const a = document.activeElement;
    if (!a || a === document.body) return 'BODY';
    return a.dataset.focus || a.getAttribute('aria-label') || a.id || a.textContent;
  });
}
// Navigates to a view and waits for it to be drawn in full (body[data-full], set with the
// measure view:<name>:full once the figures that arrive later are drawn). A MutationObserver set
// before the navigation sees the page at that very moment: was a "computing…" still on screen?
async function visitFull(page, hash, name, timeout = 20000) {
  const probe = page.evaluate((v) => new Promise((res) => {
    const mo = new MutationObserver(() => {
      if (document.body.dataset.full !== v) return;
      mo.disconnect();
      const m = performance.getEntriesByName(`view:${v}:full`).pop();
      const computing = document.querySelectorAll('#view .computing').length;
      res({ full: m ? m.duration : null, computing });
    });
    mo.observe(document.body, { attributes: true, attributeFilter: ['data-full'] });
  }), name).catch(() => null);
  const ms = await visit(page, hash, name);
  const got = await Promise.race([probe, new Promise((r) => setTimeout(() => r(null), timeout))]);
  return { ms, full: got ? got.full : null, computing: got ? got.computing : null };
}
// The full measure of the last visit of a view, once drawn (null when not within timeout ms).
async function fullTime(page, name, timeout) {
  try {
    await page.waitForFunction((v) => document.body.dataset.full === v, name, { timeout });
  } catch { return null; }
  return page.evaluate((v) => {
    const m = performance.getEntriesByName(`view:${v}:full`);
    return m.length ? m[m.length - 1].duration : null;
  }, name);
}
// The /v1/ requests the page made, counted by path and query (the feed left out).
function requestCounts(rec) {
  const n = {};
  for (const u of rec.requests) {
    const x = new URL(u);
    const k = x.pathname + x.search;
    if (x.pathname.startsWith('/v1/') && x.pathname !== '/v1/feed') n[k] = (n[k] || 0) + 1;
  }
  return n;
}
function clean(rec, name) {
  ok(rec.problems.length === 0, `${name}: no console error, page error or failed request`, rec.problems.slice(0, 5).join(' ; '));
  rec.problems.length = 0;
}

// ---- the checks -------------------------------------------------------------------------------

async function main() {
  for (const [f, what] of [[ACCRUE, 'accrue'], [GEN, 'accrue-gen'], ['/usr/bin/chromium', 'chromium']])
    if (!fs.existsSync(f)) { ok(false, `${what} present at ${f}`); return; }
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium', headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const timings = { worked: {}, gen: {} };

  // --- the worked example -------------------------------------------------------------------
  if (!ONLY_GEN) await workedChecks(timings);
  // --- 2,000 partners ----------------------------------------------------------------------
  await genChecks(timings);

  // next to the binary under test (build/dashboard-timings.json for make test's build/accrue)
  const out = path.join(path.dirname(ACCRUE), 'dashboard-timings.json');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(timings, null, 2) + '\n');
  console.log('render times (ms, performance.measure navigation -> drawn; <view>_full: -> drawn'
    + ' in full, the KPI columns and promotions included):');
  for (const [k, v] of Object.entries(timings)) console.log(`  ${k}: ${typeof v === 'object' ? Object.entries(v).map(([a, b]) => `${a} ${typeof b === "number" ? Math.round(b) : b}`).join(', ') : v}`);
}

async function workedChecks(timings) {
  const wl = workedLedger();
  const wt = tokens(TMP, [[T.admin, 'admin'], [T.finance, 'finance'], [T.auditor, 'auditor'], [T.ingest, 'ingest'], [T.feed, 'feed'],
    ['par-dashboard-P1-01', 'partner', 'P1'], ['par-dashboard-P2-01', 'partner', 'P2'], ['par-dashboard-P3-01', 'partner', 'P3']]);
  const W = await serve(wl, wt);

  await step('headers of the page and its assets', async () => {
    for (const p of ['/', '/assets/app.js', '/assets/app.css']) {
      const r = await fetch(W.base + p);
      const csp = r.headers.get('content-security-policy') || '';
      ok(r.status === 200 && csp.includes("default-src 'self'") && csp.includes("script-src 'self'") && !csp.includes('unsafe')
        && csp.includes("frame-ancestors 'none'") && r.headers.get('x-content-type-options') === 'nosniff'
        && r.headers.get('referrer-policy') === 'no-referrer', `${p}: 200 with CSP, nosniff, no-referrer`, `${r.status} ${csp}`);
      const again = await fetch(W.base + p, { headers: { 'If-None-Match': r.headers.get('etag') } });
      ok(again.status === 304, `${p}: ETag revalidates to 304`, String(again.status));
    }
    const html = await (await fetch(W.base + '/')).text();
    ok(!/<script(?![^>]*\bsrc=)[^>]*>/i.test(html) && !/\son[a-z]+=/i.test(html), 'index.html: no inline script or handler');
    ok((await fetch(W.base + '/assets/nope.js')).status === 404, 'unknown asset: 404');
  });

  for (const role of ['finance', 'admin', 'auditor']) {
    await step(`worked example, ${role}: every view`, async () => {
      const sizes = role === 'finance' ? ['desktop', 'phone'] : ['desktop'];
      for (const size of sizes) {
        const { context, page, rec } = await open(W.base, size);
        await login(page, T[role], 'overview');
        ok(await page.textContent('#role') === role, `${role}: the page shows the role`);
        const noCaption = [];
        for (const v of STAFF_VIEWS) {
          const ms = await visit(page, '#/' + v, v);
          if (v === 'partners' || v === 'overview' || v === 'promotions') await noComputing(page, 20000);
          if (v === 'payouts' && role !== 'admin') {
            await page.click('text=Run draft');
            await noComputing(page, 20000);
          }
          if (role === 'finance') timings.worked[v + '_full'] = await fullTime(page, v, 20000);
          if (role === 'finance') { timings.worked[v] = ms; await shot(page, `${v}-${size}.png`); }
          noCaption.push(...await uncaptioned(page));
        }
        const ms = await visit(page, '#/partners/P1', 'partner');
        await noComputing(page, 20000);
        if (role === 'finance') { timings.worked.partner = ms; await shot(page, `partner-${size}.png`); }
        await page.click('#view button:text("Show lines")');
        await page.waitForSelector('caption:text("Statement 2026-07")');
        noCaption.push(...await uncaptioned(page));
        ok(noCaption.length === 0, `${role} ${size}: every table of every view has a caption`,
          noCaption.join(' ; '));
        clean(rec, `${role} ${size}`);
        await context.close();
      }
    });
  }

  await step('formats: a median of days ending in .5 keeps its half', async () => {
    const { context, page } = await open(W.base, 'desktop');
    const got = await page.evaluate(async () => {
      const f = await import('/assets/fmt.js');
      return [f.days(37.5), f.days(37), f.days(null), f.days(1234.5)];
    });
    ok(JSON.stringify(got) === JSON.stringify(['37.5', '37', '—', '1,234.5']),
      'median_days_to_win as cli.md writes it (37.5, not 37)', JSON.stringify(got));
    await context.close();
  });

  await step('worked example: overview figures', async () => {
    const { context, page, rec } = await open(W.base, 'desktop');
    await login(page, T.finance, 'overview');
    const text = await page.textContent('#view');
    ok(text.includes('c5e27e1ef9f0212498bfa9b06be115cd'), 'overview: the last closed period with its fingerprint');
    ok(text.includes('2026-07'), 'overview: the last closed period id');
    ok(/¥950,000/.test(text), 'overview: open pipeline ¥950,000 in yen without minor digits', text.slice(0, 300));
    await page.click('text=Run draft');
    await noComputing(page, 20000);
    ok((await page.textContent('#view')).includes('¥55,000'), 'overview: draft total of 2026-08 is ¥55,000 (hand-computed in the worked example)');
    await visit(page, '#/payouts', 'payouts');
    await page.click('#view button:text-is("Audit")');
    await page.waitForSelector('.pill.ok', { timeout: 20000 });
    ok(true, 'payouts: audit button reproduces 2026-07');
    const dl = page.waitForEvent('download');
    await page.click('#view table button:text("CSV")');
    const d = await dl;
    const csv = fs.readFileSync(await d.path(), 'utf8');
    ok(csv === fs.readFileSync(path.join(ROOT, 'tests/cli/worked/statement-2026-07.csv'), 'utf8'), 'payouts: CSV download is the closed statement, byte for byte');
    clean(rec, 'overview figures');
    await context.close();
  });

  await step('sign-in routes once: each request once, the view built once', async () => {
    for (const [secret, view] of [[T.finance, 'overview'], ['par-dashboard-P1-01', 'portal']]) {
      const { context, page, rec } = await open(W.base, 'desktop');
      await login(page, secret, view);
      await noComputing(page, 20000);
      await page.waitForTimeout(500); // a second route would have asked again by now
      const n = requestCounts(rec);
      const twice = Object.entries(n).filter(([, c]) => c > 1);
      ok(twice.length === 0 && n['/v1/status'] === 1,
        `${view} after sign-in: every data request made once, /v1/status once`, JSON.stringify(n));
      const navs = await page.evaluate(() => performance.getEntriesByType('mark')
        .filter((m) => m.name.startsWith('nav:')).length);
      ok(navs === 1, `${view} after sign-in: the view is built once`, `${navs} navigations`);
      clean(rec, `${view} sign-in`);
      await context.close();
    }
  });

  await step('the skip link moves the focus to the content, the route stays', async () => {
    const { context, page, rec } = await open(W.base, 'desktop');
    await login(page, T.finance, 'overview');
    await visit(page, '#/partners', 'partners');
    await page.focus('a.skip');
    await page.keyboard.press('Enter');
    await page.waitForTimeout(300);
    const got = await page.evaluate(() => ({ hash: location.hash,
      ready: document.body.dataset.ready, focus: document.activeElement.id }));
    ok(got.hash === '#/partners' && got.ready === 'partners', 'skip link: still on Partners',
      JSON.stringify(got));
    ok(got.focus === 'main', 'skip link: the focus is on the main region', JSON.stringify(got));
    clean(rec, 'skip link');
    await context.close();
  });

  await step('focus survives a redraw: sort header (Enter, then a live commit)', async () => {
    const { context, page, rec } = await open(W.base, 'desktop');
    await login(page, T.finance, 'overview');
    await visit(page, '#/partners', 'partners');
    await noComputing(page, 20000);
    await page.waitForSelector('#live.on');
    await page.focus('th button:text("net revenue")');
    await page.keyboard.press('Enter');
    ok(await focused(page) === 'sort:net', 'partners: Enter on a sort header keeps the focus on it',
      await focused(page));
    ok(await page.getAttribute('th:has(button:text("net revenue"))', 'aria-sort') === 'ascending',
      'partners: sorted by net revenue');
    const at = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const r = await fetch(W.base + '/v1/events', {
      method: 'POST',
      headers: { Authorization: 'Bearer ' + T.finance, 'Content-Type': 'application/json' },
      body: JSON.stringify([{ id: 'dash-focus-1', type: 'rep.added', at,
        data: { partner_id: 'P1', rep_id: 'R8', name: 'Focus Check' } }]) });
    const body = await r.json();
    ok(r.ok, 'a commit while the sort header has the focus', JSON.stringify(body));
    await page.waitForFunction((seq) => Number(document.body.dataset.live) >= seq, body.last_seq,
      { timeout: LIVE_MS });
    await noComputing(page, 20000);
    ok(await focused(page) === 'sort:net',
      'partners: after the live redraw the focus is still on the sort header', await focused(page));
    clean(rec, 'focus');
    await context.close();
  });

  await step('view:<name>:full ends once the late figures are drawn', async () => {
    const { context, page, rec } = await open(W.base, 'desktop');
    await login(page, T.finance, 'overview');
    const views = [['#/partners', 'partners'], ['#/partners/P1', 'partner'],
      ...(PROGRAM ? [['#/promotions', 'promotions']] : [])];
    for (const [hash, name] of views) {
      const r = await visitFull(page, hash, name);
      const full = r.full === null ? '—' : Math.round(r.full);
      ok(r.full !== null && r.full >= r.ms && r.computing === 0,
        `${name}: view:${name}:full measured with nothing left computing`
        + ` (${Math.round(r.ms)} ms drawn, ${full} ms full)`, JSON.stringify(r));
    }
    clean(rec, 'full timing');
    await context.close();
  });

  await step('the hostile partner name is shown as text', async () => {
    const { context, page, rec } = await open(W.base, 'desktop');
    await login(page, T.finance, 'overview');
    await visit(page, '#/partners', 'partners');
    await page.fill('input[type=search]', 'img');
    const cell = await page.locator('#view tbody tr td:nth-child(2)').first().textContent();
    ok(cell === XSS, 'partners: the name cell reads <img src=x onerror=alert(1)>', cell);
    ok(await page.evaluate(() => document.querySelectorAll('#view img, #view script, #view b').length) === 0, 'partners: no element made from ledger text');
    await visit(page, '#/partners/P3', 'partner');
    ok((await page.textContent('#view h1')).includes(XSS), 'partner page: the heading shows the name as text');
    ok(await page.evaluate(() => document.querySelectorAll('#view img, #view script, #view b').length) === 0, 'partner page: no element made from ledger text');
    await visit(page, '#/pipeline', 'pipeline');
    await page.click('#view table button:text("registered")');
    await page.waitForSelector('text=<script>alert(2)</script>');
    ok(await page.evaluate(() => document.querySelectorAll('#view script').length) === 0, 'pipeline: a deal named <script> is text');
    clean(rec, 'xss');
    await context.close();
    const p3 = await open(W.base, 'desktop');
    await login(p3.page, 'par-dashboard-P3-01', 'portal');
    ok((await p3.page.textContent('#whoname')) === XSS, 'portal: the partner name in the header is text');
    ok(await p3.page.evaluate(() => document.querySelectorAll('img:not(.brand img), #view script').length) === 0, 'portal: no element made from ledger text');
    clean(p3.rec, 'xss portal');
    await p3.context.close();
  });

  await step('other roles', async () => {
    for (const role of ['ingest', 'feed']) {
      const { context, page, rec } = await open(W.base, 'desktop');
      await page.fill('#token', T[role]);
      await page.click('#loginform button[type=submit]');
      await page.waitForSelector('text=No dashboard view');
      ok(true, `${role}: logs in and is told it has no view`);
      clean(rec, role);
      await context.close();
    }
    const { context, page, rec } = await open(W.base, 'desktop');
    rec.allow404 = true;
    await page.fill('#token', 'not-a-token-at-all');
    await page.click('#loginform button[type=submit]');
    await page.waitForFunction(() => document.getElementById('loginerr').textContent.length > 0);
    ok(await page.evaluate(() => sessionStorage.length === 0 && localStorage.length === 0 && document.cookie === ''), 'a bad token is refused and not kept');
    await context.close();
  });

  await step('partner P1: the portal, its own data only', async () => {
    for (const size of ['desktop', 'phone']) {
      const { context, page, rec } = await open(W.base, size);
      await login(page, 'par-dashboard-P1-01', 'portal');
      await noComputing(page, 20000);
      const ms = await page.evaluate(() => performance.getEntriesByName('view:portal').pop().duration);
      if (size === 'desktop') timings.worked.portal = ms;
      await page.click('text=Show lines');
      await page.waitForSelector('caption:text("Statement 2026-07")');
      const noCaption = await uncaptioned(page);
      ok(noCaption.length === 0, `portal ${size}: every table has a caption`,
        noCaption.join(' ; '));
      await shot(page, `portal-${size}.png`);
      ok(await page.evaluate(() => sessionStorage.getItem('accrue.token') !== null && localStorage.length === 0 && document.cookie === ''), `portal ${size}: token in sessionStorage only`);
      ok(!(await page.locator('#nav a').allTextContents()).some((t) => t !== 'Portal'), `portal ${size}: the only view is the Portal`);
      await page.evaluate(() => { location.hash = '#/partners/P2'; });
      await page.waitForFunction(() => location.hash === '#/portal' && document.body.dataset.ready === 'portal');
      const text = await page.textContent('body');
      ok(!text.includes('Beta Referral') && !text.includes('P2') && !text.includes(XSS), `portal ${size}: nothing of P2 or P3 on the page`);
      const bodies = await Promise.all(rec.bodies);
      const leak = bodies.filter((b) => b.url.includes('/v1/') && /"P2"|"P3"|Beta Referral|alert\(1\)/.test(b.t));
      ok(leak.length === 0, `portal ${size}: no answer the page received holds P2 or P3`, leak.map((b) => b.url).join(' '));
      ok(!rec.requests.some((u) => /P2|P3/.test(u)), `portal ${size}: no request names another partner`);
      clean(rec, `portal ${size}`);
      // the same token, by hand, for every read the page could make about P2
      rec.allow404 = true;
      const st = await page.evaluate(async () => {
        const h = { Authorization: 'Bearer ' + sessionStorage.getItem('accrue.token'), Accept: 'application/json' };
        const out = [];
        for (const u of ['/v1/partners/P2', '/v1/deals/D3', '/v1/deals?partner=P2', '/v1/pipeline?partner=P2', '/v1/kpi?period=2026-07&partner=P2',
          '/v1/payouts/2026-07/statement?partner=P2', '/v1/payouts', '/v1/feed?from=1'])
          out.push([u, (await fetch(u, { headers: h })).status]);
        return out;
      });
      ok(st.every(([u, s]) => s === 404), `portal ${size}: every read of P2 and every staff list is 404 (http.md: partners get 404 where others get 403)`, JSON.stringify(st));
      await context.close();
    }
  });

  await step('live: a deal registered in the portal shows in finance without a reload', async () => {
    const fin = await open(W.base, 'desktop');
    await login(fin.page, T.finance, 'overview');
    await visit(fin.page, '#/pipeline', 'pipeline');
    await fin.page.waitForSelector('#live.on');
    const count = () => fin.page.evaluate(() => {
      for (const tr of document.querySelectorAll('#view tbody tr')) if (tr.cells[0].textContent === 'registered') return tr.cells[1].textContent;
      return null;
    });
    const before = await count();
    const par = await open(W.base, 'desktop');
    await login(par.page, 'par-dashboard-P1-01', 'portal');
    await par.page.fill('label:text("Customer id") + input', 'C-LIVE-1');
    await par.page.fill('label:text("Deal name") + input', 'Live one');
    await par.page.fill('label:text("Amount (JPY)") + input', '77000');
    const resp = par.page.waitForResponse((r) => r.url().endsWith('/v1/deals') && r.request().method() === 'POST');
    await par.page.click('text=Register deal');
    const r = await resp;
    const t0 = Date.now();
    ok(r.status() === 200 || r.status() === 201, 'portal: deal registered', String(r.status()));
    await fin.page.waitForFunction((b) => {
      for (const tr of document.querySelectorAll('#view tbody tr')) if (tr.cells[0].textContent === 'registered') return tr.cells[1].textContent !== b;
      return false;
    }, before, { timeout: LIVE_MS });
    const dt = Date.now() - t0;
    timings.live_ms = dt;
    ok(Number.isFinite(dt), `finance pipeline updated live, ${dt} ms after the commit was acknowledged (goal 1 s: a figure, not a check)`);
    await par.page.waitForSelector('text=Live one');
    // move it in the portal: the finance deal list follows
    await fin.page.click('#view table button:text("qualified")');
    const row = par.page.locator('#view tr', { hasText: 'Live one' });
    await row.locator('button:text("Move")').click();
    await par.page.waitForSelector('text=moved to qualified');
    await fin.page.waitForSelector('text=C-LIVE-1', { timeout: LIVE_MS });
    ok(true, 'finance: the moved deal appears in the qualified list live');
    clean(fin.rec, 'live finance');
    clean(par.rec, 'live partner');
    await fin.context.close();
    await par.context.close();
  });

  await step('program views: promotions, announcements, onboarding, a live acknowledgement', async () => {
    const st = await (await fetch(W.base + '/v1/status', { headers: { Authorization: 'Bearer ' + T.finance } })).json();
    if (!PROGRAM || !st.features.includes('announcements')) {
      console.log(`  skip program views: this build has no program endpoints (features ${JSON.stringify(st.features)})`);
      return;
    }
    const fin = await open(W.base, 'desktop');
    await login(fin.page, T.finance, 'overview');
    await noComputing(fin.page, 20000);
    ok(/33\.33 %/.test(await fin.page.textContent('#view')), 'overview: 1 of 3 partners certified, shown as 33.33 %');
    await visit(fin.page, '#/promotions', 'promotions');
    await noComputing(fin.page, 20000);
    ok((await fin.page.textContent('#view')).includes('Q4 cloud push'), 'promotions: the promotion is listed');
    ok((await fin.page.textContent('#view')).includes('¥100,000'), 'promotions: budget left in the plan currency');
    await visit(fin.page, '#/announcements', 'announcements');
    const ackCell = () => fin.page.evaluate(() => {
      for (const tr of document.querySelectorAll('#view tbody tr')) if (tr.cells[0].textContent === 'A1') return tr.cells[5].textContent;
      return null;
    });
    const before = await ackCell();
    ok(await fin.page.evaluate(() => [...document.querySelectorAll('#view td')].some((td) => td.textContent === '<img src=x onerror=alert(3)>')), 'announcements: a hostile title is text');
    const par = await open(W.base, 'desktop');
    await login(par.page, 'par-dashboard-P2-01', 'portal');
    ok((await par.page.textContent('#view')).includes('Prices change on 1 October.'), 'portal: the text of the announcement the partner is asked to acknowledge is shown');
    ok(await par.page.isVisible('#view details.ann-body[open] p'), 'portal: a pending announcement\'s text is unfolded');
    ok((await fin.page.textContent('#view')).includes('Gold partners only.'), 'announcements: staff see each text');
    const resp = par.page.waitForResponse((r) => r.url().includes('/v1/announcements/A1/ack'));
    await par.page.click('#view button:text-is("Acknowledge")');
    ok((await resp).ok(), 'portal: acknowledged A1');
    const t0 = Date.now();
    await fin.page.waitForFunction((b) => {
      for (const tr of document.querySelectorAll('#view tbody tr')) if (tr.cells[0].textContent === 'A1') return tr.cells[5].textContent !== b;
      return false;
    }, before, { timeout: LIVE_MS });
    timings.live_ack_ms = Date.now() - t0;
    ok(Number.isFinite(timings.live_ack_ms), `finance announcements: the acknowledgement shows live, ${timings.live_ack_ms} ms after it was committed (goal 1 s: a figure, not a check)`);
    await par.page.waitForSelector('#view .pill.ok:text("read")');
    ok(true, 'portal: A1 now reads "read"');
    ok(!(await par.page.textContent('#view')).includes('onerror=alert(3)'), 'portal: P2 (silver) does not see the gold-only announcement');
    // publish from the form
    await fin.page.fill('label:text("Announcement id") + input', 'A3');
    await fin.page.fill('label:text("Title") + input', 'Partner summit');
    await fin.page.fill('label:text("Body") + textarea', 'Tokyo, 12 November.');
    await fin.page.click('button:text("Publish")');
    await fin.page.waitForSelector('#view td:text-is("Partner summit")', { timeout: LIVE_MS });
    ok(true, 'announcements: published from the form, listed live');
    await shot(fin.page, 'announcements-desktop.png');
    await visit(fin.page, '#/promotions', 'promotions');
    await noComputing(fin.page, 20000);
    await shot(fin.page, 'promotions-desktop.png');
    await visit(fin.page, '#/partners/P1', 'partner');
    await noComputing(fin.page, 20000);
    ok((await fin.page.textContent('#view')).includes('2 of 2 modules'), 'partner page: onboarding progress from /v1/onboarding');
    await visit(par.page, '#/portal', 'portal');
    clean(fin.rec, 'program finance');
    clean(par.rec, 'program partner');
    await fin.context.close();
    await par.context.close();
  });

  await step('logout forgets the token', async () => {
    const { context, page, rec } = await open(W.base, 'desktop');
    await login(page, T.auditor, 'overview');
    await page.click('#logout');
    await page.waitForFunction(() => document.body.dataset.ready === 'login');
    ok(await page.evaluate(() => sessionStorage.length === 0), 'logout clears sessionStorage');
    clean(rec, 'logout');
    await context.close();
  });

}

// The overview's events of the last 24 h: "≥ N" with a title when the server counted a window
// of the log only (events_24h_partial).
async function events24Check(page, size) {
  const got = await page.evaluate(async () => {
    const h = { Authorization: 'Bearer ' + sessionStorage.getItem('accrue.token'),
      Accept: 'application/json' };
    const st = await (await fetch('/v1/status', { headers: h })).json();
    const card = [...document.querySelectorAll('#view .card')]
      .find((c) => c.querySelector('h2').textContent === 'Events, last 24 h');
    const big = card && card.querySelector('.big');
    return { partial: st.events_24h_partial, text: big ? big.textContent : null,
      title: big ? big.title : null };
  });
  if (!got.partial) {
    console.log(`  skip ${size} overview "≥": the log fits the server's window`);
    return;
  }
  ok(/^≥ [\d,]+$/.test(got.text) && /lower bound/.test(got.title || ''),
    `${size} overview: events of the last 24 h read "≥ N", titled a lower bound, when partial`,
    JSON.stringify(got));
}

// A statement's lines (Payouts "Lines", a partner's "Show lines") come a page of 100 rows at a
// time with the row count, and Enter on Next shows the next 100 with the focus kept on Next.
async function linesPagedCheck(page, label, button, partner) {
  await page.click(button);
  const tableSel = '#view table:has(caption:text-matches("^Statement [0-9]"))';
  await page.waitForSelector(tableSel, { timeout: 60000 });
  const lines = await page.evaluate(async (p) => {
    const h = { Authorization: 'Bearer ' + sessionStorage.getItem('accrue.token'),
      Accept: 'application/json' };
    const cap = [...document.querySelectorAll('#view caption')]
      .find((c) => c.textContent.startsWith('Statement '));
    const period = cap.textContent.match(/Statement (\S+)/)[1];
    const url = `/v1/payouts/${period}/statement${p ? '?partner=' + p : ''}`;
    const st = await (await fetch(url, { headers: h })).json();
    return st.lines.map((l) => String(l.line));
  }, partner);
  const rows = await page.locator(`${tableSel} tbody tr`).count();
  const pager = page.locator(`${tableSel} >> xpath=ancestor::div[contains(@class,"tablewrap")]`
    + '/following-sibling::div[@class="pager"]');
  const pagerText = (await pager.count()) ? await pager.textContent() : '';
  const counted = pagerText.includes(`${lines.length.toLocaleString('en')} rows`);
  ok(rows === Math.min(100, lines.length) && counted,
    `${label}: statement lines drawn 100 a page with the row count (${lines.length} lines)`,
    `${rows} rows; pager "${pagerText}"`);
  if (lines.length <= 100 || !(await pager.count())) return;
  await pager.locator('button[aria-label="Next page"]').focus();
  await page.keyboard.press('Enter');
  const first = await page.textContent(`${tableSel} tbody tr td`);
  ok(first === lines[100] && await focused(page) === 'pager:next',
    `${label}: Enter on Next shows lines 101–200, the focus stays on Next`,
    `${first} ${await focused(page)}`);
}

async function genChecks(timings) {
  // On a big existing ledger (--ledger) the commission figures take a replay of the whole log:
  // the views must draw without them; the wait for them is bounded and recorded, not failed.
  const settle = (page) => (BIG ? noComputing(page, 5000).catch(() => -1) : noComputing(page, 60000));
  await step(`${BIG ? 'ledger ' + BIG : `generated ledger of ${PARTNERS} partners`}: every view, timed`, async () => {
    const g = genLedger();
    const gt = tokens(TMP, [[T.finance, 'finance'], ['par-dashboard-gen-01', 'partner', g.first]]);
    const G = await serve(g.l, gt);
    timings.gen.events = g.events;
    for (const size of ['desktop', 'phone']) {
      const { context, page, rec } = await open(G.base, size);
      await login(page, T.finance, 'overview');
      // the view drawn right after login also pays for the first load of the modules: kept apart
      if (size === 'desktop') timings.gen.overview_after_login = await page.evaluate(() => performance.getEntriesByName('view:overview').pop().duration);
      for (const v of [...STAFF_VIEWS.slice(1), STAFF_VIEWS[0]]) {
        const ms = await visit(page, '#/' + v, v);
        if (size === 'desktop') timings.gen[v] = ms;
        const full = await fullTime(page, v, BIG ? 5000 : 60000);
        if (size === 'desktop') timings.gen[v + '_full'] = full ?? 'not drawn in full in time';
        if (v === 'promotions') await settle(page);
        if (v === 'partners') {
          const slow = await settle(page);
          if (size === 'desktop') timings.gen.partners_kpi_filled = slow < 0 ? 'still computing after 5 s' : slow;
          const rows = await page.locator('#view tbody tr').count();
          ok(rows === 50, `${size} partners: a page of 50`, String(rows));
          await page.click('th button:text("net revenue")');
          await page.click('th button:text("net revenue")');
          const cap = await page.textContent('#view caption');
          const n = JSON.parse(acc(g.l, 'partner', 'list', '--format', 'json')).length;
          ok(cap.includes(n.toLocaleString('en')), `${size} partners: caption counts every partner`, cap);
          ok(await focused(page) === 'sort:net',
            `${size} partners: the focus stays on the sort header clicked`, await focused(page));
          const where = async () => `${await page.textContent('#view .pager')}`
            + ` | ${await focused(page)}`;
          await page.focus('#view button[aria-label="Next page"]');
          await page.keyboard.press('Enter');
          ok(/page 2 of .* \| pager:next$/.test(await where()),
            `${size} partners: Enter on Next page shows page 2, the focus stays on Next`,
            await where());
          await page.focus('#view button[aria-label="Previous page"]');
          await page.keyboard.press('Enter'); // back on page 1, where Previous is disabled
          ok(/page 1 of .* \| pager:next$/.test(await where()),
            `${size} partners: Enter on Previous page to page 1 hands the focus to Next`,
            await where());
          if (size === 'desktop' && !BIG) await shot(page, 'partners-2000-desktop.png');
        }
        if (v === 'pipeline' && !BIG) {
          // dashboard.md: a stage opens the list of its deals, all of them, a page at a time
          const counts = JSON.parse(acc(g.l, 'pipeline', '--format', 'json'))
            .filter((r) => r.stage === 'registered').reduce((a, r) => a + r.deals, 0);
          await page.click('#view table button:text("registered")');
          await page.waitForSelector('#view caption:has-text("Open deals in registered")');
          const cap = async () => page.textContent('#view caption:has-text("Open deals in registered")');
          ok(counts > 200 && (await cap()).includes(`1–200 of ${counts.toLocaleString('en')}`),
            `${size} pipeline: a stage of ${counts} deals lists 1–200 of them with the count`, await cap());
          await page.focus('#view button[aria-label="Next page"]');
          await page.keyboard.press('Enter');
          await page.waitForSelector('#view caption:has-text("201–")');
          ok((await cap()).includes(`201–400 of ${counts.toLocaleString('en')}`) && await focused(page) === 'pager:next',
            `${size} pipeline: Next lists deals 201–400, the focus stays on Next`, `${await cap()} ${await focused(page)}`);
        }
        if (v === 'overview' && size === 'desktop' && !BIG) await shot(page, 'overview-2000-desktop.png');
        if (v === 'overview') await events24Check(page, size);
        if (v === 'payouts') {
          await linesPagedCheck(page, size, '#view button:text-is("Lines")', null);
        }
      }
      const ms = await visit(page, '#/partners/' + encodeURIComponent(g.first), 'partner');
      if (size === 'desktop') timings.gen.partner = ms;
      const full = await fullTime(page, 'partner', BIG ? 5000 : 60000);
      if (size === 'desktop') timings.gen.partner_full = full ?? 'not drawn in full in time';
      await settle(page);
      await linesPagedCheck(page, `${size} partner page`, '#view button:text("Show lines")',
        g.first);
      if (size === 'desktop' && !BIG) { // two more rounds: the median of three is the figure reported
        const runs = {};
        const timed = async (v, hash) => {
          (runs[v] ||= [timings.gen[v]]).push(await visit(page, hash, v));
          (runs[v + '_full'] ||= [timings.gen[v + '_full']]).push(await fullTime(page, v, 60000));
        };
        for (let round = 0; round < 2; round++) {
          for (const v of [...STAFF_VIEWS.slice(1), STAFF_VIEWS[0]]) await timed(v, '#/' + v);
          await timed('partner', '#/partners/' + encodeURIComponent(g.first));
          await settle(page);
        }
        for (const [v, xs] of Object.entries(runs))
          if (xs.every((x) => typeof x === 'number')) timings.gen[v] = xs.sort((a, b) => a - b)[1];
      }
      clean(rec, `2000 partners ${size}`);
      await context.close();
    }
    const { context, page, rec } = await open(G.base, 'desktop');
    await login(page, 'par-dashboard-gen-01', 'portal');
    timings.gen.portal = await page.evaluate(() => performance.getEntriesByName('view:portal').pop().duration);
    timings.gen.portal_full = (await fullTime(page, 'portal', BIG ? 5000 : 60000))
      ?? 'not drawn in full in time';
    await settle(page);
    clean(rec, '2000 partners portal');
    await context.close();
    for (const [v, ms] of Object.entries(timings.gen))
      if (STAFF_VIEWS.includes(v) || v === 'partner' || v === 'portal') ok(typeof ms === 'number' && Number.isFinite(ms), `${v}: drawn, render time measured: ${Math.round(ms)} ms (goal 300 ms on an idle machine: a figure, not a check)`, String(ms));
    for (const v of ['partners', 'promotions', 'partner', 'portal']) {
      const ms = timings.gen[v + '_full'];
      const shown = typeof ms === 'number' ? Math.round(ms) + ' ms' : ms;
      ok(BIG || typeof ms === 'number',
        `${v}: drawn in full (view:${v}:full, the late figures included): ${shown}`, String(ms));
    }
  });
}

const watchdog = setTimeout(() => { ok(false, 'finished within 600 s'); stopAll().then(() => process.exit(1)); }, 600000);
try { await main(); } catch (e) { ok(false, 'run', e.stack); }
clearTimeout(watchdog);
await stopAll();
console.log(`run.mjs: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
