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

run_case case_verify_ok
run_case case_rebuild_then_verify
run_case case_flipped_byte
finish
