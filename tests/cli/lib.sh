# lib.sh - helpers for the CLI tests (sourced by tests/cli/*.sh).
#
# Each test script runs the real binary ($ACCRUE, default build/accrue) on
# temporary ledgers under one mktemp directory that is removed on exit. A
# test case is a shell function run by `run_case NAME`; assertions print
# what they expected and what they got, and mark the case failed without
# stopping the script. The script ends with `finish`, which prints
# `<script>: P passed, F failed` and exits non-zero when F > 0.

set -u
# `producer | reject ...`: the last command of a pipeline runs in this shell, so the
# assertions it makes (CASE_OK, OUT, ERR, RC) are seen by the case that runs it.
shopt -s lastpipe

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ACCRUE=${ACCRUE:-$ROOT/build/accrue}
case $ACCRUE in /*) ;; *) ACCRUE=$ROOT/$ACCRUE ;; esac
WORKED=${WORKED:-$ROOT/tests/cli/worked} # a copy of the spec's examples/worked
TMP=$(mktemp -d "${TMPDIR:-/tmp}/accrue-cli.XXXXXX")
# a server a case started and did not stop (an unexpected exit) goes with the script
trap '[ -n "${SRV_PID:-}" ] && kill "$SRV_PID" 2>/dev/null; rm -rf "$TMP"' EXIT

CASES_PASSED=0
CASES_FAILED=0
CASE_OK=1
CASE_NAME=
OUT=   # stdout of the last `run`
ERR=   # stderr of the last `run`
RC=0   # exit status of the last `run`

# True when $ACCRUE is a sanitizer build (slow: big tests are skipped).
is_asan() {
    case $ACCRUE in */asan/*) return 0 ;; esac
    nm "$ACCRUE" 2>/dev/null | grep -q __asan_init
}

fail() {
    echo "  FAIL [$CASE_NAME]: $*" >&2
    CASE_OK=0
}

# run ARGS...: runs $ACCRUE, capturing stdout, stderr and the exit status.
run() {
    "$ACCRUE" "$@" >"$TMP/.out" 2>"$TMP/.err"
    RC=$?
    OUT=$(cat "$TMP/.out")
    ERR=$(cat "$TMP/.err")
    case $ERR in
    *Sanitizer* | *"runtime error:"*) fail "sanitizer report from accrue $*: ${ERR:0:2000}" ;;
    esac
}

# acc LEDGER ARGS...: run with --ledger.
acc() {
    local l=$1
    shift
    run --ledger "$l" "$@"
}

assert_eq() { # GOT WANT [WHAT]
    [ "$1" == "$2" ] || fail "${3:-value}: got [$1], want [$2]"
}

assert_exit() { # WANT [WHAT]
    [ "$RC" -eq "$1" ] || fail "${2:-exit status}: got $RC, want $1 (stderr: ${ERR:0:600})"
}

expect_stderr_contains() { # TEXT
    case $ERR in *"$1"*) ;; *) fail "stderr lacks [$1]; stderr: ${ERR:0:800}" ;; esac
}

expect_stdout_contains() { # TEXT
    case $OUT in *"$1"*) ;; *) fail "stdout lacks [$1]; stdout: ${OUT:0:800}" ;; esac
}

assert_file_eq() { # GOT_FILE WANT_FILE
    if ! cmp -s "$1" "$2"; then
        fail "$1 differs from $2"
        diff "$2" "$1" | head -20 >&2
    fi
}

# new_ledger [INIT ARGS...]: a fresh ledger directory, printed on stdout.
new_ledger() {
    local d
    d=$(mktemp -d "$TMP/ledger.XXXXXX")
    rmdir "$d"
    if ! "$ACCRUE" --ledger "$d" init "$@" >/dev/null 2>"$TMP/.init.err"; then
        echo "  FAIL: init $* failed: $(cat "$TMP/.init.err")" >&2
        CASE_OK=0
    fi
    echo "$d"
}

# fixture_ledger FILE [STATE]: a ledger directory (printed on stdout) whose data.mdb is the
# gzipped LMDB file FILE (and state.mdb the gzipped STATE), a ledger an earlier release wrote
# (tests/cli/fixtures/).
fixture_ledger() {
    local d
    d=$(mktemp -d "$TMP/old.XXXXXX")
    gzip -dc "$1" >"$d/data.mdb"
    chmod 700 "$d"
    chmod 600 "$d/data.mdb"
    if [ -n "${2:-}" ]; then
        gzip -dc "$2" >"$d/state.mdb"
        chmod 600 "$d/state.mdb"
    fi
    echo "$d"
}

# ledger_sum LEDGER: a checksum of everything observable: the whole log
# (engine fields included), and the head of stats. Equal before and after
# proves a rejected batch changed nothing.
ledger_sum() {
    {
        "$ACCRUE" --ledger "$1" log --format jsonl
        "$ACCRUE" --ledger "$1" stats | grep -E '^(events|head)'
    } 2>&1 | md5sum | cut -d' ' -f1
}

# log_content LEDGER: the log without the per-ledger engine fields
# (recorded_at is the commit time, hash depends on the random ledger id).
log_content() {
    "$ACCRUE" --ledger "$1" log --format jsonl |
        sed -E 's/"recorded_at":"[^"]*",?//; s/"hash":"[0-9a-f]{32}",?//'
}

run_case() { # NAME: runs the function NAME as one case
    CASE_NAME=$1
    CASE_OK=1
    local t0=$SECONDS
    if declare -F "$1" >/dev/null; then
        "$1"
    else
        fail "no function $1: a case that does not exist never passes"
    fi
    if [ "$CASE_OK" -eq 1 ]; then
        CASES_PASSED=$((CASES_PASSED + 1))
        echo "  ok   $1 ($((SECONDS - t0)) s)"
    else
        CASES_FAILED=$((CASES_FAILED + 1))
        echo "  FAIL $1 ($((SECONDS - t0)) s)"
    fi
}

# run_case_once NAME: a case that mostly waits on something outside accrue (a NATS election,
# a token's expiry), whose waits are the same in either build: tests/run.sh runs it against
# the ASan build and sets ACR_TEST_ONCE_SKIP=1 for the -O2 run, where it is skipped.
run_case_once() {
    if [ "${ACR_TEST_ONCE_SKIP:-0}" = 1 ]; then
        skip_case "$1" "waits on outside services alike in either build: run in the ASan build"
    else
        run_case "$1"
    fi
}

skip_case() { # NAME REASON
    echo "  skip $1 ($2)"
}

finish() {
    echo "$(basename "$0"): $CASES_PASSED passed, $CASES_FAILED failed"
    [ "$CASES_FAILED" -eq 0 ]
}

# ---- a private `accrue serve` ------------------------------------------------------------

# start_server LEDGER [SERVE ARGS...]: `accrue serve` on a random loopback port in the
# background, its stderr (the access log) in $TMP/srv.err; sets SRV_PID and BASE. The
# caller's environment passes through (ACCRUE_TEST_SLOW_MS, test-only).
start_server() {
    local l=$1 port=
    shift
    : >"$TMP/srv.err"
    "$ACCRUE" --ledger "$l" serve --listen 127.0.0.1:0 "$@" 2>"$TMP/srv.err" &
    SRV_PID=$!
    for _ in $(seq 1 200); do
        port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$TMP/srv.err" | sed 's/.*://')
        [ -n "$port" ] && break
        sleep 0.05
    done
    [ -n "$port" ] || fail "server did not start: $(head -c 600 "$TMP/srv.err")"
    BASE=http://127.0.0.1:$port
}

# stop_server: SIGTERM, wait, exit status 0 and no sanitizer report.
stop_server() {
    kill -TERM "$SRV_PID" 2>/dev/null
    wait "$SRV_PID"
    local rc=$?
    [ "$rc" -eq 0 ] || fail "server exit status $rc: $(tail -c 600 "$TMP/srv.err")"
    if grep -qE 'Sanitizer|runtime error:' "$TMP/srv.err"; then
        fail "sanitizer report: $(grep -A20 -E 'Sanitizer|runtime error:' "$TMP/srv.err" | head -c 2000)"
    fi
}
