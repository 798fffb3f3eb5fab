// api.js - the page's only door to the server: the bearer token (sessionStorage only, never
// localStorage, a cookie or a URL), JSON calls, downloads, and the live feed read with fetch
// streaming (an EventSource cannot send the Authorization header).

const KEY = 'accrue.token';
export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

function headers(extra) {
  const h = { Authorization: 'Bearer ' + (token.get() || ''), ...extra };
  return h;
}

async function fail(res) {
  let code = 'http_' + res.status, msg = res.statusText || 'request failed';
  try { const j = await res.json(); if (j && j.error) { code = j.error.code; msg = j.error.message; } } catch { /* not JSON */ }
  return new ApiError(res.status, code, msg);
}

// api('/v1/partners') -> parsed JSON; api(path, {method, body, signal}).
export async function api(path, opts = {}) {
  const init = { method: opts.method || 'GET', headers: headers({ Accept: 'application/json' }), signal: opts.signal, cache: 'no-store' };
  if (opts.body !== undefined) {
    init.body = JSON.stringify(opts.body);
    init.headers['Content-Type'] = 'application/json';
  }
  const res = await fetch(path, init);
  if (!res.ok) throw await fail(res);
  return res.json();
}

// Fetches with the token and saves the answer as a file (statement CSVs).
export async function download(path, filename) {
  const res = await fetch(path, { headers: headers({ Accept: 'text/csv' }), cache: 'no-store' });
  if (!res.ok) throw await fail(res);
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return { bytes: blob.size, fingerprint: res.headers.get('X-Accrue-Fingerprint') };
}

// The live feed: GET /v1/feed?from=SEQ as a stream of `id: SEQ` / `data: JSON` frames. One
// long request, no polling; after a drop it reconnects (1 s, then up to 15 s) from the last
// seq seen. onEvent(event) per committed event; onState(true|false) when it connects / drops.
export function openFeed(from, onEvent, onState) {
  const ctl = new AbortController();
  let next = from, delay = 1000, stopped = false;
  const run = async () => {
    while (!stopped) {
      try {
        const res = await fetch('/v1/feed?from=' + next, { headers: headers({ Accept: 'text/event-stream' }), signal: ctl.signal, cache: 'no-store' });
        if (!res.ok) throw await fail(res);
        onState(true);
        delay = 1000;
        const reader = res.body.getReader(), dec = new TextDecoder();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const frame = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let id = null, data = '';
            for (const line of frame.split('\n')) {
              if (line.startsWith('id:')) id = line.slice(3).trim();
              else if (line.startsWith('data:')) data += line.slice(5).replace(/^ /, '');
            }
            if (id === null) continue; // heartbeat comment
            next = Number(id) + 1;
            let ev = null;
            try { ev = JSON.parse(data); } catch { ev = { seq: Number(id) }; }
            onEvent(ev);
          }
        }
      } catch (e) {
        if (stopped || (e && e.name === 'AbortError')) return;
        if (e instanceof ApiError && (e.status === 401 || e.status === 403)) { onState(false); return; }
      }
      if (stopped) return;
      onState(false);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 15000);
    }
  };
  run();
  return { stop: () => { stopped = true; ctl.abort(); } };
}
