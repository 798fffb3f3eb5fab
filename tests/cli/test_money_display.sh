#!/usr/bin/env bash
# test_money_display.sh - human tables show money as finance reads it: the currency's units
# grouped by thousands, its minor digits, its code, right-aligned, negatives with a minus sign
# (USD 2 decimals, JPY 0, KWD 3); machine formats keep integer minor units.
#
# Hand-computed figures (plan: one rule at 1000 bp, clawback 90 days):
#   sale 123456789 minor          -> commission 123456789 * 1000 / 10000 = 12345678.9 -> 12345679
#   refund of 1000000 minor       -> clawback -(1000000 * 1000 / 10000)  = -100000
#   partner total                 -> 12345679 - 100000 = 12245679
#   shown: USD 1,234,567.89 / 123,456.79 / -1,000.00 / 122,456.79
#          JPY 123,456,789  / 12,345,679 / -100,000  / 12,245,679
#          KWD 123,456.789  / 12,345.679 / -100.000  / 12,245.679
. "$(dirname "$0")/lib.sh"

money_ledger() { # CURRENCY -> a ledger with one partner, one sale, one partial refund, one open deal
    local cur=$1 l
    l=$(new_ledger --period month --utc-offset +00:00)
    cat >"$TMP/plan-$cur.json" <<EOF2
{"plan_id": "flat", "version": 1, "effective_from": "2026-01-01", "currency": "$cur",
 "ceiling_bp": 4000, "rules": [{"match": {}, "brackets": [{"from_minor": 0, "rate_bp": 1000}]}],
 "clawback_days": 90}
EOF2
    "$ACCRUE" --ledger "$l" plan publish "$TMP/plan-$cur.json" >/dev/null
    cat >"$TMP/ev-$cur.jsonl" <<EOF2
{"id":"p1","type":"partner.registered","at":"2026-06-01T00:00:00Z","data":{"partner_id":"P1","name":"Partner One","kind":"reseller","tier":"gold","plan_id":"flat","currency":"$cur"}}
{"id":"d1","type":"deal.registered","at":"2026-07-01T00:00:00Z","data":{"deal_id":"D1","partner_id":"P1","customer_id":"C9","amount_minor":987654321,"currency":"$cur"}}
{"id":"s1","type":"sale.recorded","at":"2026-07-02T00:00:00Z","data":{"sale_id":"S1","partner_id":"P1","customer_id":"C1","product":"cloud","amount_minor":123456789,"currency":"$cur"}}
{"id":"r1","type":"sale.refunded","at":"2026-07-03T00:00:00Z","data":{"sale_id":"S1","amount_minor":1000000}}
EOF2
    "$ACCRUE" --ledger "$l" append "$TMP/ev-$cur.jsonl" >"$TMP/.app" 2>&1 ||
        fail "append ($cur): $(cat "$TMP/.app")"
    echo "$l"
}

check_currency() { # CUR SALE COMMISSION CLAWBACK TOTAL DEAL
    local cur=$1 sale=$2 comm=$3 claw=$4 total=$5 deal=$6 l
    l=$(money_ledger "$cur")
    acc "$l" payout run 2026-07
    assert_exit 0 "payout run ($cur)"
    expect_stdout_contains "$sale $cur"
    expect_stdout_contains "$comm $cur"
    expect_stdout_contains "$claw $cur"
    expect_stdout_contains "total $total $cur"
    # right-aligned: every amount cell of a line ends at the same column
    local ends
    ends=$(grep -E "^ +[0-9]+ +2026-07" <<<"$OUT" | awk '{print length($0)}' | sort -u | wc -l)
    assert_eq "$ends" "1" "line widths ($cur)"
    acc "$l" kpi --period 2026-07
    expect_stdout_contains "$total $cur" # commission (sale line + clawback) in units
    acc "$l" pipeline --today 2026-07-31
    expect_stdout_contains "$deal $cur"
    # machine formats keep integer minor units
    acc "$l" kpi --period 2026-07 --format json
    expect_stdout_contains '"commission_minor":12245679'
    acc "$l" pipeline --today 2026-07-31 --format csv
    expect_stdout_contains ',987654321,'
    acc "$l" payout close 2026-07
    acc "$l" payout list
    expect_stdout_contains "$total $cur"
}

case_usd() { check_currency USD 1,234,567.89 123,456.79 -1,000.00 122,456.79 9,876,543.21; }
case_jpy() { check_currency JPY 123,456,789 12,345,679 -100,000 12,245,679 987,654,321; }
case_kwd() { check_currency KWD 123,456.789 12,345.679 -100.000 12,245.679 987,654.321; }

run_case case_usd
run_case case_jpy
run_case case_kwd
finish
