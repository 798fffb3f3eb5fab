#!/usr/bin/env bash
# run.sh - the whole test suite, called by `make test` after the builds.
#
# 1. every Criterion unit-test binary of the ASan+UBSan build (build/asan), of the -O2 build
#    (build) and of the -O0 commission goldens (build/o0), counted from its closing line
#    `Synthesis: Tested: T | Passing: P | Failing: F | Crashing: C`;
# 2. every tests/cli/test_*.sh against build/asan/accrue, then build/accrue,
#    counted from its closing line `<script>: P passed, F failed`;
# 3. tests/check_includes.sh (the module map), the first command of a fresh clone, the
#    dashboard in headless chromium (tests/dashboard/run.mjs, -O2 build), the reliability suite
#    and the fuzz targets, each counted from its own closing line.
# A binary or script that exits non-zero without reporting a failure (a sanitizer report at
# exit, a crash before the summary) counts one failure.
#
# The suite runs in two lanes at once, one per core of the test machine (TEST_LANES=1 runs
# them one after the other): lane A is the sanitizer build and the fuzzers, lane B the
# optimised build, the browser and the reliability suite. Much of either lane waits on
# services (elections of a NATS cluster, PostgreSQL, fsync, fixed fuzzing times), so two
# lanes take about half the time of one. Every test has its own temporary folder and ports.
# Prints a line per file as it finishes, then every failure's log tail, and ends with exactly
# one line `N passed, M failed`; exits non-zero when M > 0.
set -u
cd "$(dirname "$0")/.."

export ASAN_OPTIONS=detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}
export UBSAN_OPTIONS=print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}
UNIT_TIMEOUT=${UNIT_TIMEOUT:-600}
CLI_TIMEOUT=${CLI_TIMEOUT:-900}
TEST_LANES=${TEST_LANES:-2}
RES=$(mktemp -d "${TMPDIR:-/tmp}/accrue-test.XXXXXX")
trap 'rm -rf "$RES"' EXIT
LOG= # each lane's own scratch log, set by lane()

# record NAME PASSED FAILED RC [SECONDS]: one line on stdout, the counts into the tally, and
# a failure's log tail kept for the end (lanes' lines interleave; their tails must not).
record() {
    local name=$1 p=$2 f=$3 rc=$4 secs=${5:-0} line
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
    fi
    echo "$p $f" >>"$RES/tally"
    if [ "$f" -eq 0 ]; then
        printf -v line 'PASS  %-52s %4d passed %5ds' "$name" "$p" "$secs"
        echo "$line"
    else
        printf -v line 'FAIL  %-52s %4d passed, %d failed (exit %d) %ds' "$name" "$p" "$f" "$rc" "$secs"
        echo "$line"
        { echo "$line"; tail -40 "$LOG" | sed 's/^/    | /'; } >>"$RES/failures.$BASHPID"
    fi
}

run_unit() { # BINARY
    local bin=$1 rc line p=0 f=0 c=0 t0=$SECONDS
    timeout "$UNIT_TIMEOUT" "$bin" >"$LOG" 2>&1
    rc=$?
    line=$(grep -a 'Synthesis: Tested:' "$LOG" | tail -1)
    if [ -z "$line" ]; then
        record "$bin (no Synthesis line)" 0 1 "$rc" $((SECONDS - t0))
        return
    fi
    p=$(sed -E 's/.*Passing: ([0-9]+).*/\1/' <<<"$line")
    f=$(sed -E 's/.*Failing: ([0-9]+).*/\1/' <<<"$line")
    c=$(sed -E 's/.*Crashing: ([0-9]+).*/\1/' <<<"$line")
    record "$bin" "$p" "$((f + c))" "$rc" $((SECONDS - t0))
}

run_units() { # BUILD
    if [ ! -d "$1/tests" ]; then
        echo "note: no unit tests built in $1/tests"
        return
    fi
    while IFS= read -r bin; do
        run_unit "$bin"
    done < <(find "$1/tests" -type f -name 'test_*' -perm -u+x | sort)
}

run_clis() { # ACCRUE
    if [ ! -x "$1" ]; then
        record "$1 (not built)" 0 1 1
        return
    fi
    local script
    for script in tests/cli/test_*.sh; do
        SUITE_LINE='^[^ ]+\.sh: [0-9]+ passed, [0-9]+ failed$' ACCRUE=$1 \
            run_suite "$script [$1]" bash "$script"
    done
}

# A suite that ends with its own `NAME: P passed, F failed` line (SUITE_LINE, when set, is the
# pattern of that line: a CLI script's names the script, so a tool's own summary printed inside
# its output is never taken for the script's).
run_suite() { # NAME COMMAND...
    local name=$1 rc line p=0 f=0 t0=$SECONDS
    shift
    timeout "$CLI_TIMEOUT" "$@" >"$LOG" 2>&1
    rc=$?
    line=$(grep -aE "${SUITE_LINE:-^[^ ]+: [0-9]+ passed, [0-9]+ failed\$}" "$LOG" | tail -1)
    if [ -n "$line" ]; then
        p=$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line")
        f=$(sed -E 's/.* ([0-9]+) failed$/\1/' <<<"$line")
    fi
    [ -n "$line" ] || f=1
    record "$name" "$p" "$f" "$rc" $((SECONDS - t0))
}

# Lane A: the ASan+UBSan build, then libFuzzer (every target for FUZZ_QUICK_SECONDS, 15 s,
# plus every regression input; a fuzzer's time is fixed, so it costs the same beside lane B).
lane_a() {
    run_units build/asan
    run_clis build/asan/accrue
    if command -v clang-14 >/dev/null && make -s fuzz-build >"$LOG" 2>&1; then
        run_suite "tests/fuzz/run.sh ${FUZZ_QUICK_SECONDS:-15}" \
            bash tests/fuzz/run.sh "${FUZZ_QUICK_SECONDS:-15}" event_json record_decode \
            event_msgpack plan statement http
    else
        record "fuzz targets (clang-14 build failed)" 0 1 1 0
    fi
}

# Lane B: the -O2 build (and the commission goldens at -O0: with the other two builds, the
# same statement bytes and fingerprints are checked across three optimisation levels), the
# build and module checks, the browser and the reliability suite.
lane_b() {
    run_units build
    run_units build/o0
    # The first command of a fresh clone: packages installed before the build is planned.
    run_suite "tests/build/test_first_command.sh" bash tests/build/test_first_command.sh
    # The module map of docs/architecture.md: include directions, no circles of includes or calls.
    run_suite "tests/check_includes.sh" bash tests/check_includes.sh
    # the cases run_case_once marks ran against the ASan build (lane A)
    ACR_TEST_ONCE_SKIP=1 run_clis build/accrue
    # The dashboard in Debian's chromium, driven by the pinned playwright-core (make installs it
    # into tests/dashboard/node_modules), against the -O2 build only; screenshots go to build/
    # here (`make dashboard-shots` refreshes the committed ones in docs/img/).
    if command -v chromium >/dev/null && [ -f tests/dashboard/node_modules/playwright-core/package.json ]; then
        run_suite "tests/dashboard/run.mjs [build/accrue]" node tests/dashboard/run.mjs \
            --accrue build/accrue --gen build/accrue-gen --shots build/dashboard-img
    else
        record "tests/dashboard/run.mjs (chromium or playwright-core missing)" 0 1 1 0
    fi
    # Reliability (crash loops of 20 kills each for append and serve, injected faults, disk
    # full, tamper, the money invariant) on the -O2 build: the fault shim interposes malloc,
    # which ASan does not allow.
    run_suite "tests/reliability/run.sh quick [build/accrue]" bash tests/reliability/run.sh quick
}

# lane NAME: runs lane_NAME with its own scratch log.
lane() {
    LOG="$RES/log.$1"
    "lane_$1"
}

t0=$SECONDS
: >"$RES/tally"
if [ "$TEST_LANES" -ge 2 ]; then
    lane a &
    pa=$!
    lane b &
    pb=$!
    wait "$pa" "$pb"
else
    lane a
    lane b
fi

failures=("$RES"/failures.*)
if [ -e "${failures[0]}" ]; then
    echo
    echo "the failures, with the last 40 lines of each one's output:"
    cat "${failures[@]}"
fi
read -r passed failed < <(awk '{p += $1; f += $2} END {print p + 0, f + 0}' "$RES/tally")
echo "(the suite took $((SECONDS - t0)) s in $TEST_LANES lane(s))"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
