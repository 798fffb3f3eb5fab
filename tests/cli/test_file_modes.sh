#!/usr/bin/env bash
# test_file_modes.sh - a ledger holds partner data and token hashes: it is
# created owner-only (directory 0700, files 0600, a stricter umask narrowing
# further), and `backup` keeps the source's modes instead of widening them
# (issue 18, finding 7; docs/reliability.md).
. "$(dirname "$0")/lib.sh"

mode() { stat -c '%a' "$1"; }

case_init_owner_only() {
    local l=$TMP/l022
    (umask 022 && "$ACCRUE" --ledger "$l" init >/dev/null 2>&1) || fail "init"
    assert_eq "$(mode "$l")" 700 "ledger directory under umask 022"
    assert_eq "$(mode "$l/data.mdb")" 600 "data.mdb under umask 022"
    [ ! -e "$l/lock.mdb" ] || assert_eq "$(mode "$l/lock.mdb")" 600 "lock.mdb under umask 022"
    l=$TMP/l077
    (umask 077 && "$ACCRUE" --ledger "$l" init >/dev/null 2>&1) || fail "init"
    assert_eq "$(mode "$l")" 700 "ledger directory under umask 077"
    assert_eq "$(mode "$l/data.mdb")" 600 "data.mdb under umask 077"
    l=$TMP/l277 # stricter than ours: the umask wins
    (umask 277 && "$ACCRUE" --ledger "$l" init >/dev/null 2>&1)
    [ -d "$l" ] && assert_eq "$(mode "$l")" 500 "a stricter umask narrows the directory"
    chmod 700 "$l" 2>/dev/null || true
}

case_backup_keeps_modes() {
    local l=$TMP/src
    (umask 022 && "$ACCRUE" --ledger "$l" init >/dev/null 2>&1) || fail "init"
    acc "$l" token create --role admin --name a1
    (umask 022 && "$ACCRUE" --ledger "$l" backup "$TMP/copy1" >/dev/null 2>&1) || fail "backup 1"
    assert_eq "$(mode "$TMP/copy1")" 700 "backup of a 0700 ledger"
    assert_eq "$(mode "$TMP/copy1/data.mdb")" 600 "backup of a 0600 data file"
    chmod 750 "$l" && chmod 640 "$l/data.mdb"
    (umask 022 && "$ACCRUE" --ledger "$l" backup "$TMP/copy2" >/dev/null 2>&1) || fail "backup 2"
    assert_eq "$(mode "$TMP/copy2")" 750 "backup keeps a group-readable source's directory mode"
    assert_eq "$(mode "$TMP/copy2/data.mdb")" 640 "backup keeps the source's file mode"
}

# As root, the user nobody cannot read a fresh ledger (what the attack did before).
case_nobody_cannot_read() {
    if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null; then
        echo "       (skipped: needs root and setpriv)"
        return
    fi
    local l=$TMP/pub
    (umask 022 && "$ACCRUE" --ledger "$l" init >/dev/null 2>&1) || fail "init"
    chmod 755 "$TMP"
    if setpriv --reuid=65534 --regid=65534 --clear-groups cat "$l/data.mdb" >/dev/null 2>&1; then
        fail "nobody read data.mdb"
    fi
    chmod 700 "$TMP"
}

run_case case_init_owner_only
run_case case_backup_keeps_modes
run_case case_nobody_cannot_read
finish
