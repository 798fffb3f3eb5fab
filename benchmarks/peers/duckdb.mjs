// duckdb.mjs - the DuckDB peer: bulk-load the CSV tables, compute statements with statement.sql.
//
//     node duckdb.mjs CSVDIR OUTDIR PERIOD...
//
// Loads CSVDIR (load.mjs / load.py output) into an in-memory DuckDB database (@duckdb/node-api,
// installed into benchmarks/peers/node_modules by run.sh), then writes the statement of each
// PERIOD to OUTDIR/statement-PERIOD.csv. Prints `PEER duckdb load_s=S` and one
// `PEER duckdb period=P compute_s=S` line per period. Exit 1 when the package is missing.
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
let duckdb;
try {
    duckdb = await import('@duckdb/node-api');
} catch (e) {
    process.stderr.write(`duckdb.mjs: @duckdb/node-api is not installed (${e.message})\n`);
    process.exit(1);
}
const [csvDir, outDir, ...periods] = process.argv.slice(2);
if (!csvDir || !outDir) {
    process.stderr.write('usage: node duckdb.mjs CSVDIR OUTDIR PERIOD...\n');
    process.exit(2);
}
fs.mkdirSync(outDir, { recursive: true });
const HEADER = 'period,partner_id,line,origin_period,kind,source_id,source_seq,at,rule,' +
    'basis_minor,amount_minor,currency\n';
const sec = (t0) => (Number(process.hrtime.bigint() - t0) / 1e9).toFixed(3);
const lit = (s) => `'${s.replaceAll("'", "''")}'`;

const db = await duckdb.DuckDBInstance.create(':memory:');
const con = await db.connect();
let t0 = process.hrtime.bigint();
await con.run(fs.readFileSync(path.join(here, 'schema.sql'), 'utf8'));
for (const t of ['partners', 'plans', 'rules', 'brackets', 'targets', 'sales', 'refunds',
    'adjustments', 'periods', 'onboarding', 'trainings', 'promos', 'promo_ends']) {
    const f = path.join(csvDir, `${t}.csv`);
    if (fs.statSync(f).size === 0) continue; // COPY of an empty file cannot sniff it
    await con.run(`COPY ${t} FROM ${lit(f)} (FORMAT csv, HEADER false, DELIMITER ',', QUOTE '"')`);
}
console.log(`PEER duckdb load_s=${sec(t0)}`);

const sql = fs.readFileSync(path.join(here, 'statement.sql'), 'utf8');
for (const period of periods) {
    if (!/^[0-9]{4}-(0[1-9]|1[0-2]|Q[1-4])$/.test(period)) throw new Error(`bad period ${period}`);
    const q = sql.replaceAll('{{U}}', period).replaceAll('{{DIV}}', '//').trim().replace(/;$/, '');
    const out = path.join(outDir, `statement-${period}.csv`);
    const body = `${out}.body`;
    t0 = process.hrtime.bigint();
    // One text column, written as is: no quoting (the records hold no tab and no quote).
    await con.run(`COPY (${q}) TO ${lit(body)} (FORMAT csv, HEADER false, DELIMITER '\t', QUOTE '', ESCAPE '')`);
    fs.writeFileSync(out, HEADER);
    await pipeline(fs.createReadStream(body), fs.createWriteStream(out, { flags: 'a' }));
    fs.unlinkSync(body);
    console.log(`PEER duckdb period=${period} compute_s=${sec(t0)}`);
}
