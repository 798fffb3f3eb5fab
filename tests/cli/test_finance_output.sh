#!/usr/bin/env bash
# test_finance_output.sh - what finance reads: partner names beside ids and times in the
# ledger's business time zone in the human tables, the per-partner totals view of a run
# (--totals), and `payout export` of a closed period for payroll / ERP (one row per
# partner, exact decimal amounts in major units, the statement's fingerprint).
#
# Expected values are computed by hand from the worked example (commissions.md):
# P1's July lines are 90000 + 135000 - 15000 + 10000 + 10000 = 230000 JPY over 5 lines,
# P2's one line is 20000 JPY; S1 at 2026-07-02T01:00:00Z is 10:00 at +09:00.
. "$(dirname "$0")/lib.sh"

L=$(new_ledger --period month --utc-offset +09:00)
"$ACCRUE" --ledger "$L" append "$WORKED/events.jsonl" >/dev/null

case_run_table_names_and_business_time() {
    acc "$L" payout run 2026-07
    assert_exit 0
    expect_stdout_contains "(times in business time +09:00)"
    expect_stdout_contains "partner P1  Alpha Resale (JPY)"
    expect_stdout_contains "partner P2  Beta Referral (JPY)"
    expect_stdout_contains "2026-07-02T10:00:00+09:00"
    case $OUT in *2026-07-02T01:00:00Z*) fail "the table shows UTC times" ;; esac
    acc "$L" log --format table --type sale.recorded
    expect_stdout_contains "2026-07-02T10:00:00+09:00"
    acc "$L" kpi --period 2026-07
    [[ $OUT =~ P1\ +Alpha\ Resale\ +2026-07 ]] || fail "kpi table without names: $OUT"
    acc "$L" kpi --period 2026-07 --format csv
    case $OUT in *Alpha*) fail "names leaked into the stable kpi csv" ;; esac
}

case_totals() {
    acc "$L" payout run 2026-07 --totals
    assert_exit 0
    [[ $OUT =~ P1\ +Alpha\ Resale\ +JPY\ +5\ +0\ JPY\ +230,000\ JPY ]] ||
        fail "P1 totals row: $OUT"
    [[ $OUT =~ P2\ +Beta\ Referral\ +JPY\ +1\ +0\ JPY\ +20,000\ JPY ]] ||
        fail "P2 totals row: $OUT"
    expect_stdout_contains "total 250,000 JPY"
    expect_stdout_contains "partners 2  lines 6  fingerprint c5e27e1ef9f0212498bfa9b06be115cd"
    case $OUT in *new_customer_bonus*) fail "--totals printed the lines" ;; esac
    acc "$L" payout run 2026-07 --totals --out "$TMP/t"
    assert_exit 0
    assert_file_eq "$TMP/t/statement.csv" "$WORKED/statement-2026-07.csv"
    expect_stdout_contains "230,000 JPY"
    acc "$L" payout close 2026-07 --totals
    assert_exit 2
}

# A close whose --out folder or files cannot be made fails before anything is committed
# (cli.md: exit 1, nothing half-written): once the period was closed and the command still
# exited 1.
case_close_out_unwritable() {
    local l
    l=$(new_ledger --utc-offset +09:00)
    "$ACCRUE" --ledger "$l" append "$WORKED/events.jsonl" >/dev/null
    : >"$TMP/a-file"
    acc "$l" payout close 2026-07 --out "$TMP/a-file/sub"
    assert_exit 1
    acc "$l" payout list
    case $OUT in *2026-07*) fail "the period was closed: $OUT" ;; esac
    # a file the close would write that cannot be written (a folder in its place): refused
    # before the close too (it used to be found after the commit)
    mkdir -p "$TMP/close-out/summary.json"
    acc "$l" payout close 2026-07 --out "$TMP/close-out"
    assert_exit 1
    expect_stderr_contains "summary.json exists and is not a regular file"
    acc "$l" payout list
    case $OUT in *2026-07*) fail "the period was closed: $OUT" ;; esac
    [ -e "$TMP/close-out/statement.csv" ] && fail "statement.csv written by a refused close"
    rmdir "$TMP/close-out/summary.json"
    acc "$l" payout close 2026-07 --out "$TMP/close-out"
    assert_exit 0
    assert_file_eq "$TMP/close-out/statement.csv" "$WORKED/statement-2026-07.csv"
    # a close with no line: its totals say so, not a blank cell
    acc "$l" payout close 2026-08
    assert_exit 0
    acc "$l" payout list
    grep -qE '^2026-08 +[0-9]+ +[0-9]+ +0 +[0-9a-f]{32} +nothing$' <<<"$OUT" ||
        fail "payout list of a close without lines: $OUT"
}

case_export_only_closed() {
    acc "$L" payout export 2026-07
    assert_exit 3
    expect_stderr_contains "accrue: not_found: period 2026-07 is not closed"
}

case_export_worked() {
    "$ACCRUE" --ledger "$L" payout close 2026-07 >/dev/null
    acc "$L" payout export 2026-07 --format csv
    assert_exit 0
    printf '%s\n' 'partner_id,name,currency,amount,lines,fingerprint' \
        'P1,Alpha Resale,JPY,230000,5,c5e27e1ef9f0212498bfa9b06be115cd' \
        'P2,Beta Referral,JPY,20000,1,c5e27e1ef9f0212498bfa9b06be115cd' >"$TMP/want.csv"
    printf '%s\n' "$OUT" >"$TMP/got.csv"
    assert_file_eq "$TMP/got.csv" "$TMP/want.csv"
    acc "$L" payout export 2026-07 --format xlsx
    assert_exit 2
}

# Two decimals, a negative total and a name that needs CSV quoting: 10% of 123.45 USD is
# 12.345, rounded half-even to 12.34 (1234 cents); an adjustment of -50.00 makes the
# total 12.34 - 50.00 = -37.66.
case_export_decimals_and_quoting() {
    local l
    l=$(new_ledger --period month --utc-offset +00:00)
    cat >"$TMP/usd.jsonl" <<'EOF'
{"id":"u-plan","type":"plan.published","at":"2026-06-01T00:00:00Z","data":{"plan":{"plan_id":"usd","version":1,"effective_from":"2026-01-01","currency":"USD","ceiling_bp":5000,"rules":[{"match":{},"brackets":[{"from_minor":0,"rate_bp":1000}]}],"clawback_days":90}}}
{"id":"u-p","type":"partner.registered","at":"2026-06-01T00:00:00Z","data":{"partner_id":"U1","name":"Acme, \"East\" Inc.","kind":"reseller","tier":"t","plan_id":"usd","currency":"USD"}}
{"id":"u-s","type":"sale.recorded","at":"2026-07-05T00:00:00Z","data":{"sale_id":"US1","partner_id":"U1","customer_id":"C1","product":"x","amount_minor":12345,"currency":"USD"}}
{"id":"u-a","type":"adjustment.recorded","at":"2026-07-06T00:00:00Z","data":{"partner_id":"U1","amount_minor":-5000,"currency":"USD","reason":"advance"}}
EOF
    "$ACCRUE" --ledger "$l" append "$TMP/usd.jsonl" >/dev/null
    acc "$l" payout close 2026-07
    assert_exit 0
    acc "$l" payout export 2026-07
    assert_exit 0
    local row fp
    row=$(sed -n 2p <<<"$OUT")
    fp=$("$ACCRUE" --ledger "$l" payout list | awk '$1 == "2026-07" {print $5}')
    assert_eq "$row" "U1,\"Acme, \"\"East\"\" Inc.\",USD,-37.66,2,$fp" "export row"
    [[ $fp =~ ^[0-9a-f]{32}$ ]] || fail "fingerprint from payout list: [$fp]"
}

run_case case_run_table_names_and_business_time
run_case case_totals
run_case case_close_out_unwritable
run_case case_export_only_closed
run_case case_export_worked
run_case case_export_decimals_and_quoting
finish
