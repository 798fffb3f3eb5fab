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
import http from 'node:http';

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
const conns = Number(connsArg);
const perRequest = mode === 'single' ? 1 : Number(perArg || 1000);
const deadline = mode === 'single' ? Date.now() + Number(amountArg) * 1000 : Infinity;
const totalEvents = mode === 'batch' ? Number(amountArg) : 50_000_000;
const agent = new http.Agent({ keepAlive: true, maxSockets: conns });
const run = `${process.pid}-${Date.now()}`;
let nextEvent = 0, requests = 0, errors = 0;
const latencies = [];

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

function post(payload) {
    return new Promise((resolve) => {
        const t0 = process.hrtime.bigint();
        const req = http.request(target, {
            method: 'POST', agent,
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-ndjson',
                'content-length': Buffer.byteLength(payload) },
        }, (res) => {
            res.resume();
            res.on('end', () => {
                latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
                if (res.statusCode !== 200) errors++;
                resolve();
            });
        });
        req.on('error', () => { errors++; resolve(); });
        req.end(payload);
    });
}

async function worker() {
    while (Date.now() < deadline && nextEvent < totalEvents && errors < 100) {
        const n = Math.min(perRequest, totalEvents - nextEvent);
        await post(body(n));
        requests++;
    }
}

const t0 = process.hrtime.bigint();
await Promise.all(Array.from({ length: conns }, worker));
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
latencies.sort((a, b) => a - b);
const pct = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : 0);
agent.destroy();
console.log(`HTTP requests=${requests} events=${nextEvent} seconds=${seconds.toFixed(3)} ` +
    `p50_ms=${pct(0.5).toFixed(2)} p99_ms=${pct(0.99).toFixed(2)} errors=${errors}`);
process.exit(errors ? 1 : 0);
