#!/usr/bin/env bash
# test_big.sh - one million events appended with --batch-size 100000, then
# verify. Only in the optimised build: under ASan it would take too long.
. "$(dirname "$0")/lib.sh"

N=${ACCRUE_BIG_EVENTS:-1000000}

case_million() {
    local l
    l=$(new_ledger --map-size 2G)
    awk -v n="$N" 'BEGIN {
        for (p = 1; p <= 10; p++)
            printf "{\"id\":\"p-%d\",\"type\":\"partner.registered\",\"at\":\"2026-01-01T00:00:00Z\",\"data\":{\"partner_id\":\"P%d\",\"name\":\"Partner %d\",\"kind\":\"reseller\",\"tier\":\"gold\",\"plan_id\":\"standard\",\"currency\":\"USD\"}}\n", p, p, p
        for (i = 1; i <= n - 10; i++)
            printf "{\"id\":\"s-%d\",\"type\":\"sale.recorded\",\"at\":\"2026-%02d-%02dT%02d:00:00Z\",\"data\":{\"sale_id\":\"S%d\",\"partner_id\":\"P%d\",\"customer_id\":\"C%d\",\"product\":\"cloud\",\"amount_minor\":%d,\"currency\":\"USD\"}}\n", i, 1 + i % 12, 1 + i % 28, i % 24, i, 1 + i % 10, i % 50000, 100 + i % 99900
    }' >"$TMP/big.jsonl"
    local t0=$SECONDS
    acc "$l" append "$TMP/big.jsonl" --batch-size 100000
    assert_exit 0
    assert_eq "$OUT" "appended $N events (seq 1..$N), 0 already present"
    echo "  (append: $((SECONDS - t0)) s)"
    t0=$SECONDS
    acc "$l" verify
    assert_exit 0
    case $OUT in "ok: $N events, head "*) ;; *) fail "verify said [$OUT]" ;; esac
    echo "  (verify: $((SECONDS - t0)) s)"
}

# Past the batch limit without --batch-size: one too_large that names --batch-size (it
# once printed 100 of them), nothing written.
case_over_limit_said_once() {
    local l
    l=$(new_ledger --map-size 2G)
    { cat "$TMP/big.jsonl"; sed -n '11,15p' "$TMP/big.jsonl" | sed 's/"s-/"x-/; s/"S/"X/'; } \
        >"$TMP/over.jsonl"
    acc "$l" append "$TMP/over.jsonl"
    assert_exit 3
    assert_eq "$(grep -c '^accrue: ' <<<"$ERR")" 1 "diagnostic lines"
    expect_stderr_contains "accrue: too_large: line 1000001:"
    expect_stderr_contains "--batch-size"
    acc "$l" stats
    grep -qE '^events +0$' <<<"$OUT" || fail "stats: ${OUT:0:300}"
    rm -f "$TMP/big.jsonl" "$TMP/over.jsonl"
}

# Invalid events count toward the limit too (events.md: a batch <= 1,000,000 events; each
# breach is too_large): 1,000,001 events missing their fields are refused for their number,
# once, not with a million missing_field errors.
case_over_limit_with_bad_events() {
    local l
    l=$(new_ledger)
    awk 'BEGIN { for (i = 1; i <= 1000001; i++) printf "{\"id\":\"x%d\"}\n", i }' >"$TMP/bad.jsonl"
    acc "$l" append "$TMP/bad.jsonl"
    assert_exit 3
    assert_eq "$(grep -c '^accrue: ' <<<"$ERR")" 1 "diagnostic lines"
    expect_stderr_contains "accrue: too_large: line 1000001:"
    acc "$l" stats
    grep -qE '^events +0$' <<<"$OUT" || fail "stats: ${OUT:0:300}"
    rm -f "$TMP/bad.jsonl"
}

if is_asan; then
    skip_case case_million "sanitizer build"
    skip_case case_over_limit_said_once "sanitizer build"
    skip_case case_over_limit_with_bad_events "sanitizer build"
else
    run_case case_million
    run_case case_over_limit_with_bad_events
    if [ "$N" -eq 1000000 ]; then
        run_case case_over_limit_said_once
    else
        skip_case case_over_limit_said_once "ACCRUE_BIG_EVENTS is not 1000000"
    fi
fi
finish
