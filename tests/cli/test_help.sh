#!/usr/bin/env bash
# test_help.sh - every command and subcommand answers --help on stdout with
# exit 0; bad usage is `accrue: usage: ...` on stderr with exit 2; --version
# names the libraries. (`serve` itself is tested in test_serve.sh.)
. "$(dirname "$0")/lib.sh"

case_help_everywhere() {
    local cmd
    while read -r cmd; do
        # shellcheck disable=SC2086
        run $cmd --help
        assert_exit 0 "accrue $cmd --help"
        case $OUT in usage:*) ;; *) fail "accrue $cmd --help printed [${OUT:0:80}]" ;; esac
        [ -z "$ERR" ] || fail "accrue $cmd --help wrote to stderr: $ERR"
    done <<'LIST'
init
append
log
verify
rebuild
stats
backup
partner
partner list
partner show
pipeline
kpi
plan
plan publish
plan show
payout
payout run
payout close
payout audit
payout list
serve
token
token create
token list
token revoke
sink
sink postgres
LIST
    run --help
    assert_exit 0
    expect_stdout_contains "usage: accrue"
    run help
    assert_exit 0
}

case_version() {
    run --version
    assert_exit 0
    local lib
    for lib in accrue LMDB msgpack libuv xxHash; do expect_stdout_contains "$lib"; done
}

case_bad_usage() {
    local args
    while read -r args; do
        # shellcheck disable=SC2086
        run $args
        assert_exit 2 "accrue $args"
        case $ERR in "accrue: usage: "*) ;; *) fail "accrue $args: stderr [${ERR:0:120}]" ;; esac
        [ -z "$OUT" ] || fail "accrue $args wrote to stdout"
    done <<'LIST'
--no-such-option
frobnicate
init --bogus
init --period
append --format xml
append a b
log --from x
verify extra
backup
partner
partner frob
pipeline --today 2026-13-01
kpi
kpi --period 2026-7
kpi --period 2026-07 --by team
plan
plan publish
plan show
payout
payout run
payout fly
payout list extra
payout close 2026-07 --as-of 3
LIST
}

# accrue --help says what the program is for and where each kind of user starts, and the
# guides it names exist.
case_help_says_where_to_start() {
    run --help
    assert_exit 0
    local who doc
    for who in finance auditor integrator; do
        grep -qE "^  $who +accrue " <<<"$OUT" || fail "--help has no start line for $who"
    done
    expect_stdout_contains "payout statements"
    for doc in $(grep -oE 'docs/[a-z-]+\.md' <<<"$OUT"); do
        [ -f "$ROOT/$doc" ] || fail "--help names $doc, which does not exist"
    done
}

run_case case_help_everywhere
run_case case_help_says_where_to_start
run_case case_version
run_case case_bad_usage
finish
