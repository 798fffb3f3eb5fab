// http_load.mjs - the load client of the HTTP rows: POST /v1/events over keep-alive connections.
//
//     node http_load.mjs URL TOKEN single CONNS SECONDS PARTNER_ID
//     node http_load.mjs URL TOKEN batch  CONNS EVENTS  PARTNER_ID [PER_REQUEST]
//
// `single`: CONNS connections, one sale per request, for SECONDS (bounded by time and by count).
// `batch`: CONNS connections, PER_REQUEST (default 1000) sales per request, EVENTS in all.
// Every event is a new sale of PARTNER_ID (which must exist, with currency JPY) with a unique id,
// so requests are independent of each other. Only loopback URLs are accepted. Prints one line:
// `HTTP requests=R events=E seconds=S p50_ms=A p99_ms=B errors=N`.
//
// The connections are spread over HTTP_LOAD_THREADS worker threads (default 2), each a plain
// socket per connection with one request in flight and a minimal response reader: on the 2-core
// reference machine the client shares the CPUs with the server, and node:http alone cost about
// 280 us of CPU per request (it capped the row near 3 k requests/s whatever the server did).
import net from 'node:net';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const [url, token, mode, connsArg, amountArg, partner, perArg] = process.argv.slice(2);
if (!partner || !['single', 'batch'].includes(mode)) {
    process.stderr.write('usage: node http_load.mjs URL TOKEN single|batch CONNS SECONDS|EVENTS PARTNER_ID [PER_REQUEST]\n');
    process.exit(2);
}
const target = new URL('/v1/events', url);
if (!['127.0.0.1', 'localhost', '[::1]'].includes(target.hostname)) {
    process.stderr.write('http_load.mjs: only loopback targets\n');
    process.exit(2);
}
const allConns = Number(connsArg);
const perRequest = mode === 'single' ? 1 : Number(perArg || 1000);
const threads = Math.max(1, Math.min(allConns, Number(process.env.HTTP_LOAD_THREADS || 2)));
const me = isMainThread ? { index: 0, conns: allConns, events: mode === 'batch' ? Number(amountArg) : 50_000_000,
    deadline: mode === 'single' ? Date.now() + Number(amountArg) * 1000 : Infinity,
    run: `${process.pid}-${Date.now()}` } : workerData;
const conns = me.conns;
const deadline = me.deadline;
const totalEvents = me.events;
const run = `${me.run}-${me.index}`;
let nextEvent = 0, requests = 0, errors = 0;
const latencies = [];
const head = `POST ${target.pathname} HTTP/1.1\r\nHost: ${target.host}\r\n` +
    `Authorization: Bearer ${token}\r\nContent-Type: application/x-ndjson\r\nContent-Length: `;

function body(n) {
    const lines = [];
    for (let i = 0; i < n; i++) {
        const k = nextEvent++;
        lines.push(`{"id":"h${run}-${k}","type":"sale.recorded","at":"2026-06-15T12:00:00Z",` +
            `"data":{"sale_id":"H${run}-${k}","partner_id":"${partner}","customer_id":"HC${k % 5000}",` +
            `"product":"cloud","amount_minor":${1000 + (k % 997) * 100},"currency":"JPY"}}`);
    }
    return lines.join('\n') + '\n';
}

// One keep-alive connection with one request in flight at a time: a plain socket and a minimal
// response reader (status line, Content-Length, body), so the client's own cost per request stays
// small next to the server's on a 2-core machine (node:http costs several times more).
function connection() {
    return new Promise((resolveConn) => {
        const sock = net.connect(Number(target.port || 80), target.hostname.replace(/^\[|\]$/g, ''));
        sock.setNoDelay(true);
        let buf = Buffer.alloc(0), pending = null, t0 = 0n;
        function next() {
            if (!(Date.now() < deadline && nextEvent < totalEvents && errors < 100)) {
                finished = true;
                sock.end();
                resolveConn();
                return;
            }
            const n = Math.min(perRequest, totalEvents - nextEvent);
            const payload = body(n);
            t0 = process.hrtime.bigint();
            pending = true;
            sock.write(head + Buffer.byteLength(payload) + '\r\n\r\n' + payload);
        }
        function parse() {
            for (;;) {
                const end = buf.indexOf('\r\n\r\n');
                if (end < 0) return;
                const text = buf.toString('latin1', 0, end);
                const status = Number(text.slice(9, 12));
                const m = /\r\ncontent-length:\s*(\d+)/i.exec(text);
                const len = m ? Number(m[1]) : 0;
                if (buf.length < end + 4 + len) return;
                buf = buf.subarray(end + 4 + len);
                if (status === 100) continue;
                latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
                requests++;
                if (status !== 200) errors++;
                pending = null;
                if (/\r\nconnection:\s*close/i.test(text)) {
                    finished = true;
                    sock.destroy();
                    resolveConn();
                    return;
                }
                next();
            }
        }
        sock.on('connect', next);
        sock.on('data', (d) => { buf = buf.length ? Buffer.concat([buf, d]) : d; parse(); });
        // A request in flight when the socket fails, or a connection that never opened, is an error.
        let connected = false, finished = false;
        sock.on('connect', () => { connected = true; });
        const lost = () => {
            if (!finished && (pending || !connected)) errors++;
            finished = true;
            pending = null;
            resolveConn();
        };
        sock.on('error', lost);
        sock.on('close', lost);
    });
}

function report(all, seconds) {
    all.latencies.sort((a, b) => a - b);
    const lat = all.latencies;
    const pct = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : 0);
    console.log(`HTTP requests=${all.requests} events=${all.events} seconds=${seconds.toFixed(3)} ` +
        `p50_ms=${pct(0.5).toFixed(2)} p99_ms=${pct(0.99).toFixed(2)} errors=${all.errors}`);
    process.exit(all.errors ? 1 : 0);
}

if (!isMainThread) {
    await Promise.all(Array.from({ length: conns }, connection));
    parentPort.postMessage({ requests, events: nextEvent, errors, latencies: Float64Array.from(latencies) });
} else if (threads === 1) {
    const t0 = process.hrtime.bigint();
    await Promise.all(Array.from({ length: conns }, connection));
    report({ requests, events: nextEvent, errors, latencies }, Number(process.hrtime.bigint() - t0) / 1e9);
} else {
    const t0 = process.hrtime.bigint();
    const parts = await Promise.all(Array.from({ length: threads }, (_, i) => new Promise((resolve, reject) => {
        const share = (n) => Math.floor(n / threads) + (i < n % threads ? 1 : 0);
        const w = new Worker(new URL(import.meta.url), {
            argv: process.argv.slice(2),
            workerData: { index: i, conns: share(allConns), events: mode === 'batch' ? share(Number(amountArg)) : me.events,
                deadline: me.deadline, run: me.run },
        });
        w.on('message', resolve);
        w.on('error', reject);
    })));
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const all = { requests: 0, events: 0, errors: 0, latencies: [] };
    for (const p of parts) {
        all.requests += p.requests;
        all.events += p.events;
        all.errors += p.errors;
        for (const x of p.latencies) all.latencies.push(x);
    }
    report(all, seconds);
}
