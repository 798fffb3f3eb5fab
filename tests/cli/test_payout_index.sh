#!/usr/bin/env bash
# test_payout_index.sh - payout runs through the period_seqs index (docs/benchmarks.md, "A run
# in proportion to its periods") against the full scan (ACR_PAYOUT_FULL_SCAN=1): generated
# histories (late sales, refunds in later periods, adjustments, plan versions, the partner
# program's events with --program) appended in two parts with a close between them, every
# period as of the head and of an earlier seq, month and quarter ledgers: the statement
# and summary bytes must be identical; verify accepts the index; rebuild keeps it.
. "$(dirname "$0")/lib.sh"

GEN=${ACCRUE_GEN:-$(dirname "$ACCRUE")/accrue-gen}
[ -x "$GEN" ] || GEN=$ROOT/build/accrue-gen

# both_ways LEDGER PERIOD [AS_OF]: one run each way (the walk forced with
# ACR_PAYOUT_FULL_SCAN=0), compared byte for byte; and a third, by the default rule (walk or
# scan, engine/payout/payout.c), with the finish on three threads and a group per partner
# (processors/lines.c),
# against the full scan's on one thread (ACR_PAYOUT_THREADS=1), the reference.
both_ways() {
    local l=$1 p=$2 x=${3:-} args=()
    [ -n "$x" ] && args=(--as-of "$x")
    rm -rf "$TMP/ix" "$TMP/fs" "$TMP/px"
    ACR_PAYOUT_FULL_SCAN=0 acc "$l" payout run "$p" "${args[@]}" --out "$TMP/ix"
    local rc_ix=$RC
    ACR_PAYOUT_THREADS=3 ACR_PAYOUT_CHUNK_SALES=1 acc "$l" payout run "$p" "${args[@]}" --out "$TMP/px"
    local rc_px=$RC
    ACR_PAYOUT_THREADS=1 ACR_PAYOUT_FULL_SCAN=1 acc "$l" payout run "$p" "${args[@]}" --out "$TMP/fs"
    assert_eq "$rc_ix" "$RC" "exit of $p ${x:+as of $x} indexed vs full scan"
    assert_eq "$rc_px" "$RC" "exit of $p ${x:+as of $x} on three threads vs one"
    [ "$RC" -eq 0 ] || return 0
    assert_file_eq "$TMP/ix/statement.csv" "$TMP/fs/statement.csv"
    assert_file_eq "$TMP/ix/summary.json" "$TMP/fs/summary.json"
    assert_file_eq "$TMP/px/statement.csv" "$TMP/fs/statement.csv"
    assert_file_eq "$TMP/px/summary.json" "$TMP/fs/summary.json"
}

# history SEED KIND OFFSET [GEN ARGS...]: a ledger with the generated history of SEED,
# appended in two parts, the first period closed in between; prints the ledger.
history() {
    local seed=$1 kind=$2 off=$3
    shift 3
    local l f="$TMP/h$seed.jsonl"
    l=$(new_ledger --period "$kind" --utc-offset "$off")
    "$GEN" --partners 30 --sales 3000 --seed "$seed" --months 7 --refund-pct 30 "$@" >"$f"
    local n half
    n=$(wc -l <"$f")
    half=$((n * 2 / 3))
    head -n "$half" "$f" >"$f.1"
    tail -n +"$((half + 1))" "$f" >"$f.2"
    "$ACCRUE" --ledger "$l" append "$f.1" >/dev/null || fail "append part 1 of seed $seed"
    "$ACCRUE" --ledger "$l" payout close "$( [ "$kind" = month ] && echo 2026-01 || echo 2026-Q1)" \
        --force >/dev/null || fail "close of seed $seed"
    "$ACCRUE" --ledger "$l" append "$f.2" >/dev/null || fail "append part 2 of seed $seed"
    echo "$l"
}

case_months() {
    local seed l p
    for seed in 1 2 3; do
        l=$(history "$seed" month "$([ $((seed % 2)) -eq 1 ] && echo +09:00 || echo -05:00)" \
            $([ "$seed" -ne 2 ] && echo --program))
        for p in 2025-12 2026-01 2026-02 2026-03 2026-04 2026-05 2026-06 2026-07 2026-08; do
            both_ways "$l" "$p"
            both_ways "$l" "$p" $((seed * 997))
        done
        acc "$l" verify
        assert_exit 0 "verify of seed $seed"
    done
}

case_quarters() {
    local l p
    l=$(history 4 quarter +00:00 --program)
    for p in 2025-Q4 2026-Q1 2026-Q2 2026-Q3 2026-Q4; do
        both_ways "$l" "$p"
        both_ways "$l" "$p" 1500
    done
}

# rebuild derives the same index (verify compares it key by key) and the runs still agree.
case_rebuild() {
    local l
    l=$(history 5 month +09:00 --program)
    acc "$l" rebuild
    assert_exit 0 "rebuild"
    acc "$l" verify
    assert_exit 0 "verify after rebuild"
    both_ways "$l" 2026-02
    both_ways "$l" 2026-03 2000
}

# --out writes the statement with O_DIRECT where the file system takes it (1 MiB aligned chunks,
# the last one through the page cache): a statement of several MiB written that way is the
# same bytes as one written through the page cache (tmpfs refuses O_DIRECT) and hashes to the
# fingerprint the run printed; the in-memory path (audit of a close) agrees with both.
case_direct_write() {
    local l f="$TMP/big.jsonl" shm=/dev/shm/accrue-test-$$
    l=$(new_ledger)
    "$GEN" --partners 40 --sales 40000 --seed 8 --months 3 >"$f"
    "$ACCRUE" --ledger "$l" append "$f" >/dev/null || fail "append"
    rm -rf "$TMP/disk"
    acc "$l" payout run 2026-03 --out "$TMP/disk"
    assert_exit 0 "run --out on the disk"
    local size fp
    size=$(stat -c %s "$TMP/disk/statement.csv")
    [ "$size" -gt $((3 * 1048576)) ] || fail "the statement spans several 1 MiB chunks ($size bytes)"
    fp=$(grep -o '"fingerprint": *"[0-9a-f]*"' "$TMP/disk/summary.json" | grep -o '[0-9a-f]\{32\}')
    assert_eq "$(xxh128sum "$TMP/disk/statement.csv" | cut -d' ' -f1)" "$fp" "xxh128sum of the file"
    if mkdir -p "$shm" 2>/dev/null; then
        acc "$l" payout run 2026-03 --out "$shm/out"
        assert_exit 0 "run --out on tmpfs"
        assert_file_eq "$TMP/disk/statement.csv" "$shm/out/statement.csv"
        rm -rf "$shm"
    fi
    acc "$l" payout close 2026-03 --force
    assert_exit 0 "close"
    rm -rf "$TMP/audit"
    acc "$l" payout audit 2026-03 --out "$TMP/audit"
    assert_exit 0 "audit"
    assert_file_eq "$TMP/disk/statement.csv" "$TMP/audit/statement.csv"
}

run_case case_months
run_case case_quarters
run_case case_rebuild
run_case case_direct_write
finish
