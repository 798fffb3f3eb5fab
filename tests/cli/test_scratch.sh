#!/usr/bin/env bash
# test_scratch.sh - verify and rebuild replay into a scratch folder of $TMPDIR; one that is
# killed midway must not leave it behind for good: the next run removes what a dead run left,
# keeps what a live run holds, and refuses to start (ledger_full, ledger unchanged) when
# $TMPDIR has no room for the replay.
. "$(dirname "$0")/lib.sh"

GEN=${GEN:-$ROOT/build/accrue-gen}
L=$(new_ledger --period month)
"$GEN" --partners 50 --sales 120000 --seed 7 >"$TMP/h.jsonl"
"$ACCRUE" --ledger "$L" append "$TMP/h.jsonl" >/dev/null

scratch_dirs() { find "$1" -maxdepth 1 -name 'accrue-scratch-*' | wc -l; }

# kill_midway VERB TMPDIR: starts accrue VERB, waits until its scratch folder holds its
# owner.lock (a folder killed before that is kept 60 s by the sweep, by design), SIGKILLs it.
kill_midway() {
    local verb=$1 dir=$2 pid i
    TMPDIR=$dir "$ACCRUE" --ledger "$L" "$verb" >/dev/null 2>&1 &
    pid=$!
    for i in $(seq 1 1000); do
        [ -n "$(find "$dir" -path '*/accrue-scratch-*/owner.lock' 2>/dev/null)" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.01
    done
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}

case_killed_verify_is_swept() {
    local d=$TMP/t1
    mkdir -p "$d"
    kill_midway verify "$d"
    assert_eq "$(scratch_dirs "$d")" "1" "scratch folders left by the killed verify"
    TMPDIR=$d acc "$L" verify
    assert_exit 0 "verify after the kill"
    assert_eq "$(scratch_dirs "$d")" "0" "scratch folders after the next verify"
}

case_killed_rebuild_is_swept() {
    local d=$TMP/t2
    mkdir -p "$d"
    kill_midway rebuild "$d"
    assert_eq "$(scratch_dirs "$d")" "1" "scratch folders left by the killed rebuild"
    TMPDIR=$d acc "$L" rebuild
    assert_exit 0 "rebuild after the kill"
    TMPDIR=$d acc "$L" verify
    assert_exit 0 "verify after the rebuild"
    assert_eq "$(scratch_dirs "$d")" "0" "scratch folders after the next rebuild"
}

case_live_and_old_folders() {
    local d=$TMP/t3 holder
    mkdir -p "$d/accrue-scratch-live" "$d/accrue-scratch-old" "$d/accrue-scratch-new"
    : >"$d/accrue-scratch-live/owner.lock"
    flock "$d/accrue-scratch-live/owner.lock" sleep 60 &
    holder=$!
    sleep 0.2
    touch -d '2 minutes ago' "$d/accrue-scratch-old" # an earlier release's, without owner.lock
    TMPDIR=$d acc "$L" verify
    assert_exit 0
    [ -d "$d/accrue-scratch-live" ] || fail "a folder a live run holds was removed"
    [ -d "$d/accrue-scratch-old" ] && fail "a stale folder without owner.lock was kept"
    [ -d "$d/accrue-scratch-new" ] || fail "a folder created a moment ago was removed"
    kill "$holder" 2>/dev/null
    wait "$holder" 2>/dev/null
}

case_no_room() {
    if [ "$(id -u)" != 0 ]; then
        skip_case case_no_room "needs root to mount a small tmpfs"
        return
    fi
    local d=$TMP/small before
    mkdir -p "$d"
    if ! mount -t tmpfs -o size=1m tmpfs "$d" 2>/dev/null; then
        skip_case case_no_room "cannot mount tmpfs here"
        return
    fi
    before=$(ledger_sum "$L")
    TMPDIR=$d acc "$L" verify
    assert_exit 1
    expect_stderr_contains "accrue: ledger_full:"
    expect_stderr_contains "$d"
    expect_stderr_contains "TMPDIR"
    TMPDIR=$d acc "$L" rebuild
    assert_exit 1
    expect_stderr_contains "accrue: ledger_full:"
    assert_eq "$(ledger_sum "$L")" "$before" "ledger checksum"
    assert_eq "$(scratch_dirs "$d")" "0" "scratch folders on the full file system"
    umount "$d"
}

run_case case_killed_verify_is_swept
run_case case_killed_rebuild_is_swept
run_case case_live_and_old_folders
run_case case_no_room
finish
