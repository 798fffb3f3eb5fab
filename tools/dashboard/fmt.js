// fmt.js - numbers in the currency with its minor units, dates in the ledger's business time
// zone (the fixed UTC offset of `accrue init --utc-offset`). Amounts are integers of minor
// units and are formatted from BigInt: no float touches a money value.

let offsetMin = 0;
export function setOffset(min) { offsetMin = min | 0; }
export function offsetLabel() {
  const s = offsetMin < 0 ? '-' : '+', a = Math.abs(offsetMin);
  return `UTC${s}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
}

const digitsCache = new Map();
export function minorDigits(cur) {
  if (!digitsCache.has(cur)) {
    let d = 2;
    try { d = new Intl.NumberFormat('en', { style: 'currency', currency: cur }).resolvedOptions().maximumFractionDigits; } catch { d = 2; }
    digitsCache.set(cur, d);
  }
  return digitsCache.get(cur);
}

export function big(v) {
  if (typeof v === 'bigint') return v;
  if (v === null || v === undefined || v === '') return 0n;
  return BigInt(typeof v === 'number' ? Math.trunc(v) : String(v));
}

// money(123456, 'USD') -> "$1,234.56"; money(1200000, 'JPY') -> "¥1,200,000".
export function money(minor, cur) {
  if (minor === null || minor === undefined) return '—';
  const v = big(minor), d = minorDigits(cur || 'XXX');
  const neg = v < 0n, a = neg ? -v : v, p = 10n ** BigInt(d);
  const ip = a / p, fp = (a % p).toString().padStart(d, '0');
  let parts;
  try {
    parts = new Intl.NumberFormat('en', { style: 'currency', currency: cur, minimumFractionDigits: d, maximumFractionDigits: d }).formatToParts(ip);
  } catch {
    return `${neg ? '-' : ''}${ip.toLocaleString('en')}${d ? '.' + fp : ''} ${cur || ''}`.trim();
  }
  const out = parts.map((x) => (x.type === 'fraction' ? fp : x.value)).join('');
  return neg ? '-' + out : out;
}

export function int(n) { return n === null || n === undefined ? '—' : big(n).toLocaleString('en'); }
// A count of days that may end in .5 (cli.md: median_days_to_win, "an integer or with one
// decimal .5"): 37 -> "37", 37.5 -> "37.5", 1234.5 -> "1,234.5".
export function days(n) {
  if (n === null || n === undefined) return '—';
  return Number.isInteger(n) ? int(n) : Number(n).toLocaleString('en', { minimumFractionDigits: 1, maximumFractionDigits: 1 });
}
export function bp(v) {
  if (v === null || v === undefined) return '—';
  const n = Math.trunc(v), s = n < 0 ? '-' : '', a = Math.abs(n);
  return `${s}${Math.floor(a / 100)}.${String(a % 100).padStart(2, '0')} %`;
}

// "2026-07-02T01:00:00Z" -> "2026-07-02 10:00" at +09:00.
export function dateTime(iso) {
  if (!iso) return '—';
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return String(iso);
  const d = new Date(ms + offsetMin * 60000);
  const p = (x) => String(x).padStart(2, '0');
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}`;
}

// Periods: "YYYY-MM" or "YYYY-Qn".
export function nextPeriod(p) {
  let m = /^(\d{4})-Q([1-4])$/.exec(p);
  if (m) return +m[2] === 4 ? `${+m[1] + 1}-Q1` : `${m[1]}-Q${+m[2] + 1}`;
  m = /^(\d{4})-(\d{2})$/.exec(p);
  if (!m) return p;
  return +m[2] === 12 ? `${+m[1] + 1}-01` : `${m[1]}-${String(+m[2] + 1).padStart(2, '0')}`;
}
export function prevPeriod(p) {
  let m = /^(\d{4})-Q([1-4])$/.exec(p);
  if (m) return +m[2] === 1 ? `${+m[1] - 1}-Q4` : `${m[1]}-Q${+m[2] - 1}`;
  m = /^(\d{4})-(\d{2})$/.exec(p);
  if (!m) return p;
  return +m[2] === 1 ? `${+m[1] - 1}-12` : `${m[1]}-${String(+m[2] - 1).padStart(2, '0')}`;
}
export function periodOf(day, kind) {
  const y = day.slice(0, 4), m = +day.slice(5, 7);
  return kind === 'quarter' ? `${y}-Q${Math.floor((m - 1) / 3) + 1}` : `${y}-${day.slice(5, 7)}`;
}
export function quarterOf(month) {
  const m = /^(\d{4})-(\d{2})$/.exec(month);
  return m ? `${m[1]}-Q${Math.floor((+m[2] - 1) / 3) + 1}` : month;
}
