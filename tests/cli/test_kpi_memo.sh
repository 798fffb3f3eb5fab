#!/usr/bin/env bash
# test_kpi_memo.sh - the KPI memo of `accrue serve` (engine/query/kpi_memo.c) against the
# command line, which starts afresh each time and so always runs the processor: after every
# write below, each month's and quarter's KPI from the server must be byte-identical to
# `accrue kpi`. The writes are the generator's own later events (each reaching only the
# months from its own on), a close from another process, and corrections that reach back: a
# backdated tier change, backdated trainings that certify a partner (the plan pays certified
# silver partners more), a late sale, a refund of an early sale, an adjustment. /metrics then
# shows sums from both paths.
source "$(dirname "$0")/lib.sh"
GEN=${ACCRUE_GEN:-$(dirname "$ACCRUE")/accrue-gen}
[ -x "$GEN" ] || GEN=$ROOT/build/accrue-gen
WINDOWS="2026-01 2026-02 2026-03 2026-04 2026-05 2026-06 2026-Q1 2026-Q2"

# get PATH: the server's answer body in $TMP/.got (exit status 0 on 200).
get() {
    local code
    code=$(curl -s -o "$TMP/.got" -w '%{http_code}' --oauth2-bearer "$TOK" "$BASE$1")
    [ "$code" = 200 ] || { fail "GET $1: $code $(head -c 300 "$TMP/.got")"; return 1; }
}

post() { # FILE: one atomic batch
    local code
    code=$(curl -s -o "$TMP/.post" -w '%{http_code}' --oauth2-bearer "$TOK" \
        -H 'Content-Type: application/x-ndjson' --data-binary @"$1" "$BASE/v1/events")
    [ "$code" = 200 ] || fail "POST $1: $code $(head -c 300 "$TMP/.post")"
}

# every window: the server's KPI (memo or run) equals the command line's (a run)
same_everywhere() { # WHAT
    local w
    for w in $WINDOWS; do
        get "/v1/kpi?period=$w" || return
        "$ACCRUE" --ledger "$L" kpi --period "$w" --format json >"$TMP/.want" 2>"$TMP/.err" ||
            { fail "accrue kpi $w: $(cat "$TMP/.err")"; return; }
        cmp -s "$TMP/.got" "$TMP/.want" || {
            fail "$1: kpi $w from the server differs from accrue kpi"
            diff <(tr '}' '\n' <"$TMP/.want") <(tr '}' '\n' <"$TMP/.got") | head -6 >&2
        }
    done
}

memo_count() { # FROM: memo or run
    get /metrics || return
    sed -n "s/^accrue_kpi_commission_total{from=\"$1\"} //p" "$TMP/.got"
}

case_server_answers_as_a_fresh_run() {
    local h=$TMP/h.jsonl n base
    "$GEN" --partners 12 --sales 3000 --months 6 --seed 7 --program >"$h" || { fail gen; return; }
    n=$(wc -l <"$h")
    base=$((n * 6 / 10))
    head -n "$base" "$h" >"$TMP/base.jsonl"
    tail -n +$((base + 1)) "$h" >"$TMP/rest.jsonl"
    split -n l/3 "$TMP/rest.jsonl" "$TMP/chunk."
    L=$(new_ledger)
    acc "$L" append "$TMP/base.jsonl"
    assert_exit 0 "append the first part"
    TOK=kpi-memo-test-secret-0123456789
    printf '%s admin\n' "$TOK" >"$TMP/token-file"
    start_server "$L" --token-file "$TMP/token-file"
    same_everywhere "first asks"
    same_everywhere "asked again"
    local gold silver sale c
    gold=$(grep '"type":"partner.registered"' "$h" | grep -m1 '"tier":"gold"' |
        sed 's/.*"partner_id":"\([^"]*\)".*/\1/')
    silver=$(grep '"type":"partner.registered"' "$h" | grep -m1 '"tier":"silver"' |
        sed 's/.*"partner_id":"\([^"]*\)".*/\1/')
    # a January sale never refunded, refunded in full in March (within the 90 days)
    local s amount
    for s in $(grep '"type":"sale.recorded","at":"2026-01' "$TMP/base.jsonl" | grep '"product":"cloud"' | head -50 |
        sed 's/.*"sale_id":"\([^"]*\)".*/\1/'); do
        grep -q "\"type\":\"sale.refunded\".*\"sale_id\":\"$s\"" "$h" || { sale=$s; break; }
    done
    amount=$(grep -m1 "\"sale_id\":\"$sale\"" "$h" | sed 's/.*"amount_minor":\([0-9]*\).*/\1/')
    [ -n "$gold" ] && [ -n "$silver" ] && [ -n "$sale" ] && [ -n "$amount" ] ||
        { fail "history lacks a case"; return; }
    for c in "$TMP"/chunk.*; do
        post "$c"
        same_everywhere "after $(basename "$c")"
    done
    # a close from another process: the KPI counts lines as of the head, closes ignored
    acc "$L" payout close 2026-01
    assert_exit 0 "close 2026-01 beside the server"
    same_everywhere "a close"
    local ev=$TMP/ev.jsonl
    printf '{"id":"late-tier","type":"partner.updated","at":"2026-02-10T00:00:00Z","data":{"partner_id":"%s","tier":"silver"}}\n' \
        "$gold" >"$ev"
    post "$ev"
    same_everywhere "a backdated tier change"
    printf '{"id":"late-t%s","type":"training.completed","at":"2026-03-02T00:00:00Z","data":{"partner_id":"%s","module":"%s"}}\n' \
        1 "$silver" onboarding 2 "$silver" product-101 >"$ev"
    post "$ev"
    same_everywhere "backdated trainings"
    printf '{"id":"late-sale","type":"sale.recorded","at":"2026-04-03T00:00:00Z","data":{"sale_id":"LATE1","partner_id":"%s","customer_id":"C-late","product":"cloud","amount_minor":4000000,"currency":"JPY"}}\n' \
        "$silver" >"$ev"
    post "$ev"
    same_everywhere "a late sale"
    printf '{"id":"late-refund","type":"sale.refunded","at":"2026-03-20T00:00:00Z","data":{"sale_id":"%s","amount_minor":%s}}\n' \
        "$sale" "$amount" >"$ev"
    post "$ev"
    same_everywhere "a refund of an early sale"
    printf '{"id":"late-adj","type":"adjustment.recorded","at":"2026-05-05T00:00:00Z","data":{"partner_id":"%s","amount_minor":-7000,"currency":"JPY","reason":"true-up"}}\n' \
        "$gold" >"$ev"
    post "$ev"
    same_everywhere "an adjustment"
    local memo runs
    memo=$(memo_count memo)
    runs=$(memo_count run)
    [ "${memo:-0}" -gt 0 ] || fail "no KPI came from the memo"
    [ "${runs:-0}" -gt 0 ] || fail "no KPI came from a run"
    stop_server
}

# Six partners' portals ask the same quarter at once: one run, five answers from it.
case_one_run_for_concurrent_asks() {
    [ -n "${L:-}" ] || { fail "no ledger from the case before"; return; }
    # each lane thread first sleeps 300 ms (test hook): the asks meet on the lane
    ACCRUE_TEST_SLOW_MS=300 start_server "$L" --token-file "$TMP/token-file" --expensive-max 4
    local i pids=()
    for i in 1 2 3 4 5 6; do
        curl -s -o "$TMP/.c$i" --oauth2-bearer "$TOK" "$BASE/v1/kpi?period=2026-Q2" &
        pids+=($!)
    done
    wait "${pids[@]}"
    "$ACCRUE" --ledger "$L" kpi --period 2026-Q2 --format json >"$TMP/.want"
    for i in 1 2 3 4 5 6; do
        cmp -s "$TMP/.c$i" "$TMP/.want" || fail "answer $i differs from accrue kpi"
    done
    assert_eq "$(memo_count run)" 1 "runs for six asks of one window at one head"
    assert_eq "$(memo_count memo)" 5 "answers from the memo"
    stop_server
}

run_case case_server_answers_as_a_fresh_run
run_case case_one_run_for_concurrent_asks
finish
