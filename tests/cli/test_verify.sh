#!/usr/bin/env bash
# test_verify.sh - verify on a sound ledger, then on one where a single byte
# of one stored event was flipped in data.mdb: exit 5 naming that seq.
#
# The stored record of event.h carries the event id right after the 0xd3
# timestamp (9 bytes) as a msgpack fixstr, so the pattern
#   0xd3 <8 bytes> <0xa0 + len(id)> <id>
# finds the log record (and any stale copy of its page) but not the id
# index, whose keys are bare. Every match is flipped.
. "$(dirname "$0")/lib.sh"

L=$(new_ledger --utc-offset +09:00)
"$ACCRUE" --ledger "$L" append "$WORKED/events.jsonl" >/dev/null
"$ACCRUE" --ledger "$L" append - >/dev/null <<'EOF2'
{"id":"flipme-0001","type":"sale.recorded","at":"2026-07-26T00:00:00Z","data":{"sale_id":"S77","partner_id":"P1","customer_id":"C77","product":"cloud","amount_minor":5000,"currency":"JPY"}}
{"id":"after-0001","type":"sale.recorded","at":"2026-07-27T00:00:00Z","data":{"sale_id":"S78","partner_id":"P1","customer_id":"C78","product":"cloud","amount_minor":5000,"currency":"JPY"}}
EOF2

case_verify_ok() {
    acc "$L" verify
    assert_exit 0
    case $OUT in "ok: 9 events, head "[0-9a-f]*) ;; *) fail "verify said [$OUT]" ;; esac
    local head
    head=$("$ACCRUE" --ledger "$L" stats | sed -n 's/^head hash *//p')
    expect_stdout_contains "head $head"
}

case_rebuild_then_verify() {
    acc "$L" rebuild
    assert_exit 0
    acc "$L" verify
    assert_exit 0
}

case_flipped_byte() {
    local copy=$TMP/flipped n
    mkdir -p "$copy"
    cp "$L/data.mdb" "$copy/data.mdb"
    cp "$L/state.mdb" "$copy/state.mdb"
    n=$(perl -e '
        my ($path, $id) = @ARGV;
        open(my $fh, "+<:raw", $path) or die "$path: $!";
        local $/; my $buf = <$fh>;
        my $pat = qr/\xd3.{8}\Q${\ chr(0xa0 + length $id)}$id\E/s;
        my $n = 0;
        while ($buf =~ /$pat/g) {
            my $at = pos($buf) - 1;              # the last byte of the id
            seek($fh, $at, 0); print $fh chr(ord(substr($buf, $at, 1)) ^ 0x01);
            $n++;
        }
        close $fh; print $n;' "$copy/data.mdb" flipme-0001)
    [ "$n" -ge 1 ] || fail "the record of flipme-0001 was not found in data.mdb"
    acc "$copy" verify
    assert_exit 5
    expect_stderr_contains "seq 8"
    case $ERR in "accrue: chain_broken: seq 8"* | "accrue: corrupt: seq 8"*) ;;
    *) fail "unexpected diagnostic [$ERR]" ;; esac
    # Reading the log stops at the bad event too.
    acc "$copy" log
    [ "$RC" -ne 0 ] || fail "log read past a broken chain"
}

# An append onto a ledger whose head does not verify is refused with chain_broken
# (exit 5) and writes nothing: new events are never chained to damaged bytes.
case_append_onto_broken_head() {
    local copy=$TMP/head n
    mkdir -p "$copy"
    cp "$L/data.mdb" "$copy/data.mdb"
    cp "$L/state.mdb" "$copy/state.mdb"
    n=$(perl -e '
        my ($path, $id) = @ARGV;
        open(my $fh, "+<:raw", $path) or die "$path: $!";
        local $/; my $buf = <$fh>;
        my $pat = qr/\xd3.{8}\Q${\ chr(0xa0 + length $id)}$id\E/s;
        my $n = 0;
        while ($buf =~ /$pat/g) {
            my $at = pos($buf) - 1;
            seek($fh, $at, 0); print $fh chr(ord(substr($buf, $at, 1)) ^ 0x01);
            $n++;
        }
        close $fh; print $n;' "$copy/data.mdb" after-0001)
    [ "$n" -ge 1 ] || fail "the record of after-0001 was not found in data.mdb"
    printf '%s\n' '{"id":"more-0001","type":"sale.recorded","at":"2026-07-28T00:00:00Z","data":{"sale_id":"S79","partner_id":"P1","customer_id":"C79","product":"cloud","amount_minor":5000,"currency":"JPY"}}' >"$TMP/more.jsonl"
    acc "$copy" append "$TMP/more.jsonl"
    assert_exit 5
    expect_stderr_contains "accrue: chain_broken:"
    expect_stderr_contains "head (seq 9)"
    acc "$copy" stats
    grep -qE '^events +9$' <<<"$OUT" || fail "stats after the refused append: ${OUT:0:300}"
}

# A stored closed statement is not part of the chain (its fingerprint is): verify checks
# each one against the fingerprint its period.closed recorded. One digit of P2's amount
# in the stored CSV is changed (every copy of the page in data.mdb).
case_tampered_statement() {
    local l copy=$TMP/stmt n
    l=$(new_ledger --utc-offset +09:00)
    "$ACCRUE" --ledger "$l" append "$WORKED/events.jsonl" >/dev/null
    "$ACCRUE" --ledger "$l" payout close 2026-07 >/dev/null
    acc "$l" verify
    assert_exit 0
    mkdir -p "$copy"
    cp "$l/data.mdb" "$copy/data.mdb"
    cp "$l/state.mdb" "$copy/state.mdb"
    n=$(perl -e '
        my $path = shift;
        open(my $fh, "+<:raw", $path) or die "$path: $!";
        local $/; my $buf = <$fh>;
        my $line = "standard\@1#1,200000,20000,JPY\n";
        my $n = 0;
        while ($buf =~ /\Q$line\E/g) {
            my $at = pos($buf) - length($line) + length("standard\@1#1,200000,2");
            seek($fh, $at, 0); print $fh "9";
            $n++;
        }
        close $fh; print $n;' "$copy/data.mdb")
    [ "$n" -ge 1 ] || fail "the statement line was not found in data.mdb"
    acc "$copy" verify
    assert_exit 5
    expect_stderr_contains "accrue: mismatch: table closes: row 2026-07:"
    expect_stderr_contains "c5e27e1ef9f0212498bfa9b06be115cd"
    acc "$copy" payout audit 2026-07
    assert_exit 5
    # What was paid is read from the stored bytes: a run or a close of the next period, an
    # export, never take damaged ones (a false correction line would be paid).
    echo '{"id":"aug-1","type":"sale.recorded","at":"2026-08-03T00:00:00Z","data":{"sale_id":"S9","partner_id":"P2","customer_id":"C9","product":"x","amount_minor":1000,"currency":"JPY"}}' >"$TMP/aug.jsonl"
    acc "$copy" append "$TMP/aug.jsonl"
    assert_exit 0
    local head
    head=$("$ACCRUE" --ledger "$copy" stats | grep "head seq")
    acc "$copy" payout run 2026-08
    assert_exit 5
    expect_stderr_contains "the stored statement of 2026-07 hashes to"
    acc "$copy" payout close 2026-08
    assert_exit 5
    assert_eq "$("$ACCRUE" --ledger "$copy" stats | grep "head seq")" "$head" "head after the refused close"
    acc "$copy" payout export 2026-07
    assert_exit 5
    # Served, a closed period's statement is the stored bytes for staff too (a partner never
    # gets anything else): the healthy ledger's carry its close's fingerprint, the damaged
    # ones are refused as the command line refuses them, never replaced by a recomputation.
    local fp tok code
    fp=$("$ACCRUE" --ledger "$l" payout list | awk '$1 == "2026-07" {print $5}')
    for led in "$l" "$copy"; do
        tok=$("$ACCRUE" --ledger "$led" --quiet token create --role auditor --name "aud$RANDOM")
        start_server "$led"
        code=$(curl -s -o "$TMP/stmt.csv" -D "$TMP/stmt.hdr" -w '%{http_code}' \
            -H "Authorization: Bearer $tok" "$BASE/v1/payouts/2026-07/statement")
        stop_server
        if [ "$led" = "$l" ]; then
            assert_eq "$code" 200 "staff statement of a closed period"
            grep -qi "^X-Accrue-Fingerprint: $fp" "$TMP/stmt.hdr" ||
                fail "served fingerprint: $(grep -i fingerprint "$TMP/stmt.hdr"), want $fp"
            assert_eq "$(xxh128sum "$TMP/stmt.csv" | cut -d' ' -f1)" "$fp" "served bytes' hash"
        else
            [ "$code" -ge 500 ] || [ "$code" = 409 ] || fail "damaged statement served: $code"
            grep -q "the stored statement of 2026-07 hashes to" "$TMP/stmt.csv" ||
                fail "damaged statement answer: $(head -c 300 "$TMP/stmt.csv")"
        fi
    done
}

# A derived row changed outside the write path (mdb_load into state.mdb): `verify --fast` finds
# it from the table's digest without replaying the log, the full verify names the row, and
# rebuild restores both.
case_fast_finds_a_changed_row() {
    local l
    l=$(new_ledger)
    acc "$l" append "$WORKED/events.jsonl"
    acc "$l" verify --fast
    assert_exit 0 "verify --fast of a healthy ledger"
    expect_stdout_contains "ok: 7 events"
    { mdb_dump -n -p -s proj_sales "$l/state.mdb" | sed -n '1,/HEADER=END/p'
      printf ' S1\n \\02\\00P9\\00\\00\nDATA=END\n'; } >"$TMP/edit.txt"
    mdb_load -n -s proj_sales -f "$TMP/edit.txt" "$l/state.mdb" 2>/dev/null ||
        fail "mdb_load could not change the row"
    acc "$l" verify --fast
    assert_exit 5 "verify --fast after a row changed"
    expect_stderr_contains "table proj_sales"
    acc "$l" verify
    assert_exit 5 "verify after a row changed"
    expect_stderr_contains "table proj_sales: row S1"
    acc "$l" verify --deep
    assert_exit 5 "verify --deep after a row changed"
    expect_stderr_contains "table proj_sales: row S1"
    acc "$l" verify --deep --fast
    assert_exit 2 "verify --deep --fast"
    acc "$l" rebuild
    assert_exit 0
    acc "$l" verify --fast
    assert_exit 0 "verify --fast after rebuild"
    acc "$l" verify --deep
    assert_exit 0 "verify --deep after rebuild"
    expect_stdout_contains "ok: 7 events"
}

# A new, empty ledger verifies without notes (it once said its period index was "written by
# an older release").
case_verify_empty() {
    local l
    l=$(new_ledger)
    acc "$l" verify
    assert_exit 0
    case $OUT in "ok: 0 events, head "[0-9a-f]*) ;; *) fail "verify said [$OUT]" ;; esac
    assert_eq "$ERR" "" "stderr of verify on an empty ledger"
}
run_case case_verify_ok
run_case case_verify_empty
run_case case_rebuild_then_verify
run_case case_flipped_byte
run_case case_append_onto_broken_head
run_case case_tampered_statement
run_case case_fast_finds_a_changed_row
finish
