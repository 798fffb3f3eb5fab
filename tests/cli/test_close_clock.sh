#!/usr/bin/env bash
# test_close_clock.sh - `payout close` of a period that has not ended by the
# wall clock is refused with period_open (exit 4) naming when it ends, and
# changes nothing; --force closes it. The period used is December 2099, which
# has not ended on any machine this suite runs on; the exact millisecond
# boundary is a unit test (tests/engine/test_projection.c,
# close_waits_for_the_period_end), since the engine takes the clock as a
# parameter.
. "$(dirname "$0")/lib.sh"

L=$(new_ledger --period month --utc-offset +09:00)

case_setup() {
    {
        head -3 "$WORKED/events.jsonl"
        printf '%s\n' '{"id":"s-f1","type":"sale.recorded","at":"2099-12-02T00:00:00Z","data":{"sale_id":"SF1","partner_id":"P1","customer_id":"C1","product":"cloud","amount_minor":100000,"currency":"JPY"}}'
    } >"$TMP/future.jsonl"
    acc "$L" append "$TMP/future.jsonl"
    assert_exit 0
}

case_refused_before_its_end() {
    local before
    before=$(ledger_sum "$L")
    acc "$L" payout close 2099-12
    assert_exit 4
    expect_stderr_contains "accrue: period_open: period 2099-12 has not ended"
    expect_stderr_contains "2100-01-01T00:00:00+09:00 (2099-12-31T15:00:00Z)"
    expect_stderr_contains "--force"
    assert_eq "$(ledger_sum "$L")" "$before" "ledger checksum after a refused close"
    acc "$L" payout list
    case $OUT in *2099-12*) fail "payout list shows the refused period: $OUT" ;; esac
}

case_force_option_is_for_close_only() {
    acc "$L" payout run 2099-12 --force
    assert_exit 2
}

case_force_closes() {
    acc "$L" payout close 2099-12 --force
    assert_exit 0
    expect_stdout_contains "closed 2099-12 as seq 5"
    acc "$L" payout audit 2099-12
    assert_exit 0
}

# The last period a ledger can hold cannot be closed: its period.closed would be dated at its
# end, 10000-01-01 local, past the last date an event may have (and no RFC 3339 `at`).
case_last_period_not_closable() {
    local l before
    l=$(new_ledger --period month --utc-offset -12:00)
    {
        head -3 "$WORKED/events.jsonl"
        printf '%s\n' '{"id":"s-9999","type":"sale.recorded","at":"9999-12-31T09:00:00Z","data":{"sale_id":"S9999","partner_id":"P1","customer_id":"C1","product":"cloud","amount_minor":100000,"currency":"JPY"}}'
    } >"$TMP/last.jsonl"
    acc "$l" append "$TMP/last.jsonl"
    assert_exit 0
    before=$(ledger_sum "$l")
    acc "$l" payout close 9999-12 --force
    assert_exit 3
    expect_stderr_contains "accrue: invalid_timestamp: period 9999-12 cannot be closed"
    assert_eq "$(ledger_sum "$l")" "$before" "ledger checksum after the refused close"
}

run_case case_setup
run_case case_last_period_not_closable
run_case case_refused_before_its_end
run_case case_force_option_is_for_close_only
run_case case_force_closes
finish
