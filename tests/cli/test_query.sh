#!/usr/bin/env bash
# test_query.sh - plan publish/show (the envelope, its default id and at,
# idempotency, stale versions), a what-if run with --plan-file, and the
# read-model commands (partner, pipeline, kpi) in their three formats.
. "$(dirname "$0")/lib.sh"

L=$(new_ledger --period month --utc-offset +09:00)
"$ACCRUE" --ledger "$L" append "$WORKED/events.jsonl" >/dev/null

cat >"$TMP/plan2.json" <<'EOF2'
{
  "plan_id": "standard", "version": 2, "effective_from": "2026-08-01", "currency": "JPY",
  "ceiling_bp": 4000,
  "rules": [{"match": {}, "brackets": [{"from_minor": 0, "rate_bp": 1200}]}],
  "clawback_days": 90
}
EOF2
sed 's/"version": 2/"version": 3/; s/2026-08-01/2026-07-01/; s/1200/3000/' "$TMP/plan2.json" >"$TMP/plan3.json"

case_plan_publish() {
    acc "$L" plan publish "$TMP/plan2.json"
    assert_exit 0
    assert_eq "$OUT" "published plan:standard:v2 (seq 8)"
    acc "$L" log --from 8
    expect_stdout_contains '"id":"plan:standard:v2"'
    expect_stdout_contains '"type":"plan.published"'
    expect_stdout_contains '"at":"2026-07-31T15:00:00Z"'
    acc "$L" plan publish "$TMP/plan2.json"
    assert_exit 0
    assert_eq "$OUT" "already present: plan:standard:v2 (seq 8)"
}

case_plan_publish_stale() {
    local before
    before=$(ledger_sum "$L")
    acc "$L" plan publish "$TMP/plan2.json" --id other-id --at 2026-07-01T00:00:00Z
    assert_exit 3
    expect_stderr_contains "accrue: stale_version:"
    assert_eq "$(ledger_sum "$L")" "$before" "ledger checksum"
}

# A what-if version at or below the latest published one is stale, and the error names the
# version it must exceed: the latest (2 here), not the first published (1).
case_whatif_stale_names_latest() {
    sed 's/"version": 2/"version": 1/' "$TMP/plan2.json" >"$TMP/plan1.json"
    acc "$L" payout run 2026-07 --plan-file "$TMP/plan1.json"
    assert_exit 3
    expect_stderr_contains "plan standard version 1 is not above version 2"
}

case_plan_show() {
    acc "$L" plan show standard --format json
    assert_exit 0
    assert_eq "$(wc -l <<<"$OUT")" 2 "versions shown"
    acc "$L" plan show standard --version 2 --format json
    assert_exit 0
    assert_eq "$(wc -l <<<"$OUT")" 1 "versions shown"
    expect_stdout_contains '"version":2'
    # The default is a table finance can read: rates as percentages, money in units.
    acc "$L" plan show standard
    assert_exit 0
    expect_stdout_contains "plan standard"
    expect_stdout_contains "effective_from"
    expect_stdout_contains "standard@1 rules (first match wins):"
    expect_stdout_contains "#0 tier=gold"
    expect_stdout_contains "from 0 JPY: 15.00%, from 1,000,000 JPY: 25.00%"
    expect_stdout_contains "net revenue of a period from 1,500,000 JPY: bonus 50,000 JPY"
    case $OUT in *'{"'*) fail "plan show prints raw JSON by default: ${OUT:0:300}" ;; esac
    acc "$L" plan show nosuch
    assert_exit 3 "not_found is exit 3 (events.md)"
    expect_stderr_contains "accrue: not_found:"
}

case_whatif() {
    local before
    before=$(ledger_sum "$L")
    acc "$L" payout run 2026-07 --plan-file "$TMP/plan3.json" --out "$TMP/w"
    assert_exit 0
    [ "$(xxh128sum "$TMP/w/statement.csv" 2>/dev/null | cut -d' ' -f1)" != c5e27e1ef9f0212498bfa9b06be115cd ] ||
        fail "the what-if plan changed nothing"
    grep -q 'standard@3' "$TMP/w/statement.csv" || fail "no line under the what-if version"
    assert_eq "$(ledger_sum "$L")" "$before" "ledger checksum"
    acc "$L" payout run 2026-07 --out "$TMP/w2"
    assert_file_eq "$TMP/w2/statement.csv" "$WORKED/statement-2026-07.csv"
    # Labelled as hypothetical wherever it shows: the file summary, the table, the narration.
    grep -q '"what_if":true,"what_if_plans":\["standard@3"\]' "$TMP/w/summary.json" ||
        fail "summary.json does not say what-if: $(cat "$TMP/w/summary.json")"
    grep -q '"what_if"' "$TMP/w2/summary.json" && fail "a published run is labelled what-if"
    acc "$L" payout run 2026-07 --plan-file "$TMP/plan3.json"
    assert_exit 0
    expect_stdout_contains "WHAT-IF: hypothetical, with unpublished plan version(s) standard@3"
    acc "$L" payout run 2026-07 --plan-file "$TMP/plan3.json" --out "$TMP/w3"
    expect_stdout_contains "(WHAT-IF: unpublished plans, not payable)"
    acc "$L" payout run 2026-07
    case $OUT in *WHAT-IF*) fail "a published run is labelled what-if" ;; esac
}

case_partner() {
    acc "$L" partner list
    assert_exit 0
    expect_stdout_contains P1
    expect_stdout_contains "Beta Referral"
    acc "$L" partner list --format json
    assert_exit 0
    case $OUT in "["*) ;; *) fail "partner list json: [${OUT:0:80}]" ;; esac
    acc "$L" partner list --format csv
    assert_exit 0
    assert_eq "$(head -1 <<<"$OUT")" "partner_id,name,kind,tier,status,plan_id,currency,region,source,reps,training" "csv header"
    acc "$L" partner show P1
    assert_exit 0
    expect_stdout_contains gold
    acc "$L" partner show P9
    assert_exit 3 "not_found is exit 3 (events.md)"
    expect_stderr_contains "accrue: not_found:"
}

case_kpi() {
    acc "$L" kpi --period 2026-07 --format json
    assert_exit 0
    expect_stdout_contains '"partner_id":"P1"'
    expect_stdout_contains '"net_revenue_minor":1200000'
    acc "$L" kpi --period 2026-Q3 --format csv
    assert_exit 0
    assert_eq "$(head -1 <<<"$OUT")" "partner_id,period,currency,deals_registered,deals_won,deals_lost,win_rate_bp,net_revenue_minor,new_customers,median_days_to_win,training_modules,commission_minor,certified" "csv header"
    # the same keys as json (program.md's certified included), a row per partner
    local row
    row=$(sed -n 2p <<<"$OUT")
    case $row in *,true | *,false) ;; *) fail "certified column of a csv row: $row" ;; esac
    acc "$L" kpi --period 2026-07
    assert_exit 0
    expect_stdout_contains "1,200,000 JPY"
    acc "$L" kpi --period 2026-07 --by rep --format json
    assert_exit 0
}

# cli.md: --by rep has a row per (partner, rep) with a sale or a deal in the period. R1's only
# August event is a refund of its July sale: no August row (the refund still lowers P1's net
# and commission in the partner's row). R2's only August event is a lost deal: a row.
case_kpi_by_rep_rows() {
    local l
    l=$(new_ledger --period month --utc-offset +00:00)
    cat >"$TMP/rep.jsonl" <<'EOF2'
{"id":"p1","type":"partner.registered","at":"2026-06-01T00:00:00Z","data":{"partner_id":"P1","name":"A","kind":"reseller","tier":"gold","plan_id":"std","currency":"JPY"}}
{"id":"r1","type":"rep.added","at":"2026-06-01T00:00:00Z","data":{"partner_id":"P1","rep_id":"R1","name":"R"}}
{"id":"r2","type":"rep.added","at":"2026-06-01T00:00:00Z","data":{"partner_id":"P1","rep_id":"R2","name":"S"}}
{"id":"pl","type":"plan.published","at":"2026-06-01T00:00:00Z","data":{"plan":{"plan_id":"std","version":1,"effective_from":"2026-01-01","currency":"JPY","ceiling_bp":5000,"rules":[{"match":{},"brackets":[{"from_minor":0,"rate_bp":1000}]}]}}}
{"id":"s1","type":"sale.recorded","at":"2026-07-10T00:00:00Z","data":{"sale_id":"S1","partner_id":"P1","customer_id":"C1","product":"cloud","amount_minor":10000,"currency":"JPY","rep_id":"R1"}}
{"id":"d2","type":"deal.registered","at":"2026-07-12T00:00:00Z","data":{"deal_id":"D2","partner_id":"P1","customer_id":"C2","amount_minor":5000,"currency":"JPY","rep_id":"R2"}}
{"id":"rf1","type":"sale.refunded","at":"2026-08-10T00:00:00Z","data":{"sale_id":"S1","amount_minor":1000}}
{"id":"d2c","type":"deal.closed","at":"2026-08-11T00:00:00Z","data":{"deal_id":"D2","outcome":"lost","reason":"price"}}
EOF2
    acc "$l" append "$TMP/rep.jsonl"
    assert_exit 0
    acc "$l" kpi --period 2026-08 --by rep --format json
    assert_exit 0
    assert_eq "$OUT" '[{"partner_id":"P1","rep_id":"R2","period":"2026-08","currency":"JPY","sales":0,"net_revenue_minor":0,"new_customers":0,"deals_registered":0,"deals_won":0,"commission_minor":0}]' \
        "August by rep: the lost deal's rep, not the refund's"
    acc "$l" kpi --period 2026-08 --format json
    expect_stdout_contains '"net_revenue_minor":-1000'
    expect_stdout_contains '"commission_minor":-100'
    acc "$l" kpi --period 2026-Q3 --by rep --format json
    expect_stdout_contains '"rep_id":"R1","period":"2026-Q3","currency":"JPY","sales":1,"net_revenue_minor":9000'
    expect_stdout_contains '"rep_id":"R2","period":"2026-Q3","currency":"JPY","sales":0,"net_revenue_minor":0,"new_customers":0,"deals_registered":1'
}

case_pipeline() {
    acc "$L" pipeline --today 2026-08-01 --format json
    assert_exit 0
    case $OUT in "["*) ;; *) fail "pipeline json: [${OUT:0:80}]" ;; esac
    acc "$L" pipeline --today 2026-08-01
    assert_exit 0
    acc "$L" pipeline --format csv
    assert_exit 0
    assert_eq "$(head -1 <<<"$OUT")" "partner_id,stage,deals,amount_minor,currency,oldest_days" "csv header"
}

# events.md asks only that stage names be unique and not `won`/`lost`: any text is a stage,
# and every output quotes it as its format needs.
case_stage_names_are_text() {
    local l2
    l2=$(new_ledger --period month --utc-offset +09:00)
    "$ACCRUE" --ledger "$l2" append "$WORKED/events.jsonl" >/dev/null
    cat >"$TMP/stages.jsonl" <<'EOF2'
{"id":"pipe-t","type":"pipeline.defined","at":"2026-06-02T00:00:00Z","data":{"stages":[{"name":"due diligence","exit_requires":[]},{"name":"Contract, \"signed\""}]}}
{"id":"deal-t","type":"deal.registered","at":"2026-06-03T00:00:00Z","data":{"deal_id":"DT","partner_id":"P1","customer_id":"CT","amount_minor":5000,"currency":"JPY"}}
{"id":"deal-t2","type":"deal.stage_changed","at":"2026-06-04T00:00:00Z","data":{"deal_id":"DT","stage":"Contract, \"signed\""}}
EOF2
    acc "$l2" append "$TMP/stages.jsonl"
    assert_exit 0 "a pipeline whose stage names hold spaces, a comma and quotes"
    acc "$l2" pipeline --today 2026-06-10 --format json
    expect_stdout_contains '"stage":"Contract, \"signed\""'
    acc "$l2" pipeline --today 2026-06-10 --format csv
    expect_stdout_contains 'P1,"Contract, ""signed""",1,5000,JPY'
}

run_case case_plan_publish
run_case case_plan_publish_stale
run_case case_whatif_stale_names_latest
run_case case_plan_show
run_case case_whatif
run_case case_partner
run_case case_kpi
run_case case_kpi_by_rep_rows
run_case case_pipeline
run_case case_stage_names_are_text
finish
