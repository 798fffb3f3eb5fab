#!/usr/bin/env bash
# test_append.sh - append behaviour beyond single rejections: idempotent
# resubmission, stdin, --batch-size (consecutive atomic batches, a failure
# naming the last committed seq, safe re-runs), the log of one ledger
# re-appended into another, log filters, and init refusals.
. "$(dirname "$0")/lib.sh"

L=$(new_ledger --period month --utc-offset +09:00)

case_idempotent() {
    acc "$L" append "$WORKED/events.jsonl"
    assert_exit 0
    local seqs
    seqs=$("$ACCRUE" --ledger "$L" log --format table | md5sum)
    acc "$L" append "$WORKED/events.jsonl"
    assert_exit 0
    assert_eq "$OUT" "appended 0 events (seq 1..7), 7 already present"
    assert_eq "$("$ACCRUE" --ledger "$L" log --format table | md5sum)" "$seqs" "log after resubmission"
    # A mix of old and new events: only the new one is written.
    acc "$L" append - <"$WORKED/late.jsonl"
    assert_exit 0
    assert_eq "$OUT" "appended 2 events (seq 8..9), 0 already present"
    cat "$WORKED/events.jsonl" "$WORKED/late.jsonl" >"$TMP/all.jsonl"
    acc "$L" append "$TMP/all.jsonl"
    assert_eq "$OUT" "appended 0 events (seq 1..9), 9 already present"
}

case_stdin() {
    local l2
    l2=$(new_ledger --utc-offset +09:00)
    run --ledger "$l2" append <"$WORKED/events.jsonl"
    assert_exit 0
    assert_eq "$OUT" "appended 7 events (seq 1..7), 0 already present"
}

case_empty_input() {
    local l2
    l2=$(new_ledger)
    : >"$TMP/empty.jsonl"
    acc "$l2" append "$TMP/empty.jsonl"
    assert_exit 0
    assert_eq "$OUT" "appended 0 events, 0 already present"
}

case_roundtrip() {
    local l2
    l2=$(new_ledger --period month --utc-offset +09:00)
    "$ACCRUE" --ledger "$L" log --format jsonl >"$TMP/a.jsonl"
    acc "$l2" append "$TMP/a.jsonl"
    assert_exit 0
    assert_eq "$OUT" "appended 9 events (seq 1..9), 0 already present"
    assert_eq "$(log_content "$l2")" "$(log_content "$L")" "log content"
    # The hash chains differ (each ledger has its own random id).
    [ "$("$ACCRUE" --ledger "$l2" log | md5sum)" != "$("$ACCRUE" --ledger "$L" log | md5sum)" ] ||
        fail "two ledgers share a chain"
}

case_batch_size() {
    local l2
    l2=$(new_ledger --utc-offset +09:00)
    acc "$l2" append "$WORKED/events.jsonl" --batch-size 3
    assert_exit 0
    assert_eq "$OUT" "appended 7 events (seq 1..7), 0 already present"
    assert_eq "$(log_content "$l2" | md5sum)" "$(log_content "$L" | head -7 | md5sum)" "content"
}

case_batch_size_failure() {
    local l2
    l2=$(new_ledger --utc-offset +09:00)
    # Line 10, in the batch after the failing one: the failure stops the import there, and
    # only the failing batch is reported.
    { cat "$WORKED/events.jsonl"; echo '{"id":"bad","type":"sale.refunded","at":"2026-07-21T00:00:00Z","data":{"sale_id":"S404","amount_minor":1}}'; head -1 "$WORKED/events.jsonl"; echo '{nope'; } >"$TMP/partial.jsonl"
    acc "$l2" append "$TMP/partial.jsonl" --batch-size 3
    assert_exit 3
    expect_stderr_contains "accrue: unknown_sale: line 8: id bad:"
    expect_stderr_contains "last committed seq 6"
    [[ $ERR != *"line 10"* ]] || fail "the batch after the failing one was reported: $ERR"
    # A line that does not parse, in the third batch: the two before it are committed.
    local l3
    l3=$(new_ledger --utc-offset +09:00)
    { cat "$WORKED/events.jsonl"; echo '{nope'; } >"$TMP/unparsed.jsonl"
    acc "$l3" append "$TMP/unparsed.jsonl" --batch-size 3
    assert_exit 3
    expect_stderr_contains "line 8"
    expect_stderr_contains "last committed seq 6"
    acc "$l2" stats
    expect_stdout_contains "head seq    6"
    # Fixed input: re-running the whole file is safe.
    acc "$l2" append "$WORKED/events.jsonl" --batch-size 3
    assert_exit 0
    assert_eq "$OUT" "appended 1 events (seq 7..7), 6 already present"
}

case_log_filters() {
    acc "$L" log --type sale.recorded --format table
    assert_exit 0
    assert_eq "$(grep -c sale.recorded <<<"$OUT")" 5 "sale rows"
    acc "$L" log --stream partner:P1
    assert_eq "$(wc -l <<<"$OUT")" 1 "partner:P1 lines"
    acc "$L" log --from 2 --to 3
    assert_eq "$(wc -l <<<"$OUT")" 2 "range lines"
    expect_stdout_contains '"seq":2'
    expect_stdout_contains '"hash":"'
    expect_stdout_contains '"recorded_at":"'
    acc "$L" log --type no.such
    assert_exit 2
    expect_stderr_contains "accrue: usage:"
}

case_init_refusals() {
    acc "$L" init
    assert_exit 1
    expect_stderr_contains "accrue: exists:"
    run --ledger "$TMP/x" init --period year
    assert_exit 2
    run --ledger "$TMP/x" init --utc-offset +25:00
    assert_exit 2
    run --ledger "$TMP/x" init --map-size 12Q
    assert_exit 2
    run --ledger "$TMP/x" init --map-size 64M --period quarter --utc-offset -05:30
    assert_exit 0
    expect_stdout_contains "quarter"
    expect_stdout_contains "-05:30"
}

case_no_ledger() {
    run --ledger "$TMP/none" stats
    assert_exit 1
    expect_stderr_contains "accrue: no_ledger:"
    ACCRUE_LEDGER="$L" "$ACCRUE" stats >/dev/null 2>&1 || fail "ACCRUE_LEDGER ignored"
}

# An emptied data.mdb is damage (corrupt, exit 5), not "no ledger"; it is left as found
# (LMDB would have written a fresh environment into it), and init does not take it over.
case_empty_data_file() {
    mkdir -p "$TMP/emptied"
    : >"$TMP/emptied/data.mdb"
    run --ledger "$TMP/emptied" stats
    assert_exit 5
    expect_stderr_contains "accrue: corrupt:"
    expect_stderr_contains "is empty"
    run --ledger "$TMP/emptied" append "$WORKED/events.jsonl"
    assert_exit 5
    assert_eq "$(stat -c %s "$TMP/emptied/data.mdb")" 0 "size of data.mdb afterwards"
    run --ledger "$TMP/emptied" init
    assert_exit 1
    expect_stderr_contains "exists but is empty"
}

case_missing_file() {
    acc "$L" append "$TMP/does-not-exist.jsonl"
    assert_exit 1
    expect_stderr_contains "accrue: io_error:"
}

case_msgpack() {
    local l2
    l2=$(new_ledger --period month --utc-offset +09:00)
    perl "$ROOT/tests/cli/jsonl2msgpack.pl" <"$WORKED/events.jsonl" >"$TMP/events.mp"
    acc "$l2" append "$TMP/events.mp" --format msgpack
    assert_exit 0
    assert_eq "$OUT" "appended 7 events (seq 1..7), 0 already present"
    assert_eq "$(log_content "$l2")" "$(log_content "$L" | head -7)" "log content"
    # A bad event in the stream is named by its position.
    {
        sed -n 1,2p "$WORKED/late.jsonl"
        echo '{"id":"mp-bad","type":"sale.voided","at":"2026-07-05T00:00:00Z","data":{}}'
    } | perl "$ROOT/tests/cli/jsonl2msgpack.pl" >"$TMP/bad.mp"
    acc "$l2" append "$TMP/bad.mp" --format msgpack
    assert_exit 3
    expect_stderr_contains "accrue: unknown_type: line 3: id mp-bad:"
    # A whole value that is not an event (an array) does not stop the reading: every error is
    # reported, as for JSON Lines (it stopped at the first malformed_msgpack).
    {
        echo '[1,2]'
        echo '{"id":"mp-x1","type":"rep.added","at":"2026-07-02T00:00:00Z","data":{"partner_id":"P404","rep_id":"R5","name":"a"}}'
        echo '{"id":"mp-x2","type":"rep.added","at":"2026-07-02T00:00:00Z","data":{"partner_id":"P1","rep_id":"R6"}}'
    } >"$TMP/three.jsonl"
    perl "$ROOT/tests/cli/jsonl2msgpack.pl" <"$TMP/three.jsonl" >"$TMP/three.mp"
    acc "$l2" append "$TMP/three.mp" --format msgpack
    assert_exit 3
    local mp_err=$ERR
    expect_stderr_contains "accrue: malformed_msgpack: line 1:"
    expect_stderr_contains "accrue: unknown_partner: line 2: id mp-x1:"
    expect_stderr_contains "accrue: missing_field: line 3: id mp-x2:"
    acc "$l2" append "$TMP/three.jsonl"
    assert_exit 3
    assert_eq "$(wc -l <<<"$ERR")" "$(wc -l <<<"$mp_err")" "as many errors as for JSON Lines"
    # JSON Lines given as msgpack: each byte reads as a value ('{' is a small integer), so the
    # reading stops at the first, with one error that names the cause, not one per byte
    acc "$l2" append "$TMP/three.jsonl" --format msgpack
    assert_exit 3
    assert_eq "$(wc -l <<<"$ERR")" 1 "errors for JSON Lines read as msgpack"
    expect_stderr_contains "accrue: malformed_msgpack: line 1: the input starts with no msgpack map"
    # and the other way round, a newcomer's likeliest first slip: a msgpack stream given without
    # --format splits at every 0x0a byte into lines of binary; one error naming the format
    # (the first line after two blank ones), and nothing appended
    local before
    before=$(ledger_sum "$l2")
    { printf '\n \n'; cat "$TMP/three.mp"; } >"$TMP/three-blank.mp"
    acc "$l2" append "$TMP/three-blank.mp"
    assert_exit 3
    assert_eq "$(wc -l <<<"$ERR")" 1 "errors for msgpack read as JSON Lines"
    expect_stderr_contains "accrue: malformed_json: line 3: the input starts with a msgpack value (byte 0x92)"
    expect_stderr_contains "is --format msgpack"
    assert_eq "$(ledger_sum "$l2")" "$before" "the ledger after msgpack read as JSON Lines"
}

run_case case_idempotent
run_case case_msgpack
run_case case_stdin
run_case case_empty_input
run_case case_roundtrip
run_case case_batch_size
run_case case_batch_size_failure
run_case case_log_filters
run_case case_init_refusals
run_case case_no_ledger
run_case case_empty_data_file
run_case case_missing_file
finish
