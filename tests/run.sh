#!/usr/bin/env bash
# run.sh - the whole test suite, called by `make test` after both builds.
#
# 1. every Criterion unit-test binary of the ASan+UBSan build (build/asan)
#    and of the -O2 build (build), counted from its closing line
#    `Synthesis: Tested: T | Passing: P | Failing: F | Crashing: C`;
# 2. every tests/cli/test_*.sh against build/asan/accrue, then build/accrue,
#    counted from its closing line `<script>: P passed, F failed`;
# 3. tests/check_includes.sh (the module map), the dashboard in headless chromium
#    (tests/dashboard/run.mjs, -O2 build), the reliability suite and the fuzz targets, each
#    counted from its own closing line.
# A binary or script that exits non-zero without reporting a failure (a
# sanitizer report at exit, a crash before the summary) counts one failure.
# Prints a line per file and ends with exactly one line `N passed, M failed`;
# exits non-zero when M > 0.
set -u
cd "$(dirname "$0")/.."

export ASAN_OPTIONS=detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}
export UBSAN_OPTIONS=print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}
UNIT_TIMEOUT=${UNIT_TIMEOUT:-600}
CLI_TIMEOUT=${CLI_TIMEOUT:-900}
TOTAL_PASSED=0
TOTAL_FAILED=0
LOG=$(mktemp "${TMPDIR:-/tmp}/accrue-test.XXXXXX")
trap 'rm -f "$LOG"' EXIT

show_tail() {
    tail -40 "$LOG" | sed 's/^/    | /'
}

# record NAME PASSED FAILED RC [SECONDS]
record() {
    local name=$1 p=$2 f=$3 rc=$4 secs=${5:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
    fi
    TOTAL_PASSED=$((TOTAL_PASSED + p))
    TOTAL_FAILED=$((TOTAL_FAILED + f))
    if [ "$f" -eq 0 ]; then
        printf 'PASS  %-52s %4d passed %5ds\n' "$name" "$p" "$secs"
    else
        printf 'FAIL  %-52s %4d passed, %d failed (exit %d) %ds\n' "$name" "$p" "$f" "$rc" "$secs"
        show_tail
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

run_cli() { # ACCRUE SCRIPT
    local accrue=$1 script=$2 rc line p=0 f=0 t0=$SECONDS
    ACCRUE=$accrue timeout "$CLI_TIMEOUT" bash "$script" >"$LOG" 2>&1
    rc=$?
    line=$(grep -aE '^[^ ]+\.sh: [0-9]+ passed, [0-9]+ failed$' "$LOG" | tail -1)
    if [ -n "$line" ]; then
        p=$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line")
        f=$(sed -E 's/.* ([0-9]+) failed$/\1/' <<<"$line")
    fi
    [ -n "$line" ] || f=1
    record "$script [$accrue]" "$p" "$f" "$rc" $((SECONDS - t0))
}

# build/o0 holds the commission goldens built at -O0: with the sanitizer and -O2 builds, the
# same statement bytes and fingerprints are checked across three optimisation levels.
for build in build/asan build build/o0; do
    if [ ! -d "$build/tests" ]; then
        echo "note: no unit tests built in $build/tests"
        continue
    fi
    while IFS= read -r bin; do
        run_unit "$bin"
    done < <(find "$build/tests" -type f -name 'test_*' -perm -u+x | sort)
done

for accrue in build/asan/accrue build/accrue; do
    if [ ! -x "$accrue" ]; then
        record "$accrue (not built)" 0 1 1
        continue
    fi
    for script in tests/cli/test_*.sh; do
        run_cli "$accrue" "$script"
    done
done

# A suite that ends with its own `NAME: P passed, F failed` line.
run_suite() { # NAME COMMAND...
    local name=$1 rc line p=0 f=0 t0=$SECONDS
    shift
    timeout "$CLI_TIMEOUT" "$@" >"$LOG" 2>&1
    rc=$?
    line=$(grep -aE '^[^ ]+: [0-9]+ passed, [0-9]+ failed$' "$LOG" | tail -1)
    if [ -n "$line" ]; then
        p=$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line")
        f=$(sed -E 's/.* ([0-9]+) failed$/\1/' <<<"$line")
    fi
    [ -n "$line" ] || f=1
    record "$name" "$p" "$f" "$rc" $((SECONDS - t0))
}

# The first command of a fresh clone: packages installed before the build is planned.
run_suite "tests/build/test_first_command.sh" bash tests/build/test_first_command.sh
# The module map of docs/architecture.md: include directions, no circles of includes or calls.
run_suite "tests/check_includes.sh" bash tests/check_includes.sh

# The dashboard in Debian's chromium, driven by the pinned playwright-core (make installs it into
# tests/dashboard/node_modules), against the -O2 build only; screenshots go to build/ here
# (`make dashboard-shots` refreshes the committed ones in docs/img/).
if command -v chromium >/dev/null && [ -f tests/dashboard/node_modules/playwright-core/package.json ]; then
    run_suite "tests/dashboard/run.mjs [build/accrue]" node tests/dashboard/run.mjs \
        --accrue build/accrue --gen build/accrue-gen --shots build/dashboard-img
else
    record "tests/dashboard/run.mjs (chromium or playwright-core missing)" 0 1 1 0
fi

# Reliability (crash loops of 20 kills each for append and serve, injected faults, disk full, tamper, the money
# invariant) on the -O2 build: the fault shim interposes malloc, which ASan does not allow.
run_suite "tests/reliability/run.sh quick [build/accrue]" bash tests/reliability/run.sh quick

# libFuzzer: every target for FUZZ_QUICK_SECONDS (20 s) plus every regression input.
if command -v clang-14 >/dev/null && make -s fuzz-build >"$LOG" 2>&1; then
    run_suite "tests/fuzz/run.sh ${FUZZ_QUICK_SECONDS:-20}" \
        bash tests/fuzz/run.sh "${FUZZ_QUICK_SECONDS:-20}" event_json record_decode \
        event_msgpack plan statement http
else
    record "fuzz targets (clang-14 build failed)" 0 1 1 0
fi

echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed"
[ "$TOTAL_FAILED" -eq 0 ]
