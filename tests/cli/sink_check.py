#!/usr/bin/env python3
"""sink_check.py - checks a PostgreSQL mirror made by `accrue sink postgres` against accrue's
own outputs, through an independent path: SQL over the mirrored tables on one side, the
accrue CLI (log, partner list, pipeline, kpi, payout run) on the other.

    sink_check.py ACCRUE LEDGER SCHEMA UTC_OFFSET TODAY [--quick]

psql is run with the connection of the environment (PGHOST, PGPORT, PGUSER, PGDATABASE).
UTC_OFFSET is the ledger's (+09:00), TODAY the --today of the pipeline check. Prints one line
per mismatch (at most 20 per check) and `sink_check: N checks, M failed`; exits 1 on a failure.
--quick: only events, position and the invariants that must hold at every committed position
(events are 1..position once each, every close has its statement lines).
"""
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

ACCRUE, LEDGER, SCHEMA, OFFSET, TODAY = sys.argv[1:6]
QUICK = "--quick" in sys.argv[6:]
S = SCHEMA
failed = []
checks = 0


def sql(q):
    """Rows of a query as parsed JSON (one json value per row)."""
    out = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", q],
                         check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def sql_rows(q):
    """A query as a list of dicts (row_to_json)."""
    return sql(f"SELECT row_to_json(t) FROM ({q}) t")


def accrue(*args):
    return subprocess.run([ACCRUE, "--ledger", LEDGER, *args], check=True, capture_output=True,
                          text=True).stdout


def check(name, got, want):
    global checks
    checks += 1
    if got == want:
        return
    failed.append(name)
    print(f"MISMATCH {name}")
    if isinstance(got, dict) and isinstance(want, dict):
        n = 0
        for k in sorted(set(got) | set(want), key=str):
            if got.get(k) != want.get(k):
                print(f"  {k}: pg={got.get(k)!r} accrue={want.get(k)!r}")
                n += 1
                if n >= 20:
                    break
    else:
        print(f"  pg={str(got)[:600]}\n  accrue={str(want)[:600]}")


def ms(ts):
    """RFC 3339 (accrue) or PostgreSQL's JSON timestamptz -> UTC milliseconds."""
    if ts is None:
        return None
    return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000 + 0.5)


sign = -1 if OFFSET[0] == "-" else 1
OFF = timedelta(minutes=sign * (int(OFFSET[1:3]) * 60 + int(OFFSET[4:6])))


def local_date(ts):
    return (datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(timezone.utc) + OFF).date()


# ---- events and position ----
log = [json.loads(l) for l in accrue("log", "--format", "jsonl").splitlines()]
if QUICK:  # a mirror stopped anywhere: compare with the ledger's prefix up to its position
    p = sql(f"SELECT seq FROM {S}.sink_position")
    log = log[:p[0] if p else 0]
head = len(log)
pg_events = sql_rows(f"SELECT seq, id, type, at, recorded_at, stream, version, hash, data, actor "
                     f"FROM {S}.events ORDER BY seq")
check("events: seq 1..head once each", [e["seq"] for e in pg_events], list(range(1, head + 1)))
got = {e["seq"]: (e["id"], e["type"], ms(e["at"]), ms(e["recorded_at"]), e["stream"],
                  e["version"], e["hash"], e["data"], e["actor"]) for e in pg_events}
want = {e["seq"]: (e["id"], e["type"], ms(e["at"]), ms(e["recorded_at"]), e["stream"],
                   e["version"], e["hash"], e["data"], e.get("actor")) for e in log}
check("events: every field", got, want)
pos = sql_rows(f"SELECT seq, hash FROM {S}.sink_position")
if head:
    check("sink_position", pos, [{"seq": head, "hash": log[-1]["hash"]}])
closes_ok = sql(f"SELECT json_agg(c.period) FROM {S}.closes c WHERE c.lines <> "
                f"(SELECT count(*) FROM {S}.statement_lines l WHERE l.period = c.period)")
check("every close has its statement lines", closes_ok, [])

if not QUICK:
    # ---- partners, reps, training ----
    partners = json.loads(accrue("partner", "list", "--format", "json"))
    want_onb = {p["partner_id"]: p.pop("onboarding", None) for p in partners}
    want = {p["partner_id"]: p for p in partners}
    reps = {}
    for r in sql_rows(f"SELECT partner_id, rep_id, name FROM {S}.reps ORDER BY partner_id, rep_id"):
        reps.setdefault(r["partner_id"], []).append({"rep_id": r["rep_id"], "name": r["name"]})
    training = {}
    for t in sql_rows(f"SELECT partner_id, module, rep_id, at FROM {S}.trainings ORDER BY seq"):
        training.setdefault(t["partner_id"], []).append(
            {"module": t["module"], "rep_id": t["rep_id"], "date": str(local_date(t["at"]))})
    got = {}
    for p in sql_rows(f"SELECT partner_id, name, kind, tier, status, plan_id, currency, region, "
                      f"source FROM {S}.partners"):
        p["reps"] = reps.get(p["partner_id"], [])
        p["training"] = training.get(p["partner_id"], [])
        got[p["partner_id"]] = p
    check("partners (partner list --format json)", got, want)

    # ---- onboarding (program.md), computed by the sink in SQL, by accrue in C ----
    onb = {}
    cols = "modules, completed, missing, certified, certified_on"
    for o in sql_rows(f"SELECT partner_id, rep_id, {cols} FROM {S}.onboarding "
                      f"ORDER BY partner_id, rep_id COLLATE \"C\" NULLS FIRST"):
        subj = {k: o[k] for k in cols.split(", ")}
        if o["rep_id"] is None:
            onb[o["partner_id"]] = {"partner_id": o["partner_id"], **subj, "reps": []}
        else:
            onb.setdefault(o["partner_id"], {"reps": []})["reps"].append(
                {"rep_id": o["rep_id"], **subj})
    check("onboarding (partner list --format json)", onb, want_onb)

    # ---- pipeline: SQL of docs/reporting.md against `accrue pipeline` ----
    pipe = sql_rows(
        f"SELECT partner_id, stage, count(*) AS deals, "
        f"sum(coalesce(amount_minor, 0))::bigint AS amount_minor, min(currency) AS currency, "
        f"DATE '{TODAY}' - min((stage_entered_at AT TIME ZONE 'UTC' + INTERVAL '{OFFSET}')::date) "
        f"AS oldest_days FROM {S}.deals WHERE outcome IS NULL GROUP BY partner_id, stage")
    want = json.loads(accrue("pipeline", "--format", "json", "--today", TODAY))
    key = lambda r: (r["partner_id"], r["stage"])
    check("pipeline (pipeline --format json)", {key(r): r for r in pipe},
          {key(r): r for r in want})

    # ---- KPIs per month: one SQL over deals, sales, events, trainings against `accrue kpi` ----
    loc = f"to_char(%s AT TIME ZONE 'UTC' + INTERVAL '{OFFSET}', 'YYYY-MM')"
    rows = sql_rows(f"""
      WITH facts AS (
        SELECT partner_id, {loc % 'registered_at'} AS month, 1 AS reg, 0 AS won, 0 AS lost,
               0::bigint AS net, 0 AS nc, 0 AS tr FROM {S}.deals
        UNION ALL
        SELECT partner_id, {loc % 'closed_at'}, 0, (outcome = 'won')::int, (outcome = 'lost')::int,
               0, 0, 0 FROM {S}.deals WHERE outcome IS NOT NULL
        UNION ALL
        SELECT partner_id, {loc % 'at'}, 0, 0, 0, amount_minor, 0, 0 FROM {S}.sales
        UNION ALL
        SELECT s.partner_id, {loc % 'e.at'}, 0, 0, 0, -(e.data->>'amount_minor')::bigint, 0, 0
        FROM {S}.events e JOIN {S}.sales s ON s.sale_id = e.data->>'sale_id'
        WHERE e.type = 'sale.refunded'
        UNION ALL
        SELECT partner_id, {loc % 'at'}, 0, 0, 0, 0, 1, 0 FROM (
          SELECT DISTINCT ON (customer_id) customer_id, partner_id, at FROM {S}.sales
          ORDER BY customer_id, at, seq) first_sales
        UNION ALL
        SELECT partner_id, {loc % 'at'}, 0, 0, 0, 0, 0, 1 FROM {S}.trainings)
      SELECT month, partner_id, sum(reg) AS deals_registered, sum(won) AS deals_won,
             sum(lost) AS deals_lost, sum(net)::bigint AS net_revenue_minor,
             sum(nc) AS new_customers, sum(tr) AS training_modules
      FROM facts GROUP BY month, partner_id""")
    fields = ["deals_registered", "deals_won", "deals_lost", "net_revenue_minor",
              "new_customers", "training_modules"]
    by_month = {}
    for r in rows:
        by_month.setdefault(r.pop("month"), {})[r["partner_id"]] = r
    for m in sorted(by_month):
        want = json.loads(accrue("kpi", "--period", m, "--format", "json"))
        zero = lambda pid: {"partner_id": pid, **{f: 0 for f in fields}}
        got = {r["partner_id"]: by_month[m].get(r["partner_id"], zero(r["partner_id"]))
               for r in want}
        got.update(by_month[m])
        check(f"kpi {m} (kpi --format json)", got,
              {r["partner_id"]: {"partner_id": r["partner_id"], **{f: r[f] for f in fields}}
               for r in want})

    # ---- sales: refunded totals against the log's refunds ----
    refunded = {}
    for e in log:
        if e["type"] == "sale.refunded":
            refunded[e["data"]["sale_id"]] = refunded.get(e["data"]["sale_id"], 0) + \
                e["data"]["amount_minor"]
    got = {r["sale_id"]: r["refunded_minor"] for r in
           sql_rows(f"SELECT sale_id, refunded_minor FROM {S}.sales WHERE refunded_minor <> 0")}
    check("sales.refunded_minor", got, refunded)
    check("sales: one row per sale.recorded",
          sql(f"SELECT count(*) FROM {S}.sales")[0],
          sum(1 for e in log if e["type"] == "sale.recorded"))
    check("deal_stages: one row per registration and stage change",
          sql(f"SELECT count(*) FROM {S}.deal_stages")[0],
          sum(1 for e in log if e["type"] in ("deal.registered", "deal.stage_changed")))

    # ---- closed periods: statement lines and totals against `payout run` (the close's
    # reproduction) ----
    closes = sql_rows(f"SELECT period, seq, through_seq, fingerprint, lines, totals "
                      f"FROM {S}.closes ORDER BY seq")
    want = [{"period": e["data"]["period"], "seq": e["seq"],
             "through_seq": e["data"]["through_seq"], "fingerprint": e["data"]["fingerprint"],
             "lines": e["data"]["lines"], "totals": e["data"]["totals"]}
            for e in log if e["type"] == "period.closed"]
    check("closes", closes, want)
    import os
    import tempfile
    for c in closes:
        with tempfile.TemporaryDirectory() as d:
            accrue("payout", "run", c["period"], "--out", d)
            summary = json.load(open(os.path.join(d, "summary.json")))
            csv = open(os.path.join(d, "statement.csv")).read().splitlines()[1:]
        per = sql_rows(f"SELECT partner_id, sum(amount_minor)::bigint AS total_minor, "
                       f"count(*) AS lines FROM {S}.statement_lines WHERE period = '{c['period']}' "
                       f"GROUP BY partner_id")
        check(f"statement {c['period']}: per-partner totals",
              {r["partner_id"]: (r["total_minor"], r["lines"]) for r in per},
              {p["partner_id"]: (p["total_minor"], p["lines"]) for p in summary["partners"]})
        tot = sql(f"SELECT json_object_agg(currency, s) FROM (SELECT currency, "
                  f"sum(amount_minor)::bigint AS s FROM {S}.statement_lines "
                  f"WHERE period = '{c['period']}' GROUP BY currency) x")[0] or {}
        check(f"statement {c['period']}: totals", tot, c["totals"])
        rows = sql(f"""SELECT json_build_array(period, partner_id, line, origin_period, kind,
              source_id, coalesce(source_seq::text, ''),
              coalesce(to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS'), ''),
              coalesce(rule, ''), basis_minor, amount_minor, currency)
            FROM {S}.statement_lines WHERE period = '{c['period']}' ORDER BY partner_id, line""")
        got = [",".join(str(x) for x in r) for r in rows]
        # the CSV's `at` carries a Z (and milliseconds when not zero): compare to the second
        want = []
        for line in csv:
            f = line.split(",")
            if f[7]:
                f[7] = f[7].rstrip("Z").split(".")[0]
            want.append(",".join(f))
        check(f"statement {c['period']}: every line", got, want)

print(f"sink_check: {checks} checks, {len(failed)} failed")
sys.exit(1 if failed else 0)
