#!/usr/bin/env bash
# run.sh [quick|full] - the reliability suite (issue 6) against build/accrue (-O2, no ASan).
#
#   crash     crash.py: SIGKILL `accrue append` at random points (20 kills quick, 200 full)
#   crash_serve  crash_serve.py: SIGKILL `accrue serve` under 16 concurrent HTTP ingest clients
#             (20 kills quick, 200 full)
#   faults    faults.py: fault injection (build/faultshim.so) over a whole append and close
#   diskfull  diskfull.py: a 4 MiB tmpfs fills up; a --map-size 1M ledger grows
#   tamper    tamper.py: byte flips, swapped events, truncation are caught by verify
#   money     money.py: closed statements sum to the restatement; audits; determinism
#
# Each script ends with `<name>: P passed, F failed[, K known]`; this one adds them up and ends
# with exactly one line `reliability/run.sh: P passed, F failed` (the form tests/run.sh counts;
# known engine issues are listed above it, not failed). Exit non-zero when F > 0. Needs
# build/accrue and build/accrue-gen; builds build/faultshim.so and build/acr-tamper if needed.
set -u
cd "$(dirname "$0")/../.."
MODE=${1:-quick}
ACCRUE=${ACCRUE:-build/accrue}
case $ACCRUE in /*) ;; *) ACCRUE=$PWD/$ACCRUE ;; esac
export ACCRUE
if [ ! -x "$ACCRUE" ] || [ ! -x build/accrue-gen ]; then
    echo "reliability: $ACCRUE or build/accrue-gen is not built"
    echo "reliability/run.sh: 0 passed, 1 failed"
    exit 1
fi
make --no-print-directory -s build/faultshim.so build/acr-tamper || {
    echo "reliability/run.sh: 0 passed, 1 failed"
    exit 1
}
if [ "$MODE" = quick ]; then KILLS=20; SEEDS=1,2,3; else KILLS=${CRASH_KILLS:-200}; SEEDS=1,2,3,4,5,6,7,8; fi
P=0 F=0 K=0
LOG=$(mktemp "${TMPDIR:-/tmp}/accrue-rel.XXXXXX")
trap 'rm -f "$LOG"' EXIT
step() { # NAME CMD...
    local name=$1 rc line p f k t0=$SECONDS
    shift
    "$@" >"$LOG" 2>&1
    rc=$?
    line=$(grep -aE "^$name: [0-9]+ passed, [0-9]+ failed" "$LOG" | tail -1)
    p=$(sed -nE 's/.*: ([0-9]+) passed.*/\1/p' <<<"$line")
    f=$(sed -nE 's/.* ([0-9]+) failed.*/\1/p' <<<"$line")
    k=$(sed -nE 's/.* ([0-9]+) known.*/\1/p' <<<"$line")
    p=${p:-0} f=${f:-0} k=${k:-0}
    if [ -z "$line" ] || { [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; }; then f=$((f + 1)); fi
    P=$((P + p)) F=$((F + f)) K=$((K + k))
    if [ "$f" -eq 0 ]; then
        printf 'PASS  %-11s %5d passed, %3d known  (%ds)\n' "$name" "$p" "$k" $((SECONDS - t0))
    else
        printf 'FAIL  %-11s %5d passed, %d failed (exit %d)\n' "$name" "$p" "$f" "$rc"
        grep -aE '^FAIL' "$LOG" | head -20 | sed 's/^/    | /'
        tail -5 "$LOG" | sed 's/^/    | /'
    fi
    grep -aE "^$name: " "$LOG" | grep -avE 'passed, [0-9]+ failed' | sed 's/^/      /'
    grep -aE '^KNOWN' "$LOG" | sed 's/^/      /' | head -6
}
step crash python3 tests/reliability/crash.py --kills "$KILLS"
step crash_serve python3 tests/reliability/crash_serve.py --kills "$KILLS"
step faults python3 tests/reliability/faults.py "$MODE"
step diskfull python3 tests/reliability/diskfull.py
step tamper python3 tests/reliability/tamper.py
step money python3 tests/reliability/money.py --seeds "$SEEDS"
echo "reliability: $K known engine issues (K1-K6, docs/reliability.md), not counted as failures"
echo "reliability/run.sh: $P passed, $F failed"
[ "$F" -eq 0 ]
