#!/usr/bin/env bash
# test_worked.sh - the worked example of commissions.md end to end through
# the CLI: exact statement bytes, fingerprints checked with the stock
# xxh128sum, close, a late sale restating July in August, audit, the
# reproduction of a closed run, and the close refusals.
. "$(dirname "$0")/lib.sh"

L=$(new_ledger --period month --utc-offset +09:00)

case_append() {
    acc "$L" append "$WORKED/events.jsonl"
    assert_exit 0
    assert_eq "$OUT" "appended 7 events (seq 1..7), 0 already present"
}

case_run_july() {
    acc "$L" payout run 2026-07 --out "$TMP/o7"
    assert_exit 0
    assert_file_eq "$TMP/o7/statement.csv" "$WORKED/statement-2026-07.csv"
    assert_eq "$(xxh128sum "$TMP/o7/statement.csv" 2>/dev/null | cut -d' ' -f1)" \
        c5e27e1ef9f0212498bfa9b06be115cd "xxh128sum"
    [ -s "$TMP/o7/summary.json" ] || fail "no summary.json"
    grep -q c5e27e1ef9f0212498bfa9b06be115cd "$TMP/o7/summary.json" ||
        fail "summary.json lacks the fingerprint"
    expect_stdout_contains c5e27e1ef9f0212498bfa9b06be115cd
}

case_run_table() {
    acc "$L" payout run 2026-07
    assert_exit 0
    expect_stdout_contains c5e27e1ef9f0212498bfa9b06be115cd
    expect_stdout_contains P1
    expect_stdout_contains P2
}

case_close_july() {
    acc "$L" payout close 2026-07
    assert_exit 0
    expect_stdout_contains "seq 8"
    acc "$L" log --from 8 --format jsonl
    expect_stdout_contains '"type":"period.closed"'
    expect_stdout_contains '"id":"period.closed:2026-07"'
}

case_late_and_august() {
    acc "$L" append "$WORKED/late.jsonl"
    assert_exit 0
    assert_eq "$OUT" "appended 2 events (seq 9..10), 0 already present"
    acc "$L" payout run 2026-08 --out "$TMP/o8"
    assert_exit 0
    assert_file_eq "$TMP/o8/statement.csv" "$WORKED/statement-2026-08.csv"
    assert_eq "$(xxh128sum "$TMP/o8/statement.csv" 2>/dev/null | cut -d' ' -f1)" \
        fcde0350c75d19f89c7a7f89090f7884 "xxh128sum"
}

case_audit_july() {
    acc "$L" payout audit 2026-07
    assert_exit 0
    expect_stdout_contains c5e27e1ef9f0212498bfa9b06be115cd
    # cli.md: without --out, a table per partner (the recomputed statement) as well
    expect_stdout_contains "partner P1"
    expect_stdout_contains "total 230,000 JPY"
    expect_stdout_contains "partner P2"
}

case_rerun_closed_july() {
    acc "$L" payout run 2026-07 --out "$TMP/o7b"
    assert_exit 0
    assert_file_eq "$TMP/o7b/statement.csv" "$WORKED/statement-2026-07.csv"
    acc "$L" payout run 2026-07 --as-of 7 --out "$TMP/o7c"
    assert_exit 0
    assert_file_eq "$TMP/o7c/statement.csv" "$WORKED/statement-2026-07.csv"
}

case_close_again() {
    local before
    before=$(ledger_sum "$L")
    acc "$L" payout close 2026-07
    assert_exit 4
    expect_stderr_contains "accrue: period_closed:"
    assert_eq "$(ledger_sum "$L")" "$before" "ledger checksum"
}

case_close_out_of_order() {
    local before
    before=$(ledger_sum "$L")
    acc "$L" payout close 2026-09
    assert_exit 4
    expect_stderr_contains "accrue: period_order:"
    assert_eq "$(ledger_sum "$L")" "$before" "ledger checksum"
}

case_list() {
    acc "$L" payout list
    assert_exit 0
    expect_stdout_contains 2026-07
    expect_stdout_contains c5e27e1ef9f0212498bfa9b06be115cd
}

case_verify() {
    acc "$L" verify
    assert_exit 0
    case $OUT in "ok: 10 events, head "*) ;; *) fail "verify said [$OUT]" ;; esac
}

case_audit_not_closed() {
    acc "$L" payout audit 2026-08
    assert_exit 3 "audit of an open period: not_found"
    expect_stderr_contains "accrue: not_found: period 2026-08 is not closed"
}

case_bad_period() {
    acc "$L" payout run 2026-13
    assert_exit 2
}

# patched_copy COPY REGEX BACK BYTE: COPY becomes a copy of $L in which, in data.mdb, the byte
# BACK bytes before the end of every match of REGEX is BYTE; prints the number of matches.
patched_copy() {
    mkdir -p "$1"
    cp "$L/data.mdb" "$1/data.mdb"
    cp "$L/state.mdb" "$1/state.mdb"
    perl -e '
        my ($path, $re, $back, $byte) = @ARGV;
        open(my $fh, "+<:raw", $path) or die "$path: $!";
        local $/; my $buf = <$fh>;
        my $n = 0;
        while ($buf =~ /$re/g) { seek($fh, pos($buf) - $back, 0); print $fh $byte; $n++; }
        close $fh; print $n;' "$1/data.mdb" "$2" "$3" "$4"
}

# A stored statement edited in data.mdb: audit names the first differing line.
case_audit_tampered() {
    local copy=$TMP/tampered n
    n=$(patched_copy "$copy" 'S3,6,2026-07-11T05:00:00Z,standard@1#1,200000,20000,JPY' 5 1)
    [ "$n" -ge 1 ] || fail "the stored statement line was not found in data.mdb"
    acc "$copy" payout audit 2026-07
    assert_exit 5
    expect_stderr_contains "accrue: mismatch: 2026-07: line 7"
    expect_stderr_contains "recorded: 2026-07,P2,1,2026-07,sale,S3,6,2026-07-11T05:00:00Z,standard@1#1,200000,20001,JPY"
    expect_stderr_contains "computed: 2026-07,P2,1,2026-07,sale,S3,6,2026-07-11T05:00:00Z,standard@1#1,200000,20000,JPY"
}

# A log record changed in place (every "gold" of data.mdb, the plan's rule among them): the
# audit reads the log itself, so it fails on the broken chain link, whatever copies of the
# records the derived state keeps (period_seqs holds some for indexed runs).
case_audit_log_changed() {
    local copy=$TMP/changed n
    n=$(patched_copy "$copy" gold 1 e)
    [ "$n" -ge 1 ] || fail "no \"gold\" in data.mdb"
    acc "$copy" payout audit 2026-07
    assert_exit 5 "audit over a changed log record"
    expect_stderr_contains "accrue: chain_broken: "
}

run_case case_append
run_case case_run_july
run_case case_run_table
run_case case_close_july
run_case case_late_and_august
run_case case_audit_july
run_case case_audit_tampered
run_case case_audit_log_changed
run_case case_rerun_closed_july
run_case case_close_again
run_case case_close_out_of_order
run_case case_list
run_case case_verify
run_case case_audit_not_closed
run_case case_bad_period
finish
