// load.mjs - the fast loader: accrue JSON Lines -> the CSV tables the SQL peers bulk-load.
//
//     node load.mjs EVENTS.jsonl OUTDIR [--utc-offset +09:00] [--period month|quarter] [--seq-base 0]
//
// Same tables and bytes as load.py (which is the readable reference and also validates a
// history with --validate); this one is used by the benchmark because V8's JSON.parse is several
// times faster than CPython's. It does what accrue's append does at ingest and no more: parse,
// give each event its seq (line number + --seq-base), turn `at` into UTC ms and canonical text,
// derive the local day and period under the ledger's UTC offset. Every commission rule is left
// to statement.sql. Partner attributes are assumed constant: partner.updated is refused.
import fs from 'node:fs';
import path from 'node:path';

const MS_PER_DAY = 86400000;
const TS_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?(Z|[+-]\d{2}:\d{2})$/;

function fail(msg) {
    process.stderr.write(`load.mjs: ${msg}\n`);
    process.exit(3);
}

const args = process.argv.slice(2);
const opt = { offset: '+00:00', period: 'month', seqBase: 0 };
const pos = [];
for (let i = 0; i < args.length; i++) {
    if (args[i] === '--utc-offset') opt.offset = args[++i];
    else if (args[i] === '--period') opt.period = args[++i];
    else if (args[i] === '--seq-base') opt.seqBase = Number(args[++i]);
    else pos.push(args[i]);
}
if (pos.length !== 2) {
    process.stderr.write('usage: node load.mjs EVENTS.jsonl OUTDIR [--utc-offset +hh:mm] ' +
        '[--period month|quarter] [--seq-base N]\n');
    process.exit(2);
}
const om = /^([+-])(\d{2}):(\d{2})$/.exec(opt.offset);
if (!om) fail(`bad --utc-offset ${opt.offset}`);
const offsetMs = (om[1] === '-' ? -1 : 1) * (Number(om[2]) * 60 + Number(om[3])) * 60000;
const quarter = opt.period === 'quarter';

const dayCache = new Map();   // "YYYY-MM-DD" -> day number
const periodCache = new Map(); // local day -> [period id, last local day]

function dayOf(y, m, d) {
    const ms = Date.UTC(y, m - 1, d);
    const dt = new Date(ms);
    if (dt.getUTCFullYear() !== y || dt.getUTCMonth() !== m - 1 || dt.getUTCDate() !== d) {
        throw new Error('invalid date');
    }
    return Math.floor(ms / MS_PER_DAY);
}

function parseTs(s) {
    if ((s.length === 20 || s.length === 24) && s[19 + (s.length === 24 ? 4 : 0)] === 'Z' &&
        s[10] === 'T' && (s.length === 20 || s[19] === '.')) {
        const day = dayCache.get(s.slice(0, 10));
        if (day !== undefined) {
            let ms = ((+s.slice(11, 13) * 60 + +s.slice(14, 16)) * 60 + +s.slice(17, 19)) * 1000;
            if (s.length === 24) ms += +s.slice(20, 23);
            if (!Number.isNaN(ms)) return day * MS_PER_DAY + ms;
        }
    }
    const m = TS_RE.exec(s);
    if (!m) throw new Error(`invalid_timestamp ${s}`);
    if (+m[4] > 23 || +m[5] > 59 || +m[6] > 59) throw new Error(`invalid_timestamp ${s}`);
    const day = dayOf(+m[1], +m[2], +m[3]);
    dayCache.set(s.slice(0, 10), day);
    let ms = day * MS_PER_DAY + ((+m[4] * 60 + +m[5]) * 60 + +m[6]) * 1000;
    if (m[7]) ms += Number(m[7].padEnd(3, '0'));
    if (m[8] !== 'Z') {
        const mins = Number(m[8].slice(1, 3)) * 60 + Number(m[8].slice(4, 6));
        ms -= (m[8][0] === '+' ? 1 : -1) * mins * 60000;
    }
    return ms;
}

function canonicalOf(text, ms) {
    if (text.endsWith('Z') && (text.length === 20 || (text.length === 24 && text.slice(20, 23) !== '000'))) {
        return text;
    }
    const iso = new Date(ms).toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
    return iso.endsWith('.000Z') ? iso.slice(0, 19) + 'Z' : iso;
}

function periodOf(day) {
    let p = periodCache.get(day);
    if (p === undefined) {
        const dt = new Date(day * MS_PER_DAY);
        const y = dt.getUTCFullYear(), m = dt.getUTCMonth(); // 0-based month
        if (quarter) {
            const q = Math.floor(m / 3);
            p = [`${y}-Q${q + 1}`, Math.floor(Date.UTC(y, q * 3 + 3, 1) / MS_PER_DAY) - 1];
        } else {
            p = [`${y}-${String(m + 1).padStart(2, '0')}`,
                Math.floor(Date.UTC(y, m + 1, 1) / MS_PER_DAY) - 1];
        }
        periodCache.set(day, p);
    }
    return p;
}

const nz = (v) => (v === undefined || v === null ? '' : String(v));
const localDay = (ms) => Math.floor((ms + offsetMs) / MS_PER_DAY);

fs.mkdirSync(pos[1], { recursive: true });
const names = ['partners', 'plans', 'rules', 'brackets', 'targets', 'sales', 'refunds',
    'adjustments', 'periods', 'onboarding', 'trainings', 'promos', 'promo_ends'];
const out = {};
for (const n of names) out[n] = { fd: fs.openSync(path.join(pos[1], `${n}.csv`), 'w'), buf: [] , len: 0 };
function put(n, line) {
    const o = out[n];
    o.buf.push(line);
    o.len += line.length;
    if (o.len > (1 << 20)) flush(o);
}
function flush(o) {
    if (o.buf.length) fs.writeSync(o.fd, o.buf.join(''));
    o.buf = [];
    o.len = 0;
}

const certOf = (mt) => (mt.certified === undefined ? '' : mt.certified ? '1' : '0');
const dayOfText = (s) => { const [y, m, d] = s.split('-').map(Number); return dayOf(y, m, d); };

function writePromo(seq, p) {
    const mt = p.match || {};
    put('promos', `${p.promo_id},${p.plan_id},${seq},${dayOfText(p.from)},${dayOfText(p.to)},` +
        `${nz(mt.tier)},${nz(mt.kind)},${nz(mt.region)},${nz(mt.product)},${certOf(mt)},` +
        `${p.rate_bp || 0},${p.per_sale_minor || 0},${nz(p.budget_minor)}\n`);
}

function writePlan(p) {
    const [y, m, d] = p.effective_from.split('-').map(Number);
    const key = `${p.plan_id},${p.version}`;
    put('plans', `${key},${dayOf(y, m, d)},${nz(p.clawback_days)},${nz(p.new_customer_bonus_minor)},${nz(p.cap_bp)}\n`);
    p.rules.forEach((r, i) => {
        const mt = r.match || {};
        for (const v of Object.values(mt)) if (v === '') fail('an empty match value cannot be told from NULL');
        put('rules', `${key},${i},${nz(mt.tier)},${nz(mt.kind)},${nz(mt.region)},${nz(mt.product)},${certOf(mt)}\n`);
        r.brackets.forEach((b, j) => {
            const upper = j + 1 < r.brackets.length ? r.brackets[j + 1].from_minor : '';
            put('brackets', `${key},${i},${b.from_minor},${upper},${b.rate_bp}\n`);
        });
    });
    for (const t of p.targets || []) put('targets', `${key},${t.net_revenue_minor},${t.bonus_minor}\n`);
}

const periods = new Map();
const counts = {};
let seq = opt.seqBase;
const wanted = ['sale.re', 'adjustment.recorded', 'partner.', 'plan.published',
    'training.completed', 'onboarding.defined', 'promotion.'];

function onLine(line) {
    seq++;
    if (!wanted.some((w) => line.includes(w))) {
        counts.other = (counts.other || 0) + 1;
        return;
    }
    let ev, at;
    try {
        ev = JSON.parse(line);
        at = parseTs(ev.at);
    } catch (e) {
        fail(`line ${seq - opt.seqBase}: ${e.message}`);
    }
    const t = ev.type, d = ev.data;
    counts[t] = (counts[t] || 0) + 1;
    if (t === 'sale.recorded') {
        if (/[,"]/.test(d.product)) fail(`line ${seq - opt.seqBase}: a product with , or " is not supported`);
        const day = localDay(at), [per, last] = periodOf(day);
        periods.set(per, last);
        put('sales', `${seq},${d.sale_id},${d.partner_id},${d.customer_id},${d.product},${d.amount_minor},${at},${canonicalOf(ev.at, at)},${day},${per}\n`);
    } else if (t === 'sale.refunded') {
        const day = localDay(at), [per, last] = periodOf(day);
        periods.set(per, last);
        put('refunds', `${seq},${ev.id},${d.sale_id},${d.amount_minor},${at},${canonicalOf(ev.at, at)},${day},${per}\n`);
    } else if (t === 'adjustment.recorded') {
        const [per, last] = periodOf(localDay(at));
        periods.set(per, last);
        put('adjustments', `${seq},${ev.id},${d.partner_id},${d.amount_minor},${at},${canonicalOf(ev.at, at)},${per}\n`);
    } else if (t === 'partner.registered') {
        put('partners', `${d.partner_id},${d.kind},${d.tier},${nz(d.region)},${d.plan_id},${d.currency}\n`);
    } else if (t === 'plan.published') {
        writePlan(d.plan);
    } else if (t === 'training.completed') {
        put('trainings', `${d.partner_id},${d.module},${at}\n`);
    } else if (t === 'onboarding.defined') {
        for (const m of d.modules) {
            if (/[,"]/.test(m)) fail(`line ${seq - opt.seqBase}: a module with , or " is not supported`);
            put('onboarding', `${seq},${at},${m}\n`);
        }
    } else if (t === 'promotion.published') {
        writePromo(seq, d.promotion);
    } else if (t === 'promotion.ended') {
        put('promo_ends', `${d.promo_id},${seq},${dayOfText(d.ends_on)}\n`);
    } else if (t === 'partner.updated') {
        fail(`line ${seq - opt.seqBase}: partner.updated is not supported: the peers assume constant partner attributes`);
    }
}

const fd = fs.openSync(pos[0], 'r');
const chunk = Buffer.allocUnsafe(8 << 20);
let carry = Buffer.alloc(0);
for (;;) {
    const n = fs.readSync(fd, chunk, 0, chunk.length, null);
    if (n === 0) break;
    const buf = carry.length ? Buffer.concat([carry, chunk.subarray(0, n)]) : chunk.subarray(0, n);
    const last = buf.lastIndexOf(10); // cut at a newline byte: never inside a UTF-8 sequence
    if (last === -1) {
        carry = Buffer.from(buf);
        continue;
    }
    const text = buf.toString('utf8', 0, last + 1);
    carry = Buffer.from(buf.subarray(last + 1));
    let start = 0, nl;
    while ((nl = text.indexOf('\n', start)) !== -1) {
        if (nl > start) onLine(text.slice(start, nl));
        start = nl + 1;
    }
}
if (carry.length) onLine(carry.toString('utf8'));
for (const per of [...periods.keys()].sort()) put('periods', `${per},${periods.get(per)}\n`);
for (const n of names) {
    flush(out[n]);
    fs.closeSync(out[n].fd);
}
process.stderr.write(`load.mjs: ${seq - opt.seqBase} events (${Object.keys(counts).sort().map((k) => `${k} ${counts[k]}`).join(', ')})\n`);
