#!/usr/bin/env bash
# test_layout.sh - the ledger's two environments (issue 11, docs/architecture.md "Storage"):
# data.mdb holds the log and the primary tables, state.mdb the derived state with its APPLIED
# marker. A ledger of the previous release (one environment) is upgraded in place at its first
# open and answers exactly as before; a state that trails the log (a writer that died between
# its two commits, a state.mdb restored from earlier) or that is missing catches up from the
# log; a state.mdb of another log is refused until `accrue rebuild`.
#
# tests/cli/fixtures/ledger-one-env.mdb.gz is the data.mdb written by the previous release
# (main at 382fea5): the worked example (events.jsonl, `payout close 2026-07`, late.jsonl) and
# two tokens, fx-admin (admin) and fx-p1 (partner of P1). Its statements are the worked
# example's, which were computed by hand (tests/cli/worked/README.md).
. "$(dirname "$0")/lib.sh"

FIX=$ROOT/tests/cli/fixtures/ledger-one-env.mdb.gz

# The named tables of an LMDB environment (a folder, or with -n a file), sorted, one line.
tables() {
    mdb_stat "$@" -a 2>/dev/null | sed -n 's/^Status of \(.*\)$/\1/p' | grep -v '^Main DB$' |
        sort | tr '\n' ' '
}

# The worked example's answers, the same whatever the layout went through.
answers_as_worked() { # LEDGER WHAT
    acc "$1" verify
    assert_exit 0 "verify ($2)"
    acc "$1" payout run 2026-08 --out "$TMP/run8"
    assert_exit 0 "payout run 2026-08 ($2)"
    assert_file_eq "$TMP/run8/statement.csv" "$WORKED/statement-2026-08.csv"
    acc "$1" payout audit 2026-07
    assert_exit 0 "audit of the 2026-07 close ($2)"
    rm -rf "$TMP/run8"
}

case_new_ledger_has_two_environments() {
    local l
    l=$(new_ledger --period month --utc-offset +09:00)
    assert_eq "$(tables "$l")" "closes idem ledger log tokens " "data.mdb's tables"
    assert_eq "$(tables -n "$l/state.mdb" | grep -c 'applied.*proj_kpi.*streams')" 1 \
        "state.mdb holds the marker and the derived tables"
    assert_eq "$(stat -c %a "$l/state.mdb")" 600 "state.mdb's mode"
}

case_upgrade_in_place() {
    local l
    l=$(fixture_ledger "$FIX")
    [ "$(tables "$l" | grep -c 'meta.*proj_kpi')" -eq 1 ] || fail "the fixture is not one environment"
    acc "$l" stats
    assert_exit 0 "the first open of a ledger of the previous release"
    grep -qE '^events +10$' <<<"$OUT" || fail "stats after the upgrade: ${OUT:0:200}"
    [ -f "$l/state.mdb" ] || fail "no state.mdb after the upgrade"
    # the derived tables moved; "meta" became "ledger", so an older release finds no ledger
    assert_eq "$(tables "$l")" "closes idem ledger log tokens " "data.mdb after the upgrade"
    answers_as_worked "$l" "after the upgrade"
    acc "$l" token list
    assert_exit 0
    expect_stdout_contains "fx-admin"
    expect_stdout_contains "fx-p1"
    # a second open finds nothing to do; the ledger takes new events
    printf '%s\n' '{"id":"after-up-1","type":"sale.recorded","at":"2026-08-20T00:00:00Z","data":{"sale_id":"S90","partner_id":"P1","customer_id":"C90","product":"cloud","amount_minor":1000,"currency":"JPY"}}' >"$TMP/up.jsonl"
    acc "$l" append "$TMP/up.jsonl"
    assert_exit 0
    expect_stdout_contains "(seq 11..11)"
    acc "$l" verify
    assert_exit 0
    expect_stdout_contains "ok: 11 events"
}

# An upgrade that died before its switch left a state.mdb beside the old data.mdb: the next
# open makes it again (here the leftover is another ledger's state, which must not be used).
case_upgrade_after_an_interrupted_one() {
    local l other
    l=$(fixture_ledger "$FIX")
    other=$(new_ledger --period month --utc-offset +09:00)
    acc "$other" append "$WORKED/events.jsonl"
    assert_exit 0
    cp "$other/state.mdb" "$l/state.mdb"
    answers_as_worked "$l" "after an interrupted upgrade"
}

# A writer that died between its two commits, or a state.mdb restored from an earlier copy:
# the marker trails the log, and the next open applies the rest.
case_state_trails_the_log() {
    local l fresh
    l=$(new_ledger --period month --utc-offset +09:00)
    acc "$l" append "$WORKED/events.jsonl"
    assert_exit 0
    cp "$l/state.mdb" "$TMP/state-at-7.mdb"
    acc "$l" payout close 2026-07
    assert_exit 0
    acc "$l" append "$WORKED/late.jsonl"
    assert_exit 0
    cp "$TMP/state-at-7.mdb" "$l/state.mdb"
    answers_as_worked "$l" "after catching up from seq 7"
    acc "$l" stats
    grep -qE '^events +10$' <<<"$OUT" || fail "stats after the catch-up: ${OUT:0:200}"
    # the caught-up state is the state a replay makes (verify compared it table by table);
    # and the KPIs read from it are those of a ledger that never lost its state
    fresh=$(new_ledger --period month --utc-offset +09:00)
    acc "$fresh" append "$WORKED/events.jsonl" && acc "$fresh" payout close 2026-07 &&
        acc "$fresh" append "$WORKED/late.jsonl"
    acc "$fresh" kpi --period 2026-07
    local want=$OUT
    acc "$l" kpi --period 2026-07
    assert_eq "$OUT" "$want" "kpi after the catch-up"
}

case_state_lost() {
    local l
    l=$(new_ledger --period month --utc-offset +09:00)
    acc "$l" append "$WORKED/events.jsonl"
    acc "$l" payout close 2026-07
    acc "$l" append "$WORKED/late.jsonl"
    rm -f "$l/state.mdb" "$l/state.mdb-lock"
    answers_as_worked "$l" "after state.mdb was removed"
}

# A state.mdb that belongs to another log (the same seqs, other hashes) is never read as this
# ledger's: readers refuse it naming rebuild, and rebuild makes it from this log.
case_state_of_another_log() {
    local l other
    l=$(new_ledger --period month --utc-offset +09:00)
    other=$(new_ledger --period month --utc-offset +09:00)
    acc "$l" append "$WORKED/events.jsonl"
    acc "$l" payout close 2026-07
    acc "$l" append "$WORKED/late.jsonl"
    acc "$other" append "$WORKED/events.jsonl"
    acc "$other" payout close 2026-07
    acc "$other" append "$WORKED/late.jsonl"
    cp "$other/state.mdb" "$l/state.mdb"
    acc "$l" stats
    assert_exit 5 "stats over another log's state"
    expect_stderr_contains "accrue rebuild"
    acc "$l" verify
    assert_exit 5 "verify over another log's state"
    printf '%s\n' '{"id":"other-1","type":"sale.recorded","at":"2026-08-20T00:00:00Z","data":{"sale_id":"S91","partner_id":"P1","customer_id":"C91","product":"cloud","amount_minor":1000,"currency":"JPY"}}' >"$TMP/other.jsonl"
    acc "$l" append "$TMP/other.jsonl"
    assert_exit 5 "an append over another log's state"
    expect_stderr_contains "accrue rebuild"
    acc "$l" rebuild
    assert_exit 0
    answers_as_worked "$l" "after rebuild"
}

# A backup is two compacted environments, and opens as the ledger it copied.
case_backup_copies_both() {
    local l
    l=$(new_ledger --period month --utc-offset +09:00)
    acc "$l" append "$WORKED/events.jsonl"
    acc "$l" payout close 2026-07
    acc "$l" append "$WORKED/late.jsonl"
    acc "$l" backup "$TMP/bk"
    assert_exit 0
    [ -f "$TMP/bk/data.mdb" ] && [ -f "$TMP/bk/state.mdb" ] || fail "backup lacks a file"
    answers_as_worked "$TMP/bk" "the backup"
}

run_case case_new_ledger_has_two_environments
run_case case_upgrade_in_place
run_case case_upgrade_after_an_interrupted_one
run_case case_state_trails_the_log
run_case case_state_lost
run_case case_state_of_another_log
run_case case_backup_copies_both
finish
