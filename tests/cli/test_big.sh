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
    rm -f "$TMP/big.jsonl"
}

if is_asan; then
    skip_case case_million "sanitizer build"
else
    run_case case_million
fi
finish
