#!/usr/bin/env bash
# run.sh SECONDS TARGET... - runs each libFuzzer target of build/fuzz for SECONDS
# over a scratch copy of its seed corpus (tests/fuzz/corpus/<target>/, left
# untouched), then replays every committed file of that corpus through the
# binary once. A crash, leak, UB report or timeout fails the run; the
# reproducer is kept in build/fuzz/artifacts/<target>/. Prints one line per
# target with its executions and a final `fuzz: P passed, F failed` line.
set -u
cd "$(dirname "$0")/../.."
SECS=$1
shift
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
pass=0 fail=0
for t in "$@"; do
    bin=build/fuzz/fuzz_$t
    seeds=tests/fuzz/corpus/$t
    work=build/fuzz/work/$t
    art=build/fuzz/artifacts/$t
    mkdir -p "$work" "$art"
    log=build/fuzz/$t.log
    # -rss_limit_mb: the 2-core test VM; -max_len covers the 64 KiB event limit edge.
    # A dictionary of the target's grammar, when it has one (tests/fuzz/dict/<target>.dict).
    dict=()
    [ -f "tests/fuzz/dict/$t.dict" ] && dict=(-dict="tests/fuzz/dict/$t.dict")
    "$bin" -max_total_time="$SECS" -max_len=70000 -timeout=10 -rss_limit_mb=2048 "${dict[@]}" \
        -print_final_stats=1 -artifact_prefix="$art/" "$work" "$seeds" >"$log" 2>&1
    rc=$?
    execs=$(grep -a 'stat::number_of_executed_units' "$log" | awk '{print $2}')
    cov=$(grep -aoE 'cov: [0-9]+' "$log" | tail -1)
    # Replay every committed seed/regression input once (0 runs of fuzzing).
    files=("$seeds"/*)
    "$bin" -runs=0 -timeout=10 "${files[@]}" >"$log.replay" 2>&1
    rrc=$?
    if [ "$rc" -eq 0 ] && [ "$rrc" -eq 0 ]; then
        pass=$((pass + 1))
        printf 'PASS  fuzz_%-16s %10s execs in %ss, %s, %d corpus files replayed\n' \
            "$t" "${execs:-?}" "$SECS" "${cov:-cov: ?}" "${#files[@]}"
    else
        fail=$((fail + 1))
        printf 'FAIL  fuzz_%-16s (fuzz exit %d, replay exit %d) see %s, artifacts in %s\n' \
            "$t" "$rc" "$rrc" "$log" "$art"
        grep -aE 'ERROR|SUMMARY|oracle|runtime error' "$log" "$log.replay" | head -8 | sed 's/^/    | /'
    fi
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
