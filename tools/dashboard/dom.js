// dom.js - building the page without HTML strings: every value from the ledger goes in as
// text (textContent / createTextNode), never as markup, so a partner named
// `<img src=x onerror=alert(1)>` is shown as those characters.

// el('td', {class: 'num', on: {click: f}, attrs...}, child, 'text', ...)
export function el(tag, props, ...kids) {
  const n = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'on') for (const [ev, f] of Object.entries(v)) n.addEventListener(ev, f);
      else if (k === 'text') n.textContent = String(v);
      else if (k === 'class') n.className = v;
      else if (k === 'value') n.value = v;
      else if (k === 'checked') n.checked = !!v;
      else n.setAttribute(k, v === true ? '' : String(v));
    }
  }
  add(n, kids);
  return n;
}

function add(n, kids) {
  for (const k of kids) {
    if (k === undefined || k === null || k === false) continue;
    if (Array.isArray(k)) add(n, k);
    else if (k instanceof Node) n.appendChild(k);
    else n.appendChild(document.createTextNode(String(k)));
  }
}

export function clear(n) {
  while (n.firstChild) n.removeChild(n.firstChild);
  return n;
}

// Replaces n's content. A redraw keeps the keyboard focus: when the focused control was inside
// n and the redraw removed it, the control of the same key in the new content takes the focus
// (the same sort header, pager button, search box; a disabled one hands it to its neighbour).
export function replace(n, ...kids) {
  const had = document.activeElement;
  const key = had && had !== document.body && n.contains(had) ? focusKey(had) : null;
  clear(n);
  add(n, kids);
  if (key !== null && document.activeElement !== had) {
    if (had.isConnected) had.focus({ preventScroll: true });
    else refocus(n, key);
  }
  return n;
}

const FOCUSABLE = 'a[href], button, input, select, textarea, summary';
// A control's key: its data-focus when it has one, else what it is, says and where it sits
// (the first cell of its table row and its column), e.g. the "Lines" button of 2026-07.
function focusKey(n) {
  if (n.dataset && n.dataset.focus) return n.dataset.focus;
  const row = n.closest('tr'), cell = n.closest('td, th');
  const at = row && row.cells.length ? `${row.cells[0].textContent}|${cell ? cell.cellIndex : ''}|`
    : '';
  const label = n.getAttribute('aria-label')
    || (n.labels && n.labels[0] ? n.labels[0].textContent : '');
  return `${at}${n.tagName}|${label}|${n.textContent}`;
}
function refocus(n, key) {
  let t = null;
  for (const c of n.querySelectorAll(FOCUSABLE)) if (focusKey(c) === key) { t = c; break; }
  if (t && t.disabled) {
    t = [...t.parentElement.querySelectorAll(FOCUSABLE)].find((c) => !c.disabled) || null;
  }
  if (t) t.focus({ preventScroll: true });
}

// An in-app link: the hash route is built from encoded parts, never from raw text.
export function link(text, ...parts) {
  return el('a', { href: '#/' + parts.map(encodeURIComponent).join('/') }, text);
}

// table({caption, cols: [{label, num?, sort?}], rows: [[cell...]], sort: {key, dir}, onSort});
// hideCaption: the caption is for screen readers only (a card's heading already says it).
export function table({ caption, hideCaption, cols, rows, sort, onSort, rowClass }) {
  const head = el('tr', null, cols.map((c) => {
    const th = el('th', { scope: 'col', class: c.num ? 'num' : (c.cls || null) });
    if (c.sort && onSort) {
      if (sort && sort.key === c.sort) th.setAttribute('aria-sort', sort.dir > 0 ? 'ascending' : 'descending');
      th.appendChild(el('button', { type: 'button', class: 'sort', 'data-focus': 'sort:' + c.sort,
        on: { click: () => onSort(c.sort) } }, c.label));
    } else th.textContent = c.label;
    return th;
  }));
  const body = el('tbody', null, rows.map((r, i) => el('tr', { class: rowClass ? rowClass(i) : null },
    r.map((cell, j) => {
      const td = el('td', { class: cols[j].num ? 'num' : (cols[j].cls || null) });
      if (cell instanceof Node) td.appendChild(cell);
      else if (cell !== undefined && cell !== null) td.textContent = String(cell);
      return td;
    }))));
  return el('div', { class: 'tablewrap' },
    el('table', null, caption ? el('caption', { class: hideCaption ? 'vh' : null }, caption) : null,
      el('thead', null, head), body));
}

// A horizontal-label bar chart drawn as SVG (no library): bars [{label, value, note}].
export function barChart(bars, { title, fmt }) {
  const NS = 'http://www.w3.org/2000/svg';
  const mk = (t, a) => { const n = document.createElementNS(NS, t); for (const [k, v] of Object.entries(a || {})) n.setAttribute(k, v); return n; };
  const rowH = 30, labelW = 120, w = 640, h = Math.max(1, bars.length) * rowH + 10;
  const svg = mk('svg', { viewBox: `0 0 ${w} ${h}`, class: 'chart', role: 'img' });
  const t = mk('title'); t.textContent = title; svg.appendChild(t);
  let max = 0n;
  for (const b of bars) if (b.value > max) max = b.value;
  bars.forEach((b, i) => {
    const y = 5 + i * rowH;
    const lab = mk('text', { x: 0, y: y + 18 }); lab.textContent = b.label; svg.appendChild(lab);
    // widths from BigInt amounts: the ratio is scaled in integers, then drawn
    const frac = max > 0n ? Number((b.value * 1000n) / max) / 1000 : 0;
    const bw = Math.max(b.value > 0n ? 2 : 0, Math.round(frac * (w - labelW - 170)));
    const r = mk('rect', { x: labelW, y: y + 4, width: bw, height: rowH - 10, rx: 3, class: 'bar' });
    const rt = mk('title'); rt.textContent = `${b.label}: ${fmt(b.value)}${b.note ? ', ' + b.note : ''}`; r.appendChild(rt);
    svg.appendChild(r);
    const v = mk('text', { x: labelW + bw + 6, y: y + 18 }); v.textContent = fmt(b.value) + (b.note ? `  (${b.note})` : '');
    svg.appendChild(v);
  });
  return svg;
}
