#!/usr/bin/env bash
# test_actor.sh - who did what (events.md, `actor`): every event appended from the command
# line carries cli:<user>, period.closed carries its closer, `log` shows it, an input
# actor is ignored like the other engine fields, the chain covers it, and neither the
# statement nor its fingerprint depend on it (the worked fingerprint is unchanged).
. "$(dirname "$0")/lib.sh"

ME="cli:${USER:-${LOGNAME:-$(id -un)}}"
L=$(new_ledger --period month --utc-offset +09:00)

case_cli_actor_on_every_event() {
    acc "$L" append "$WORKED/events.jsonl"
    assert_exit 0
    acc "$L" payout close 2026-07
    assert_exit 0
    acc "$L" log
    assert_eq "$(grep -c "\"version\":[0-9]*,\"actor\":\"$ME\",\"hash\"" <<<"$OUT")" 8 \
        "events with actor $ME (7 appended, 1 period.closed)"
    expect_stdout_contains "\"stream\":\"period:2026-07\",\"version\":1,\"actor\":\"$ME\""
    acc "$L" log --format table
    # cli.md: "print stored events with seq, recorded_at, stream, version, hash"
    head -1 <<<"$OUT" | grep -q "seq .*recorded_at .*stream .*version .*hash .*actor" ||
        fail "log table header: $(head -1 <<<"$OUT")"
    acc "$L" log --format jsonl --to 1
    local h=${OUT#*\"hash\":\"}
    acc "$L" log --format table --to 1
    expect_stdout_contains "${h:0:32}"
    expect_stdout_contains "actor"
    expect_stdout_contains "$ME"
    acc "$L" payout audit 2026-07
    assert_exit 0
    expect_stdout_contains c5e27e1ef9f0212498bfa9b06be115cd
}

# Without $USER and $LOGNAME (containers, cron, CI) the account's name, not a uid.
case_actor_without_user_variables() {
    local l2
    l2=$(new_ledger)
    env -u USER -u LOGNAME "$ACCRUE" --ledger "$l2" append "$WORKED/events.jsonl" >/dev/null 2>&1
    acc "$l2" log
    assert_eq "$(grep -c "\"actor\":\"cli:$(id -un)\"" <<<"$OUT")" 7 "events with actor cli:$(id -un)"
}

# log output re-appended elsewhere: the "actor" it carries is not taken.
case_input_actor_ignored() {
    local l2
    l2=$(new_ledger --period month --utc-offset +09:00)
    "$ACCRUE" --ledger "$L" log --to 7 | sed "s/\"actor\":\"$ME\"/\"actor\":\"token:forged\"/" \
        >"$TMP/relog.jsonl"
    grep -q token:forged "$TMP/relog.jsonl" || fail "the forged actor is not in the input"
    acc "$l2" append "$TMP/relog.jsonl"
    assert_exit 0
    expect_stdout_contains "appended 7 events"
    acc "$l2" log
    case $OUT in *forged*) fail "an input actor was stored" ;; esac
    assert_eq "$(grep -c "\"actor\":\"$ME\"" <<<"$OUT")" 7 "events with the appender's actor"
    # and the same file again: a no-op, whatever actor the input names
    acc "$l2" append "$TMP/relog.jsonl"
    assert_exit 0
    expect_stdout_contains "appended 0 events (seq 1..7), 7 already present"
}

# The actor is part of the stored bytes: changing it breaks the chain at that event.
case_chain_covers_actor() {
    local copy=$TMP/actor n
    mkdir -p "$copy"
    cp "$L/data.mdb" "$copy/data.mdb"
    cp "$L/state.mdb" "$copy/state.mdb"
    n=$(perl -e '
        my ($path, $actor) = @ARGV;
        open(my $fh, "+<:raw", $path) or die "$path: $!";
        local $/; my $buf = <$fh>;
        my $n = 0;
        while ($buf =~ /\Q${\ chr(0xa0 + length $actor)}$actor\E/g) {
            my $at = pos($buf) - 1;
            seek($fh, $at, 0); print $fh chr(ord(substr($buf, $at, 1)) ^ 0x01);
            $n++;
        }
        close $fh; print $n;' "$copy/data.mdb" "$ME")
    [ "$n" -ge 1 ] || fail "no stored actor found in data.mdb"
    acc "$copy" verify
    assert_exit 5
    expect_stderr_contains "accrue: chain_broken: seq 1"
}

run_case case_cli_actor_on_every_event
run_case case_actor_without_user_variables
run_case case_input_actor_ignored
run_case case_chain_covers_actor
finish
