#!/usr/bin/env bash
# test_old_ledger.sh - a ledger written by a release before today's period index (issue 11)
# opens and answers exactly as before, and `accrue rebuild` upgrades it.
#
# tests/cli/fixtures/ledger-pre-index.mdb.gz is the data.mdb of the worked example (events,
# `payout close 2026-07`, then the late events) written by accrue at commit ce1c4f6, before
# period_seqs existed. ledger-pseq-v1.{data,state}.mdb.gz are the same ledger as accrue at
# commit 747f2f7 left it after opening it and `accrue rebuild`: two environments, the index in
# its format 1 (rows without the copies of scattered records that format 2 adds). A run of
# either reads the whole log (the index is absent, or of another format); verify says so in a
# note and passes; rebuild builds the index, after which the runs use it; every statement is
# the worked example's, byte for byte, before and after.
. "$(dirname "$0")/lib.sh"

FIX=$ROOT/tests/cli/fixtures/ledger-pre-index.mdb.gz
FIX_V1=("$ROOT/tests/cli/fixtures/ledger-pseq-v1.data.mdb.gz"
        "$ROOT/tests/cli/fixtures/ledger-pseq-v1.state.mdb.gz")

case_opens_and_answers_as_before() {
    local l
    l=$(fixture_ledger "${CASE_FIX[@]}")
    acc "$l" verify
    assert_exit 0 "verify of a ledger of the previous release"
    expect_stderr_contains "accrue rebuild"
    acc "$l" payout run 2026-08 --out "$TMP/a8"
    assert_exit 0
    assert_file_eq "$TMP/a8/statement.csv" "$WORKED/statement-2026-08.csv"
    acc "$l" payout audit 2026-07
    assert_exit 0 "audit of the close the previous release made"
}

case_rebuild_upgrades_it() {
    local l
    l=$(fixture_ledger "${CASE_FIX[@]}")
    acc "$l" rebuild
    assert_exit 0
    acc "$l" verify
    assert_exit 0 "verify after rebuild"
    case $ERR in *"accrue rebuild"*) fail "the note stays after rebuild: $ERR" ;; esac
    acc "$l" payout run 2026-08 --out "$TMP/b8"
    assert_exit 0
    assert_file_eq "$TMP/b8/statement.csv" "$WORKED/statement-2026-08.csv"
    ACR_PAYOUT_FULL_SCAN=1 "$ACCRUE" --ledger "$l" payout run 2026-08 --out "$TMP/c8" >/dev/null ||
        fail "full-scan run"
    assert_file_eq "$TMP/c8/statement.csv" "$WORKED/statement-2026-08.csv"
}

case_new_appends_on_an_old_ledger() {
    local l
    l=$(fixture_ledger "${CASE_FIX[@]}")
    printf '%s\n' '{"id":"old-1","type":"training.completed","at":"2026-08-20T00:00:00Z","data":{"partner_id":"P1","module":"m"}}' \
        >"$TMP/one.jsonl"
    acc "$l" append "$TMP/one.jsonl"
    assert_exit 0
    acc "$l" verify
    assert_exit 0 "verify after the new release appended to an old ledger"
    acc "$l" payout run 2026-08 --out "$TMP/d8"
    assert_exit 0
    assert_file_eq "$TMP/d8/statement.csv" "$WORKED/statement-2026-08.csv"
}

case_v1_index_opens_and_answers_as_before() { CASE_FIX=("${FIX_V1[@]}"); case_opens_and_answers_as_before; }
case_v1_index_rebuild_upgrades_it() { CASE_FIX=("${FIX_V1[@]}"); case_rebuild_upgrades_it; }
case_v1_index_new_appends() { CASE_FIX=("${FIX_V1[@]}"); case_new_appends_on_an_old_ledger; }

CASE_FIX=("$FIX")
run_case case_opens_and_answers_as_before
run_case case_rebuild_upgrades_it
run_case case_new_appends_on_an_old_ledger
run_case case_v1_index_opens_and_answers_as_before
run_case case_v1_index_rebuild_upgrades_it
run_case case_v1_index_new_appends
finish
